"""The audit log: who changed what, and when, for every write the core and plugins make."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.core.bulk_sql import chunks
from crmkit.core.jsonable import encode_cursor, to_jsonable
from crmkit.core.models import Page
from crmkit.core.schemas import aware_utc, check_limit, read_cursor
from crmkit.core.tables import audit_log
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.core.access import Principal
    from crmkit.crm import CRM

#: Built once, run with parameters: every write records an entry, and building it cost more than running it.
_INSERT = audit_log.insert()


@attrs.frozen
class AuditEntry:
    """One recorded change."""

    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    customer_id: int | None
    changes: Mapping[str, Any] | None
    user_id: int | None = None


class AuditLog:
    """``crm.audit``: append entries inside a transaction, list them back."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def record(
        self,
        session: Session,
        action: str,
        entity: str,
        entity_id: Any,
        *,
        customer_id: int | None = None,
        changes: Mapping[str, Any] | None = None,
        user_id: int | None = None,
    ) -> None:
        """Append an entry in the caller's transaction, attributed to ``crm.actor`` (and the acting user's id;
        ``user_id`` names the user an entry is about when the system acts, as for a sign-in)."""
        principal = self._crm.access.principal
        session.connection().execute(
            _INSERT,
            {
                "at": self._crm.now(),
                "actor": self._crm.actor,
                "action": action,
                "entity": entity,
                "entity_id": str(entity_id),
                "customer_id": customer_id,
                "changes": to_jsonable(changes) if changes is not None else None,
                "user_id": principal.user_id if user_id is None else user_id,
            },
        )

    def record_many(
        self,
        session: Session,
        action: str,
        entity: str,
        entries: Iterable[tuple[Any, int | None, Mapping[str, Any] | None]],
    ) -> None:
        """Append many entries of one kind at once — ``(entity_id, customer_id, changes)`` each — in one executemany."""
        now, actor, user_id = self._crm.now(), self._crm.actor, self._crm.access.principal.user_id
        rows = [
            {
                "at": now,
                "actor": actor,
                "action": action,
                "entity": entity,
                "entity_id": str(entity_id),
                "customer_id": customer_id,
                "changes": to_jsonable(changes) if changes is not None else None,
                "user_id": user_id,
            }
            for entity_id, customer_id, changes in entries
        ]
        if rows:
            session.connection().execute(_INSERT, rows)

    def history(
        self,
        conn: sa.Connection,
        entity: str,
        entity_id: Any,
        *,
        permission: str,
        action: str | None = None,
        limit: int = 50,
    ) -> list[AuditEntry]:
        """One entity's entries (of one ``action`` if given), newest first, read on the caller's connection: those
        about customers in the user's scope of ``permission`` — a plugin's own read permission, not ``audit.read``."""
        check_limit(limit)
        log = audit_log.c
        query = (
            sa.select(audit_log)
            .where(
                log.entity == entity,
                log.entity_id == str(entity_id),
                self._crm.access.customers(log.customer_id, permission),
            )
            .order_by(log.id.desc())
            .limit(limit)
        )
        if action is not None:
            query = query.where(log.action == action)
        return self._shown(conn, [AuditEntry(**row) for row in conn.execute(query).mappings()])

    def clear_changes(self, session: Session, entity: str, entity_ids: Iterable[Any]) -> None:
        """Forget what the entries about these entities changed, in the caller's transaction (an erasure: each entry
        still says who did what and when, no longer to whom)."""
        ids = sorted({str(entity_id) for entity_id in entity_ids})
        log = audit_log.c
        for chunk in chunks(ids):
            session.connection().execute(
                audit_log.update().where(log.entity == entity, log.entity_id.in_(chunk)).values(changes=None)
            )

    def _shown(self, conn: sa.Connection, entries: list[AuditEntry]) -> list[AuditEntry]:
        """Entries with contact details in their changes masked where the user may not see that customer's."""
        access = self._crm.access
        if access.contact_owners() is None:
            return entries
        from crmkit.core.masking import mask_changes
        from crmkit.core.tables import customers

        ids = sorted({e.customer_id for e in entries if e.customer_id is not None})
        owners = dict(conn.execute(sa.select(customers.c.id, customers.c.owner).where(customers.c.id.in_(ids))).all())
        return [
            e
            if e.changes is None or (e.customer_id is not None and access.sees_contacts_of(owners.get(e.customer_id)))
            else attrs.evolve(e, changes=mask_changes(e.changes))
            for e in entries
        ]

    def denied(self, principal: Principal, permission: str, detail: str = "") -> None:
        """Record a permission denial. It must outlive the refused change, so it is written in its own
        transaction — after the caller's one ends when a transaction is open on this thread."""
        entry = {
            "at": self._crm.now(),
            "actor": principal.username,
            "action": "denied",
            "entity": "permission",
            "entity_id": permission,
            "customer_id": None,
            "changes": {"detail": detail} if detail else None,
            "user_id": principal.user_id,
        }
        self._crm.after_transaction(lambda: self._write(entry))

    def _write(self, entry: Mapping[str, Any]) -> None:
        with self._crm.transaction() as session:
            session.connection().execute(_INSERT, dict(entry))

    def entries(
        self,
        *,
        customer_id: int | None = None,
        entity: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> Page[AuditEntry]:
        """Newest first, filtered (``since`` ≤ at < ``until``, aware times), keyset-paginated (pass ``next_cursor``
        back as ``after``).

        Needs ``audit.read``: with scope ``all`` the whole log, otherwise the entries about the
        customers in scope.
        """
        if not 1 <= limit <= 1000:
            raise ValidationError("must be between 1 and 1000", field="limit")
        scoped = self._crm.access.customers(audit_log.c.customer_id, "audit.read")
        query = sa.select(audit_log).where(scoped).order_by(audit_log.c.id.desc()).limit(limit + 1)
        if customer_id is not None:
            query = query.where(audit_log.c.customer_id == customer_id)
        if entity is not None:
            query = query.where(audit_log.c.entity == entity)
        if actor is not None:
            query = query.where(audit_log.c.actor == actor)
        if action is not None:
            query = query.where(audit_log.c.action == action)
        if since is not None:
            query = query.where(audit_log.c.at >= aware_utc(since, "since"))
        if until is not None:
            query = query.where(audit_log.c.at < aware_utc(until, "until"))
        if after is not None:
            (last_id,) = read_cursor(after, "after", int)
            query = query.where(audit_log.c.id < last_id)
        with self._crm.reading() as conn:
            rows = conn.execute(query).mappings().all()
            items = self._shown(conn, [AuditEntry(**row) for row in rows[:limit]])
        return Page(items, encode_cursor(items[-1].id) if len(rows) > limit else None)
