"""Shared set-up for the IDIC tests: CRMs with the plugin, a stand-in purchase source, a stand-in campaigns service.

The purchase source is ``crmkit.testing``'s (``crmkit_value_transactions`` over its own table, what
crmkit-sales does over its orders). The campaigns stand-in offers the part of ``crm.campaigns``
IDIC uses (``segments.condition/audience/create`` and ``create``) with a tiny language — ``FIELD = "text"``
over the segment fields — so conditions and the handoff are tested without another plugin's package.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmkit import Plugin, ValidationError, hookimpl
from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.core import tables as core
from crmkit.testing import PURCHASE_SOURCE, Shop, add_user


@attrs.define
class FakeSegments:
    crm: Any
    created: list[tuple[str, str]] = attrs.field(factory=list)

    def condition(self, expression: str, *, field: str = "expression") -> Any:
        found = re.fullmatch(r'\s*(\w+)\s*=\s*"([^"]*)"\s*', expression)
        if not found:
            raise ValidationError('column 1: expected FIELD = "text"', field=field)
        fields = {"city": core.customers.c.city, **self.crm.hooks.segment_fields()}
        if found[1] not in fields:
            raise ValidationError(f"column 1: unknown field {found[1]!r}", field=field)
        return sa.and_(core.customers.c.status == "active", fields[found[1]] == found[2])

    def audience(self, segment: int) -> Any:
        return self.condition(self.created[segment - 1][1])

    def create(self, name: str, expression: str, *, description: str | None = None) -> Any:
        self.condition(expression)
        self.created.append((name, expression))
        return attrs.make_class("Segment", ["id", "name", "expression"])(len(self.created), name, expression)


@attrs.define
class FakeCampaigns:
    segments: FakeSegments
    drafts: list[dict[str, Any]] = attrs.field(factory=list)

    def create(self, name: str, **options: Any) -> Any:
        self.drafts.append({"name": name, **options})
        return attrs.make_class("Campaign", ["id", "status"])(len(self.drafts), "draft")


class _CampaignsStandIn:
    @hookimpl
    def crmkit_services(self, crm: Any) -> dict[str, Any]:
        return {"campaigns": FakeCampaigns(FakeSegments(crm))}


CAMPAIGNS = Plugin(name="idictestcampaigns", hooks=(_CampaignsStandIn(),), description="campaigns stand-in")


def _at(day: str, hour: int = 10) -> datetime:
    """``2026-03-12`` at ``hour``:00 UTC."""
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


@pytest.fixture
def shop_crm(crm_factory: Callable[..., Any]) -> Any:
    """A CRM with analytics, IDIC, the stand-in purchase source and the campaigns stand-in, and Lan, a salesperson
    of team HN who owns customers."""
    crm = crm_factory(plugins=["analytics", "idic", PURCHASE_SOURCE, CAMPAIGNS])
    add_user(crm, "lan", teams=["HN"], roles=["sales"])
    return crm


def _buy(crm: Any, customer_id: int, amount: int, *, category: str | None = None, when: str = "2026-06-01") -> None:
    """One purchase (negative: a net refund) in the stand-in source, as sales records an order."""
    Shop(crm).buy(customer_id, _at(when), amount, category=category)


def _invoke(crm: Any, *args: str, input: str | None = None) -> Result:
    """``crmkit ARGS`` on the test's CRM."""
    return CliRunner().invoke(cli, list(args), obj=CLIContext(crm=crm), input=input, catch_exceptions=False)


@pytest.fixture
def at() -> Callable[..., datetime]:
    """``at("2026-03-12", 13)``: that day at 13:00 UTC."""
    return _at


@pytest.fixture
def buy() -> Callable[..., None]:
    """``buy(crm, customer_id, amount_minor, category=…, when=…)``: one purchase in the stand-in source."""
    return _buy


@pytest.fixture
def invoke() -> Callable[..., Result]:
    """``invoke(crm, "idic", "run")``: the ``crmkit`` CLI on the test's CRM."""
    return _invoke
