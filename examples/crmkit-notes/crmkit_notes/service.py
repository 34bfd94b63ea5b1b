"""``crm.notes``: the plugin's Python API. Its CLI commands and hooks are thin callers of this."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import marshmallow
import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit import Conflict, NotFound, Permission, ValidationError
from crmkit.plugin_api import customers
from crmkit_notes.models import notes

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM

MAX_LENGTH = 5000
READ, WRITE = "notes.read", "notes.write"
#: What the plugin lets roles do: read notes of the customers in scope, write notes about them.
PERMISSIONS = [
    Permission(
        READ,
        "read notes about customers",
        roles={"manager": "team", "sales": "own", "support": "all", "read-only": "all"},
    ),
    Permission(WRITE, "write notes about customers", roles={"manager": "team", "sales": "own", "support": "all"}),
]


@attrs.frozen
class Note:
    """A free-text note about a customer, who wrote it and when."""

    id: int
    customer_id: int
    text: str
    author: str
    created_at: datetime


class NoteSchema(marshmallow.Schema):
    """What a note accepts from callers (the API, the CLI, imports)."""

    customer_id = fields.Integer(required=True, strict=True)
    text = fields.String(required=True, validate=validate.Length(min=1, max=MAX_LENGTH))
    created_at = fields.AwareDateTime(load_default=None, allow_none=True)

    @marshmallow.pre_load
    def _strip(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if isinstance(data.get("text"), str):
            data = {**data, "text": data["text"].strip()}
        return data


class NotesService:
    """Notes of one CRM; every write is one transaction, audited as the CRM's acting user."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._schema = NoteSchema()

    def add(self, customer_id: int, text: str, *, created_at: datetime | None = None) -> Note:
        """Write a note about a customer (a merged-away id writes onto the customer it was merged into).

        Needs ``notes.write`` on the customer.
        """
        self._crm.access.require(WRITE)
        values = self._validate({"customer_id": customer_id, "text": text, "created_at": created_at}, row=None)
        with self._crm.transaction() as session:
            return self._insert(session, [values])[0]

    def add_many(self, items: Iterable[Mapping[str, Any]]) -> list[Note]:
        """Write several notes in one transaction: all of them, or none when one is invalid (its row is named)."""
        self._crm.access.require(WRITE)
        rows = [self._validate(item, row=n) for n, item in enumerate(items, start=1)]
        with self._crm.transaction() as session:
            return self._insert(session, rows) if rows else []

    def list(self, customer_id: int, *, limit: int = 50) -> list[Note]:
        """A customer's notes, newest first (``NotFound`` for an unknown customer or one outside ``notes.read``)."""
        self._crm.access.require(READ)
        if not 1 <= limit <= 1000:
            raise ValidationError("must be between 1 and 1000", field="limit")
        customer = self._crm.customers.get(customer_id)
        with self._crm.reading() as conn:
            self._crm.access.require_customer(conn, customer.id, READ)
            return self._latest(conn, customer.id, limit)

    def get(self, note_id: int) -> Note:
        """One note (``NotFound`` for an unknown note or one about a customer outside ``notes.read``)."""
        with self._crm.reading() as conn:
            return self._one(conn, note_id, READ)

    def delete(self, note_id: int) -> Note:
        """Delete a note and return it; audited. Needs ``notes.write`` on its customer (outside it: ``NotFound``)."""
        with self._crm.transaction() as session:
            conn = session.connection()
            note = self._one(conn, note_id, WRITE)
            conn.execute(notes.delete().where(notes.c.id == note.id))
            self._crm.audit.record(
                session, "delete", "note", note.id, customer_id=note.customer_id, changes={"text": note.text}
            )
        return note

    def summary(self, customer_id: int, *, latest: int = 3) -> dict[str, Any]:
        """How many notes a customer has and the latest few: the plugin's part of the customer 360
        (nothing for a user whose ``notes.read`` does not reach the customer)."""
        if not self._crm.access.allowed(READ):
            return {"count": 0, "latest": []}
        scope = self._crm.access.customers(notes.c.customer_id, READ)
        with self._crm.reading() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).where(notes.c.customer_id == customer_id, scope)
            ).scalar_one()
            recent = self._latest(conn, customer_id, latest) if count else []
        return {"count": count, "latest": recent}

    def mine(self, *, limit: int = 20) -> list[Note]:
        """The acting user's own notes, newest first, about customers ``notes.read`` still reaches (the console's page)."""
        self._crm.access.require(READ)
        c = notes.c
        with self._crm.reading() as conn:
            rows = (
                conn.execute(
                    sa.select(notes)
                    .where(c.author == self._crm.actor, self._crm.access.customers(c.customer_id, READ))
                    .order_by(c.created_at.desc(), c.id.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [Note(**row) for row in rows]

    def _one(self, conn: sa.Connection, note_id: int, permission: str) -> Note:
        """The note ``note_id`` if ``permission``'s scope reaches its customer (checks the permission)."""
        row = (
            conn.execute(
                sa.select(notes).where(
                    notes.c.id == note_id, self._crm.access.customers(notes.c.customer_id, permission)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("note", note_id)
        return Note(**row)

    def _latest(self, conn: sa.Connection, customer_id: int, limit: int) -> list[Note]:
        c = notes.c
        rows = (
            conn.execute(
                sa.select(notes)
                .where(c.customer_id == customer_id)
                .order_by(c.created_at.desc(), c.id.desc())
                .limit(limit)
            )
            .mappings()
            .all()
        )
        return [Note(**row) for row in rows]

    def _validate(self, item: Mapping[str, Any], *, row: int | None) -> dict[str, Any]:
        try:
            return self._schema.load(dict(item))
        except marshmallow.ValidationError as exc:
            raise ValidationError(exc.messages_dict, row=row) from None

    def _insert(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> list[Note]:
        conn = session.connection()
        targets = self._writable_customers(conn, {values["customer_id"] for values in rows})
        self._crm.access.require_customers(conn, set(targets.values()), WRITE)
        now = self._crm.now()
        records = [
            {
                "customer_id": targets[values["customer_id"]],
                "text": values["text"],
                "author": self._crm.actor,
                "created_at": values["created_at"] or now,
            }
            for values in rows
        ]
        ids = conn.execute(notes.insert().returning(notes.c.id, sort_by_parameter_order=True), records).scalars().all()
        added = [Note(id=note_id, **record) for note_id, record in zip(ids, records)]
        for note in added:
            self._crm.audit.record(
                session, "create", "note", note.id, customer_id=note.customer_id, changes={"text": note.text}
            )
        return added

    def _writable_customers(self, conn: sa.Connection, ids: set[int]) -> dict[int, int]:
        """Map each id to the active customer notes go to; ``NotFound`` / ``Conflict`` otherwise."""
        c = customers.c
        status = dict(conn.execute(sa.select(c.id, c.status).where(c.id.in_(sorted(ids)))).all())
        targets = {}
        for customer_id in sorted(ids):
            if status.get(customer_id) == "active":
                targets[customer_id] = customer_id
                continue
            customer = self._crm.customers.get(customer_id)  # NotFound; follows a merge to the kept customer
            if customer.status != "active":
                raise Conflict(f"customer {customer_id} is {customer.status}: no new notes")
            targets[customer_id] = customer.id
        return targets
