"""``export_customers``: every active customer in the columns the import reads back."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.access import UserHandle
from crmkit.core.masking import mask_customer
from crmkit.core.safe_csv import neutralise
from crmkit.core.transfer.columns import _ADDRESS, ATTRIBUTE_PREFIX, COLUMNS, CONSENT_PREFIX, LIST_SEPARATOR
from crmkit.core.transfer.links import ORGANIZATIONS, LinkColumns, attribute_fields, export_external_id
from crmkit.core.transfer.pipeline import _as_caller
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from crmkit.core.models import Customer
    from crmkit.crm import CRM


def export_customers(
    crm: CRM | UserHandle, dest: str | os.PathLike[str] | IO[Any], *, format: str = "csv", bom: bool | None = None
) -> int:
    """Write every active customer in the import's columns (CSV or JSON Lines); returns the rows written.

    Importing the result into an empty CRM gives the same customers (one postal address each; in CSV,
    attributes no field declares come back as text), their memberships and the attributes naming customers
    included: links are written by external id, and a customer without one is written as ``crmkit-<id>``.
    Needs ``customers.export``; a user exports the customers in its scope, contact details masked where
    they may not see them. A CSV file (``dest`` a path) starts with a UTF-8 BOM so Excel shows Vietnamese correctly; a stream
    gets none. ``bom`` True or False decides instead (JSON Lines never has one).
    """
    with _as_caller(crm) as crm:
        return _export(crm, dest, format, bom)


def _export(crm: CRM, dest: str | os.PathLike[str] | IO[Any], format: str, bom: bool | None = None) -> int:
    _require_format(format)
    scope = crm.access.owner_filter(t.customers.c.owner, "customers.export")
    clear = crm.access.contact_owners()  # None: every customer's contact details in clear
    shown = (
        [c if clear is None or c.owner in clear else mask_customer(c) for c in chunk]
        for chunk in _active_customers(crm, scope)
    )
    keys = _attribute_keys(crm, scope)
    with _open_dest(dest) as out:
        bom = bom if bom is not None else isinstance(dest, (str, os.PathLike))
        return write_customers(crm, out, shown, keys, format=format, bom=bom)


def write_customers(
    crm: CRM | UserHandle,
    out: IO[str],
    chunks: Iterable[Sequence[Customer]],
    attribute_keys: Sequence[str],
    *,
    format: str = "csv",
    bom: bool = False,
) -> int:
    """Write these customers, a chunk at a time, to ``out`` as :func:`export_customers` writes them; returns the rows.

    The import's columns (with a consent column per channel and an ``attr_`` column per key of
    ``attribute_keys``), links by external id (``crmkit-<id>`` for a customer without one), formula-safe
    CSV cells; ``bom`` starts a CSV with a UTF-8 BOM. Customers are written as given: choosing and masking
    them is the caller's (the console writes the list it shows with this).
    """
    _require_format(format)
    with _as_caller(crm) as crm:
        references = LinkColumns(attribute_fields(crm)).references
        channels = crm.channels
        columns = [*COLUMNS, *(CONSENT_PREFIX + ch for ch in channels), *(ATTRIBUTE_PREFIX + k for k in attribute_keys)]
        csv_writer = csv.writer(out, lineterminator="\n") if format == "csv" else None
        if csv_writer is not None:
            if bom:
                out.write("\ufeff")  # a UTF-8 BOM: Excel then reads the file as UTF-8
            csv_writer.writerow(columns)
        written = 0
        for chunk in chunks:
            named = _external_ids(crm, _linked_ids(chunk, references))
            for customer in chunk:
                record = _export_record(customer, channels, attribute_keys)
                _add_links(record, customer, references, named)
                if csv_writer is not None:
                    csv_writer.writerow([_csv_cell(record.get(c), c) for c in columns])
                else:
                    out.write(json.dumps({c: record.get(c) for c in columns}, ensure_ascii=False) + "\n")
                written += 1
        return written


def _require_format(format: str) -> None:
    """Refuse a format the export does not write (before a file is opened for it)."""
    if format not in ("csv", "jsonl"):
        raise ValidationError("must be csv or jsonl", field="format")


def _attribute_keys(crm: CRM, scope: sa.ColumnElement[bool]) -> list[str]:
    """Every attribute name the active customers in ``scope`` use, sorted (computed in SQL)."""
    c = t.customers.c
    with crm.reading() as conn:
        if conn.dialect.name == "sqlite":
            each = sa.func.json_each(c.attributes).table_valued("key").alias("j")
            query = sa.select(each.c.key).select_from(t.customers).join(each, sa.true())
        elif conn.dialect.name == "postgresql":
            query = sa.select(sa.func.jsonb_object_keys(c.attributes))
        else:
            raise NotImplementedError(f"export on {conn.dialect.name}")
        return list(
            conn.execute(query.where(c.status == "active", scope).distinct().order_by(sa.literal_column("1"))).scalars()
        )


def _active_customers(crm: CRM, scope: sa.ColumnElement[bool], chunk: int = 1000) -> Iterator[list[Customer]]:
    """Active customers in ``scope`` by id, a chunk at a time."""
    c = t.customers.c
    with crm.reading() as conn:
        last = 0
        while ids := list(
            conn.execute(
                sa.select(c.id).where(c.status == "active", c.id > last, scope).order_by(c.id).limit(chunk)
            ).scalars()
        ):
            yield sorted(crm.customers._load_many(conn, ids), key=lambda customer: customer.id)
            last = ids[-1]


def _linked_ids(customers: Sequence[Customer], references: frozenset[str]) -> set[int]:
    """The ids of the customers these ones link to (their organizations, the customers their attributes name)."""
    ids = {m.organization_id for customer in customers for m in customer.organizations}
    for customer in customers:
        ids.update(v for k in references if type(v := customer.attributes.get(k)) is int)
    return ids


def _external_ids(crm: CRM, ids: set[int]) -> dict[int, str]:
    """The external id an export writes for each of these customers (``crmkit-<id>`` for one without); a link
    to a merged customer names the customer it was merged into (the one the file holds)."""
    c = t.customers.c
    rows: dict[int, tuple[str | None, int | None]] = {}
    wanted = set(ids)
    with crm.reading() as conn:
        while wanted:
            query = sa.select(c.id, c.external_id, c.merged_into_id).where(c.id.in_(sorted(wanted)))
            found = {i: (external_id, into) for i, external_id, into in conn.execute(query)}
            rows.update(found)
            wanted = {into for _, into in found.values() if into is not None and into not in rows}

    def named(i: int) -> str:
        seen = {i}
        while (into := rows.get(i, (None, None))[1]) is not None and into not in seen:
            i = into
            seen.add(i)
        return export_external_id(i, rows.get(i, (None, None))[0])

    return {i: named(i) for i in ids}


def _add_links(record: dict[str, Any], customer: Customer, references: frozenset[str], named: dict[int, str]) -> None:
    """The customer's external id (its own or ``crmkit-<id>``) and its links by external id into ``record``."""
    record["external_id"] = export_external_id(customer.id, customer.external_id)
    record[ORGANIZATIONS] = [
        {"organization": named[m.organization_id], "role": m.role} for m in customer.organizations
    ] or None
    for key in references:
        value = customer.attributes.get(key)
        if type(value) is int:
            record[ATTRIBUTE_PREFIX + key] = named[value]


