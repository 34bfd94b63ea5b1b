"""``crm.sales``: the sales plugin's Python API, one attribute per area (the CLI groups mirror them).

``crm.sales.products``, ``.pricelists``, ``.pipelines``, ``.deals``, ``.quotes``, ``.orders``,
``.payments``, ``.contracts``, ``.appointments``, ``.tasks``, ``.labels``, ``.reports``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.errors import ValidationError
from crmkit.plugin_api import core_tables as core
from crmkit_sales.agenda import Appointments, Tasks
from crmkit_sales.base import LIFECYCLE_SETTING
from crmkit_sales.catalogue import PriceLists, Products
from crmkit_sales.contracts import Contracts
from crmkit_sales.labels import Labels
from crmkit_sales.orders import Orders, Payments
from crmkit_sales.permissions import PRODUCTS_MANAGE, QUOTES_READ
from crmkit_sales.pipeline import Deals, Pipelines
from crmkit_sales.quotes import Quotes
from crmkit_sales.reports import Reports
from crmkit_sales.schemas import SellerSchema, load

if TYPE_CHECKING:
    from crmkit.crm import CRM
    from crmkit_sales.objects import Order

SELLER_SETTING = "sales_seller"


class Sales:
    """The sales service of one CRM."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.products = Products(self)
        self.pricelists = PriceLists(self)
        self.pipelines = Pipelines(self)
        self.deals = Deals(self)
        self.quotes = Quotes(self)
        self.orders = Orders(self)
        self.payments = Payments(self)
        self.contracts = Contracts(self)
        self.appointments = Appointments(self)
        self.tasks = Tasks(self)
        self.labels = Labels(self)
        self.reports = Reports(self)

    def place_order(self, data: dict[str, Any] | None = None, /, **fields: Any) -> Order:
        """Shortcut for :meth:`Orders.place` (``crm.sales.place_order(customer_id=…, lines=[…])``)."""
        return self.orders.place(data, **fields)

    def customer_names(self, ids: Iterable[int], permission: str) -> dict[int, str]:
        """The names of the customers among ``ids`` within ``permission``'s scope (one query): what a page shows
        beside the deals, quotes or orders it listed under that permission."""
        c = core.customers.c
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        query = self.crm.access.scoped(sa.select(c.id, c.name).where(c.id.in_(wanted)), c.id, permission)
        with self.crm.reading() as conn:
            return {row.id: row.name for row in conn.execute(query)}

    def seller(self) -> dict[str, Any]:
        """The business printed on quotes (name, address, tax code, phone, e-mail, bank account);
        needs ``sales.quotes.read``."""
        self.crm.access.require(QUOTES_READ)
        return dict(self.crm.settings.get(SELLER_SETTING) or {"name": "crmkit"})

    def set_seller(self, data: dict[str, Any] | None = None, /, **fields: Any) -> dict[str, Any]:
        """Set the business printed on quotes; stored in this database's settings (audited; needs
        ``settings.admin``)."""
        values = load(SellerSchema(), {**(data or {}), **fields})
        self.crm.set_setting(SELLER_SETTING, values)
        return values

    def lifecycle_on_order(self) -> bool:
        """Whether an order or a won deal makes a lead or prospect a customer (setting ``sales.lifecycle_on_order``,
        on by default)."""
        return self.crm.settings.get(LIFECYCLE_SETTING, True) is not False

    def set_lifecycle_on_order(self, on: bool) -> None:
        """Turn that lifecycle move on or off for this database (audited; needs ``sales.products.manage``)."""
        if not isinstance(on, bool):
            raise ValidationError(f"give true or false, not {on!r}", field="lifecycle_on_order")
        self.crm.set_setting(LIFECYCLE_SETTING, on, permission=PRODUCTS_MANAGE)
