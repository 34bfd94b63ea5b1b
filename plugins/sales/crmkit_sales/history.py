"""Importing order history: ``crmkit sales orders import FILE`` and ``crm.sales.orders.import_history``.

One row (CSV) or object (JSON Lines) is one past order, keyed by its ``reference`` in the system it
comes from: a re-run skips the references already imported, so nothing is ever doubled. The core's
import machinery (:func:`crmkit.plugin_api.import_records`) reads the file, rejects bad rows to the
reject file with the row, field and reason, and commits each batch whole.

Amounts are read as exact decimals in the currency's major units (VND 0 decimals, USD 2) and
stored as integer minor units; an order is a ``total`` or lines (a catalogue ``sku`` or a free
``description``, ``quantity``, ``unit_price``). ``placed_at`` is a local day (``2024-03-01``: that
day's midnight in the business's time zone), a local time, or an instant with an offset.

History is not a sale happening now: ``crmkit_order_placed`` and the ``order.placed`` event (loyalty
earning, campaigns, webhooks) fire only with ``with_hooks``; ``crmkit_orders_imported`` fires for
every batch so that derived data stays right, and ``crmkit loyalty backfill`` earns from the
imported orders later. Imported orders are settled: paid in full, refunded in full when
``refunded``, nothing paid when ``cancelled``; their amounts are as paid (no tax is split out).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crmkit.errors import ValidationError
from crmkit.money import MAX_MINOR, Money, is_currency
from crmkit.plugin_api import (
    ImportOutcome,
    ImportSummary,
    RecordReader,
    control_character_errors,
    import_records,
    resolve_customers,
    to_jsonable,
)
from crmkit.plugin_api import core_tables as core
from crmkit.vncalendar import local_midnight
from crmkit_sales import hookspecs
from crmkit_sales import models as m
from crmkit_sales.base import BECOME_CUSTOMERS
from crmkit_sales.documents import total_values
from crmkit_sales.objects import Line, Order, from_row
from crmkit_sales.permissions import ORDERS_PLACE
from crmkit_sales.schemas import CLOCK_SKEW

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.plugin_api import AcceptedRow
    from crmkit_sales.orders import Orders

#: The columns of an order history file (CSV header or JSON Lines keys).
ORDER_COLUMNS = (
    "reference",
    "customer_id",
    "customer_external_id",
    "placed_at",
    "currency",
    "total",
    "sku",
    "description",
    "quantity",
    "unit_price",
    "lines",
    "status",
    "notes",
)
STATUSES = ("placed", "shipped", "delivered", "cancelled", "refunded")
#: The status of a row that gives none: history is usually goods delivered.
DEFAULT_STATUS = "delivered"
MAX_REFERENCE = 100
MAX_QUANTITY = Decimal(10**9)
_LINE_KEYS = ("sku", "description", "quantity", "unit_price")
_SINGLE_LINE = ("sku", "description", "quantity")
#: The cells that may hold tab and newlines: the notes, and a CSV ``lines`` cell (JSON laid out on lines).
_MULTILINE = frozenset({"notes", "lines"})


class _OrderReader(RecordReader):
    """Reads an order history file: :data:`ORDER_COLUMNS`, keyed by ``reference``; JSON numbers stay exact."""

    COLUMNS = ORDER_COLUMNS
    KEY = "reference"
    PARSE_FLOAT = Decimal

    def _check_header(self, present: set[str | None]) -> None:
        if not {"customer_id", "customer_external_id"} & present:
            raise ValidationError(f"{self._label}: no customer column (customer_external_id or customer_id)")
        if "placed_at" not in present:
            raise ValidationError(f"{self._label}: no placed_at column (when each order was placed)")
        if not {"total", "unit_price", "lines"} & present:
            raise ValidationError(f"{self._label}: no amount column (total, or unit_price with quantity, or lines)")


class _OrderRows:
    """One row's order values, checked without the database (``ValidationError`` naming every bad field)."""

    def __init__(self, currency: str, zone: Any, now: datetime) -> None:
        self._currency = currency
        self._zone = zone
        self._now = now + CLOCK_SKEW

    def __call__(self, record: Any) -> tuple[dict[str, Any], bool]:
        cells = {k: v.strip() if type(v) is str else v for k, v in record.cells.items()}
        cells = {k: v for k, v in cells.items() if v is not None and v != ""}
        errors = control_character_errors(
            {k: v for k, v in cells.items() if k != "lines" or type(v) is str}, _MULTILINE
        )
        if errors:  # NUL would abort a PostgreSQL batch and be cut short by SQLite: the row is refused first
            raise ValidationError(errors, row=record.row)
        values: dict[str, Any] = {"reference": _text(cells.pop("reference"), "reference", MAX_REFERENCE, errors)}
        self._customer(cells, values, errors)
        values["placed_at"] = self._placed_at(cells.get("placed_at"), errors)
        currency = str(cells.get("currency") or self._currency).upper()
        if not is_currency(currency):
            errors["currency"] = [f"{cells['currency']!r} is not an ISO 4217 currency code (VND, USD, …)"]
        values["currency"] = currency
        status = str(cells.get("status") or DEFAULT_STATUS).lower()
        if status not in STATUSES:
            errors["status"] = [f"must be one of {', '.join(STATUSES)}"]
        values["status"] = status
        values["notes"] = cells.get("notes")
        if "currency" not in errors:
            values["lines"], values["total_minor"] = self._amounts(cells, currency, errors)
        if errors:
            order = {column: n for n, column in enumerate(ORDER_COLUMNS)}
            raise ValidationError(
                {k: errors[k] for k in sorted(errors, key=lambda k: order.get(k.split("[")[0], 99))}, row=record.row
            )
        return values, True

    @staticmethod
    def _customer(cells: dict[str, Any], values: dict[str, Any], errors: dict[str, list[str]]) -> None:
        key, given = cells.get("customer_external_id"), cells.get("customer_id")
        if key is not None and given is not None:
            errors["customer_id"] = ["give customer_id or customer_external_id, not both"]
        elif key is not None:
            values["customer_external_id"] = _text(key, "customer_external_id", 200, errors)
        elif given is None:
            errors["customer_external_id"] = ["required (or customer_id): whose order it was"]
        else:
            try:
                number = int(str(given))
            except ValueError:
                number = 0
            if not 0 < number < 2**63:
                errors["customer_id"] = [f"{given!r} is not a customer id (a whole number)"]
            values["customer_id"] = number

    def _placed_at(self, value: Any, errors: dict[str, list[str]]) -> datetime | None:
        if value is None:
            errors["placed_at"] = ["required: the day (2024-03-01) or time (2024-03-01 14:30, 2024-03-01T14:30+07:00)"]
            return None
        text = str(value)
        try:
            if len(text) == 10:
                moment = local_midnight(date.fromisoformat(text), self._zone)
            else:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
                aware = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=self._zone)
                moment = aware.astimezone(UTC)
        except ValueError:
            errors["placed_at"] = [
                f"{text!r} is not a date (2024-03-01) or a time (2024-03-01 14:30, 2024-03-01T14:30+07:00)"
            ]
            return None
        if moment > self._now:
            errors["placed_at"] = [f"{text} is in the future: history is what was already ordered"]
        return moment

    def _amounts(
        self, cells: dict[str, Any], currency: str, errors: dict[str, list[str]]
    ) -> tuple[list[dict[str, Any]], int]:
        """The order's free or catalogue lines (as dicts: the catalogue is looked up when writing) and total."""
        single = any(k in cells for k in (*_SINGLE_LINE, "unit_price"))
        given = [
            k
            for k, present in (("total", "total" in cells), ("lines", "lines" in cells), ("unit_price", single))
            if present
        ]
        if len(given) != 1:
            field = "total" if not given else given[-1]
            errors[field] = [
                "give the order's total, or its lines (unit_price, quantity and sku or description), or a lines list"
                if not given
                else f"give only one of {', '.join(given)}"
            ]
            return [], 0
        if given[0] == "total":
            total = _money(cells["total"], currency, "total", errors)
            return [], total or 0
        items = [{k: cells[k] for k in _LINE_KEYS if k in cells}] if single else _line_items(cells["lines"], errors)
        lines = []
        for position, item in enumerate(items, 1):
            prefix = "" if single else f"lines[{position}]."
            unknown = sorted(set(item) - set(_LINE_KEYS))
            if unknown:
                errors[f"lines[{position}]"] = [f"unknown key(s) {', '.join(unknown)}"]
                continue
            line = self._line(position, item, currency, prefix, errors)
            if line is not None:
                lines.append(line)
        return lines, sum(line["total_minor"] for line in lines)

    @staticmethod
    def _line(
        position: int, item: Mapping[str, Any], currency: str, prefix: str, errors: dict[str, list[str]]
    ) -> dict[str, Any] | None:
        if found := control_character_errors(item, prefix=prefix):  # a lines list's text, once parsed
            errors.update(found)
            return None
        sku = item.get("sku")
        description = item.get("description")
        sku = None if sku is None or str(sku).strip() == "" else _text(sku, prefix + "sku", 64, errors)
        description = (
            None
            if description is None or str(description).strip() == ""
            else _text(description, prefix + "description", 300, errors)
        )
        if sku is None and description is None:
            errors[prefix + "description"] = ["required (or sku): what was sold"]
        quantity = _quantity(item.get("quantity", 1), prefix + "quantity", errors)
        if "unit_price" not in item:
            errors[prefix + "unit_price"] = ["required: the price of one unit"]
            return None
        unit_price = _money(item["unit_price"], currency, prefix + "unit_price", errors)
        if quantity is None or unit_price is None:
            return None
        total = Money(currency, unit_price).times(quantity).minor
        if total > MAX_MINOR:
            errors[prefix + "quantity"] = ["quantity × unit_price is out of range"]
            return None
        return {
            "position": position,
            "prefix": prefix,
            "sku": sku,
            "description": description,
            "quantity": quantity,
            "unit_price_minor": unit_price,
            "total_minor": total,
        }


