"""Shared set-up for the QCI tests: CRMs with the plugin, a stand-in purchase source, interactions in the past.

The purchase source is ``crmkit.testing``'s (``crmkit_value_transactions`` over its own table, what crmkit-sales
does over its orders), so the purchase KPIs are tested without another plugin's package.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.testing import PURCHASE_SOURCE, Shop, add_user

#: A plugin holding purchases, as crmkit-sales does (the core's ``crmkit_value_transactions``).
SOURCE = PURCHASE_SOURCE


def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    """``2025-03-12`` at ``hour``:``minute`` UTC."""
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


@pytest.fixture
def qci_crm(crm_factory: Callable[..., Any]) -> Any:
    """A CRM with the QCI plugin only."""
    return crm_factory(plugins=["qci"])


@pytest.fixture
def shop_crm(crm_factory: Callable[..., Any]) -> Any:
    """A CRM with QCI and the stand-in purchase source (its table created)."""
    return crm_factory(plugins=["qci", SOURCE])


def buy(
    crm: Any,
    customer_id: int,
    when: datetime,
    amount: int = 100_000,
    *,
    currency: str = "VND",
    margin: int | None = None,
    category: str | None = None,
) -> None:
    """Record one purchase in the stand-in source (as sales records an order)."""
    Shop(crm).buy(customer_id, when, amount, currency, margin=margin, category=category)


def staff(crm: Any, *usernames: str) -> None:
    """Make these employees users (owners of customers and of plan actions must be users)."""
    for username in usernames:
        add_user(crm, username)


def people(crm: Any, n: int, **fields: Any) -> list[int]:
    """``n`` customers with Vietnamese names; returns their ids."""
    names = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Minh Châu", "Phạm Quốc Dũng", "Hoàng Thu Hà", "Vũ Đức Hải"]
    return [crm.customers.add(name=f"{names[i % len(names)]} {i}", **fields).id for i in range(n)]


def run(crm: Any, *args: str, input: str | None = None, user: str = "lan.nguyen") -> Result:
    """``crmkit ARGS`` on the test's CRM, as ``user``."""
    with crm.acting_as(user):
        return CliRunner().invoke(cli, list(args), obj=CLIContext(crm=crm), input=input, catch_exceptions=False)


def ok(crm: Any, *args: str, input: str | None = None) -> Result:
    """Like ``run``, asserting the command succeeded."""
    result = run(crm, *args, input=input)
    assert result.exit_code == 0, result.output
    return result
