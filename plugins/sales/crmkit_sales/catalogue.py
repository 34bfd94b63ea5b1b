"""The catalogue (``crm.sales.products``) and price lists (``crm.sales.pricelists``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa

from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit.plugin_api import fold
from crmkit_sales import models as m
from crmkit_sales.base import Part, active_customer, by_ref
from crmkit_sales.objects import Price, PriceList, PriceListItem, Product, from_row
from crmkit_sales.permissions import PRODUCTS_MANAGE, PRODUCTS_READ
from crmkit_sales.pricing import condition_sql, resolve_prices
from crmkit_sales.schemas import PriceListSchema, PriceSchema, ProductSchema, load


class Products(Part):
    """Products and services with SKU, unit, category, list price, cost and default VAT rate."""

    _schema = ProductSchema()

    def add(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Product:
        """Add a product (``sku``, ``name``, ``price_minor``, ``currency`` …); a taken SKU is a ``Conflict``."""
        self.require(PRODUCTS_MANAGE)
        values = load(self._schema, {**(data or {}), **fields})
        now = self.crm.now()
        with self.crm.transaction() as session:
            conn = session.connection()
            self._check_sku(conn, values["sku"], None)
            new_id = conn.execute(
                m.products.insert().values(**values, created_at=now, updated_at=now).returning(m.products.c.id)
            ).scalar_one()
            self.audit(session, "create", "product", new_id, changes=values)
            return self.fetch(conn, new_id)

    def update(self, ref: int | str, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Product:
        """Change some fields of a product (by id or SKU); documents already written keep their copies."""
        self.require(PRODUCTS_MANAGE)
        values = load(self._schema, {**(data or {}), **fields}, partial=True)
        with self.crm.transaction() as session:
            conn = session.connection()
            current = self.fetch(conn, ref)
            if "sku" in values:
                self._check_sku(conn, values["sku"], current.id)
            conn.execute(
                m.products.update().where(m.products.c.id == current.id).values(**values, updated_at=self.crm.now())
            )
            self.audit(session, "update", "product", current.id, changes=values)
            return self.fetch(conn, current.id)

    def deactivate(self, ref: int | str) -> Product:
        """Stop selling a product: it stays on past documents but new lines refuse it."""
        return self.update(ref, active=False)

    def get(self, ref: int | str) -> Product:
        """A product by id or SKU."""
        self.require(PRODUCTS_READ)
        with self.crm.reading() as conn:
            return self.fetch(conn, ref)

    def list(
        self, *, search: str | None = None, category: str | None = None, active: bool | None = True, limit: int = 200
    ) -> list[Product]:
        """Products ordered by SKU; ``search`` matches SKU or name (accent-insensitive)."""
        self.require(PRODUCTS_READ)
        p = m.products.c
        query = sa.select(m.products).order_by(p.sku)
        if category is not None:
            query = query.where(p.category == category)
        if active is not None:
            query = query.where(p.active.is_(active))
        with self.crm.reading() as conn:
            rows = conn.execute(query).mappings().all()
        if search:
            needle = fold(search)
            rows = [r for r in rows if needle in fold(r["sku"]) or needle in fold(r["name"])]
        return [from_row(Product, r) for r in rows[:limit]]

    def fetch(self, conn: sa.Connection, ref: int | str) -> Product:
        """A product by id or SKU, read on the caller's connection (inside its transaction)."""
        row = by_ref(conn, m.products, ref, "sku")
        if row is None:
            raise NotFound("product", ref)
        return from_row(Product, row)

    def _check_sku(self, conn: sa.Connection, sku: str, own_id: int | None) -> None:
        other = conn.execute(sa.select(m.products.c.id).where(m.products.c.sku == sku)).scalar()
        if other is not None and other != own_id:
            raise Conflict(f"SKU {sku!r} is already product {other}")


