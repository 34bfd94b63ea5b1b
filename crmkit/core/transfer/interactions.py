"""``import_interactions``: past calls, visits and e-mails through the same machinery as customers."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.access import UserHandle
from crmkit.core.interactions import FIELDS
from crmkit.core.transfer.columns import reason_text
from crmkit.core.transfer.pipeline import AcceptedRow, ImportOutcome, ImportSummary, _as_caller, _Batch, import_records
from crmkit.core.transfer.reading import RecordReader, _Record
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.crm import CRM


#: The columns of an interactions file: the interaction's own ``external_id`` (its id in the system it
#: comes from: a re-run updates it, never adds it twice), its customer by ``customer_id`` or
#: ``customer_external_id``, then what ``crm.interactions.log`` takes.
INTERACTION_COLUMNS: tuple[str, ...] = (
    "external_id",
    "customer_id",
    "customer_external_id",
    "channel",
    "direction",
    "occurred_at",
    "subject",
    "summary",
    "outcome",
    "rating",
    "employee",
    "sender",
)
#: What a re-run compares (and updates) of an interaction imported before: every field but the key it is found by.
_INTERACTION_VALUES = tuple(field for field in FIELDS if field != "external_id")


def import_interactions(
    crm: CRM | UserHandle,
    source: str | os.PathLike[str] | IO[Any],
    *,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    reject_path: str | os.PathLike[str] | None = None,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    reject_bom: bool = True,
) -> ImportSummary:
    """Load past contacts (calls, visits, e-mails, …) from a CSV or JSON Lines file, keyed by ``external_id``.

    Each row names its customer by ``customer_id`` or ``customer_external_id`` (merged-away
    customers lead to the one they were merged into) and says when it happened (``occurred_at``,
    with a time zone, not in the future). A re-run updates the interactions it imported before
    where they differ and never duplicates them; bad rows go to the reject file with the field
    and row; each batch is one transaction. Needs ``interactions.log``, and a user's rows must
    be about customers in its scope of it. The reject file starts with a BOM (for Excel) unless
    ``reject_bom=False``.
    """
    with _as_caller(crm) as crm:
        crm.access.require("interactions.log")
        return import_records(
            crm,
            source,
            entity="interactions",
            reader=_InteractionReader,
            prepare=_InteractionRows(crm),
            write=_InteractionWriter(crm).write,
            format=format,
            mapping=mapping,
            reject_path=reject_path,
            batch_size=batch_size,
            progress=progress,
            parallel=False,
            reject_bom=reject_bom,
        )


class _InteractionReader(RecordReader):
    """Reads an interactions file: :data:`INTERACTION_COLUMNS`."""

    COLUMNS = INTERACTION_COLUMNS

    def _check_header(self, present: set[str | None]) -> None:
        if not {"customer_id", "customer_external_id"} & present:
            raise ValidationError(f"{self._label}: no customer column (customer_id or customer_external_id)")
        missing = [c for c in ("channel", "occurred_at") if c not in present]
        if missing:
            raise ValidationError(f"{self._label}: no {' or '.join(missing)} column")

    def _prefixed(self, name: str, lowered: str) -> str | bool:
        return False

    def _described(self) -> str:
        return ", ".join(self.COLUMNS)


class _InteractionRows:
    """One interaction row's values, validated by ``crm.interactions``' schema (``ValidationError`` naming the fields)."""

    def __init__(self, crm: CRM) -> None:
        self._interactions = crm.interactions
        self._now = crm.now

    def __call__(self, record: _Record) -> tuple[dict[str, Any], bool]:
        assert record.cells is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
        cells = {k: v for k, v in record.cells.items() if not (v is None or (type(v) is str and not v.strip()))}
        errors: dict[str, list[str]] = {}
        external_id = cells.pop("external_id")
        if type(external_id) is not str or len(external_id) > 200:
            errors["external_id"] = ["must be text of at most 200 characters"]
        customer_key = cells.pop("customer_external_id", None)
        if customer_key is not None and "customer_id" in cells:
            errors["customer_id"] = ["give customer_id or customer_external_id, not both"]
        elif customer_key is None and "customer_id" not in cells:
            errors["customer_id"] = ["required (or customer_external_id): whose contact it was"]
        elif customer_key is not None and (type(customer_key) is not str or len(customer_key) > 200):
            errors["customer_external_id"] = ["must be text of at most 200 characters"]
        if "occurred_at" not in cells:
            errors["occurred_at"] = ["required: when it happened, with a time zone (2019-03-01T09:30+07:00)"]
        try:
            values = self._interactions.validate(cells, row=record.row, customer_required=False)
        except ValidationError as exc:
            values = {}
            for field, messages in exc.errors.items():
                errors.setdefault(field, []).extend(messages if isinstance(messages, list) else [messages])
        if not errors and values["occurred_at"] > self._now():
            errors["occurred_at"] = ["is in the future (history only: log what happened)"]
        if errors:
            order = {column: n for n, column in enumerate(INTERACTION_COLUMNS)}
            raise ValidationError(
                {k: errors[k] for k in sorted(errors, key=lambda k: order.get(k, len(order)))}, row=record.row
            )
        values["external_id"] = external_id
        if customer_key is not None:
            values["customer_external_id"] = customer_key
        return values, True


class _InteractionWriter:
    """Writes one batch of interaction rows as ``crm.interactions.log`` would, in bulk.

    Each row's customer is resolved (following merges) and must be active and within the acting
    user's ``interactions.log`` scope; one out of scope reads as not found. New interactions go
    through ``crm.interactions.insert_validated`` (hooks fire, a ``before_log`` veto rejects the
    row); one imported before is updated where it differs (audited) or counted unchanged.
    """

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._reach = crm.access.principal.owners("interactions.log")

    def write(self, session: Session, batch: _Batch) -> ImportOutcome:
        """Insert or update one batch in the caller's transaction; rows that cannot be applied come back as rejects."""
        conn = session.connection()
        outcome = ImportOutcome()
        accepted = batch.accepted
        by_id = self._customers(conn, "id", {e.values["customer_id"] for e in accepted if "customer_id" in e.values})
        by_key = self._customers(
            conn,
            "external_id",
            {e.values["customer_external_id"] for e in accepted if "customer_external_id" in e.values},
        )
        existing = self._existing(conn, [e.values["external_id"] for e in accepted])
        new: list[AcceptedRow] = []
        changed: list[tuple[AcceptedRow, dict[str, Any]]] = []
        for entry in accepted:
            values = entry.values
            key = values.pop("customer_external_id", None)
            column, asked = ("customer_id", values["customer_id"]) if key is None else ("customer_external_id", key)
            customer_id, problem = (by_id if key is None else by_key).get(asked, (None, None))
            if customer_id is None:
                shown = asked if key is None else repr(asked)
                problem = (
                    f"{column}: {problem}"
                    if problem
                    else (
                        f"{column}: no customer {shown}"
                        if self._reach is None
                        else f"{column}: {shown} is not a customer you can log interactions for"
                    )
                )
                outcome.rejects.append(entry.rejected(problem))
                continue
            values["customer_id"] = customer_id
            before = existing.get(values["external_id"])
            if before is None:
                new.append(entry)
            elif not self._reaches(before["owner"]):
                outcome.rejects.append(
                    entry.rejected(
                        f"external_id: {values['external_id']!r} is used by an interaction you cannot change"
                    )
                )
            else:
                diff = {f: values.get(f) for f in _INTERACTION_VALUES if values.get(f) != before[f]}
                if diff:
                    changed.append((entry, {"id": before["id"], "before": {f: before[f] for f in diff}, "after": diff}))
                else:
                    outcome.unchanged += 1
        self._insert(session, new, outcome)
        self._update(session, changed, outcome)
        return outcome

    def _reaches(self, owner: str | None) -> bool:
        return self._reach is None or owner in self._reach

    def _customers(self, conn: sa.Connection, column: str, keys: set[Any]) -> dict[Any, tuple[int | None, str | None]]:
        return resolve_customers(conn, column, keys, self._reach, inactive="nothing can be logged for it")

    @staticmethod
    def _existing(conn: sa.Connection, external_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Interactions imported before under these external ids, with their customer's owner."""
        i = t.interactions.c
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(external_ids), 5000):
            query = (
                sa.select(i.id, i.external_id, *(i[f] for f in _INTERACTION_VALUES), t.customers.c.owner)
                .join(t.customers, t.customers.c.id == i.customer_id)
                .where(i.external_id.in_(external_ids[start : start + 5000]))
            )
            found.update((row["external_id"], dict(row)) for row in conn.execute(query).mappings())
        return found

    def _insert(self, session: Session, new: list[AcceptedRow], outcome: ImportOutcome) -> None:
        def vetoed(index: int, exc: ValidationError) -> None:
            entry = new[index]
            outcome.rejects.append(entry.rejected(reason_text(exc.errors)))

        logged = self._crm.interactions.insert_validated(session, [entry.values for entry in new], vetoed=vetoed)
        outcome.inserted += len(logged)

    def _update(
        self, session: Session, changed: list[tuple[AcceptedRow, dict[str, Any]]], outcome: ImportOutcome
    ) -> None:
        if not changed:
            return
        conn = session.connection()
        i = t.interactions.c
        statement = (
            t.interactions.update()
            .where(i.id == sa.bindparam("_id"))
            .values({f: sa.bindparam("_" + f) for f in _INTERACTION_VALUES})
        )
        conn.execute(
            statement,
            [
                {"_id": change["id"], **{"_" + f: entry.values.get(f) for f in _INTERACTION_VALUES}}
                for entry, change in changed
            ],
        )
        self._crm.audit.record_many(
            session,
            "update",
            "interaction",
            (
                (change["id"], entry.values["customer_id"], {"before": change["before"], "after": change["after"]})
                for entry, change in changed
            ),
        )
        outcome.updated += len(changed)


