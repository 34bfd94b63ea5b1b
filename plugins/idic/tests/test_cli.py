"""``crmkit idic …`` commands and the HTML report."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crmkit.testing import add_user

pytestmark = pytest.mark.crmkit_plugins("idic")


def test_run_status_runs_show_review_unmerge_and_agenda(crm: Any, invoke: Any) -> None:
    add_user(crm, "lan", roles=["sales"])
    a = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", owner="lan", consents={"email": True})
    crm.customers.add(name="Nguyen Van An", email="an@example.vn")
    crm.customers.add(name="Trần Văn Bảo", phone="0912345678")
    crm.customers.add(name="Lê Thị Cúc", phone="0912345678")
    result = invoke(crm, "--format", "json", "idic", "run")
    assert result.exit_code == 0, result.output
    steps = json.loads(result.output)
    assert [s["status"] for s in steps] == ["done"] * 4
    assert "merged 1" in steps[0]["counts"] and "queued 1" in steps[0]["counts"]
    status = json.loads(invoke(crm, "--format", "json", "idic", "status").output)
    assert (status["status"], status["review_queue"]) == ("done", 1)
    assert json.loads(invoke(crm, "--format", "json", "idic", "runs").output)[0]["status"] == "done"
    shown = invoke(crm, "idic", "show", "1").output  # the steps and what they counted, by name
    assert shown.startswith("IDIC run 1: Done") and "Identify" in shown and "Customize" in shown
    assert "Merged automatically 1" in shown and "Sent to review 1" in shown
    shown = invoke(crm, "--locale", "vi", "idic", "show", "1").output
    assert shown.startswith("Lượt chạy IDIC 1: Hoàn tất") and "Nhận diện" in shown
    assert "Cá biệt hóa" in shown
    assert shown.splitlines()[1].split() == ["Bước", "Trạng", "thái", "Số", "liệu", "Lỗi"]
    assert invoke(crm, "idic", "show", "9").exit_code != 0
    queue = json.loads(invoke(crm, "--format", "json", "idic", "review").output)
    assert [q["reason"] for q in queue] == ["same phone +84912345678, different name"]
    rejected = invoke(crm, "idic", "review", "--reject", str(queue[0]["id"]))
    assert "rejected" in rejected.output
    merges = json.loads(invoke(crm, "--format", "json", "idic", "merges").output)
    undone = json.loads(invoke(crm, "--format", "json", "idic", "unmerge", str(merges[0]["id"])).output)
    assert undone["kept"] == a.id
    tomorrow = (crm.today() + timedelta(days=1)).isoformat()
    agenda = json.loads(invoke(crm, "--format", "json", "idic", "agenda", "lan", "--date", tomorrow).output)
    assert [(x["customer_id"], x["channel"]) for x in agenda] == [(a.id, "email")]


def test_interactive_review_and_treatments_commands(crm: Any, invoke: Any) -> None:
    crm.customers.add(name="Phạm Thu Hà", phone="0987111222")
    crm.customers.add(name="Đỗ Minh Khang", phone="0987111222")
    invoke(crm, "idic", "run", "--step", "identify")
    result = invoke(crm, "idic", "review", "-i", input="y\n")
    assert result.exit_code == 0 and "merge?" in result.output
    assert crm.idic.merges()[0]["automatic"] is False
    added = invoke(crm, "idic", "treatments", "add", "Chăm sóc", "--tier", "unknown", "--message", "Gọi hỏi thăm")
    assert added.exit_code == 0, added.output
    bad = invoke(crm, "idic", "treatments", "add", "Sai", "--tier", "vàng", "--message", "x")
    assert bad.exit_code != 0 and "unknown tier 'vàng'" in bad.output
    assert "Chăm sóc" in invoke(crm, "idic", "treatments").output


def test_the_html_report_shows_funnel_matrix_coverage_and_treatments(crm: Any, invoke: Any, tmp_path: Path) -> None:
    assert invoke(crm, "idic", "report", "--out", str(tmp_path / "none.html")).exit_code != 0
    crm.customers.add(name="Vũ Thị Mai", email="mai@example.vn", tags=["needs:van-phong"], consents={"email": True})
    crm.idic.add_treatment("Văn phòng", needs="van-phong", offer="Combo văn phòng phẩm")
    crm.idic.run()
    out = tmp_path / "idic.html"
    assert invoke(crm, "idic", "report", "--out", str(out)).exit_code == 0
    html = out.read_text(encoding="utf-8")
    for text in (
        "Funnel",
        "Tier × needs",
        "van-phong",
        "Needs groups (rules)",
        "Plan coverage",
        "100% of customers",
        "Văn phòng",
    ):
        assert text in html, text