def _text(value: Any, field: str, most: int, errors: dict[str, list[str]]) -> str:
    text = value if type(value) is str else str(value)
    if type(value) not in (str, int) or len(text) > most:
        errors[field] = [f"must be text of at most {most} characters"]
    return text


def _money(value: Any, currency: str, field: str, errors: dict[str, list[str]]) -> int | None:
    """Major units as written (``19.99``, ``150000``), exactly, in minor units; negative amounts are refused."""
    if type(value) not in (str, int, Decimal):
        errors[field] = [f"{value!r} is not an amount (write 150000 or 19.99)"]
        return None
    try:
        amount = Money.parse(str(value), currency)
    except ValueError as exc:
        errors[field] = [str(exc)]
        return None
    if amount.minor < 0:
        errors[field] = [f"{value}: must not be negative (record refunds as status refunded)"]
        return None
    return amount.minor


def _quantity(value: Any, field: str, errors: dict[str, list[str]]) -> Decimal | None:
    try:
        quantity = Decimal(str(value)) if type(value) in (str, int, Decimal) else None
    except InvalidOperation:
        quantity = None
    if quantity is None or not quantity.is_finite():
        errors[field] = [f"{value!r} is not a number"]
        return None
    if quantity <= 0 or quantity > MAX_QUANTITY:
        errors[field] = [f"{value}: must be more than 0 and at most {MAX_QUANTITY}"]
        return None
    if quantity != quantity.quantize(Decimal("0.001")):
        errors[field] = [f"{value}: at most 3 decimal places"]
        return None
    return quantity


