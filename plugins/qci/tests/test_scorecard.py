"""The scorecard: targets (defaults, absolute, relative), traffic lights by the documented thresholds, trends."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

import pytest

from crmkit import ValidationError
from crmkit_qci.scorecard import AMBER, GREEN, NONE, RED, light, parse_target

from .conftest import at, ok, run, staff


@pytest.mark.parametrize(
    ("direction", "value", "expected"),
    [
        ("higher", "4.0", GREEN),
        ("higher", "3.6", AMBER),
        ("higher", "3.59", RED),  # target 4, tolerance 10% → 3.6
        ("lower", "24", GREEN),
        ("lower", "26.4", AMBER),
        ("lower", "26.5", RED),  # target 24 → 26.4
    ],
)
def test_lights_follow_the_documented_thresholds(direction: str, value: str, expected: str) -> None:
    target = Decimal("4") if direction == "higher" else Decimal("24")
    assert light(direction, Decimal(value), target, Decimal("0.10")) == expected


def test_no_value_or_no_target_gives_no_light() -> None:
    assert light("higher", None, Decimal(1), Decimal("0.1")) == NONE
    assert light("higher", Decimal(1), None, Decimal("0.1")) == NONE
    assert light("lower", Decimal(0), Decimal(0), Decimal("0.1")) == GREEN  # zero duplicates against a zero target


def test_targets_are_read_in_the_kpis_unit() -> None:
    assert parse_target("data_completeness", "90%").absolute == Decimal("0.9")
    assert parse_target("data_completeness", "0.9").absolute == Decimal("0.9")
    assert parse_target("cost_per_order", "150000").absolute == Decimal(150000)  # VND: no minor unit
    assert parse_target("cost_per_order", "12.50", currency="USD").absolute == Decimal(1250)
    relative = parse_target("new_customers", "+5%", tolerance="5%")
    assert (relative.absolute, relative.relative, relative.tolerance) == (None, Decimal("0.05"), Decimal("0.05"))
    for key, text, message in [
        ("satisfaction", "6", "satisfaction: a rating target is between 1 and 5, not '6'"),
        ("satisfaction", "lots", "satisfaction: 'lots' is not a target"),
        ("response_time", "24%", "response_time: '24%': only shares take a % target (response_time is in hours)"),
        ("loyalty", "1", "unknown KPI 'loyalty' (one of analysis_age,"),
    ]:
        with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_target(key, text)
    with pytest.raises(ValidationError, match="tolerance: satisfaction: the tolerance is between 0% and 100%"):
        parse_target("satisfaction", "4", tolerance="150%")


def _ratings(crm: Any) -> None:
    staff(crm, "huong.le")
    a = crm.customers.add(name="Phạm Quốc Dũng", owner="huong.le").id
    for day, rating in (("2025-02-10", 5), ("2025-02-11", 4), ("2025-03-10", 4), ("2025-03-11", 3)):
        crm.interactions.log(a, "phone", occurred_at=at(day), rating=rating, employee="ngoc.do")


def test_scorecard_lights_trends_and_configured_targets(qci_crm: Any) -> None:
    _ratings(qci_crm)
    card = qci_crm.qci.scorecard("2025-03")
    rows = {r.measure.key: r for r in card.rows}
    sat = rows["satisfaction"]
    assert (sat.measure.value, sat.target_value, sat.light) == (Decimal("3.50"), Decimal("4"), RED)  # 3.5 < 3.6
    assert (sat.previous.value, sat.change, sat.trend, sat.change_display()) == (
        Decimal("4.50"),
        Decimal("-1.00"),
        "worse",
        "▼ -1.00",
    )
    activity = rows["activities_per_employee"]  # default target +0%: at least last period's 2.00
    assert (activity.target_value, activity.light, activity.target_display()) == (
        Decimal("2.00"),
        GREEN,
        "≥ 2.00 (+0% vs previous)",
    )
    assert rows["campaign_roi"].light == NONE and rows["campaign_roi"].trend == "n/a"
    assert rows["duplicate_rate"].previous is None  # as of now: nothing to compare with

    qci_crm.qci.set_target("satisfaction", "3.5", tolerance="5%")
    qci_crm.qci.set_target("activities_per_employee", "+60%")
    qci_crm.qci.set_target("data_completeness", None)
    rows = {r.measure.key: r for r in qci_crm.qci.scorecard("2025-03").rows}
    assert rows["satisfaction"].light == GREEN and rows["satisfaction"].target.tolerance == Decimal("0.05")
    assert (rows["activities_per_employee"].target_value, rows["activities_per_employee"].light) == (
        Decimal("3.2000"),
        RED,
    )  # 2 < 3.2 − 10%
    assert rows["data_completeness"].target is None and rows["data_completeness"].light == NONE
    assert qci_crm.qci.reset_target("data_completeness").text == "90%"


def test_data_scores_per_area(qci_crm: Any) -> None:
    _ratings(qci_crm)
    scores = qci_crm.qci.scorecard("2025-03").area_scores()
    # customer experience: satisfaction red (0); response and resolution: no inbound reply → no data, no light
    assert scores["customer_experience"] == 0.0
    # information & technology: completeness 1 of 4 fields (red), freshness green, no duplicates green → 66.7
    assert scores["information_technology"] == 66.7
    assert scores["measuring_effect"] is None  # campaigns not installed: no light, not a zero


def test_scorecard_and_targets_commands(qci_crm: Any) -> None:
    _ratings(qci_crm)
    table = ok(qci_crm, "qci", "scorecard", "--period", "2025-03").stdout
    assert "QCI scorecard 2025-03 (vs 2025-02; money in VND)" in table
    sat = next(line for line in table.splitlines() if " satisfaction " in line)
    assert sat.split()[2:] == ["3.50", "/", "5", "≥", "4.00", "/", "5", "red", "4.50", "/", "5", "▼", "-1.00", "worse"]
    assert "campaign_roi: not available: install crmkit-campaigns" in table
    rows = list(
        csv.DictReader(io.StringIO(ok(qci_crm, "--format", "csv", "qci", "scorecard", "--period", "2025-03").stdout))
    )
    sat = next(r for r in rows if r["kpi"] == "satisfaction")
    assert (sat["value"], sat["previous"], sat["light"], sat["trend"], sat["status"]) == (
        "3.50",
        "4.50",
        "red",
        "worse",
        "ok",
    )
    roi = next(r for r in rows if r["kpi"] == "campaign_roi")
    assert (roi["value"], roi["status"], roi["reason"]) == ("", "not available", "install crmkit-campaigns")
    assert "\n2025-03: 4 green, 0 amber, 3 red, 18 without a light (no data, not available or no target)\n" in table
    vi = ok(qci_crm, "--locale", "vi", "qci", "scorecard", "--period", "2025-03").stdout
    assert vi.startswith("Bảng điểm QCI 2025-03 (so với 2025-02; tiền tính bằng VND)\n")
    assert (
        "\n2025-03: 4 xanh, 0 vàng, 3 đỏ, 18 chưa có đèn (chưa có số liệu, không khả dụng hoặc chưa đặt mục tiêu)\n"
        in vi
    )
    assert next(line for line in vi.splitlines() if " satisfaction " in line).split()[9] == "đỏ"
    for fmt in ("json", "csv"):  # what a program reads does not depend on the locale
        assert (
            len(
                {
                    ok(qci_crm, "--locale", locale, "--format", fmt, "qci", "scorecard", "--period", "2025-03").stdout
                    for locale in ("vi", "en")
                }
            )
            == 1
        )

    listed = json.loads(
        ok(
            qci_crm,
            "--format",
            "json",
            "qci",
            "targets",
            "--set",
            "satisfaction=4.5",
            "--tolerance",
            "satisfaction=2%",
            "--set",
            "response_time=12",
        ).stdout
    )
    by_kpi = {t["kpi"]: t for t in listed}
    assert (by_kpi["satisfaction"]["target"], by_kpi["satisfaction"]["tolerance"]) == ("4.5", "2%")
    assert by_kpi["response_time"]["target"] == "12" and by_kpi["cost_per_order"]["target"] is None
    refused = run(qci_crm, "qci", "targets", "--set", "satisfaction=9")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == "error: target: satisfaction: a rating target is between 1 and 5, not '9'"
    assert qci_crm.qci.targets()["satisfaction"].text == "4.5"  # the refused change left it alone
    bad_period = run(qci_crm, "qci", "scorecard", "--period", "2025-13")
    assert bad_period.exit_code == 1 and "period: '2025-13': month 13 does not exist" in bad_period.stderr


def test_every_title_the_commands_print_has_its_vietnamese_translation(qci_crm: Any) -> None:
    from crmkit.console.testing import untranslated

    assert untranslated(qci_crm, "qci", sources=("commands.py",), also=[GREEN, AMBER, RED, NONE]) == []
