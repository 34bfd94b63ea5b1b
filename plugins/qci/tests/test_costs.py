"""Recorded costs: money in integer minor units, typed in major units on the command line; bad input named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crmkit import ValidationError

from .conftest import ok, run


def test_costs_are_recorded_and_listed_per_period(qci_crm: Any) -> None:
    added = json.loads(
        ok(
            qci_crm,
            "--format",
            "json",
            "qci",
            "costs",
            "add",
            "2025-03",
            "45000000",
            "--kind",
            "acquisition",
            "--note",
            "Quảng cáo Zalo",
        ).stdout
    )
    assert (added["amount"], added["kind"], added["note"]) == ("45.000.000 ₫", "acquisition", "Quảng cáo Zalo")
    ok(qci_crm, "qci", "costs", "add", "2025-05", "19.99", "--currency", "usd")
    listed = json.loads(ok(qci_crm, "--format", "json", "qci", "costs", "list", "--period", "2025-Q2").stdout)
    assert [(c["month"], c["amount"], c["by"]) for c in listed] == [("2025-05", "$19.99", "lan.nguyen")]
    assert [c.amount_minor for c in qci_crm.qci.costs.list()] == [45_000_000, 1999]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"month": "2025-13", "amount_minor": 1}, "month: '2025-13' is not a month (YYYY-MM)"),
        (
            {"month": "2025-03", "amount_minor": 1.5},
            "amount_minor: a whole number of minor units (money is never a float)",
        ),
        ({"month": "2025-03", "amount_minor": 0}, "amount_minor: must be above 0, not 0"),
        (
            {"month": "2025-03", "amount_minor": 5, "kind": "coffee"},
            "kind: 'coffee' is not a cost kind (one of acquisition,",
        ),
        (
            {"month": "2025-03", "amount_minor": 5, "currency": "đồng"},
            "currency: 'đồng' is not an ISO 4217 currency code",
        ),
    ],
)
def test_bad_costs_are_refused(qci_crm: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        qci_crm.qci.costs.add(**kwargs)
    assert qci_crm.qci.costs.list() == []


def test_a_bad_amount_on_the_command_line(qci_crm: Any) -> None:
    refused = run(qci_crm, "qci", "costs", "add", "2025-03", "mười triệu")
    assert refused.exit_code == 2 and "Invalid value for AMOUNT: 'mười triệu' is not an amount" in refused.stderr


def test_control_characters_are_refused_by_field_and_only_a_note_takes_lines(qci_crm: Any) -> None:
    costs = qci_crm.qci.costs
    for field, kwargs in (
        ("note", {"note": "Quảng cáo\x00 Zalo"}),
        ("note", {"note": "Zalo\x1b[2J"}),
        ("kind", {"kind": "acquisition\n"}),
        ("month", {"month": "2025\u202803"}),
    ):
        with pytest.raises(ValidationError, match=f"^{field}: contains a control character \\(U\\+"):
            costs.add(**{"month": "2025-03", "amount_minor": 5, **kwargs})
    assert costs.list() == []
    added = costs.add("2025-03", 45_000_000, kind="acquisition", note="Quảng cáo Zalo\n\t- tháng 3")
    assert [c.note for c in costs.list()] == [added.note] == ["Quảng cáo Zalo\n\t- tháng 3"]
