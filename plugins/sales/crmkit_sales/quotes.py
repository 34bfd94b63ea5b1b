"""Quotes (``crm.sales.quotes``): priced offers with versions, a status workflow, and one-step conversion to an order.

Statuses: draft → sent → accepted | declined | expired. A draft is edited in place; revising a
quote that left draft creates a new version (draft, same number, ``-v2`` …) and marks the old
one superseded, so the history of what was offered is kept. Only the latest version moves on.

A user sees and works the quotes of the customers in their ``sales.quotes.read`` / ``sales.quotes.manage``
scope; the quote document masks the customer's contact details where they may not see them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crmkit.errors import Conflict, ValidationError
from crmkit.plugin_api import SYSTEM, mask_customer
from crmkit_sales import models as m
from crmkit_sales.base import Part, active_customer, older_than, one
from crmkit_sales.documents import insert_lines, read_lines, total_values
from crmkit_sales.objects import Line, Order, Quote, from_row
from crmkit_sales.permissions import DEALS_READ, ORDERS_PLACE, QUOTES_MANAGE, QUOTES_READ
from crmkit_sales.pricing import build_lines
from crmkit_sales.schemas import OrderSchema, QuoteRevisionSchema, QuoteSchema, load

#: Which status each action moves a quote from, and to.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "send": (("draft",), "sent"),
    "accept": (("sent",), "accepted"),
    "decline": (("sent",), "declined"),
    "expire": (("sent",), "expired"),
}
#: Quotes with the id of the order made from each (if any): what listing quotes reads.
_WITH_ORDER = sa.select(m.quotes, m.orders.c.id.label("order_id")).outerjoin(
    m.orders, m.orders.c.quote_id == m.quotes.c.id
)


class Quotes(Part):
    """Quotes from the catalogue at the customer's resolved prices, with discounts and per-line VAT."""

    _schema = QuoteSchema()
    _revision_schema = QuoteRevisionSchema()
    #: What placing an order from a quote takes (the HTTP API documents its body with it).
    order_schema = OrderSchema(only=("placed_at", "shipping_name", "shipping_phone", "shipping_address", "notes"))

    def create(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Quote:
        """A draft quote: ``customer_id``, ``lines``, optional ``currency``, ``deal_id``, ``price_list_id``,
        ``issued_on`` (prices are resolved on it; today by default) and ``valid_until`` (or ``valid_days``, 30);
        ``owner`` (a user) defaults to the acting user. Needs ``sales.quotes.manage`` on the customer."""
        self.require(QUOTES_MANAGE)
        values = load(self._schema, {**(data or {}), **fields})
        values["owner"] = values.get("owner") or self.default_owner()
        issued = values.pop("issued_on", None) or self._today()
        valid_days = values.pop("valid_days")
        valid_until = values.pop("valid_until", None) or issued + timedelta(days=valid_days)
        currency = values.pop("currency", None) or self.currency
        now = self.crm.now()
        with self.crm.transaction() as session:
            conn = session.connection()
            customer_id = self.require_customer(conn, values.pop("customer_id"), QUOTES_MANAGE)
            self.crm.access.check_owner(conn, values["owner"], QUOTES_MANAGE)
            if values.get("deal_id") is not None:
                self.load(conn, m.deals, values["deal_id"], "deal", read=DEALS_READ)
            lines = build_lines(
                conn,
                self.crm,
                customer_id=customer_id,
                currency=currency,
                on=issued,
                items=values.pop("lines"),
                price_list_id=values.get("price_list_id"),
            )
            row = {
                **values,
                "customer_id": customer_id,
                "currency": currency,
                "version": 1,
                "status": "draft",
                "issued_on": issued,
                "valid_until": valid_until,
                **total_values(lines),
                "created_at": now,
                "updated_at": now,
            }
            quote_id = conn.execute(m.quotes.insert().values(row).returning(m.quotes.c.id)).scalar_one()
            insert_lines(conn, m.quote_lines, "quote_id", quote_id, lines)
            self.audit(
                session,
                "create",
                "quote",
                quote_id,
                customer_id=customer_id,
                changes={"total_minor": row["total_minor"], "currency": currency, "lines": len(lines)},
            )
            return self.fetch(conn, quote_id)

    def revise(self, quote_id: int, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Quote:
        """Change ``lines`` or ``price_list_id`` (the lines are priced again, as of today), ``valid_until`` or ``notes``.

        A draft changes in place; a sent, accepted, declined or expired quote gets a new draft
        version and the old one is kept, superseded. A quote already turned into an order is final.
        """
        self.require(QUOTES_MANAGE)
        values = load(self._revision_schema, {**(data or {}), **fields}, partial=True)
        with self.crm.transaction() as session:
            conn = session.connection()
            current = self._checked(conn, quote_id, write=QUOTES_MANAGE, lock=True)
            self._require_latest(current)
            if current.order_id is not None:
                raise Conflict(f"quote {current.number} became order {current.order_id}: it can no longer change")
            reprice = "lines" in values or "price_list_id" in values
            issued = self._today() if reprice else current.issued_on
            price_list_id = values.get("price_list_id", current.price_list_id)
            lines: Sequence[Line] = current.lines
            if reprice:
                items = values.get("lines") or [_line_input(line) for line in current.lines]
                lines = build_lines(
                    conn,
                    self.crm,
                    customer_id=current.customer_id,
                    currency=current.currency,
                    on=issued,
                    items=items,
                    price_list_id=price_list_id,
                )
            valid_until = values.get("valid_until") or current.valid_until
            if valid_until < issued:
                raise ValidationError(f"ends before it starts (issued_on {issued})", field="valid_until")
            changes = {
                "issued_on": issued,
                "valid_until": valid_until,
                "price_list_id": price_list_id,
                "notes": values.get("notes", current.notes),
                **total_values(lines),
                "updated_at": self.crm.now(),
            }
            if current.status == "draft":
                conn.execute(m.quotes.update().where(m.quotes.c.id == quote_id).values(changes))
                if reprice:
                    conn.execute(m.quote_lines.delete().where(m.quote_lines.c.quote_id == quote_id))
                    insert_lines(conn, m.quote_lines, "quote_id", quote_id, lines)
                new_id = quote_id
            else:
                now = self.crm.now()
                conn.execute(
                    m.quotes.update().where(m.quotes.c.id == quote_id).values(superseded_at=now, updated_at=now)
                )
                new_id = conn.execute(
                    m.quotes.insert()
                    .values(
                        **changes,
                        root_id=current.root_id,
                        version=current.version + 1,
                        customer_id=current.customer_id,
                        deal_id=current.deal_id,
                        owner=current.owner,
                        currency=current.currency,
                        status="draft",
                        created_at=now,
                    )
                    .returning(m.quotes.c.id)
                ).scalar_one()
                insert_lines(conn, m.quote_lines, "quote_id", new_id, lines)
            self.audit(
                session,
                "revise",
                "quote",
                new_id,
                customer_id=current.customer_id,
                changes={"from_version": current.version, "total_minor": changes["total_minor"]},
            )
            return self.fetch(conn, new_id)

    def send(self, quote_id: int) -> Quote:
        """draft → sent (the customer has it)."""
        return self._move(quote_id, "send")

    def accept(self, quote_id: int) -> Quote:
        """sent → accepted; refused once the quote's ``valid_until`` has passed."""
        return self._move(quote_id, "accept")

    def decline(self, quote_id: int) -> Quote:
        """sent → declined."""
        return self._move(quote_id, "decline")

    def expire(self, quote_id: int) -> Quote:
        """sent → expired."""
        return self._move(quote_id, "expire")

    def expire_due(self, *, today: date | None = None) -> int:
        """Expire every sent quote whose ``valid_until`` has passed (a daily job; a user: those in their
        ``sales.quotes.manage`` scope); returns how many."""
        day = today or self._today()
        q = m.quotes.c
        due = self.scoped(
            m.quotes.update().where(q.status == "sent", q.superseded_at.is_(None), q.valid_until < day),
            q.customer_id,
            QUOTES_MANAGE,
        )
        with self.crm.transaction() as session:
            now = self.crm.now()
            result = session.connection().execute(due.values(status="expired", decided_at=now, updated_at=now))
            if result.rowcount:
                self.audit(session, "expire_due", "quote", "*", changes={"count": result.rowcount, "before": day})
            return int(result.rowcount)

    def place_order(self, quote_id: int, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Order:
        """Turn an accepted quote into an order in one step: same customer, lines, prices and totals.

        Optional ``placed_at`` and shipping fields; a quote gives one order only. Needs ``sales.orders.place``
        on the customer; the order's owner is the quote's.
        """
        self.require(ORDERS_PLACE)
        values = load(self.order_schema, {**(data or {}), **fields}, now=self.crm.now())
        with self.crm.transaction() as session:
            conn = session.connection()
            quote = self._checked(conn, quote_id, write=ORDERS_PLACE, lock=True)
            self._require_latest(quote)
            if quote.status != "accepted":
                raise ValidationError(
                    f"quote {quote.number} is {quote.status}: only an accepted quote becomes an order", field="status"
                )
            if quote.order_id is not None:
                raise Conflict(f"quote {quote.number} already became order {quote.order_id}")
            customer_id = active_customer(conn, quote.customer_id)
            return self.sales.orders.insert(
                session,
                customer_id=customer_id,
                currency=quote.currency,
                placed_at=values.pop("placed_at", None) or self.crm.now(),
                lines=quote.lines,
                quote_id=quote.id,
                deal_id=quote.deal_id,
                owner=quote.owner,
                **values,
            )

    def get(self, quote_id: int) -> Quote:
        """One quote version with its lines (``NotFound`` when its customer is outside the ``sales.quotes.read``
        scope)."""
        with self.crm.reading() as conn:
            return self._checked(conn, quote_id)

    def versions(self, quote_id: int) -> list[Quote]:
        """Every version of the quote (any version's id), oldest first."""
        q = m.quotes.c
        with self.crm.reading() as conn:
            root = self._checked(conn, quote_id).root_id
            query = _WITH_ORDER.where(sa.or_(q.id == root, q.root_id == root)).order_by(q.version)
            return self._read(conn, self.scoped(query, q.customer_id, QUOTES_READ))

    def list(
        self,
        *,
        customer_id: int | None = None,
        status: str | None = None,
        owner: str | None = None,
        latest: bool = True,
        after: tuple[datetime, int] | None = None,
        limit: int = 100,
    ) -> list[Quote]:
        """Quotes newest first; ``latest`` hides superseded versions: those of the customers in the
        ``sales.quotes.read`` scope. ``after`` (the last shown quote's ``created_at`` and id) pages on by keyset."""
        q = m.quotes.c
        query = self.scoped(
            _WITH_ORDER.order_by(q.created_at.desc(), q.id.desc()).limit(limit), q.customer_id, QUOTES_READ
        )
        for column, value in ((q.customer_id, customer_id), (q.status, status), (q.owner, owner)):
            if value is not None:
                query = query.where(column == value)
        if latest:
            query = query.where(q.superseded_at.is_(None))
        if after is not None:
            query = query.where(older_than(q.created_at, q.id, after))
        with self.crm.reading() as conn:
            return self._read(conn, query)

    def _read(self, conn: sa.Connection, query: sa.Select[Any]) -> list[Quote]:
        """The quotes ``query`` (over :data:`_WITH_ORDER`) selects, with their lines: two statements."""
        rows = conn.execute(query).mappings().all()
        lines = read_lines(conn, m.quote_lines, "quote_id", (r["id"] for r in rows))
        return [_quote(r, lines[r["id"]]) for r in rows]

    def render_html(self, quote_id: int, *, printable: bool = False, locale: str | None = None) -> str:
        """The quote as an HTML document to send (``printable``: A4 print layout) — see :mod:`crmkit_sales.render`.

        In ``locale`` (vi or en), else the business setting ``locale``, else Vietnamese. Needs
        ``sales.quotes.read``; the customer's phone, e-mail and street address are masked for a user who
        may not see their contact details.
        """
        from crmkit.plugin_api import plugin_translator
        from crmkit_sales.render import quote_html

        quote = self.get(quote_id)
        with self.crm.access.acting(SYSTEM):  # the quote's customer, whatever customers.read reaches
            customer = self.crm.customers.get(quote.customer_id)
        if not self.crm.access.sees_contacts_of(customer.owner):
            customer = mask_customer(customer)
        return quote_html(
            quote, customer, self.sales.seller(), plugin_translator(self.crm, "sales", locale), printable=printable
        )

    # -- internals ----------------------------------------------------------------------------------------

    def fetch(self, conn: sa.Connection, quote_id: int, *, lock: bool = False) -> Quote:
        """A quote with its lines (and the order made from it), read on the caller's connection (unchecked)."""
        return self._with_lines(conn, one(conn, m.quotes, quote_id, "quote", lock=lock))

    def _checked(self, conn: sa.Connection, quote_id: int, *, write: str | None = None, lock: bool = False) -> Quote:
        """The quote for the acting user: ``NotFound`` outside ``sales.quotes.read``'s scope, and with ``write``
        ``PermissionDenied`` for a quote they may see but not do this to."""
        return self._with_lines(
            conn, self.load(conn, m.quotes, quote_id, "quote", read=QUOTES_READ, write=write, lock=lock)
        )

    def _with_lines(self, conn: sa.Connection, row: Mapping[str, Any]) -> Quote:
        quote_id = row["id"]
        order_id = conn.execute(sa.select(m.orders.c.id).where(m.orders.c.quote_id == quote_id)).scalar()
        return _quote({**row, "order_id": order_id}, read_lines(conn, m.quote_lines, "quote_id", [quote_id])[quote_id])

    def _move(self, quote_id: int, action: str) -> Quote:
        self.require(QUOTES_MANAGE)
        allowed, target = TRANSITIONS[action]
        with self.crm.transaction() as session:
            conn = session.connection()
            quote = self._checked(conn, quote_id, write=QUOTES_MANAGE, lock=True)
            self._require_latest(quote)
            if quote.status not in allowed:
                raise ValidationError(
                    f"cannot {action} quote {quote.number}: it is {quote.status} (only a {' or '.join(allowed)} quote)",
                    field="status",
                )
            if action == "accept" and self._today() > quote.valid_until:
                raise ValidationError(
                    f"quote {quote.number} expired on {quote.valid_until.isoformat()}: revise it", field="valid_until"
                )
            now = self.crm.now()
            stamp = {"sent_at": now} if action == "send" else {"decided_at": now}
            conn.execute(
                m.quotes.update().where(m.quotes.c.id == quote_id).values(status=target, updated_at=now, **stamp)
            )
            self.audit(
                session,
                action,
                "quote",
                quote_id,
                customer_id=quote.customer_id,
                changes={"from": quote.status, "to": target},
            )
            return self.fetch(conn, quote_id)

    def _require_latest(self, quote: Quote) -> None:
        if quote.superseded_at is not None:
            raise ValidationError(f"quote {quote.number} was revised: work on its latest version", field="version")

    def _today(self) -> date:
        return self.crm.today()


def _line_input(line: Line) -> dict[str, Any]:
    """The input that gives ``line`` again (to price it anew)."""
    item: dict[str, Any] = {"product_id": line.product_id, "quantity": line.quantity, "tax_rate": line.tax_rate}
    if line.discount_percent is not None:
        item["discount_percent"] = line.discount_percent
    elif line.discount_minor:
        item["discount_minor"] = line.discount_minor
    return item


def _quote(row: Mapping[str, Any], lines: tuple[Line, ...]) -> Quote:
    return from_row(Quote, row, root_id=row["root_id"] or row["id"], lines=lines)
