"""QCI in the web console: the assessment form (errors by the questions, saved through the service), the
scorecard page with its radar and action plan, the list, and who sees what."""

from __future__ import annotations

import re
from typing import Any

import pytest

from crmkit.console.testing import ConsoleBrowser, console_user, text, untranslated
from crmkit.i18n import read_catalog

pytestmark = pytest.mark.crmkit_plugins("qci")

NEW = "/console/qci/assessments/new"


def answers(**areas: str) -> dict[str, str]:
    """The form's fields answering every question of the given areas' prefixes with one value (``RE="4"``)."""
    from crmkit_qci.bank import default_bank

    return {
        f"answers.{q.id}": value
        for q in default_bank().questions()
        for prefix, value in areas.items()
        if q.id.rstrip("0123456789") == prefix
    }


def test_a_manager_fills_the_form_in_vietnamese_fixes_a_missed_question_and_reads_the_scorecard(crm: Any) -> None:
    console_user(crm, "mai", roles=["manager"])
    browser = ConsoleBrowser(crm)
    browser.sign_in("mai")

    form = browser.get(NEW)
    page = text(form)
    assert "Đánh giá mới" in page and "Giữ chân khách hàng" in page and "Trải nghiệm khách hàng" in page
    assert (
        "RE1. Khách hàng có nguy cơ rời bỏ được phát hiện sớm (không hoạt động, khiếu nại, chi tiêu giảm). "
        "1 · Chưa làm 2 · Tự phát: tùy từng người"
    ) in page
    assert "5 · Tối ưu: liên tục cải tiến, là hình mẫu cho nơi khác Không áp dụng" in page

    given = {"assessed_on": "2026-01-15", "label": "Quý 1", **answers(AP="2", RE="4")}
    del given["answers.AP5"]
    refused = browser.submit(NEW, NEW, given)
    assert refused.status_code == 422 and crm.qci.assessments.list() == []
    html = refused.get_data(as_text=True)
    assert re.search(r'aria-describedby="AP5-error">\s*<legend>AP5\. ', html)
    assert (
        '<p class="error" id="AP5-error">Chưa trả lời: hãy chọn một mức trên thang điểm, hoặc “Không áp dụng”.</p>'
        in html
    )
    assert 'name="answers.RE1" value="4" checked' in html and 'value="Quý 1"' in html  # what was entered stays

    saved = browser.submit(NEW, NEW, {**given, "answers.AP5": "n"})
    assert saved.status_code == 303
    scorecard = saved.headers["Location"].split("?")[0]
    assessment = crm.qci.assessments.list()[-1]  # saved through the service, as `crmkit qci assess` saves
    assert (assessment.label, str(assessment.assessed_on), assessment.assessor) == ("Quý 1", "2026-01-15", "mai")
    assert assessment.score("analysis_planning") == 25.0 and assessment.score("retention") == 75.0
    card = browser.get(saved.headers["Location"])  # with ?saved=1
    page = text(card)
    assert "Bảng điểm QCI: đánh giá ngày 15/01/2026" in page and "Đã lưu đánh giá." in page
    assert "50 Điểm tổng, trên thang 100" in page
    assert "Phân tích & lập kế hoạch 25 4/5" in page and "Giữ chân khách hàng 75 5/5" in page
    assert re.search(
        r'<img src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+" '
        r'alt="Biểu đồ radar các lĩnh vực QCI: điểm tự đánh giá và điểm số liệu">',
        card.get_data(as_text=True),
    )
    assert "Chưa có việc nào." in page

    planned = browser.submit(scorecard, scorecard + "/plan", {})
    page = text(browser.get(planned.headers["Location"]))
    actions = crm.qci.plan.list()
    assert actions and f"Đã thêm {len(actions)} việc." in page
    first, catalog = actions[0], read_catalog("crmkit_qci", "crmkit_qci", "vi")
    assert (
        f"{catalog.get(first.title).string} {catalog.get(first.description).string} mai {first.due_on:%d/%m/%Y} "
        "Chưa bắt đầu" in page
    )
    listing = text(browser.get("/console/qci/"))
    assert "Đánh giá QCI" in listing and "15/01/2026 Quý 1 mai 50" in listing


def test_the_form_refuses_a_future_date_and_an_empty_assessment_in_english(crm: Any) -> None:
    console_user(crm, "mai", roles=["manager"], locale="en")
    browser = ConsoleBrowser(crm)
    browser.sign_in("mai")
    refused = browser.submit(NEW, NEW, {"assessed_on": "2999-01-01", **answers(CX="3")})
    assert refused.status_code == 422
    assert "Date of the assessment The date cannot be in the future." in text(refused)
    assert 'value="2999-01-01"' in refused.get_data(as_text=True)
    empty = browser.submit(NEW, NEW, {"assessed_on": "2026-01-15"})
    assert "Answer the questions of at least one area." in text(empty)
    assert crm.qci.assessments.list() == []


def test_a_reader_sees_scorecards_without_buttons_and_others_see_no_qci_at_all(crm: Any) -> None:
    console_user(crm, "ro", roles=["read-only"], locale="en")
    console_user(crm, "lan", roles=["sales"], locale="en")
    done = crm.qci.assessments.record(dict.fromkeys(("RE1", "RE2", "RE3", "RE4", "RE5"), 3), assessed_on="2026-02-01")
    reader = ConsoleBrowser(crm)
    reader.sign_in("ro")
    listing = reader.get("/console/qci/")
    assert "QCI assessments" in text(listing) and "New assessment" not in text(listing)
    card = reader.get(f"/console/qci/assessments/{done.id}")
    assert "Retention 50 5/5" in text(card) and "Plan the weakest areas" not in text(card)
    assert reader.get(NEW).status_code == 403
    assert reader.post(f"/console/qci/assessments/{done.id}/plan", {"csrf_token": "x"}).status_code == 403
    assert reader.get("/console/qci/assessments/999").status_code == 404

    sales = ConsoleBrowser(crm)
    sales.sign_in("lan")
    assert "QCI" not in text(sales.get("/console/"))
    assert sales.get("/console/qci/").status_code == 403


def test_every_text_of_the_console_the_default_bank_and_the_actions_has_its_vietnamese_translation(crm: Any) -> None:
    from crmkit_qci import console
    from crmkit_qci.areas import AREAS
    from crmkit_qci.bank import default_bank
    from crmkit_qci.plan import rules

    bank = default_bank()
    looked_up = {
        *console.STATUS_NAMES.values(),
        *console.KNOWN_ERRORS.values(),
        *(a.title for a in AREAS),
        *(q.text for q in bank.questions()),
        *(q.help for q in bank.questions() if q.help),
        *(label for q in bank.questions() for label in q.labels.values()),
        *(text for rule in rules() for text in (rule["title"], rule["description"])),
    }
    assert untranslated(crm, "qci", also=looked_up) == []
