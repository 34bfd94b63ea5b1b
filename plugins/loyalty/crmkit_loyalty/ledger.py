"""Writing the ledger: every change of points goes through :meth:`Ledger.post`, inside the caller's transaction.

``post`` inserts the entry with ``INSERT … ON CONFLICT DO NOTHING`` on the unique
(program, source kind, source id, reason) — a re-delivered event writes nothing — then moves the
member's balance row with one ``UPDATE … RETURNING`` (for spending: ``WHERE points >= :n``, so two
concurrent redemptions of the same points cannot both pass; on PostgreSQL the row lock makes the
second wait and re-check, on SQLite write transactions are serialized by ``BEGIN IMMEDIATE``), and
keeps the open lots (the entries' ``remaining`` units, what FIFO expiry and spending consume) equal to
the positive balance. A positive entry is written with its lot open: an order is one ledger row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.errors import ValidationError
from crmkit.plugin_api import insert_ignore, to_jsonable
from crmkit_loyalty import hookspecs
from crmkit_loyalty.events import EVENT_OF_KIND
from crmkit_loyalty.models import ledger, members
from crmkit_loyalty.records import MAX_UNITS, LedgerEntry, Program

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM

LOT_PAGE = 200
ENTRY_KEY = ("program_id", "source_kind", "source_id", "reason")

# The hot paths are built once and run with parameters: building statements costs more than running them.
#: One balance row, by the ``member`` (customer id) and ``program`` (program id) parameters.
MEMBER_KEY = sa.and_(members.c.customer_id == sa.bindparam("member"), members.c.program_id == sa.bindparam("program"))
_MOVE_BALANCE = (
    members.update()
    .where(MEMBER_KEY)
    .values(points=members.c.points + sa.bindparam("units"))
    .returning(members.c.points)
)
_SPEND_BALANCE = (
    members.update()
    .where(MEMBER_KEY, members.c.points >= sa.bindparam("need"))
    .values(points=members.c.points + sa.bindparam("units"))
    .returning(members.c.points)
)
_BALANCE = sa.select(members.c.points).where(MEMBER_KEY)


def _window(column: sa.Column[Any]) -> sa.Select[Any]:
    """A member's tier window: the qualifying ``column`` (points or spend) of the entries made after ``since``
    (parameters ``member``, ``program``, ``since``). It reads only the index ``ix_loyalty_ledger_member_window``."""
    c = ledger.c
    return sa.select(sa.func.coalesce(sa.func.sum(column), 0)).where(
        c.customer_id == sa.bindparam("member"),
        c.program_id == sa.bindparam("program"),
        c.qualifying.is_(True),
        c.created_at > sa.bindparam("since"),
    )


#: The tier window per ``tier_basis``; and the balance move returning it as well (an order's purchase entry).
WINDOW = {"points": _window(ledger.c.points), "spend": _window(ledger.c.amount_minor)}
_MOVE_BALANCE_WINDOW = {basis: _MOVE_BALANCE.returning(window.scalar_subquery()) for basis, window in WINDOW.items()}
_LOCK_MEMBER = sa.select(members.c.tier.label("member_tier")).where(MEMBER_KEY).with_for_update()  # PostgreSQL only
#: An open lot: what a member's entries still hold (the partial index ``ix_loyalty_ledger_open_lots`` holds just these).
OPEN = ledger.c.remaining > 0
_OPEN_LOTS = (
    sa.select(ledger.c.id, ledger.c.remaining)
    .where(ledger.c.customer_id == sa.bindparam("customer_id"), ledger.c.program_id == sa.bindparam("program_id"), OPEN)
    .order_by(ledger.c.expires_at.asc().nulls_last(), ledger.c.id)
    .limit(LOT_PAGE)
)
_SET_LOT = ledger.update().where(ledger.c.id == sa.bindparam("lot")).values(remaining=sa.bindparam("left"))


def balance_units(conn: sa.Connection, program_id: int, customer_id: int) -> int | None:
    """A member's balance in units (None when not a member): one primary-key lookup."""
    return conn.execute(_BALANCE, {"member": customer_id, "program": program_id}).scalar()


