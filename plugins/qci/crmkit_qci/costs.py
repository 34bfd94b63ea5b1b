"""Customer-management costs per month: what efficiency KPIs divide by (no CRM table holds them).

Amounts are integer minor units with a currency (VND has none below the đồng); the command line
takes major units. Kinds: acquisition (counts for cost per acquired customer), retention, service,
marketing, other — all count for cost per order.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import marshmallow
import sqlalchemy as sa
from marshmallow import fields, post_load, pre_load, validate

from crmkit import ValidationError
from crmkit.plugin_api import CleanSchema
from crmkit_qci.models import costs
from crmkit_qci.periods import Period
from crmkit_qci.permissions import ASSESS, READ

if TYPE_CHECKING:
    from crmkit import CRM

KINDS = ("acquisition", "retention", "service", "marketing", "other")


class _WholeMinorUnits(fields.Integer):
    """An integer amount of minor units: floats (and bools) are refused, never rounded."""

    def _validated(self, value: object) -> int:
        if isinstance(value, (bool, float)):
            raise self.make_error("invalid")
        return super()._validated(value)


class CostSchema(CleanSchema):
    """A cost as recorded: the month, a positive amount in minor units, its kind and currency, a note."""

    MULTILINE = frozenset({"note"})

    month = fields.String(
        required=True, validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="{input!r} is not a month (YYYY-MM)")
    )
    amount_minor = _WholeMinorUnits(
        required=True,
        strict=True,
        validate=validate.Range(min=1, error="must be above 0, not {input}"),
        error_messages={"invalid": "a whole number of minor units (money is never a float)"},
    )
    kind = fields.String(
        required=True,
        validate=validate.OneOf(KINDS, error=f"{{input!r}} is not a cost kind (one of {', '.join(KINDS)})"),
    )
    currency = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Za-z]{3}$", error="{input!r} is not an ISO 4217 currency code")
    )
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))

    @pre_load
    def _strip(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {**data, **{k: data[k].strip() for k in ("month", "currency") if isinstance(data.get(k), str)}}

    @post_load
    def _upper(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {**data, "currency": data["currency"].upper()}


@attrs.frozen
class Cost:
    """One recorded cost."""

    id: int
    month: str
    kind: str
    amount_minor: int
    currency: str
    note: str | None
    recorded_at: datetime
    recorded_by: str


class Costs:
    """Record and list costs (``crm.qci.costs``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def add(
        self, month: str, amount_minor: int, *, kind: str = "other", currency: str = "VND", note: str | None = None
    ) -> Cost:
        """Record a cost for a month (``2026-10``); refuses a bad month, kind, currency or amount naming the field.
        Needs ``qci.assess``."""
        self._crm.access.require(ASSESS)
        try:
            checked = CostSchema().load(
                {"month": month, "amount_minor": amount_minor, "kind": kind, "currency": currency, "note": note}
            )
        except marshmallow.ValidationError as exc:
            raise ValidationError(exc.messages_dict) from None
        values = {**checked, "recorded_at": self._crm.now(), "recorded_by": self._crm.actor}
        with self._crm.transaction() as session:
            new_id = session.connection().execute(costs.insert().values(**values).returning(costs.c.id)).scalar_one()
            self._crm.audit.record(session, "create", "qci_cost", new_id, changes=values)
        return Cost(new_id, **values)

    def list(self, period: Period | None = None) -> list[Cost]:
        """Recorded costs (of the period's months), by month then id; needs ``qci.read``."""
        self._crm.access.require(READ)
        query = sa.select(costs).order_by(costs.c.month, costs.c.id)
        if period is not None:
            query = query.where(costs.c.month.in_(period.month_labels()))
        with self._crm.reading() as conn:
            return [Cost(**row) for row in conn.execute(query).mappings()]
