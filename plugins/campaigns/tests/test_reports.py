"""ROI, rates and lift over the holdout, per variant and across campaigns, and the chart."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import campaigns_testkit as kit
import pytest
import sqlalchemy as sa

from crmkit import ValidationError
from crmkit_campaigns import models as m
from crmkit_campaigns.reports import Group, chart, compare, comparison_rows, newcombe


@pytest.fixture
def measured(crm_factory, tmp_path):
    """600 customers, a campaign with two variants and a 25 % holdout, and purchases around it."""
    crm = crm_factory(plugins=["campaigns", kit.PURCHASES])
    kit.outbox(crm, tmp_path / "outbox")
    ids = kit.bulk_people(crm, 600)
    campaign = crm.campaigns.create(
        "Tết",
        channel="email",
        body="A",
        holdout_percent=25,
        attribution_days=7,
        cost_fixed_minor=1_000_000,
        cost_per_message_minor=500,
    )
    crm.campaigns.set_variant(campaign.id, "B", body="B")
    crm.campaigns.run(campaign.id, now=kit.NOON)
    crm.campaigns.dispatch(now=kit.NOON)
    with crm.reading() as conn:
        groups = dict(
            conn.execute(
                sa.select(m.messages.c.customer_id, m.messages.c.status).where(m.messages.c.campaign_id == campaign.id)
            ).all()
        )
    day = kit.NOON + timedelta(days=1)
    bought = []
    for customer_id in ids:
        if customer_id % 5 == 0 or (customer_id % 5 == 1 and groups[customer_id] == "sent"):
            bought.append((customer_id, 100_000, day, "VND"))  # everyone's baseline, plus what the message brought
        if customer_id % 7 == 0:
            bought.append((customer_id, 999_000, kit.NOON + timedelta(days=9), "VND"))  # after the window
        if customer_id % 11 == 0:
            bought.append((customer_id, 5_000, day, "USD"))  # not the campaign's currency
    kit.buy_many(crm, bought)
    return crm, campaign, groups


def test_roi_and_lift_per_campaign(measured):
    crm, campaign, groups = measured
    report = crm.campaigns.report(campaign.id)
    treated = [c for c, s in groups.items() if s == "sent"]
    held = [c for c, s in groups.items() if s == "holdout"]
    assert (report.audience, report.holdout, report.treated.sent) == (600, len(held), len(treated))
    converted = [c for c in treated if c % 5 in (0, 1)]
    control = [c for c in held if c % 5 == 0]
    assert (report.treated.converted, report.groups[-1].converted) == (len(converted), len(control))
    revenue = 100_000 * len(converted)
    cost = 1_000_000 + 500 * len(treated)
    assert (report.revenue_minor, report.cost_minor) == (revenue, cost)
    assert report.roi == (Decimal(revenue - cost) / Decimal(cost)).quantize(Decimal("0.0001"))
    p1, p0 = len(converted) / len(treated), len(control) / len(held)
    lift = report.lift
    assert float(lift.difference) == pytest.approx(p1 - p0, abs=1e-4)
    low, high = newcombe(len(converted), len(treated), len(control), len(held))
    assert (float(lift.low), float(lift.high)) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
    assert lift.significant and lift.low > 0 and lift.note is None
    assert lift.incremental_revenue_minor == (revenue * len(held) - 100_000 * len(control) * len(treated)) // len(held)
    by_variant = {g.name: g for g in report.groups}
    assert by_variant["A"].customers + by_variant["B"].customers == len(treated)
    assert set(report.variant_lifts) == {"A", "B"}
    rows = report.as_rows()
    assert [r["group"] for r in rows] == ["A", "B", "all", "holdout"]
    assert rows[2]["conversion_rate"] == (Decimal(len(converted)) / len(treated)).quantize(Decimal("0.0001"))


def test_comparison_and_chart(measured, tmp_path):
    crm, campaign, _ = measured
    other = crm.campaigns.create("Không chi phí", channel="email", body="x")
    crm.campaigns.run(other.id, now=kit.NOON + timedelta(days=20))
    rows = {r["campaign"]: r for r in comparison_rows(crm.campaigns.compare())}
    assert rows["Tết"]["roi"] == crm.campaigns.report(campaign.id).roi
    assert rows["Không chi phí"]["roi"] is None and rows["Không chi phí"]["lift"] is None  # no cost, no holdout
    png = chart([crm.campaigns.report(campaign.id)], tmp_path / "tet.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = chart(crm.campaigns.compare(), tmp_path / "all.svg")
    assert "<svg" in svg.read_text()[:500]
    with pytest.raises(ValidationError, match=".png or .svg"):
        chart(crm.campaigns.compare(), tmp_path / "all.pdf")


@pytest.mark.parametrize(
    ("counts", "expected"),
    [  # Newcombe (1998), Table II, method 10
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 20), (-0.1611, 0.2775)),
        ((10, 10, 0, 20), (0.6791, 1.0)),
        ((10, 10, 0, 10), (0.6075, 1.0)),
    ],
)
def test_the_lift_interval_is_newcombe_s_hybrid_score_interval(counts, expected):
    assert tuple(round(x, 4) for x in newcombe(*counts)) == expected


def group(name, customers, converted):
    return Group(name, customers, customers, customers, 0, 0, 0, 0, 0, 0, converted, converted * 100_000)


def test_three_treated_against_two_held_out_is_not_called_significant():
    lift = compare(group("all", 3, 2), group("holdout", 2, 0))
    assert lift.difference == Decimal("0.6667")
    assert Decimal(-1) <= lift.low < 0 < lift.high <= Decimal(1)  # was +13.32 % … +120.01 %
    assert not lift.significant
    assert lift.note.startswith("too few to call: 3 treated and 2 held-out customers, 2 conversions")
    assert lift.verdict == lift.note


@pytest.mark.parametrize(
    ("treated", "holdout", "enough"),
    [
        ((29, 29), (30, 0), False),  # a clear interval, but 29 treated customers
        ((30, 4), (30, 0), False),  # 4 conversions in all
        ((30, 5), (30, 0), True),
    ],
)
def test_significance_needs_the_stated_minimum_sample(treated, holdout, enough):
    lift = compare(group("all", *treated), group("holdout", *holdout))
    assert (lift.note is None) is enough
    assert lift.significant is (enough and lift.low > 0)
    if not enough:
        assert "at least 30 customers in each group and 5 conversions" in lift.note


def test_the_report_says_when_the_sample_is_too_small(crm_factory, tmp_path):
    from click.testing import CliRunner

    from crmkit.cli.context import CLIContext
    from crmkit.cli.main import cli

    crm = crm_factory(plugins=["campaigns", kit.PURCHASES])
    kit.outbox(crm, tmp_path / "outbox")
    kit.people(crm, 12)
    campaign = crm.campaigns.create("Nhỏ", channel="email", body="A", holdout_percent=50, attribution_days=7)
    crm.campaigns.run(campaign.id, now=kit.NOON)
    crm.campaigns.dispatch(now=kit.NOON)
    with crm.reading() as conn:
        groups = dict(
            conn.execute(
                sa.select(m.messages.c.customer_id, m.messages.c.status).where(m.messages.c.campaign_id == campaign.id)
            ).all()
        )
    assert "holdout" in groups.values() and "sent" in groups.values()
    kit.buy_many(crm, [(c, 100_000, kit.NOON + timedelta(days=1), "VND") for c, s in groups.items() if s == "sent"])
    lift = crm.campaigns.report(campaign.id).lift
    assert lift.low > 0 and not lift.significant  # every treated customer bought, none held out: still too few
    with crm.acting_as("lan.nguyen"):
        shown = CliRunner().invoke(cli, ["campaigns", "report", "Nhỏ"], obj=CLIContext(crm=crm), catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "too few to call" in shown.stdout and "at least 30 customers in each group" in shown.stdout
    vi = _report_cli(crm, "--locale", "vi", "campaigns", "report", "Nhỏ")
    assert "chưa đủ để kết luận" in vi and "cần ít nhất 30 khách mỗi nhóm và 5 lượt chuyển đổi" in vi


def _report_cli(crm, *args: str) -> str:
    from click.testing import CliRunner

    from crmkit.cli.context import CLIContext
    from crmkit.cli.main import cli

    with crm.acting_as("lan.nguyen"):
        shown = CliRunner().invoke(cli, list(args), obj=CLIContext(crm=crm), catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    return shown.stdout


def test_the_report_command_speaks_the_reader_s_language_and_json_does_not(measured):
    crm, campaign, _ = measured
    vi = _report_cli(crm, "--locale", "vi", "campaigns", "report", "Tết").replace("\xa0", " ")
    figures = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in vi.split("\n\n")[0].splitlines())
    assert (figures["Doanh thu"], figures["Chi phí"], figures["ROI"]) == ("18.100.000 ₫", "1.225.500 ₫", "1.377%")
    assert figures["Mức tăng"] == "+19,3% (khoảng tin cậy 95%: +10,9% … +26,7%)"
    assert figures["Ý nghĩa thống kê"] == "có ý nghĩa thống kê (khoảng tin cậy 95 % không chứa 0)"
    assert (figures["Trạng thái"], figures["Phạm vi"], figures["Loại trừ"]) == (
        "Hoàn tất",
        "tất cả khách hàng",
        "không có",
    )
    group_a = next(line for line in vi.splitlines() if line.startswith("Phiên bản A"))
    assert group_a.split() == [
        "Phiên",
        "bản",
        "A",
        "221",
        "221",
        "0%",
        "0%",
        "0%",
        "0%",
        "42,5%",
        "94",
        "9.400.000",
        "₫",
        "+21,7%",
        "[+12,1%",
        "…",
        "+30,5%]",
    ]
    assert "Nhóm đối chứng" in vi and "Tỷ lệ chuyển đổi" in vi
    en = _report_cli(crm, "--locale", "en", "campaigns", "report", "Tết")
    figures = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in en.split("\n\n")[0].splitlines())
    assert (figures["revenue"], figures["roi"]) == ("₫18,100,000", "1,377%")
    assert figures["lift"] == "+19.3% (95% CI +10.9% … +26.7%)"
    assert "Variant A" in en and "42.5%" in en and "Control group" in en
    compared = _report_cli(crm, "--locale", "vi", "campaigns", "report")
    assert compared.replace("\xa0", " ").splitlines()[2].split()[-6:] == [
        "1.225.500",
        "₫",
        "1.377%",
        "19,3%",
        "10,9%",
        "26,7%",
    ]
    # a program reads the same bytes in every locale, as it always has: ratios, amounts as Money.format()
    for fmt in ("json", "csv"):
        for args in (["report", "Tết"], ["report"]):
            outputs = {
                _report_cli(crm, "--locale", locale, "--format", fmt, "campaigns", *args) for locale in ("vi", "en")
            }
            assert len(outputs) == 1, (fmt, args, outputs)
    shown, end = json.JSONDecoder().raw_decode(
        _report_cli(crm, "--locale", "vi", "--format", "json", "campaigns", "report", "Tết")
    )
    assert (shown["revenue"], shown["roi"], shown["lift"]) == (
        "18.100.000 ₫",
        "13.7695",
        "+19.33% (95% CI +10.87% … +26.68%)",
    )
    assert shown["significance"] == "significant (the 95 % interval excludes 0)" and shown["scope"] == "all customers"


@pytest.mark.sqlite_only  # the catalogs, not the database
def test_every_word_of_the_report_command_has_a_vietnamese_translation(crm_factory):
    from crmkit.console.testing import untranslated
    from crmkit_campaigns.commands import VERDICT_PATTERNS

    columns = [
        "campaign",
        "scope",
        "audience",
        "excluded",
        "holdout",
        "waiting",
        "unconfirmed",
        "revenue",
        "cost",
        "roi",
        "lift",
        "significance",
        "incremental_revenue",
        "group",
        "customers",
        "sent",
        "delivery_rate",
        "open_rate",
        "click_rate",
        "response_rate",
        "conversion_rate",
        "converted",
        "lift_low",
        "lift_high",
        "none",
        "significant (the 95 % interval excludes 0)",
        "not significant (the 95 % interval includes 0)",
        *(msgid for _, msgid in VERDICT_PATTERNS),
    ]
    crm = crm_factory(plugins=["campaigns"])
    assert untranslated(crm, "campaigns", sources=("commands.py",), also=columns) == []
