"""``crm.loyalty``: membership, balances, manual changes, redemption and the customer's view, plus the parts
composed into it — ``.programs`` (programs, rules, tiers, rewards), ``.orders`` (what sales' order hooks drive),
``.jobs`` (expiry, tier evaluation, the ledger check, backfill) and ``.reports``.

Every write is one transaction (or runs in the caller's, for hooks); every change of points is a
ledger entry written through :class:`crmkit_loyalty.ledger.Ledger`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from marshmallow import fields

from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit.plugin_api import (
    CustomerReference,
    beyond_columns,
    check_limit,
    control_character_errors,
    journal_moved,
    repoint,
    select_in,
)
from crmkit.plugin_api import core_tables as core
from crmkit.privacy import delete_rows, export_rows
from crmkit.vncalendar import local_midnight
from crmkit_loyalty.base import REFERRED_BY, Shared, member_from_row, tier_named
from crmkit_loyalty.catalog import Programs
from crmkit_loyalty.jobs import Jobs
from crmkit_loyalty.ledger import OPEN, balance_units, entry_from_row, lock_members, member_key
from crmkit_loyalty.models import ledger, members, programs, redemptions, rewards
from crmkit_loyalty.orders import Orders
from crmkit_loyalty.permissions import MEMBERS_ENROLL, MEMBERS_READ, POINTS_ADJUST, POINTS_GRANT, POINTS_REDEEM
from crmkit_loyalty.records import (
    MAX_BALANCE,
    TIER_ENTITY,
    TIER_MOVE,
    LedgerEntry,
    Member,
    Points,
    Program,
    Redemption,
    Statement,
    TierChange,
    points_of,
    tier_entity_id,
)
from crmkit_loyalty.reports import Reports
from crmkit_loyalty.tiering import Tiering

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM
    from crmkit.plugin_api import Customer

EXPIRING_SOON_DAYS = 30
PROFILE_ENTRIES = 10
_VOUCHER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
#: Redemptions with their reward and program (filter it: by id, or by customer and program).
_REDEMPTIONS = (
    sa.select(
        redemptions,
        rewards.c.code.label("reward"),
        rewards.c.name.label("reward_name"),
        programs.c.code.label("program"),
        programs.c.point_decimals,
    )
    .join(rewards, rewards.c.id == redemptions.c.reward_id)
    .join(programs, programs.c.id == redemptions.c.program_id)
)


class LoyaltyService:
    """The loyalty plugin's Python API, reached as ``crm.loyalty`` (members and points here; ``.programs``,
    ``.orders``, ``.jobs`` and ``.reports`` for the rest: each holds the same :class:`Shared` state).

    Every method checks the acting user's permission (``crmkit_loyalty.permissions``); a customer
    outside the user's scope of it is ``NotFound``. The hooks' paths (earning from orders, reversals,
    enrolment of new customers, merge, export, erasure) run inside the core's or the sales plugin's
    already checked operation and check nothing more.
    """

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._shared = shared = Shared(crm)
        self._tiering = tiering = Tiering(shared)
        self.programs = Programs(shared, tiering)
        self.orders = Orders(shared, tiering)
        self.jobs = Jobs(shared, tiering, self.orders)
        self.reports = Reports(shared)

    # -- membership and balances ------------------------------------------------------------

    def enroll(self, customer_id: int, *, program: str | None = None) -> Member:
        """Make a customer a member (paying the sign-up bonus, if the program has one); no-op for members."""
        self._crm.access.require(MEMBERS_ENROLL)
        with self._crm.transaction() as session:
            conn = session.connection()
            target = self._shared.program(conn, program)
            customer = self._shared.customer(conn, customer_id, permission=MEMBERS_ENROLL)
            self._shared.enroll(session, target, customer.id, self._crm.now())
            member = self._shared.member(conn, target, customer.id)
            assert member is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
            return member

    def member(self, customer_id: int, *, program: str | None = None) -> Member | None:
        """The customer's membership (balance, tier) of a program, or None when not a member."""
        self._crm.access.require(MEMBERS_READ)
        with self._crm.reading() as conn:
            target = self._shared.program(conn, program)
            return self._shared.member(
                conn, target, self._shared.customer(conn, customer_id, active=False, permission=MEMBERS_READ).id
            )

    def balance(self, customer_id: int, *, program: str | None = None) -> Points:
        """The customer's points balance (0 when not a member): one primary-key lookup of the balance row
        (a user whose scope is not ``all`` has the customer's owner checked first)."""
        access = self._crm.access
        access.require(MEMBERS_READ)
        ident = self._shared.ident(program)
        if beyond_columns(customer_id):
            raise NotFound("customer", customer_id)
        with self._crm.reading() as conn:
            if access.principal.owners(MEMBERS_READ) is not None:
                customer_id = self._shared.customer(conn, customer_id, active=False, permission=MEMBERS_READ).id
            units = balance_units(conn, ident.id, customer_id)
            if units is None:
                customer = self._shared.customer(conn, customer_id, active=False)  # NotFound, or follow a merge
                if customer.id != customer_id:
                    units = balance_units(conn, ident.id, customer.id)
        return ident.points(units or 0)

    def history(
        self, customer_id: int, *, program: str | None = None, limit: int = 50, before: int | None = None
    ) -> list[LedgerEntry]:
        """The customer's ledger entries, newest first; pass the last entry's id as ``before`` for the next page."""
        access = self._crm.access
        access.require(MEMBERS_READ)
        check_limit(limit)
        with self._crm.reading() as conn:
            target = self._shared.program(conn, program)
            customer = self._shared.customer(conn, customer_id, active=False, permission=MEMBERS_READ)
            query = (
                sa.select(ledger)
                .where(
                    ledger.c.customer_id == customer.id,
                    ledger.c.program_id == target.id,
                    access.customers(ledger.c.customer_id, MEMBERS_READ),
                )
                .order_by(ledger.c.id.desc())
                .limit(limit)
            )
            if before is not None:
                query = query.where(ledger.c.id < before)
            return [entry_from_row(target, row) for row in conn.execute(query).mappings()]

    def tier_history(self, customer_id: int, *, program: str | None = None, limit: int = 50) -> list[TierChange]:
        """The member's tier moves in a program, newest first (each move is an audit entry, see ``TIER_MOVE``)."""
        access = self._crm.access
        access.require(MEMBERS_READ)
        check_limit(limit)
        with self._crm.reading() as conn:
            target = self._shared.program(conn, program)
            customer = self._shared.customer(conn, customer_id, active=False, permission=MEMBERS_READ)
            moves = self._crm.audit.history(
                conn,
                TIER_ENTITY,
                tier_entity_id(target, customer.id),
                permission=MEMBERS_READ,
                action=TIER_MOVE,
                limit=limit,
            )
        return [
            TierChange(
                target.code, customer.id, e.at, (e.changes or {}).get("from"), (e.changes or {}).get("to", ""), e.actor
            )
            for e in moves
        ]

    def statement(self, customer_id: int, start: date, end: date, *, program: str | None = None) -> Statement:
        """Points earned, reversed, spent, expired and adjusted between two local dates (both included)."""
        access = self._crm.access
        access.require(MEMBERS_READ)
        if end < start:
            raise ValidationError("must not be before the start date", field="end")
        zone = self._crm.timezone
        low, high = local_midnight(start, zone), local_midnight(end + timedelta(days=1), zone)
        with self._crm.reading() as conn:
            target = self._shared.program(conn, program)
            customer = self._shared.customer(conn, customer_id, active=False, permission=MEMBERS_READ)
            mine = sa.and_(
                ledger.c.customer_id == customer.id,
                ledger.c.program_id == target.id,
                access.customers(ledger.c.customer_id, MEMBERS_READ),
            )
            opening = int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(ledger.c.points), 0)).where(  # numeric on PG
                        mine, ledger.c.created_at < low
                    )
                ).scalar_one()
            )
            rows = (
                conn.execute(
                    sa.select(ledger)
                    .where(mine, ledger.c.created_at >= low, ledger.c.created_at < high)
                    .order_by(ledger.c.created_at, ledger.c.id)
                )
                .mappings()
                .all()
            )
        by_kind = {
            kind: sum(r["points"] for r in rows if r["kind"] == kind)
            for kind in ("earn", "reverse", "redeem", "expire", "adjust")
        }
        closing = opening + sum(by_kind.values())
        show = target.points
        return Statement(
            customer_id=customer.id,
            program=target.code,
            start=start,
            end=end,
            opening=show(opening),
            earned=show(by_kind["earn"]),
            reversed=show(-by_kind["reverse"]),
            spent=show(-by_kind["redeem"]),
            expired=show(-by_kind["expire"]),
            adjusted=show(by_kind["adjust"]),
            closing=show(closing),
            entries=[entry_from_row(target, row) for row in rows],
        )

    # -- manual changes ---------------------------------------------------------------------------

    def grant(
        self,
        customer_id: int,
        points: Any,
        note: str,
        *,
        program: str | None = None,
        expires_at: datetime | None = None,
        key: str | None = None,
    ) -> LedgerEntry:
        """Give points by hand, with a reason (audit-logged); ``key`` makes a retried call grant once."""
        return self._manual(customer_id, points, note, "grant", program=program, expires_at=expires_at, key=key)

    def deduct(
        self, customer_id: int, points: Any, note: str, *, program: str | None = None, key: str | None = None
    ) -> LedgerEntry:
        """Take points away by hand, with a reason (audit-logged); never below a zero balance."""
        return self._manual(customer_id, points, note, "deduct", program=program, key=key)

    def _manual(
        self,
        customer_id: int,
        points: Any,
        note: str,
        reason: str,
        *,
        program: str | None,
        expires_at: datetime | None = None,
        key: str | None = None,
    ) -> LedgerEntry:
        permission = POINTS_GRANT if reason == "grant" else POINTS_ADJUST
        self._crm.access.require(permission)
        note = (note or "").strip()
        if not note:
            raise ValidationError("say why the points are changed by hand", field="note")
        if len(note) > 500:
            raise ValidationError("at most 500 characters", field="note")
        if errors := control_character_errors({"note": note}, frozenset({"note"})):
            raise ValidationError(errors)
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValidationError("give a timezone-aware time", field="expires_at")
        with self._crm.transaction() as session:
            conn = session.connection()
            target = self._shared.program(conn, program)
            units = target.to_units(points)
            if units <= 0:
                raise ValidationError("must be a positive number of points", field="points")
            customer = self._shared.customer(conn, customer_id, permission=permission)
            now = self._crm.now()
            if reason == "grant":
                self._shared.enroll(session, target, customer.id, now)
            elif self._shared.member(conn, target, customer.id) is None:
                raise ValidationError(
                    f"customer {customer.id} is not a member of program {target.code!r}", field="customer_id"
                )
            if reason == "grant" and (balance_units(conn, target.id, customer.id) or 0) + units > MAX_BALANCE:
                raise ValidationError(f"a balance holds at most {target.points(MAX_BALANCE)} points", field="points")
            if key is not None:
                key = self._check_key(conn, key, target, customer.id, units if reason == "grant" else -units, reason)
            source = key or secrets.token_hex(8)
            entry = self._shared.ledger.post(
                session,
                target,
                customer.id,
                units if reason == "grant" else -units,
                kind="adjust",
                reason=reason,
                source_kind="manual",
                source_id=source,
                now=now,
                note=note,
                expires_at=expires_at or target.expiry_from(now),
                require_balance=True,
            )
            if entry is None:  # the same key was posted before (a retry, or a concurrent call): return what it wrote
                row = (
                    conn.execute(
                        sa.select(ledger).where(
                            ledger.c.program_id == target.id,
                            ledger.c.source_kind == "manual",
                            ledger.c.source_id == source,
                            ledger.c.reason == reason,
                        )
                    )
                    .mappings()
                    .one()
                )
                _require_same_request(source, row, target, customer.id, units if reason == "grant" else -units, reason)
                return entry_from_row(target, row)
            self._crm.audit.record(
                session,
                reason,
                "loyalty_points",
                entry.id,
                customer_id=customer.id,
                changes={"program": target.code, "points": entry.points, "note": note},
            )
            return entry

    def _check_key(
        self, conn: sa.Connection, key: str, program: Program, customer_id: int, units: int, reason: str
    ) -> str:
        """Refuse an idempotency ``key`` already used (in any program) for another customer, number of points, kind
        (grant / deduct) or program — as payment APIs refuse a key reused with other parameters; returns the key."""
        key = key.strip()
        if not key or len(key) > 64:
            raise ValidationError("give an idempotency key of 1 to 64 characters", field="key")
        c = ledger.c
        earlier = (
            conn.execute(
                sa.select(ledger, programs.c.code.label("program_code"), programs.c.point_decimals)
                .join(programs, programs.c.id == c.program_id)
                .where(
                    c.program_id.in_(sa.select(programs.c.id)),
                    c.source_kind == "manual",
                    c.source_id == key,
                    c.reason.in_(("grant", "deduct")),
                )
                .order_by(c.id)
                .limit(1)
            )
            .mappings()
            .first()
        )
        if earlier is not None:
            _require_same_request(key, earlier, program, customer_id, units, reason)
        return key

    # -- rewards and redemption ------------------------------------------------------------------------

    def redeem(
        self, customer_id: int, reward: str, *, quantity: int = 1, program: str | None = None, note: str | None = None
    ) -> Redemption:
        """Exchange points for a reward: checks balance and stock, writes ledger entry and redemption together.

        Concurrent redemptions of the same points cannot both succeed: the balance is taken with
        ``UPDATE … WHERE points >= cost``, and the stock with ``WHERE stock >= quantity``.
        """
        self._crm.access.require(POINTS_REDEEM)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValidationError("must be a whole number of at least 1", field="quantity")
        with self._crm.transaction() as session:
            conn = session.connection()
            target = self._shared.program(conn, program)
            customer = self._shared.customer(conn, customer_id, permission=POINTS_REDEEM)
            item = self._shared.reward(conn, target, reward)
            if not item.active:
                raise ValidationError(f"reward {reward!r} is no longer offered", field="reward")
            if item.stock is not None and item.stock < quantity:
                raise ValidationError(f"reward {reward!r} is out of stock ({item.stock} left)", field="reward")
            if self._shared.member(conn, target, customer.id) is None:
                raise ValidationError(
                    f"customer {customer.id} is not a member of program {target.code!r}", field="customer_id"
                )
            cost = target.to_units(item.points_cost) * quantity
            now = self._crm.now()
            code = _voucher_code()
            redemption_id = conn.execute(
                redemptions.insert()
                .values(
                    program_id=target.id,
                    customer_id=customer.id,
                    reward_id=item.id,
                    quantity=quantity,
                    points=cost,
                    status="completed",
                    code=code,
                    created_at=now,
                    note=note,
                )
                .returning(redemptions.c.id)
            ).scalar_one()
            self._shared.ledger.post(
                session,
                target,
                customer.id,
                -cost,
                kind="redeem",
                reason="redeem",
                source_kind="redemption",
                source_id=redemption_id,
                now=now,
                note=f"{quantity} × {item.name}",
                require_balance=True,
            )
            taken = conn.execute(
                rewards.update()
                .where(rewards.c.id == item.id, sa.or_(rewards.c.stock.is_(None), rewards.c.stock >= quantity))
                .values(stock=rewards.c.stock - quantity)
            )
            if taken.rowcount != 1:
                raise ValidationError(f"reward {reward!r} is out of stock", field="reward")
            self._crm.audit.record(
                session,
                "redeem",
                "loyalty_redemption",
                redemption_id,
                customer_id=customer.id,
                changes={"program": target.code, "reward": reward, "quantity": quantity},
            )
        return Redemption(
            id=redemption_id,
            program=target.code,
            customer_id=customer.id,
            reward=item.code,
            reward_name=item.name,
            quantity=quantity,
            points=target.points(cost),
            status="completed",
            code=code,
            created_at=now,
            cancelled_at=None,
            note=note,
        )

    def cancel_redemption(self, redemption_id: int, *, note: str | None = None) -> Redemption:
        """Cancel a redemption: the points come back (expiring as if earned at the redemption) and the stock too.

        ``NotFound`` for a redemption of a customer outside the acting user's scope of ``loyalty.points.redeem``.
        """
        access = self._crm.access
        access.require(POINTS_REDEEM)
        with self._crm.transaction() as session:
            conn = session.connection()
            row = (
                conn.execute(
                    sa.select(redemptions).where(
                        redemptions.c.id == redemption_id, access.customers(redemptions.c.customer_id, POINTS_REDEEM)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound("redemption", redemption_id)
            now = self._crm.now()
            flipped = conn.execute(
                redemptions.update()
                .where(redemptions.c.id == redemption_id, redemptions.c.status == "completed")
                .values(status="cancelled", cancelled_at=now, note=note or row["note"])
            )
            if flipped.rowcount != 1:
                if row["status"] == "used":
                    raise Conflict(
                        f"redemption {redemption_id} (voucher {row['code']}) was used on order "
                        f"{row['order_id']}: cancel the order first, which gives the voucher back"
                    )
                raise Conflict(f"redemption {redemption_id} is already {row['status']}")
            target = self._shared.program_by_id(conn, row["program_id"])
            self._shared.ledger.post(
                session,
                target,
                row["customer_id"],
                row["points"],
                kind="redeem",
                reason="redeem_cancel",
                source_kind="redemption",
                source_id=redemption_id,
                now=now,
                note=note,
                expires_at=target.expiry_from(row["created_at"]),
            )
            conn.execute(
                rewards.update()
                .where(rewards.c.id == row["reward_id"], rewards.c.stock.is_not(None))
                .values(stock=rewards.c.stock + row["quantity"])
            )
            self._crm.audit.record(
                session,
                "cancel",
                "loyalty_redemption",
                redemption_id,
                customer_id=row["customer_id"],
                changes={"note": note},
            )
            return self._redemption(conn, redemption_id)

    def redemptions(self, customer_id: int, *, program: str | None = None) -> list[Redemption]:
        """The customer's redemptions, newest first."""
        access = self._crm.access
        access.require(MEMBERS_READ)
        with self._crm.reading() as conn:
            target = self._shared.program(conn, program)
            customer = self._shared.customer(conn, customer_id, active=False, permission=MEMBERS_READ)
            rows = (
                conn.execute(
                    _REDEMPTIONS.where(
                        redemptions.c.customer_id == customer.id,
                        redemptions.c.program_id == target.id,
                        access.customers(redemptions.c.customer_id, MEMBERS_READ),
                    ).order_by(redemptions.c.id.desc())
                )
                .mappings()
                .all()
            )
            return [_redemption_from_row(row) for row in rows]

    def _redemption(self, conn: sa.Connection, redemption_id: int) -> Redemption:
        return _redemption_from_row(
            conn.execute(_REDEMPTIONS.where(redemptions.c.id == redemption_id)).mappings().one()
        )

    # -- enrolment ------------------------------------------------------------------------------------------

    def customer_created(self, customer_id: int, session: Session) -> None:
        """Enrol a new customer in every active auto-enrolling program (with the sign-up bonus)."""
        now = self._crm.now()
        for program in self._shared.active_programs(session):
            if program.auto_enroll:
                self._shared.enroll(session, program, customer_id, now, owed=False)  # a new customer is owed nothing

    def check_referrer(self, customer: Customer | None, changes: dict[str, Any], session: Session) -> None:
        """Refuse a new ``referred_by`` naming an unknown customer or the customer themself.

        ``customer`` is the customer before the change (None for a new one); an unchanged referral is not re-checked.
        """
        referrer = (changes.get("attributes") or {}).get(REFERRED_BY)
        if referrer is None or (customer is not None and customer.attributes.get(REFERRED_BY) == referrer):
            return
        if customer is not None and referrer == customer.id:
            raise ValidationError({"attributes": {REFERRED_BY: ["a customer cannot refer themself"]}})
        status = (
            session.connection()
            .execute(sa.select(core.customers.c.status).where(core.customers.c.id == referrer))
            .scalar()
        )
        if status != "active":
            raise ValidationError({"attributes": {REFERRED_BY: [f"no active customer {referrer}"]}})

    # -- merge, privacy, customer 360 -------------------------------------------------------------------------

    def merge_members_many(self, pairs: Mapping[int, int], session: Session) -> None:
        """Move merged customers' ledgers (with their open lots) and redemptions to the kept ones (``pairs``: merged
        id → kept id), set-based, then settle balances and tiers per merged member from the ledger (the audited
        balance is the kept member's after the whole batch)."""
        conn = session.connection()
        mc = members.c
        program_ids: dict[int, list[int]] = {}
        for program_id, customer_id in sorted(
            select_in(conn, sa.select(mc.program_id, mc.customer_id), mc.customer_id, list(pairs))
        ):
            program_ids.setdefault(customer_id, []).append(program_id)
        for program_id in sorted({p for ids in program_ids.values() for p in ids}):
            lock_members(
                conn,
                program_id,
                [x for merged_id, ps in program_ids.items() if program_id in ps for x in (merged_id, pairs[merged_id])],
            )
        for table in (ledger, redemptions):
            repoint(conn, table.c.customer_id, pairs)
        now = self._crm.now()
        for merged_id, kept_id in pairs.items():
            self._merge_member(session, kept_id, merged_id, program_ids.get(merged_id, []), now)

    def _merge_member(
        self, session: Session, kept_id: int, merged_id: int, program_ids: Sequence[int], now: datetime
    ) -> None:
        """One merged member, per program: its balance row goes to the kept customer (or away), which is settled."""
        conn = session.connection()
        for program_id in program_ids:
            config = self._shared.config_of(session, program_id)  # read once per batch, not per merged member
            program = config.program
            if self._shared.member(conn, program, kept_id) is None:
                conn.execute(members.update().where(member_key(program_id, merged_id)).values(customer_id=kept_id))
                journal_moved(conn, members, "customer_id", {merged_id: [program_id]})  # an unmerge gives it back
            else:
                conn.execute(members.delete().where(member_key(program_id, merged_id)))
            balance = self._shared.ledger.settle(conn, program_id, kept_id)
            self._crm.audit.record(
                session,
                "merge",
                "loyalty_member",
                kept_id,
                customer_id=kept_id,
                changes={"program": program.code, "merged_id": merged_id, "balance": program.points(balance)},
            )
            self._tiering.evaluate_member(session, program, kept_id, now, config.tiers)

    def unmerge_members(self, kept_id: int, restored_id: int, session: Session) -> None:
        """After an unmerge gave the restored customer its ledger entries and redemptions back: per program either
        holds entries in, both members' lots, balances and tiers are rebuilt from the ledger. A customer holding
        entries without a balance row (the merge dropped or moved it) is enrolled again, since its first entry."""
        conn = session.connection()
        lc = ledger.c
        firsts: dict[tuple[int, int], datetime] = {
            (row.program_id, row.customer_id): row.first
            for row in conn.execute(
                sa.select(lc.program_id, lc.customer_id, sa.func.min(lc.created_at).label("first"))
                .where(lc.customer_id.in_((kept_id, restored_id)))
                .group_by(lc.program_id, lc.customer_id)
            )
        }
        now = self._crm.now()
        for program_id in sorted({program_id for program_id, _ in firsts}):
            config = self._shared.config_of(session, program_id)
            program = config.program
            lock_members(conn, program_id, (kept_id, restored_id))
            for customer_id in (kept_id, restored_id):
                if self._shared.member(conn, program, customer_id) is None:
                    if (program_id, customer_id) not in firsts:
                        continue
                    conn.execute(
                        members.insert().values(
                            customer_id=customer_id,
                            program_id=program_id,
                            points=0,
                            enrolled_at=firsts[program_id, customer_id],
                        )
                    )
                balance = self._shared.ledger.rebuild(conn, program_id, customer_id)
                self._crm.audit.record(
                    session,
                    "unmerge",
                    "loyalty_member",
                    customer_id,
                    customer_id=customer_id,
                    changes={"program": program.code, "balance": program.points(balance)},
                )
                self._tiering.evaluate_member(session, program, customer_id, now, config.tiers)

    def export(self, customer_id: int, session: Session) -> dict[str, Any]:
        """Everything loyalty holds about the customer, one list of rows per table."""
        return export_rows(session, (members, ledger, redemptions), customer_id)

    def erase(self, customer_id: int, session: Session) -> None:
        """Forfeit the balance (a last ledger entry); delete redemptions and memberships; keep the ledger without
        notes, and with the caller's own idempotency keys of manual entries (free text) replaced by the entry's id."""
        conn = session.connection()
        now = self._crm.now()
        for row in conn.execute(sa.select(members).where(members.c.customer_id == customer_id)).mappings().all():
            if row["points"]:
                program = self._shared.program_by_id(conn, row["program_id"])
                self._shared.ledger.post(
                    session,
                    program,
                    customer_id,
                    -row["points"],
                    kind="adjust",
                    reason="erasure",
                    source_kind="customer",
                    source_id=customer_id,
                    now=now,
                    note="forfeited on erasure",
                )
        delete_rows(session, (redemptions, members), customer_id)
        conn.execute(ledger.update().where(ledger.c.customer_id == customer_id).values(note=None, remaining=0))
        conn.execute(
            ledger.update()
            .where(ledger.c.customer_id == customer_id, ledger.c.source_kind == "manual")
            .values(source_id=sa.literal("erased:") + sa.cast(ledger.c.id, sa.String))
        )

    def profile(self, customer_id: int, session: Session) -> list[dict[str, Any]]:
        """Customer 360: per program, the balance, tier, points expiring in 30 days and the last entries.

        Empty (the section is left out) for a user without ``loyalty.members.read`` on this customer.
        """
        access = self._crm.access
        if not access.allowed(MEMBERS_READ):
            return []
        conn = session.connection()
        soon = self._crm.now() + timedelta(days=EXPIRING_SOON_DAYS)
        sections = []
        for row in (
            conn.execute(
                sa.select(members)
                .where(members.c.customer_id == customer_id, access.customers(members.c.customer_id, MEMBERS_READ))
                .order_by(members.c.program_id)
            )
            .mappings()
            .all()
        ):
            program = self._shared.program_by_id(conn, row["program_id"])
            member = member_from_row(program, row)
            tier = tier_named(self._shared.tiers(conn, program), member.tier)
            expiring = conn.execute(
                sa.select(ledger.c.expires_at, ledger.c.remaining)
                .where(
                    ledger.c.customer_id == customer_id,
                    ledger.c.program_id == program.id,
                    OPEN,
                    ledger.c.expires_at <= soon,
                )
                .order_by(ledger.c.expires_at)
            ).all()
            recent = (
                conn.execute(
                    sa.select(ledger)
                    .where(ledger.c.customer_id == customer_id, ledger.c.program_id == program.id)
                    .order_by(ledger.c.id.desc())
                    .limit(PROFILE_ENTRIES)
                )
                .mappings()
                .all()
            )
            sections.append(
                {
                    "program": program.code,
                    "balance": member.points,
                    "tier": tier.name if tier else None,
                    "value": program.value_of(row["points"]) if row["points"] > 0 else None,
                    "expiring_soon": [{"points": program.points(units), "expires_at": at} for at, units in expiring],
                    "recent": [_entry_summary(entry_from_row(program, entry)) for entry in recent],
                }
            )
        return sections

    def segment_fields(self) -> dict[str, Any]:
        """``loyalty_tier`` and ``points_balance`` (units) of the default program, correlated on ``customers.id``."""
        default = sa.select(sa.func.min(programs.c.id)).scalar_subquery()
        mine = sa.and_(members.c.customer_id == core.customers.c.id, members.c.program_id == default)
        return {
            "loyalty_tier": sa.select(members.c.tier).where(mine).scalar_subquery(),
            "points_balance": sa.func.coalesce(sa.select(members.c.points).where(mine).scalar_subquery(), 0),
        }


def referral_fields() -> dict[str, fields.Field]:
    """The ``referred_by`` customer attribute: the id of the customer who referred this one."""
    return {REFERRED_BY: CustomerReference(allow_none=True)}


def _require_same_request(
    key: str, earlier: Mapping[str, Any], program: Program, customer_id: int, units: int, reason: str
) -> None:
    """``ValidationError`` (field ``key``) naming what differs when ``earlier`` — the entry a key already wrote —
    is not the same request as this one (customer, points, kind, program)."""
    earlier_program = earlier.get("program_code", program.code)
    shown = points_of(abs(earlier["points"]), earlier.get("point_decimals", program.point_decimals))
    differs = []
    if earlier["customer_id"] != customer_id:
        differs.append(f"customer {customer_id}, not {earlier['customer_id']}")
    if earlier["reason"] != reason:
        differs.append(f"a {reason}, not a {earlier['reason']}")
    if abs(earlier["points"]) != abs(units):
        differs.append(f"{program.points(abs(units))} points, not {shown}")
    if earlier_program != program.code:
        differs.append(f"program {program.code!r}, not {earlier_program!r}")
    if differs:
        raise ValidationError(
            f"idempotency key {key!r} was already used for a {earlier['reason']} of {shown} points to customer "
            f"{earlier['customer_id']} in program {earlier_program!r} (entry {earlier['id']}); this request differs: "
            f"{'; '.join(differs)}. Use a new key for a different change",
            field="key",
        )


def _redemption_from_row(row: Mapping[str, Any]) -> Redemption:
    """A row of ``_REDEMPTIONS`` as a :class:`Redemption`."""
    return Redemption(
        id=row["id"],
        program=row["program"],
        customer_id=row["customer_id"],
        reward=row["reward"],
        reward_name=row["reward_name"],
        quantity=row["quantity"],
        points=points_of(row["points"], row["point_decimals"]),
        status=row["status"],
        code=row["code"],
        created_at=row["created_at"],
        cancelled_at=row["cancelled_at"],
        note=row["note"],
        order_id=row["order_id"],
        used_at=row["used_at"],
    )


def _voucher_code() -> str:
    return "LY" + "".join(secrets.choice(_VOUCHER_ALPHABET) for _ in range(10))


def _entry_summary(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.created_at,
        "points": entry.points,
        "kind": entry.kind,
        "reason": entry.reason,
        "order_id": entry.order_id,
        "note": entry.note,
    }