def lock_members(conn: sa.Connection, program_id: int, customer_ids: Iterable[int]) -> None:
    """Lock members' balance rows, in id order (PostgreSQL ``FOR UPDATE``; SQLite writers are already serialized)."""
    if conn.dialect.name != "postgresql":
        return
    ids = sorted(set(customer_ids))
    if ids:
        conn.execute(
            sa.select(members.c.customer_id)
            .where(members.c.program_id == program_id, members.c.customer_id.in_(ids))
            .order_by(members.c.customer_id)
            .with_for_update()
        ).all()


def lock_member(conn: sa.Connection, program_id: int, customer_id: int) -> sa.Row[Any] | None:
    """Lock one balance row (PostgreSQL ``FOR UPDATE``) and read its ``member_tier``; None when not a member."""
    return conn.execute(_LOCK_MEMBER, {"member": customer_id, "program": program_id}).first()


def locked_member(
    conn: sa.Connection, program_id: int, customer_id: int, seen: sa.Row[Any] | None
) -> sa.Row[Any] | None:
    """The membership (``member_tier``) as it is under this transaction's lock, given ``seen``, read earlier in it.

    PostgreSQL: locked ``FOR UPDATE`` and read again. SQLite: ``seen`` itself — the write
    transaction (``BEGIN IMMEDIATE``) has excluded every other writer since it began.
    """
    return lock_member(conn, program_id, customer_id) if conn.dialect.name == "postgresql" else seen


def member_key(program_id: int, customer_id: int) -> sa.ColumnElement[bool]:
    """The primary key condition of one balance row."""
    return sa.and_(members.c.customer_id == customer_id, members.c.program_id == program_id)


@attrs.define
class WindowTotal:
    """Asks :meth:`Ledger.post` for a member's tier window (``basis``: points or spend, entries after ``since``);
    ``total`` is set by it (None until an entry is posted)."""

    basis: str
    since: datetime
    total: int | None = None