def _export_record(customer: Customer, channels: Sequence[str], attribute_keys: Sequence[str]) -> dict[str, Any]:
    """One customer as import columns, JSON-typed (lists, booleans, None for empty)."""
    address = customer.addresses[0] if customer.addresses else None
    record: dict[str, Any] = {
        "external_id": customer.external_id,
        "kind": customer.kind,
        "name": customer.name,
        "given_name": customer.given_name,
        "family_name": customer.family_name,
        "email": customer.email,
        "emails": list(customer.emails[1:]),
        "phone": customer.phone,
        "phones": list(customer.phones[1:]),
        "birth_date": customer.birth_date.isoformat() if customer.birth_date else None,
        "gender": customer.gender,
        "lifecycle_stage": customer.lifecycle_stage,
        "owner": customer.owner,
        "country": customer.country,
        "city": customer.city,
        "province": customer.province,
        "tags": list(customer.tags),
        "created_at": customer.created_at.isoformat() if customer.created_at else None,
    }
    for column, part in _ADDRESS.items():
        record[column] = getattr(address, part) if address else None
    for channel in channels:
        consent = customer.consents.get(channel)
        record[CONSENT_PREFIX + channel] = consent.granted if consent else None
    for key in attribute_keys:
        record[ATTRIBUTE_PREFIX + key] = customer.attributes.get(key)
    return record


def _csv_cell(value: Any, column: str = "") -> str:
    """One exported CSV cell as the import reads it back; text that would start a formula gets a quote.

    Booleans are yes/no; other attributes that are not text, and memberships, are written as JSON (``12``,
    ``["a", "b"]``), which the import reads back by the attribute's declared type.
    """
    if value is None:
        return ""
    if type(value) is str:
        return neutralise(value)
    if type(value) is bool:
        return "yes" if value else "no"
    if column == ORGANIZATIONS or column.startswith(ATTRIBUTE_PREFIX):
        return neutralise(json.dumps(value, ensure_ascii=False, default=str))
    if type(value) is list:
        return neutralise(LIST_SEPARATOR.join(value))
    return json.dumps(value, ensure_ascii=False)


@contextmanager
def _open_dest(dest: Any) -> Iterator[IO[str]]:
    if isinstance(dest, (str, os.PathLike)):
        with open(dest, "w", encoding="utf-8", newline="") as out:
            yield out
    elif isinstance(dest, io.TextIOBase):
        yield dest
    else:  # a binary stream: write UTF-8 into it, and leave it open
        wrapper = io.TextIOWrapper(dest, encoding="utf-8", newline="")
        try:
            yield wrapper
            wrapper.flush()
        finally:
            wrapper.detach()
