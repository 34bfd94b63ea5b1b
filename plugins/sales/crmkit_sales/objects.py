"""Typed value objects (attrs, frozen) the sales service returns and its hooks pass to other plugins.

Amounts are integer minor units beside ``currency``; the ``Money`` properties are for display.
Other plugins read these attributes and never import this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs

from crmkit.money import Money


def order_number(order_id: int) -> str:
    """The number printed on an order: ``SO-000042``."""
    return f"SO-{order_id:06d}"


def quote_number(root_id: int, version: int) -> str:
    """The number printed on a quote: ``Q-000042`` for the first version, ``Q-000042-v2`` after."""
    return f"Q-{root_id:06d}" + (f"-v{version}" if version > 1 else "")


@attrs.frozen
class Product:
    """A product or service in the catalogue with its list price."""

    id: int
    sku: str
    name: str
    kind: str
    unit: str
    category: str | None
    price_minor: int
    currency: str
    cost_minor: int | None
    tax_rate: Decimal
    description: str | None
    active: bool

    @property
    def price(self) -> Money:
        """The list price."""
        return Money(self.currency, self.price_minor)


@attrs.frozen
class PriceListItem:
    """A product's price in a price list, from ``min_quantity`` up."""

    product_id: int
    sku: str
    name: str
    min_quantity: Decimal
    price_minor: int


@attrs.frozen
class PriceList:
    """Prices for a customer group (a tag, a condition, or everyone) in one currency, over a date range."""

    id: int
    name: str
    currency: str
    group_tag: str | None
    group_condition: Mapping[str, Any] | None
    valid_from: date | None
    valid_until: date | None
    active: bool
    items: tuple[PriceListItem, ...] = ()


@attrs.frozen
class Price:
    """What the price rule gave for one product, customer, date, currency and quantity, and where from."""

    product_id: int
    currency: str
    unit_price_minor: int
    price_list_id: int | None  # None: the product's list price


@attrs.frozen
class Stage:
    """A pipeline stage; ``outcome`` is None for open stages, ``"won"`` or ``"lost"`` for terminal ones."""

    id: int
    pipeline_id: int
    name: str
    position: int
    probability: Decimal
    outcome: str | None


@attrs.frozen
class Pipeline:
    """A sales pipeline: ordered stages, open ones first, then won and lost."""

    id: int
    name: str
    stages: tuple[Stage, ...]

    def stage(self, ref: int | str) -> Stage | None:
        """The stage with this id or name (names compare case-insensitively)."""
        for stage in self.stages:
            if stage.id == ref or (isinstance(ref, str) and stage.name.casefold() == ref.casefold()):
                return stage
        return None


@attrs.frozen
class Deal:
    """An opportunity: a customer, an owner, an amount, where it stands in its pipeline."""

    id: int
    customer_id: int
    pipeline_id: int
    stage_id: int
    title: str
    owner: str | None
    amount_minor: int
    currency: str
    expected_close: date | None
    source: str | None
    status: str
    close_reason: str | None
    opened_at: datetime
    closed_at: datetime | None

    @property
    def amount(self) -> Money:
        """The deal's amount."""
        return Money(self.currency, self.amount_minor)


@attrs.frozen
class StageValue:
    """How many deals stand in a stage and what they are worth, in one currency."""

    pipeline_id: int
    stage_id: int
    currency: str
    count: int
    amount_minor: int

    @property
    def amount(self) -> Money:
        """The deals' amounts added up."""
        return Money(self.currency, self.amount_minor)


@attrs.frozen
class StageChange:
    """One move of a deal between stages: who moved it, when, and why."""

    deal_id: int
    from_stage_id: int | None
    to_stage_id: int
    changed_at: datetime
    changed_by: str
    reason: str | None


@attrs.frozen
class Line:
    """A priced catalogue item on a quote or an order (amounts for the whole line)."""

    position: int
    product_id: int | None  # None: a free description (imported history)
    sku: str
    name: str
    unit: str
    category: str | None
    quantity: Decimal
    unit_price_minor: int
    price_list_id: int | None
    discount_percent: Decimal | None
    discount_minor: int
    tax_rate: Decimal
    net_minor: int
    tax_minor: int
    total_minor: int
    cost_minor: int | None

    @property
    def gross_minor(self) -> int:
        """Before discount and tax."""
        return self.net_minor + self.discount_minor