class Ledger:
    """Posts entries for one CRM and fires ``crmkit_points_changed`` for each."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def post(
        self,
        session: Session,
        program: Program,
        customer_id: int,
        units: int,
        *,
        kind: str,
        reason: str,
        source_kind: str,
        source_id: Any,
        now: datetime,
        order_id: Any = None,
        amount_minor: int | None = None,
        qualifying: bool = False,
        note: str | None = None,
        expires_at: datetime | None = None,
        require_balance: bool = False,
        window: WindowTotal | None = None,
    ) -> LedgerEntry | None:
        """Write one entry and move the balance; None when this (source, reason) was already posted.

        The member's balance row must exist. Positive entries open a lot expiring at ``expires_at``
        (less any negative balance they first pay back); negative ones consume lots oldest first.
        ``require_balance`` refuses (``ValidationError``, nothing written) to take the balance below zero.
        ``window`` gets the member's tier window after this entry, read by the balance update itself.
        """
        if abs(units) > MAX_UNITS:  # an earning this large comes from a misconfigured program or rule
            raise ValidationError(f"more than {program.points(MAX_UNITS)} points in one entry", field="points")
        conn = session.connection()
        row = {
            "program_id": program.id,
            "customer_id": customer_id,
            "points": units,
            "kind": kind,
            "reason": reason,
            "source_kind": source_kind,
            "source_id": str(source_id),
            "order_id": None if order_id is None else str(order_id),
            "amount_minor": amount_minor,
            "qualifying": qualifying,
            "created_at": now,
            "expires_at": expires_at if units > 0 else None,
            "note": note,
            "actor": self._crm.actor,
            "remaining": max(units, 0),
        }
        entry_id = insert_ignore(conn, ledger, row, ENTRY_KEY, ledger.c.id)
        if entry_id is None:
            return None
        key = {"member": customer_id, "program": program.id, "units": units}
        if require_balance and units < 0:
            balance = conn.execute(_SPEND_BALANCE, {**key, "need": -units}).scalar()
        elif window is not None:
            moved = conn.execute(_MOVE_BALANCE_WINDOW[window.basis], {**key, "since": window.since}).first()
            balance, window.total = moved if moved is not None else (None, None)
        else:
            balance = conn.execute(_MOVE_BALANCE, key).scalar()
        if balance is None:
            have = balance_units(conn, program.id, customer_id)
            raise ValidationError(
                f"not enough points: the balance is {program.points(have or 0)}, {program.points(-units)} needed",
                field="points",
            )
        if units > 0 and balance < units:  # a negative balance is paid back first: the lot holds what is left
            row["remaining"] = max(balance, 0)
            conn.execute(_SET_LOT, {"lot": entry_id, "left": row["remaining"]})
        elif units < 0:
            self.consume(conn, program.id, customer_id, -units)
        entry = _entry(program, entry_id, row)
        self.changed(session, entry, program.points(balance))
        return entry

    def changed(self, session: Session, entry: LedgerEntry, balance: Any) -> None:
        """Tell other plugins (``crmkit_points_changed``) about an entry, in the same transaction."""
        self._crm.hooks.call(hookspecs.crmkit_points_changed, entry=entry, balance=balance, session=session)
        if entry.kind in EVENT_OF_KIND:
            self._crm.events.emit(
                session,
                EVENT_OF_KIND[entry.kind],
                lambda: {"entry": to_jsonable(entry), "balance": to_jsonable(balance)},
                customer_id=entry.customer_id,
            )

    def consume(self, conn: sa.Connection, program_id: int, customer_id: int, units: int) -> int:
        """Take ``units`` from the member's open lots, soonest-expiring (oldest) first; returns how many were taken."""
        left = units
        while left > 0:
            page = conn.execute(_OPEN_LOTS, {"customer_id": customer_id, "program_id": program_id}).all()
            if not page:
                break
            emptied = []
            for entry_id, remaining in page:
                if remaining <= left:
                    emptied.append(entry_id)
                    left -= remaining
                else:
                    conn.execute(_SET_LOT, {"lot": entry_id, "left": remaining - left})
                    left = 0
                    break
            if emptied:
                conn.execute(ledger.update().where(ledger.c.id.in_(emptied)).values(remaining=0))
        return units - left

    def settle(self, conn: sa.Connection, program_id: int, customer_id: int) -> int:
        """Recompute a balance from the ledger and trim the open lots to it (after a merge); returns the balance."""
        total = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(ledger.c.points), 0)).where(
                ledger.c.program_id == program_id, ledger.c.customer_id == customer_id
            )
        ).scalar_one()
        conn.execute(members.update().where(member_key(program_id, customer_id)).values(points=total))
        open_units = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(ledger.c.remaining), 0)).where(
                ledger.c.customer_id == customer_id, ledger.c.program_id == program_id, OPEN
            )
        ).scalar_one()
        if open_units > max(total, 0):
            self.consume(conn, program_id, customer_id, open_units - max(total, 0))
        return int(total)

    def rebuild(self, conn: sa.Connection, program_id: int, customer_id: int) -> int:
        """Rebuild a member's open lots and balance from the ledger alone (after an unmerge moved entries): every
        positive entry reopens in full, then the negative ones consume them soonest-expiring first, as they did
        when posted; returns the balance."""
        c = ledger.c
        mine = (c.program_id == program_id, c.customer_id == customer_id)
        whole = sa.case((c.points > 0, c.points), else_=0)
        conn.execute(ledger.update().where(*mine, c.remaining != whole).values(remaining=whole))
        spent = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(-c.points), 0)).where(*mine, c.points < 0))
        self.consume(conn, program_id, customer_id, int(spent.scalar_one()))
        return self.settle(conn, program_id, customer_id)


#: The ledger columns a :class:`LedgerEntry` carries as stored (``id``, ``program`` and ``points`` are converted).
_AS_STORED = tuple(field.name for field in attrs.fields(LedgerEntry) if field.name not in ("id", "program", "points"))


def _entry(program: Program, entry_id: int, row: Mapping[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        id=entry_id,
        program=program.code,
        points=program.points(row["points"]),
        **{name: row[name] for name in _AS_STORED},
    )


def entry_from_row(program: Program, row: Mapping[str, Any]) -> LedgerEntry:
    """A ledger row (a mapping holding at least the ledger's columns) as a :class:`LedgerEntry` of ``program``."""
    return _entry(program, row["id"], row)
