"""Analytics in the web console: the dashboard (and its "Compute now"), the 360's "Value" panel and the home
tile, as a marketing user, a salesperson and someone without analytics see them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from crmkit.console.testing import ConsoleBrowser, console_user, text, untranslated
from crmkit_analytics.testing import SOURCE

pytestmark = pytest.mark.crmkit_plugins("analytics", SOURCE)

DASHBOARD, COMPUTE = "/console/analytics/", "/console/analytics/compute"
PRICE = 1_500_000  # every purchase of ``purchase_history``: the average order value is 1.500.000 ₫


def test_marketing_computes_from_the_empty_dashboard_and_reads_segments_value_and_cohorts_in_vietnamese(
    crm: Any, purchase_history: Callable[..., list[int]]
) -> None:
    console_user(crm, "hoa", roles=["marketing"])
    ids = purchase_history(crm)
    browser = ConsoleBrowser(crm)
    browser.sign_in("hoa")

    empty = text(browser.get(DASHBOARD))
    assert "Chưa có số liệu nào được tính" in empty and "Bấm “Tính ngay” để tính." in empty
    assert "1.500.000 ₫ Giá trị đơn hàng trung bình" in empty  # the KPIs need no computed run

    computed = browser.submit(DASHBOARD, COMPUTE, {})
    page = text(computed)
    assert computed.status_code == 200 and "Đã tính xong 5 chỉ số." in page
    assert "Phân khúc RFM" in page and "Loại khách hàng" in page and "Giá trị vòng đời khách hàng" in page
    run = crm.analytics.latest("rfm")  # what `crmkit analytics run` stored is what the page shows
    champions = run.summary["segments"]["champions"]["customers"]
    assert f"Khách VIP {champions} " in page
    assert "mua gần đây, thường xuyên và chi nhiều: tri ân, nhờ giới thiệu khách mới" in page
    total = crm.analytics.latest("clv").summary["total_minor"]
    assert f"{total:,}".replace(",", ".") + " ₫ Giá trị vòng đời khách hàng dự kiến" in page
    html = computed.get_data(as_text=True)
    assert re.search(
        r'<img src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+" alt="Lưới RFM: số khách hàng mỗi ô">', html
    )
    assert 'alt="Khách hàng theo loại"' in html and "Nhóm khách theo tháng mua đầu" in page
    assert len(html.encode()) < 200_000

    again = text(browser.get(DASHBOARD))
    assert "Tính lại" in again and "Lần tính gần nhất:" in again and "Đã tính xong" not in again

    top = crm.analytics.customers("rfm", order="monetary_minor", limit=1)[0]
    profile = text(browser.get(f"/console/customers/{top['customer_id']}"))
    assert "Giá trị Phân khúc RFM" in profile and "Điểm RFM" in profile and "Giá trị vòng đời dự kiến" in profile
    spent = f"{top['frequency'] * PRICE:,}".replace(",", ".")
    assert f"{top['frequency']} lần mua, {spent} ₫" in profile
    home = text(browser.get("/console/"))
    assert f"Giá trị khách hàng {total:,}".replace(",", ".") in home and f"Khách VIP: {champions}" in home
    assert "Phân tích" in home and ids


def test_a_salesperson_reads_only_her_customers_and_cannot_compute(
    crm: Any, purchase_history: Callable[..., list[int]]
) -> None:
    console_user(crm, "lan", roles=["sales"], locale="en")
    purchase_history(crm, owner="lan")
    browser = ConsoleBrowser(crm)
    browser.sign_in("lan")

    before = text(browser.get(DASHBOARD))
    assert "Nothing computed yet" in before and "Ask a marketing colleague to compute them." in before
    assert "Compute now" not in before

    crm.analytics.rfm()  # as `crmkit analytics rfm` run by the system
    crm.analytics.customer_types()
    dashboard = browser.get(DASHBOARD)
    page = text(dashboard)
    assert "These figures count only the customers you look after." in page
    assert "8 Customers 8 Buyers" in page  # her 8 of the 24
    mine = crm.as_user("lan").analytics.latest("rfm").summary["segments"]
    assert all(
        f"{name} {mine[key]['customers']} " in page for key, name in (("champions", "Champions"), ("lost", "Lost"))
    )
    assert f'action="{COMPUTE}"' not in dashboard.get_data(as_text=True)
    assert browser.post(COMPUTE, {"csrf_token": "x"}).status_code == 403
    assert "Customer value" in text(browser.get("/console/"))


def test_computing_before_any_purchase_says_why_lifetime_value_is_missing(crm: Any) -> None:
    console_user(crm, "hoa", roles=["marketing"], locale="en")
    an = crm.customers.add(name="Nguyễn Văn An")
    browser = ConsoleBrowser(crm)
    browser.sign_in("hoa")
    page = text(browser.submit(DASHBOARD, COMPUTE, {}))
    assert "Computed: 4 measures." in page
    assert "Customer lifetime value: history: no purchases yet: lifetime value needs purchase history" in page
    assert "1 Customers 0 Buyers — Bought twice or more — Average order value" in page
    assert "Prospect 1 not yet a buyer: convert" in page
    assert "Value Customer type Prospect" in text(browser.get(f"/console/customers/{an.id}"))


def test_without_analytics_read_the_menu_tile_and_panel_are_hidden_and_the_dashboard_answers_403(
    crm: Any, purchase_history: Callable[..., list[int]]
) -> None:
    console_user(crm, "doc", roles=[], grants={"customers.read": "all"}, locale="en")
    an = purchase_history(crm, customers=3)[0]
    crm.analytics.rfm()
    browser = ConsoleBrowser(crm)
    browser.sign_in("doc")
    home = text(browser.get("/console/"))
    assert "Analytics" not in home and "Customer value" not in home
    profile = text(browser.get(f"/console/customers/{an}"))
    assert "RFM" not in profile and "Value" not in profile
    assert browser.get(DASHBOARD).status_code == 403


def test_every_text_of_the_console_has_its_vietnamese_translation(crm: Any) -> None:
    from crmkit_analytics import console
    from crmkit_analytics.customer_types import TYPES
    from crmkit_analytics.rfm import SEGMENTS

    looked_up = {
        *console.TYPE_NAMES.values(),
        *console.MEASURE_NAMES.values(),
        *TYPES.values(),
        *(text for segment in SEGMENTS.values() for text in (segment[0], segment[2])),
        "FM score (frequency and money, 5 = best)",
        "R score (recency, 5 = most recent)",
        "customers",
        "months since first purchase",
    }  # the charts' captions, translated through their ``text``
    assert untranslated(crm, "analytics", also=looked_up) == []