@attrs.frozen
class Totals:
    """A document's totals: subtotal (before discounts) − discount + tax = total."""

    subtotal_minor: int
    discount_minor: int
    tax_minor: int
    total_minor: int


@attrs.frozen
class Quote:
    """One version of a quote; ``number`` stays the same across versions."""

    id: int
    root_id: int
    version: int
    customer_id: int
    deal_id: int | None
    owner: str | None
    currency: str
    price_list_id: int | None
    status: str
    issued_on: date
    valid_until: date
    notes: str | None
    subtotal_minor: int
    discount_minor: int
    tax_minor: int
    total_minor: int
    sent_at: datetime | None
    decided_at: datetime | None
    superseded_at: datetime | None
    created_at: datetime
    lines: tuple[Line, ...] = ()
    order_id: int | None = None

    @property
    def number(self) -> str:
        """``Q-000042`` (``-v2`` … for later versions)."""
        return quote_number(self.root_id, self.version)

    @property
    def total(self) -> Money:
        """The amount to pay, tax included."""
        return Money(self.currency, self.total_minor)


@attrs.frozen
class Order:
    """An order with its lines and money position (what ``crmkit_order_placed`` and friends receive)."""

    id: int
    customer_id: int
    currency: str
    status: str
    placed_at: datetime
    owner: str | None
    subtotal_minor: int
    discount_minor: int
    tax_minor: int
    total_minor: int
    paid_minor: int
    refunded_minor: int
    lines: tuple[Line, ...]
    quote_id: int | None = None
    deal_id: int | None = None
    margin_minor: int | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    shipping_name: str | None = None
    shipping_phone: str | None = None
    shipping_address: str | None = None
    notes: str | None = None
    reference: str | None = None  # its reference in the system it was imported from (``orders import``)
    discounts: tuple[Any, ...] = ()  # vouchers applied when placing it (``crmkit_sales.discounts.Discount``)

    @property
    def number(self) -> str:
        """``SO-000042``."""
        return order_number(self.id)

    @property
    def outstanding_minor(self) -> int:
        """What the customer still owes (refunds return money already paid, so they do not change it)."""
        return 0 if self.status == "cancelled" else self.total_minor - self.paid_minor

    @property
    def paid_in_full(self) -> bool:
        """True once payments cover the total (a cancelled order owes nothing either)."""
        return self.outstanding_minor == 0

    @property
    def total(self) -> Money:
        """The order total, tax included."""
        return Money(self.currency, self.total_minor)


@attrs.frozen
class Payment:
    """Money received against an order (of ``customer_id``)."""

    id: int
    order_id: int
    customer_id: int
    amount_minor: int
    currency: str
    method: str
    paid_at: datetime
    reference: str | None
    note: str | None
    recorded_by: str


@attrs.frozen
class Refund:
    """Money returned to the customer on an order (full or partial)."""

    id: int
    order_id: int
    customer_id: int
    amount_minor: int
    currency: str
    reason: str | None
    at: datetime
    recorded_by: str


@attrs.frozen
class Contract:
    """A contract with a customer (optionally for an order): dates, value, renewal."""

    id: int
    customer_id: int
    order_id: int | None
    number: str
    title: str
    start_date: date
    end_date: date | None
    renewal_date: date | None
    value_minor: int
    currency: str
    status: str
    owner: str | None
    notes: str | None


@attrs.frozen
class Appointment:
    """A meeting or call with a customer, for an employee."""

    id: int
    customer_id: int
    employee: str
    deal_id: int | None
    subject: str
    starts_at: datetime
    ends_at: datetime
    channel: str
    place: str | None
    notes: str | None
    status: str
    outcome: str | None
    updated_at: datetime


@attrs.frozen
class Task:
    """A follow-up an employee owes a customer, due at a time."""

    id: int
    customer_id: int
    employee: str
    deal_id: int | None
    title: str
    due_at: datetime
    priority: str
    notes: str | None
    done_at: datetime | None
    outcome: str | None
    updated_at: datetime


@attrs.frozen
class Agenda:
    """An employee's appointments and open tasks due in a period."""

    employee: str
    start: datetime
    end: datetime
    appointments: Sequence[Appointment]
    tasks: Sequence[Task]


def from_row(cls: type[Any], row: Mapping[str, Any], **extra: Any) -> Any:
    """Build ``cls`` from a table row, taking the attributes it declares (``extra`` wins)."""
    names = [f.name for f in attrs.fields(cls)]
    return cls(**{n: extra[n] if n in extra else row[n] for n in names if n in extra or n in row})