class PriceLists(Part):
    """Price lists for customer groups (a tag or a condition) with validity dates and a currency."""

    _schema = PriceListSchema()
    _price_schema = PriceSchema()

    def add(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> PriceList:
        """Create a price list: ``name``, ``currency``, ``group_tag`` or ``group_condition``, ``valid_from/until``."""
        self.require(PRODUCTS_MANAGE)
        values = load(self._schema, {**(data or {}), **fields})
        if values.get("group_condition"):
            condition_sql(self.crm, values["group_condition"])  # refuses unknown fields and operators
        now = self.crm.now()
        with self.crm.transaction() as session:
            conn = session.connection()
            taken = conn.execute(sa.select(m.price_lists.c.id).where(m.price_lists.c.name == values["name"])).scalar()
            if taken is not None:
                raise Conflict(f"price list {values['name']!r} already exists (id {taken})")
            row = {**_group_columns(values), "created_at": now, "updated_at": now}
            new_id = conn.execute(m.price_lists.insert().values(row).returning(m.price_lists.c.id)).scalar_one()
            self.audit(session, "create", "price_list", new_id, changes=values)
            return self._get(conn, new_id)

    def update(self, ref: int | str, data: Mapping[str, Any] | None = None, /, **fields: Any) -> PriceList:
        """Change a price list's name, group, validity or active flag (its currency stays: its prices are in it)."""
        self.require(PRODUCTS_MANAGE)
        values = load(self._schema, {**(data or {}), **fields}, partial=True)
        if "currency" in values:
            raise ValidationError("a price list keeps its currency: create another one", field="currency")
        with self.crm.transaction() as session:
            conn = session.connection()
            current = self._get(conn, ref)
            merged = {"valid_from": current.valid_from, "valid_until": current.valid_until, **values}
            if merged["valid_from"] and merged["valid_until"] and merged["valid_until"] < merged["valid_from"]:
                raise ValidationError(f"ends before it starts (valid_from {merged['valid_from']})", field="valid_until")
            if values.get("group_condition"):
                condition_sql(self.crm, values["group_condition"])
                values["group_tag"] = None
            elif values.get("group_tag"):
                values["group_condition"] = None
            conn.execute(
                m.price_lists.update()
                .where(m.price_lists.c.id == current.id)
                .values(**_group_columns(values), updated_at=self.crm.now())
            )
            self.audit(session, "update", "price_list", current.id, changes=values)
            return self._get(conn, current.id)

    def set_price(
        self, ref: int | str, product: int | str, price_minor: int, *, min_quantity: Decimal | int | str = 1
    ) -> PriceList:
        """Set a product's price in the list (from ``min_quantity`` up), replacing the one at that quantity."""
        self.require(PRODUCTS_MANAGE)
        values = load(self._price_schema, {"price_minor": price_minor, "min_quantity": min_quantity})
        with self.crm.transaction() as session:
            conn = session.connection()
            price_list = self._get(conn, ref)
            product_obj = self.sales.products.fetch(conn, product)
            i = m.price_list_items.c
            key = (
                (i.price_list_id == price_list.id)
                & (i.product_id == product_obj.id)
                & (i.min_quantity == values["min_quantity"])
            )
            conn.execute(m.price_list_items.delete().where(key))
            conn.execute(
                m.price_list_items.insert().values(price_list_id=price_list.id, product_id=product_obj.id, **values)
            )
            self.audit(session, "set_price", "price_list", price_list.id, changes={"sku": product_obj.sku, **values})
            return self._get(conn, price_list.id)

    def remove_price(self, ref: int | str, product: int | str, *, min_quantity: Decimal | int | str = 1) -> PriceList:
        """Remove a product's price (at ``min_quantity``) from the list."""
        self.require(PRODUCTS_MANAGE)
        values = load(self._price_schema, {"price_minor": 0, "min_quantity": min_quantity})
        with self.crm.transaction() as session:
            conn = session.connection()
            price_list = self._get(conn, ref)
            product_obj = self.sales.products.fetch(conn, product)
            i = m.price_list_items.c
            gone = conn.execute(
                m.price_list_items.delete().where(
                    i.price_list_id == price_list.id,
                    i.product_id == product_obj.id,
                    i.min_quantity == values["min_quantity"],
                )
            )
            if gone.rowcount == 0:
                raise NotFound(f"price of {product_obj.sku} in price list", price_list.name)
            self.audit(session, "remove_price", "price_list", price_list.id, changes={"sku": product_obj.sku})
            return self._get(conn, price_list.id)

    def get(self, ref: int | str) -> PriceList:
        """A price list (by id or name) with its prices."""
        self.require(PRODUCTS_READ)
        with self.crm.reading() as conn:
            return self._get(conn, ref)

    def list(self) -> list[PriceList]:
        """Every price list (without items), by name."""
        self.require(PRODUCTS_READ)
        with self.crm.reading() as conn:
            rows = conn.execute(sa.select(m.price_lists).order_by(m.price_lists.c.name)).mappings().all()
        return [from_row(PriceList, r) for r in rows]

    def price_for(
        self,
        customer_id: int,
        product: int | str,
        *,
        currency: str | None = None,
        on: date | None = None,
        quantity: Decimal | int | str = 1,
        price_list_id: int | None = None,
    ) -> Price:
        """The unit price the customer gets for a product under the price rule (see :mod:`crmkit_sales.pricing`).

        Needs ``sales.products.read`` and the customer within the ``customers.read`` scope.
        """
        self.require(PRODUCTS_READ)
        quantity = load(self._price_schema, {"price_minor": 0, "min_quantity": quantity})["min_quantity"]
        currency = (currency or self.currency).upper()
        day = on or self.crm.today()
        with self.crm.reading() as conn:
            self.crm.access.require_customer(conn, customer_id, "customers.read")
            customer_id = active_customer(conn, customer_id)
            product_obj = self.sales.products.fetch(conn, product)
            (price,) = resolve_prices(
                conn,
                self.crm,
                customer_id=customer_id,
                currency=currency,
                on=day,
                wanted=[(attrs.asdict(product_obj), quantity)],
                price_list_id=price_list_id,
            )
        if price is None:
            raise ValidationError(
                f"{product_obj.sku} has no price in {currency} for customer {customer_id}", field="currency"
            )
        return price

    def _get(self, conn: sa.Connection, ref: int | str) -> PriceList:
        row = by_ref(conn, m.price_lists, ref, "name")
        if row is None:
            raise NotFound("price list", ref)
        i, p = m.price_list_items.c, m.products.c
        items = (
            conn.execute(
                sa.select(i.product_id, p.sku, p.name, i.min_quantity, i.price_minor)
                .join(m.products, p.id == i.product_id)
                .where(i.price_list_id == row["id"])
                .order_by(p.sku, i.min_quantity)
            )
            .mappings()
            .all()
        )
        return from_row(PriceList, row, items=tuple(from_row(PriceListItem, it) for it in items))


def _group_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """A price list's values as written: no condition is SQL NULL, not a JSON ``null`` (which the one-group check
    would count as a condition beside the tag)."""
    if "group_condition" in values and values["group_condition"] is None:
        return {**values, "group_condition": sa.null()}
    return dict(values)
