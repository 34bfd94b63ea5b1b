"""``crm.interactions``: one timeline per customer across every channel."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import marshmallow
import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.jsonable import encode_cursor, to_jsonable
from crmkit.core.models import Interaction, Page
from crmkit.core.schemas import InteractionSchema, aware_utc, read_cursor
from crmkit.errors import Conflict, NotFound, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.crm import CRM

FIELDS = (
    "customer_id",
    "channel",
    "direction",
    "occurred_at",
    "subject",
    "summary",
    "outcome",
    "rating",
    "employee",
    "sender",
    "external_id",
)


def row_to_interaction(row: Mapping[str, Any]) -> Interaction:
    """An ``Interaction`` from a row of the interactions table."""
    return Interaction(id=row["id"], **{f: row[f] for f in FIELDS})


class Interactions:
    """The interaction service of one CRM (``crm.interactions``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._schema = InteractionSchema(channels=crm.channels)

    def validate(
        self, data: Mapping[str, Any], *, row: int | None = None, customer_required: bool = True
    ) -> dict[str, Any]:
        """Validate an interaction through its schema; raises ``ValidationError`` naming the field.

        ``customer_required=False`` accepts a row without ``customer_id`` (an import naming the
        customer by its external id instead).
        """
        try:
            return self._schema.load(dict(data), partial=() if customer_required else ("customer_id",))
        except marshmallow.ValidationError as exc:
            raise ValidationError(exc.messages_dict, row=row) from None

    def log(
        self,
        customer_id: int,
        channel: str,
        *,
        direction: str = "inbound",
        occurred_at: datetime | None = None,
        **fields: Any,
    ) -> Interaction:
        """Record a contact; a merged-away customer id logs onto the customer it was merged into.

        Needs ``interactions.log`` on the customer; a user's own contacts name them as ``employee``.
        """
        self._crm.access.require("interactions.log")
        values = self._defaults(
            self.validate(
                {
                    "customer_id": customer_id,
                    "channel": channel,
                    "direction": direction,
                    "occurred_at": occurred_at,
                    **fields,
                }
            )
        )
        with self._crm.transaction() as session:
            conn = session.connection()
            values["customer_id"] = self._resolve_customer(conn, values["customer_id"])
            self._crm.access.require_customer(conn, values["customer_id"], "interactions.log")
            self._crm.hooks.interaction_before_log(values, session)
            row = {f: values.get(f) for f in FIELDS}
            new_id = conn.execute(
                t.interactions.insert().values(**row, created_at=self._crm.now()).returning(t.interactions.c.id)
            ).scalar_one()
            interaction = Interaction(id=new_id, **row)
            self._crm.hooks.interaction_logged(interaction, session)
            self._crm.events.emit(
                session,
                "interaction.logged",
                lambda: {"interaction": to_jsonable(interaction)},
                customer_id=interaction.customer_id,
            )
        return interaction

    def log_many(self, entries: Sequence[Mapping[str, Any]]) -> list[Interaction]:
        """Record many contacts in one transaction and one insert, each validated and hooked as by :meth:`log`.

        Each entry holds ``log``'s arguments by name (``customer_id``, ``channel``, …). A bad
        entry raises ``ValidationError`` naming its 1-based position, and nothing is written.
        """
        self._crm.access.require("interactions.log")
        rows = [
            self._defaults(self.validate({"direction": "inbound", **entry}, row=position))
            for position, entry in enumerate(entries, 1)
        ]
        if not rows:
            return []
        with self._crm.transaction() as session:
            conn = session.connection()
            resolved: dict[int, int] = {}
            for values in rows:
                asked = values["customer_id"]
                if asked not in resolved:
                    resolved[asked] = self._resolve_customer(conn, asked)
                values["customer_id"] = resolved[asked]
            self._crm.access.require_customers(conn, set(resolved.values()), "interactions.log")
            return self.insert_validated(session, rows)

    def insert_validated(
        self,
        session: Session,
        rows: Sequence[dict[str, Any]],
        *,
        vetoed: Callable[[int, ValidationError], None] | None = None,
    ) -> list[Interaction]:
        """Insert validated rows of resolved, permitted customers in the caller's transaction; fires the hooks.

        Imports use this after their own checks, so hooks see imported contacts as logged ones. A
        ``before_log`` hook's veto raises, or with ``vetoed`` is handed to it (with the row's index)
        and leaves that row out.
        """
        kept = []
        for index, values in enumerate(rows):
            try:
                self._crm.hooks.interaction_before_log(values, session)
            except ValidationError as exc:
                if vetoed is None:
                    raise
                vetoed(index, exc)
                continue
            kept.append(values)
        rows = kept
        if not rows:
            return []
        conn = session.connection()
        now = self._crm.now()
        params = [{**{f: values.get(f) for f in FIELDS}, "created_at": now} for values in rows]
        new_ids = (
            conn.execute(t.interactions.insert().returning(t.interactions.c.id, sort_by_parameter_order=True), params)
            .scalars()
            .all()
        )
        logged = [Interaction(id=new_id, **{f: p[f] for f in FIELDS}) for new_id, p in zip(new_ids, params)]
        for interaction in logged:
            self._crm.hooks.interaction_logged(interaction, session)
        self._crm.events.emit_many(
            session, "interaction.logged", (({"interaction": to_jsonable(i)}, i.customer_id) for i in logged)
        )
        return logged

    def get(self, interaction_id: int) -> Interaction:
        """One interaction by id (``NotFound`` when its customer is outside the ``interactions.read`` scope)."""
        scope = self._crm.access.customers(t.interactions.c.customer_id, "interactions.read")
        with self._crm.reading() as conn:
            row = (
                conn.execute(sa.select(t.interactions).where(t.interactions.c.id == interaction_id, scope))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound("interaction", interaction_id)
            return self._shown(conn, row["customer_id"], [row_to_interaction(row)])[0]

    def timeline(
        self,
        customer_id: int,
        *,
        channels: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        employee: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> Page[Interaction]:
        """Newest first; filter by channel, time range [since, until) and employee; keyset pages via ``before``.

        A merged-away customer id shows the timeline of the customer it was merged into. Needs
        ``interactions.read`` on the customer.
        """
        self._crm.access.require("interactions.read")
        if not 1 <= limit <= 1000:
            raise ValidationError("must be between 1 and 1000", field="limit")
        since = aware_utc(since, "since") if since is not None else None
        until = aware_utc(until, "until") if until is not None else None
        if since and until and until <= since:
            raise ValidationError("must be after since", field="until")
        unknown = [c for c in channels or () if c not in self._crm.channels]
        if unknown:
            raise ValidationError(f"unknown channel(s): {', '.join(unknown)}", field="channels")
        i = t.interactions.c
        query = sa.select(t.interactions)
        if channels:
            query = query.where(i.channel.in_(channels))
        if since:
            query = query.where(i.occurred_at >= since)
        if until:
            query = query.where(i.occurred_at < until)
        if employee:
            query = query.where(i.employee == employee)
        if before:
            at, last_id = read_cursor(before, "before", str, int)
            try:
                last_at = aware_utc(datetime.fromisoformat(at), "before")
            except ValueError:
                raise ValidationError(f"invalid cursor {before!r}", field="before") from None
            query = query.where(
                sa.tuple_(i.occurred_at, i.id) < sa.tuple_(sa.literal(last_at, i.occurred_at.type), sa.literal(last_id))
            )
        query = query.order_by(i.occurred_at.desc(), i.id.desc()).limit(limit + 1)
        with self._crm.reading() as conn:
            customer_id = self._resolve_customer(conn, customer_id, follow_to_erased=True)
            self._crm.access.require_customer(conn, customer_id, "interactions.read")
            rows = conn.execute(query.where(i.customer_id == customer_id)).mappings().all()
            items = self._shown(conn, customer_id, [row_to_interaction(r) for r in rows[:limit]])
        cursor = encode_cursor(items[-1].occurred_at, items[-1].id) if len(rows) > limit else None
        return Page(items, cursor)

    def counts(self, customer_id: int) -> dict[str, int]:
        """Interactions per channel for one customer (needs ``interactions.read`` on the customer)."""
        i = t.interactions.c
        self._crm.access.require("interactions.read")
        with self._crm.reading() as conn:
            self._crm.access.require_customer(conn, customer_id, "interactions.read")
            return dict(
                conn.execute(
                    sa.select(i.channel, sa.func.count()).where(i.customer_id == customer_id).group_by(i.channel)
                ).all()
            )

    def _defaults(self, values: dict[str, Any]) -> dict[str, Any]:
        """Now for a missing time; the acting user as the employee of a contact they log."""
        values["occurred_at"] = values.get("occurred_at") or self._crm.now()
        principal = self._crm.access.principal
        if not values.get("employee") and not principal.is_system:
            values["employee"] = principal.username
        return values

    def _shown(self, conn: sa.Connection, customer_id: int, items: list[Interaction]) -> list[Interaction]:
        """Interactions with their sender masked when the user may not see this customer's contact details."""
        if self._crm.access.contact_owners() is None or not items:
            return items
        owner = conn.execute(sa.select(t.customers.c.owner).where(t.customers.c.id == customer_id)).scalar()
        if self._crm.access.sees_contacts_of(owner):
            return items
        from crmkit.core.masking import mask_interaction

        return [mask_interaction(i) for i in items]

    def _resolve_customer(self, conn: sa.Connection, customer_id: int, *, follow_to_erased: bool = False) -> int:
        """The active customer an id stands for (following merges); ``NotFound`` / ``Conflict`` otherwise.

        ``follow_to_erased`` accepts an erased customer too (reading its anonymous timeline).
        """
        c = t.customers.c
        seen: set[int] = set()
        while True:
            row = conn.execute(sa.select(c.status, c.merged_into_id).where(c.id == customer_id)).first()
            if row is None:
                raise NotFound("customer", customer_id)
            if row.status == "active" or (follow_to_erased and row.status == "erased"):
                return customer_id
            if row.status != "merged" or row.merged_into_id in seen:
                raise Conflict(f"customer {customer_id} is {row.status}")
            seen.add(customer_id)
            customer_id = row.merged_into_id