def _line_items(value: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The ``lines`` cell: a JSON list (a list in JSON Lines, its text in a CSV cell) of objects."""
    items = value
    if type(value) is str:
        try:
            items = json.loads(value, parse_float=Decimal)
        except ValueError:
            items = None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        errors["lines"] = ['must be a list of lines: [{"sku" or "description", "quantity", "unit_price"}, …]']
        return []
    return items


class _OrderWriter:
    """Writes one batch of orders in bulk: customers and products resolved per batch, one INSERT for the orders
    (a reference another import committed meanwhile is skipped), one for their lines."""

    def __init__(self, orders: Orders, with_hooks: bool) -> None:
        self._orders = orders
        self._crm = orders.crm
        self._with_hooks = with_hooks
        self._reach = self._crm.access.principal.owners(ORDERS_PLACE)
        self._owner = orders.default_owner()

    def write(self, session: Session, batch: Any) -> ImportOutcome:
        """Insert the batch's new orders in the caller's transaction; unknown customers or SKUs come back as rejects."""
        conn = session.connection()
        outcome = ImportOutcome()
        known = self._known_references(conn, [e[3]["reference"] for e in batch.accepted])
        outcome.unchanged += len(known)
        accepted: list[AcceptedRow] = [e for e in batch.accepted if e[3]["reference"] not in known]
        by_id = self._customers(conn, "id", {e[3]["customer_id"] for e in accepted if "customer_id" in e[3]})
        by_key = self._customers(
            conn, "external_id", {e[3]["customer_external_id"] for e in accepted if "customer_external_id" in e[3]}
        )
        products = self._products(conn, {line["sku"] for e in accepted for line in e[3]["lines"] if line["sku"]})
        rows: dict[str, tuple[dict[str, Any], list[Line]]] = {}
        for entry in accepted:
            values = entry[3]
            problem, customer_id = self._customer_of(values, by_id, by_key)
            lines = self._lines(values, products)
            if customer_id is None or isinstance(lines, str):
                outcome.rejects.append(entry.rejected(problem or str(lines)))
                continue
            rows[values["reference"]] = (self._order_row(values, customer_id, lines), lines)
        inserted = self._insert(conn, rows)
        outcome.unchanged += len(rows) - len(inserted)
        outcome.inserted += len(inserted)
        customer_ids = sorted({rows[reference][0]["customer_id"] for reference in inserted})
        self._leads_become_customers(session, customer_ids)
        if customer_ids:
            self._crm.hooks.call(hookspecs.crmkit_orders_imported, customer_ids=customer_ids, session=session)
        if self._with_hooks:
            placed = [
                from_row(Order, rows[reference][0], id=order_id, lines=tuple(rows[reference][1]))
                for reference, order_id in inserted.items()
            ]
            for order in placed:
                self._crm.hooks.call(hookspecs.crmkit_order_placed, order=order, session=session)
            self._crm.events.emit_many(
                session, "order.placed", ((_payload(order), order.customer_id) for order in placed)
            )
        return outcome

    def _customers(self, conn: sa.Connection, column: str, keys: set[Any]) -> dict[Any, tuple[int | None, str | None]]:
        return resolve_customers(conn, column, keys, self._reach, inactive="no order can be filed for it")

    def _customer_of(
        self,
        values: dict[str, Any],
        by_id: Mapping[Any, tuple[int | None, str | None]],
        by_key: Mapping[Any, tuple[int | None, str | None]],
    ) -> tuple[str | None, int | None]:
        """(why not, None) or (None, the customer id) for a row's customer."""
        key = values.pop("customer_external_id", None)
        column, asked = ("customer_id", values.get("customer_id")) if key is None else ("customer_external_id", key)
        customer_id, problem = (by_id if key is None else by_key).get(asked, (None, None))
        if customer_id is not None:
            return None, customer_id
        shown = asked if key is None else repr(asked)
        if problem:
            return f"{column}: {problem}", None
        if self._reach is None:
            return f"{column}: no customer {shown}", None
        return f"{column}: {shown} is not a customer you can place orders for", None

    @staticmethod
    def _known_references(conn: sa.Connection, references: list[str]) -> set[str]:
        o = m.orders.c
        found: set[str] = set()
        for start in range(0, len(references), 5000):
            found.update(
                conn.execute(sa.select(o.reference).where(o.reference.in_(references[start : start + 5000]))).scalars()
            )
        return found

    @staticmethod
    def _products(conn: sa.Connection, skus: set[str]) -> dict[str, Mapping[str, Any]]:
        p = m.products.c
        if not skus:
            return {}
        query = sa.select(p.id, p.sku, p.name, p.unit, p.category).where(p.sku.in_(sorted(skus)))
        return {row["sku"]: dict(row) for row in conn.execute(query).mappings()}

    @staticmethod
    def _lines(values: dict[str, Any], products: Mapping[str, Mapping[str, Any]]) -> list[Line] | str:
        """The order's lines, or why a SKU cannot be used."""
        lines = []
        for item in values["lines"]:
            product: Mapping[str, Any] = products.get(item["sku"] or "") or {
                "id": None,
                "name": item["description"],
                "unit": "",
                "category": None,
            }
            if product["name"] is None:
                return (
                    f"{item['prefix']}sku: no product {item['sku']!r} in the catalogue (give a description to "
                    "import it as a free line)"
                )
            total = item["total_minor"]
            lines.append(
                Line(
                    position=item["position"],
                    product_id=product["id"],
                    sku=item["sku"] or "",
                    name=item["description"] or product["name"],
                    unit=product["unit"],
                    category=product["category"],
                    quantity=item["quantity"],
                    unit_price_minor=item["unit_price_minor"],
                    price_list_id=None,
                    discount_percent=None,
                    discount_minor=0,
                    tax_rate=Decimal(0),
                    net_minor=total,
                    tax_minor=0,
                    total_minor=total,
                    cost_minor=None,
                )
            )
        return lines

    def _order_row(self, values: dict[str, Any], customer_id: int, lines: list[Line]) -> dict[str, Any]:
        total = values["total_minor"]
        status = values["status"]
        amounts = (
            total_values(lines)
            if lines
            else {"subtotal_minor": total, "discount_minor": 0, "tax_minor": 0, "total_minor": total}
        )
        return {
            "customer_id": customer_id,
            "reference": values["reference"],
            "owner": self._owner,
            "currency": values["currency"],
            "status": status,
            "placed_at": values["placed_at"],
            "cancelled_at": values["placed_at"] if status == "cancelled" else None,
            **amounts,
            "margin_minor": None,
            "paid_minor": 0 if status == "cancelled" else total,
            "refunded_minor": total if status == "refunded" else 0,
            "notes": values["notes"],
            "updated_at": self._crm.now(),
        }

    @staticmethod
    def _insert(conn: sa.Connection, rows: Mapping[str, tuple[dict[str, Any], list[Line]]]) -> dict[str, int]:
        """Insert the orders (skipping references committed meanwhile) and their lines; ``{reference: id}``."""
        if not rows:
            return {}
        columns = list(next(iter(rows.values()))[0])
        dialect = conn.dialect.name
        insert = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(m.orders)
        statement = insert.on_conflict_do_nothing(index_elements=["reference"]).returning(
            m.orders.c.id, m.orders.c.reference
        )
        inserted: dict[str, int] = {
            row.reference: row.id
            for row in conn.execute(statement, [{c: row[c] for c in columns} for row, _ in rows.values()])
        }
        lines = [
            {"order_id": inserted[reference], **attrs.asdict(line)}
            for reference, (_, order_lines) in rows.items()
            if reference in inserted
            for line in order_lines
        ]
        if lines:
            conn.execute(m.order_lines.insert(), lines)
        return inserted

    def _leads_become_customers(self, session: Session, customer_ids: list[int]) -> None:
        """Leads and prospects among ``customer_ids`` become customers, as a first order makes them: with hooks
        one by one through ``crm.customers.update`` (as a sale does); else in one UPDATE, audited, quietly."""
        if not customer_ids or not self._orders.sales.lifecycle_on_order():
            return
        conn = session.connection()
        c = core.customers.c
        leads: list[tuple[int, str]] = []
        for start in range(0, len(customer_ids), 5000):
            leads.extend(
                (row.id, row.lifecycle_stage)
                for row in conn.execute(
                    sa.select(c.id, c.lifecycle_stage).where(
                        c.id.in_(customer_ids[start : start + 5000]),
                        c.status == "active",
                        c.lifecycle_stage.in_(BECOME_CUSTOMERS),
                    )
                )
            )
        if self._with_hooks:
            for customer_id, _ in leads:
                self._orders.becomes_customer(conn, customer_id)
            return
        ids = [customer_id for customer_id, _ in leads]
        for start in range(0, len(ids), 5000):
            conn.execute(
                core.customers.update()
                .where(c.id.in_(ids[start : start + 5000]))
                .values(lifecycle_stage="customer", updated_at=self._crm.now())
            )
        self._crm.audit.record_many(
            session,
            "update",
            "customer",
            (
                (
                    customer_id,
                    customer_id,
                    {"before": {"lifecycle_stage": stage}, "after": {"lifecycle_stage": "customer"}},
                )
                for customer_id, stage in leads
            ),
        )


def _payload(order: Order) -> Callable[[], dict[str, Any]]:
    """The ``order.placed`` event's data, made only when a subscription listens."""
    return lambda: {"order": to_jsonable(order)}


def import_orders(
    orders: Orders,
    source: str | os.PathLike[str] | IO[Any],
    *,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    reject_path: str | os.PathLike[str] | None = None,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    with_hooks: bool = False,
    reject_bom: bool = True,
) -> ImportSummary:
    """Load past orders from a CSV or JSON Lines file (see the module docstring); what :meth:`Orders.import_history` runs."""
    orders.require(ORDERS_PLACE)
    crm = orders.crm
    return import_records(
        crm,
        source,
        entity="orders",
        reader=_OrderReader,
        prepare=_OrderRows(orders.currency, orders.timezone, crm.now()),
        write=_OrderWriter(orders, with_hooks).write,
        format=format,
        mapping=mapping,
        reject_path=reject_path,
        batch_size=batch_size,
        progress=progress,
        reject_bom=reject_bom,
    )