def resolve_customers(
    conn: sa.Connection, column: str, keys: set[Any], reach: frozenset[str] | set[str] | None, *, inactive: str
) -> dict[Any, tuple[int | None, str | None]]:
    """For each key of ``customers.<column>`` (``id`` or ``external_id``): the active customer it leads to
    (following a merge) whose owner is in ``reach`` (None: any), or (None, ``customer N is <status>: <inactive>``)
    for an inactive one; keys of no customer, or of one out of reach, are left out (callers say "not found")."""
    c = t.customers.c
    found: dict[Any, tuple[int | None, str | None]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 5000):
        rows = conn.execute(
            sa.select(c[column], c.id, c.status, c.merged_into_id, c.owner).where(
                c[column].in_(ordered[start : start + 5000])
            )
        ).all()
        kept = {r.merged_into_id for r in rows if r.status == "merged" and r.merged_into_id is not None}
        into = {r.id: r for r in conn.execute(sa.select(c.id, c.status, c.owner).where(c.id.in_(kept)))} if kept else {}
        for r in rows:
            final = into.get(r.merged_into_id, r) if r.status == "merged" else r
            if reach is not None and final.owner not in reach:
                continue
            if final.status == "active":
                found[r[0]] = (final.id, None)
            else:
                found[r[0]] = (None, f"customer {final.id} is {final.status}: {inactive}")
    return found
