"""``crm.loyalty``: membership, earning from orders, redemption, manual changes and the customer's view.

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

from crmkit.core import tables as core
from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit.money import Money
from crmkit.plugin_api import (
    SYSTEM,
    CustomerReference,
    beyond_columns,
    check_limit,
    control_character_errors,
    insert_ignore,
    journal_moved,
    repoint,
    select_in,
)
from crmkit.privacy import delete_rows, export_rows
from crmkit.vncalendar import founding_day, local_midnight
from crmkit_loyalty import hookspecs
from crmkit_loyalty.base import CustomerFacts, member_from_row
from crmkit_loyalty.batch import BatchMixin
from crmkit_loyalty.catalog import CatalogMixin
from crmkit_loyalty.earning import order_earnings, refund_share
from crmkit_loyalty.ledger import (
    ENTRY_KEY,
    OPEN,
    WindowTotal,
    balance_units,
    entry_from_row,
    lock_member,
    lock_members,
    locked_member,
    member_key,
)
from crmkit_loyalty.models import ledger, members, programs, redemptions, rewards
from crmkit_loyalty.permissions import (
    JOBS_RUN,
    MEMBERS_ENROLL,
    MEMBERS_READ,
    POINTS_ADJUST,
    POINTS_GRANT,
    POINTS_REDEEM,
)
from crmkit_loyalty.records import (
    MAX_BALANCE,
    TIER_ENTITY,
    TIER_MOVE,
    EarnLine,
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
from crmkit_loyalty.reports import ReportsMixin

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.plugin_api import Customer

REFERRED_BY = "referred_by"
#: The reason of the 0-point entry saying a referral bonus is owed to a referrer who is not a member yet.
REFERRAL_OWED = "referral_owed"
EXPIRING_SOON_DAYS = 30
PROFILE_ENTRIES = 10
BACKFILL_PAGE = 500
_VOUCHER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
#: Redemptions with their reward and program (filter it: by id, or by customer and program).
#: A redemption as a voucher: its reward's kind and value and its program's currency (filter it by code).
_VOUCHERS = (
    sa.select(
        redemptions.c.id,
        redemptions.c.code,
        redemptions.c.status,
        redemptions.c.customer_id,
        redemptions.c.quantity,
        redemptions.c.order_id,
        redemptions.c.used_at,
        redemptions.c.cancelled_at,
        rewards.c.kind,
        rewards.c.value_minor,
        rewards.c.name.label("reward_name"),
        programs.c.currency,
    )
    .join(rewards, rewards.c.id == redemptions.c.reward_id)
    .join(programs, programs.c.id == redemptions.c.program_id)
)
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


class LoyaltyService(CatalogMixin, BatchMixin, ReportsMixin):
    """The loyalty plugin's Python API, reached as ``crm.loyalty``.

    Every method checks the acting user's permission (``crmkit_loyalty.permissions``); a customer
    outside the user's scope of it is ``NotFound``. The hooks' paths (earning from orders, reversals,
    enrolment of new customers, merge, export, erasure) run inside the core's or the sales plugin's
    already checked operation and check nothing more.
    """

    # -- membership and balances ------------------------------------------------------------

    def enroll(self, customer_id: int, *, program: str | None = None) -> Member:
        """Make a customer a member (paying the sign-up bonus, if the program has one); no-op for members."""
        self._crm.access.require(MEMBERS_ENROLL)
        with self._crm.transaction() as session:
            conn = session.connection()
            target = self._program(conn, program)
            customer = self._customer(conn, customer_id, permission=MEMBERS_ENROLL)
            self._enroll(session, target, customer.id, self._crm.now())
            member = self._member(conn, target, customer.id)
            assert member is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
            return member

    def member(self, customer_id: int, *, program: str | None = None) -> Member | None:
        """The customer's membership (balance, tier) of a program, or None when not a member."""
        self._crm.access.require(MEMBERS_READ)
        with self._crm.reading() as conn:
            target = self._program(conn, program)
            return self._member(
                conn, target, self._customer(conn, customer_id, active=False, permission=MEMBERS_READ).id
            )

    def balance(self, customer_id: int, *, program: str | None = None) -> Points:
        """The customer's points balance (0 when not a member): one primary-key lookup of the balance row
        (a user whose scope is not ``all`` has the customer's owner checked first)."""
        access = self._crm.access
        access.require(MEMBERS_READ)
        ident = self._ident(program)
        if beyond_columns(customer_id):
            raise NotFound("customer", customer_id)
        with self._crm.reading() as conn:
            if access.principal.owners(MEMBERS_READ) is not None:
                customer_id = self._customer(conn, customer_id, active=False, permission=MEMBERS_READ).id
            units = balance_units(conn, ident.id, customer_id)
            if units is None:
                customer = self._customer(conn, customer_id, active=False)  # NotFound, or follow a merge
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
            target = self._program(conn, program)
            customer = self._customer(conn, customer_id, active=False, permission=MEMBERS_READ)
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
        log = core.audit_log.c
        with self._crm.reading() as conn:
            target = self._program(conn, program)
            customer = self._customer(conn, customer_id, active=False, permission=MEMBERS_READ)
            rows = conn.execute(
                sa.select(log.at, log.actor, log.changes)
                .where(
                    log.entity == TIER_ENTITY,
                    log.entity_id == tier_entity_id(target, customer.id),
                    log.action == TIER_MOVE,
                    access.customers(log.customer_id, MEMBERS_READ),
                )
                .order_by(log.id.desc())
                .limit(limit)
            ).all()
        return [
            TierChange(target.code, customer.id, at, (changes or {}).get("from"), (changes or {}).get("to", ""), actor)
            for at, actor, changes in rows
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
            target = self._program(conn, program)
            customer = self._customer(conn, customer_id, active=False, permission=MEMBERS_READ)
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
            target = self._program(conn, program)
            units = target.to_units(points)
            if units <= 0:
                raise ValidationError("must be a positive number of points", field="points")
            customer = self._customer(conn, customer_id, permission=permission)
            now = self._crm.now()
            if reason == "grant":
                self._enroll(session, target, customer.id, now)
            elif self._member(conn, target, customer.id) is None:
                raise ValidationError(
                    f"customer {customer.id} is not a member of program {target.code!r}", field="customer_id"
                )
            if reason == "grant" and (balance_units(conn, target.id, customer.id) or 0) + units > MAX_BALANCE:
                raise ValidationError(f"a balance holds at most {target.points(MAX_BALANCE)} points", field="points")
            if key is not None:
                key = self._check_key(conn, key, target, customer.id, units if reason == "grant" else -units, reason)
            source = key or secrets.token_hex(8)
            entry = self._ledger.post(
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
            target = self._program(conn, program)
            customer = self._customer(conn, customer_id, permission=POINTS_REDEEM)
            item = self._reward(conn, target, reward)
            if not item.active:
                raise ValidationError(f"reward {reward!r} is no longer offered", field="reward")
            if item.stock is not None and item.stock < quantity:
                raise ValidationError(f"reward {reward!r} is out of stock ({item.stock} left)", field="reward")
            if self._member(conn, target, customer.id) is None:
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
            self._ledger.post(
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
            target = self._program_by_id(conn, row["program_id"])
            self._ledger.post(
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
            target = self._program(conn, program)
            customer = self._customer(conn, customer_id, active=False, permission=MEMBERS_READ)
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

    # -- vouchers at the till (called by the sales hooks, in the sale's transaction) ------------------------

    def order_discounts(self, order_draft: Any, codes: Sequence[str], session: Session) -> list[dict[str, Any]]:
        """The discount lines of those ``codes`` that are loyalty vouchers (``crmkit_order_discounts``).

        A voucher is the code of a redemption of a ``discount`` reward with a value: it takes value × quantity off
        the order (before VAT). ``ValidationError`` (field ``vouchers``) naming the code when it was already used,
        was cancelled, is another customer's, is in another currency or is a product or service reward. Checks no
        permission of its own: sales checked ``sales.orders.place`` on the customer.
        """
        wanted = {code.strip().upper(): code for code in codes}
        conn = session.connection()
        rows = conn.execute(_VOUCHERS.where(redemptions.c.code.in_(sorted(wanted)))).mappings().all()
        if not rows:
            return []
        customer_id = self._customer(conn, order_draft.customer_id, active=False).id  # following a merge
        result = []
        for row in rows:
            code = wanted[row["code"]]
            _require_usable(code, row, customer_id, order_draft.currency, self._crm.timezone)
            name = row["reward_name"] + (f" × {row['quantity']}" if row["quantity"] > 1 else "")
            result.append(
                {
                    "code": code,
                    "amount_minor": row["value_minor"] * row["quantity"],
                    "label": f"{name}, loyalty redemption {row['id']}",
                }
            )
        return result

    def use_vouchers(self, order: Any, session: Session) -> None:
        """Mark the loyalty vouchers among ``order.discounts`` used on ``order`` (once: a code already used on
        another order is refused, also when two orders race for it); a re-delivered order changes nothing."""
        codes = [discount.code for discount in getattr(order, "discounts", None) or ()]
        if not codes:
            return
        conn = session.connection()
        now = self._crm.now()
        for code in codes:
            row = conn.execute(_VOUCHERS.where(redemptions.c.code == code.strip().upper())).mappings().first()
            if row is None:
                continue  # another plugin's code
            used = conn.execute(
                redemptions.update()
                .where(redemptions.c.id == row["id"], redemptions.c.status == "completed")
                .values(status="used", order_id=str(order.id), used_at=now)
            )
            if used.rowcount != 1:
                if row["status"] == "used" and row["order_id"] == str(order.id):
                    continue  # the same order delivered again
                raise ValidationError(f"voucher {code} was already used (just now, by another order)", field="vouchers")
            self._crm.audit.record(
                session,
                "use",
                "loyalty_redemption",
                row["id"],
                customer_id=row["customer_id"],
                changes={"code": row["code"], "order_id": order.id},
            )

    def return_vouchers(self, order: Any, session: Session) -> None:
        """Give back the vouchers used on a cancelled ``order``, to be used again (``crmkit_order_cancelled``)."""
        conn = session.connection()
        returned = conn.execute(
            redemptions.update()
            .where(redemptions.c.order_id == str(order.id), redemptions.c.status == "used")
            .values(status="completed", order_id=None, used_at=None)
            .returning(redemptions.c.id, redemptions.c.customer_id, redemptions.c.code)
        ).all()
        for redemption_id, customer_id, code in returned:
            self._crm.audit.record(
                session,
                "return",
                "loyalty_redemption",
                redemption_id,
                customer_id=customer_id,
                changes={"code": code, "order_id": order.id, "reason": "order cancelled"},
            )

    # -- earning from orders (called by the sales hooks, in the sale's transaction) ---------------------

    def quote(self, order: Any) -> list[EarnLine]:
        """What ``order`` (an object with the sales order attributes) would earn now, entry by entry, per program."""
        self._crm.access.require(MEMBERS_READ)
        with self._crm.reading() as conn:
            customer = self._customer(conn, order.customer_id, permission=MEMBERS_READ)
            result = []
            for program in _in_currency(self._programs(conn, active_only=True), order):
                member = self._member(conn, program, customer.id)
                if member is None and not program.auto_enroll:
                    continue
                tiers = self._tiers(conn, program)
                tier = _tier_named(tiers, member.tier if member else None)
                for earning in order_earnings(
                    program,
                    self._rules(conn, program),
                    tier,
                    order,
                    customer.birth_date,
                    self._crm.timezone,
                    founding=founding_day(self._crm.settings),
                ):
                    if earning.is_purchase or not self._posted(conn, program, "customer", customer.id, earning.reason):
                        points = program.points(earning.units)
                        result.append(EarnLine(program.code, earning.reason, points, earning.detail))
            return result

    def earn_order(self, order: Any, session: Session) -> None:
        """Earn the points of a placed order in every active program of its currency; re-delivery earns nothing.

        On the usual path (a member, no referral rule, one program) that is three statements on SQLite:
        the customer with the programs and memberships, the ledger row with its open lot, the balance
        (returning the tier window) — and the tier when it moves; PostgreSQL adds the member's row lock. Programs,
        rules and tiers are read only when their version changed (see ``ServiceBase``).
        """
        conn = session.connection()
        context = self._order_context(session, order.customer_id)
        customer = context.customer
        if customer.status != "active":
            return
        now = self._crm.now()
        at = min(order.placed_at, now)  # entries are dated at the purchase: expiry and tier windows count from it
        zone = self._crm.timezone
        for config in context.programs:
            program = config.program
            if program.currency != order.currency:
                continue
            referral = config.rule("referral")
            referrer = self._referrer(conn, customer) if referral else None
            if referrer is not None:
                lock_members(conn, program.id, [customer.id, referrer])  # both, in id order
            pays_referral = referral is not None and referrer is not None and bool(referral.bonus_points)
            member = locked_member(conn, program.id, customer.id, context.members.get(program.id))
            if member is None:
                if not program.auto_enroll:  # the customer earns nothing; whoever referred them still gets the bonus
                    if pays_referral:
                        self._pay_referral(
                            session,
                            program,
                            referrer,
                            customer.id,
                            program.to_units(referral.bonus_points),
                            order.id,
                            at,
                        )
                    continue
                self._enroll(session, program, customer.id, now)
                member = lock_member(conn, program.id, customer.id)
            tiers = config.tiers
            tier = _tier_named(tiers, member.member_tier if member else None)
            # The purchase is the order's only qualifying entry: its balance update reads the tier window.
            window = WindowTotal(program.tier_basis, program.window_start(now))
            for earning in order_earnings(
                program, config.rules, tier, order, customer.birth_date, zone, founding=founding_day(self._crm.settings)
            ):
                source = ("order", order.id) if earning.is_purchase else ("customer", customer.id)
                self._ledger.post(
                    session,
                    program,
                    customer.id,
                    earning.units,
                    kind="earn",
                    reason=earning.reason,
                    source_kind=source[0],
                    source_id=source[1],
                    now=at,
                    order_id=order.id,
                    amount_minor=earning.amount_minor,
                    qualifying=earning.is_purchase,
                    note=earning.detail,
                    expires_at=program.expiry_from(at),
                    window=window if earning.is_purchase else None,
                )
            if pays_referral:
                self._pay_referral(
                    session, program, referrer, customer.id, program.to_units(referral.bonus_points), order.id, at
                )
            self._settle_tier(
                session, program, customer.id, now, tiers, member.member_tier if member else None, window.total
            )

    def refund_order(self, order: Any, refund: Any, session: Session) -> None:
        """Reverse points for a refund: proportionally for a partial one, everything left for a full one."""
        conn = session.connection()
        now = self._crm.now()
        for program, customer_id, entries in self._order_entries(conn, order):
            if any(row.reason == "cancel" for row in entries):
                continue
            purchase = next(row for row in entries if row.reason == "purchase")
            qualifying = [row for row in entries if row.qualifying]
            net_units = sum(row.points for row in qualifying)
            net_amount = sum(row.amount_minor or 0 for row in qualifying)
            refunded = int(order.refunded_minor)
            full = refunded >= int(order.total_minor)
            if full:
                units, amount = net_units, net_amount
            else:
                target_units, target_amount = refund_share(
                    program, purchase.points, purchase.amount_minor or 0, int(order.total_minor), refunded
                )
                units = target_units - (purchase.points - net_units)
                amount = target_amount - ((purchase.amount_minor or 0) - net_amount)
            why = f"refund of {Money(order.currency, int(refund.amount_minor)).format()}"
            self._reverse(
                session,
                program,
                customer_id,
                order.id,
                f"refund:{refund.id}",
                units,
                amount,
                now,
                why,
                bonus=sum(row.points for row in entries if not row.qualifying) if full else 0,
            )

    def cancel_order(self, order: Any, session: Session) -> None:
        """Reverse everything an order earned that is still standing (purchase points and its bonuses)."""
        conn = session.connection()
        now = self._crm.now()
        for program, customer_id, entries in self._order_entries(conn, order):
            if any(row.reason == "cancel" for row in entries):
                continue
            qualifying = [row for row in entries if row.qualifying]
            self._reverse(
                session,
                program,
                customer_id,
                order.id,
                "cancel",
                sum(r.points for r in qualifying),
                sum(r.amount_minor or 0 for r in qualifying),
                now,
                "order cancelled",
                bonus=sum(row.points for row in entries if not row.qualifying),
                always=True,
            )

    def backfill(self, *, since: datetime | None = None) -> int:
        """Earn (and reverse refunds) for orders the sales plugin already holds, e.g. from before the program existed.

        Reads them through ``crm.sales.orders`` (newest first, in pages); idempotent like the hooks,
        so running it twice changes nothing. Returns how many orders were read. A batch job: it needs
        ``loyalty.jobs.run`` and reads every order, whatever the acting user's scope of the orders.
        """
        self._crm.access.require(JOBS_RUN)
        orders = self._crm.sales.orders
        seen: set[int] = set()
        until = None
        while True:
            with self._crm.access.acting(SYSTEM):  # the job reads every order; the entries still name the user
                listed = orders.list(since=since, until=until, limit=BACKFILL_PAGE)
            page = [order for order in listed if order.id not in seen]
            if not page:
                return len(seen)
            for order in page:
                seen.add(order.id)
                if order.status == "cancelled":
                    continue
                with self._crm.access.acting(SYSTEM):
                    refunds = orders.refunds(order.id) if order.refunded_minor else []
                with self._crm.transaction() as session:
                    self.earn_order(order, session)
                    for refund in refunds:
                        self.refund_order(order, refund, session)
            until = page[-1].placed_at + timedelta(microseconds=1)  # orders sharing the last instant are read again

    def _reverse(
        self,
        session: Session,
        program: Program,
        customer_id: int,
        order_id: Any,
        reason: str,
        units: int,
        amount: int,
        now: datetime,
        note: str,
        *,
        bonus: int,
        always: bool = False,
    ) -> None:
        """Post the qualifying reversal (and a separate one for bonuses), then re-evaluate the tier."""
        if units or amount or always:
            self._ledger.post(
                session,
                program,
                customer_id,
                -units,
                kind="reverse",
                reason=reason,
                source_kind="order",
                source_id=order_id,
                now=now,
                order_id=order_id,
                amount_minor=-amount,
                qualifying=True,
                note=note,
            )
        if bonus:
            self._ledger.post(
                session,
                program,
                customer_id,
                -bonus,
                kind="reverse",
                reason=f"{reason}:bonus",
                source_kind="order",
                source_id=order_id,
                now=now,
                order_id=order_id,
                note=note,
            )
        self._evaluate_member(session, program, customer_id, now, self._tiers_of(session, program))

    def _order_entries(self, conn: sa.Connection, order: Any) -> list[tuple[Program, int, list[Any]]]:
        """Per program that paid points for ``order``: the program, the member, and their entries about it (locked).

        (A referral bonus the order paid to someone else is theirs: it is not part of the order's entries.)
        """
        c = ledger.c
        found = conn.execute(
            sa.select(c.program_id, c.customer_id, c.created_at).where(  # the unique source key
                c.program_id.in_(sa.select(programs.c.id)),
                c.source_kind == "order",
                c.source_id == str(order.id),
                c.reason == "purchase",
            )
        ).all()
        result = []
        for program_id, customer_id, purchased_at in found:
            lock_members(conn, program_id, [customer_id])
            # the member index from the purchase on: nothing about an order is older than its purchase entry
            entries = conn.execute(
                sa.select(c.reason, c.points, c.amount_minor, c.qualifying).where(
                    c.customer_id == customer_id,
                    c.program_id == program_id,
                    c.created_at >= purchased_at,
                    c.order_id == str(order.id),
                )
            ).all()
            result.append((self._program_by_id(conn, program_id), customer_id, entries))
        return result

    def _pay_referral(
        self, session: Session, program: Program, referrer: int, referred: int, units: int, order_id: Any, now: datetime
    ) -> None:
        """Pay ``referrer`` the referral bonus for ``referred``'s first order (once: the ledger's unique key).

        A referrer who is not a member of a program that does not enrol automatically is owed it: a 0-point
        ``referral_owed`` entry in their ledger says so and why, and :meth:`_enroll` pays it when they join.
        """
        conn = session.connection()
        if self._member(conn, program, referrer) is None:
            if not program.auto_enroll:
                if not self._posted(conn, program, "customer", referred, "referral"):
                    insert_ignore(
                        conn,
                        ledger,
                        {
                            "program_id": program.id,
                            "customer_id": referrer,
                            "points": 0,
                            "kind": "earn",
                            "reason": REFERRAL_OWED,
                            "source_kind": "customer",
                            "source_id": str(referred),
                            "order_id": str(order_id),
                            "amount_minor": None,
                            "qualifying": False,
                            "created_at": now,
                            "expires_at": None,
                            "actor": self._crm.actor,
                            "remaining": 0,
                            "note": f"referral bonus of {program.points(units)} points for customer {referred}'s first "
                            f"order not paid yet: customer {referrer} is not a member of program {program.code!r} "
                            "(it does not enrol automatically); paid when they enrol",
                        },
                        ENTRY_KEY,
                        ledger.c.id,
                    )
                return
            self._enroll(session, program, referrer, now)
        self._ledger.post(
            session,
            program,
            referrer,
            units,
            kind="earn",
            reason="referral",
            source_kind="customer",
            source_id=referred,
            now=now,
            order_id=order_id,
            note=f"referred customer {referred}",
            expires_at=program.expiry_from(now),
        )

    def _pay_owed_referrals(self, session: Session, program: Program, customer_id: int, now: datetime) -> None:
        """Pay a new member the referral bonuses they were owed while not a member (``referral_owed`` entries), at the
        program's referral bonus as it is when they join."""
        c = ledger.c
        owed = (
            session.connection()
            .execute(
                sa.select(c.source_id, c.order_id)
                .where(c.customer_id == customer_id, c.program_id == program.id, c.reason == REFERRAL_OWED)
                .order_by(c.id)
            )
            .all()
        )
        referral = self._config_of(session, program.id).rule("referral") if owed else None
        if referral is None or not referral.bonus_points:
            return
        units = program.to_units(referral.bonus_points)
        for referred, order_id in owed:
            self._ledger.post(
                session,
                program,
                customer_id,
                units,
                kind="earn",
                reason="referral",
                source_kind="customer",
                source_id=referred,
                now=now,
                order_id=order_id,
                note=f"referred customer {referred} (owed since their first order, paid on enrolment)",
                expires_at=program.expiry_from(now),
            )

    def _referrer(self, conn: sa.Connection, customer: CustomerFacts) -> int | None:
        """The active customer named in ``referred_by`` (following merges), or None."""
        referrer = customer.attributes.get(REFERRED_BY)
        if not isinstance(referrer, int) or referrer == customer.id:
            return None
        try:
            found = self._customer(conn, referrer, active=False)
        except NotFound:
            return None
        return found.id if found.status == "active" and found.id != customer.id else None

    def _posted(self, conn: sa.Connection, program: Program, source_kind: str, source_id: Any, reason: str) -> bool:
        return (
            conn.execute(
                sa.select(ledger.c.id).where(
                    ledger.c.program_id == program.id,
                    ledger.c.source_kind == source_kind,
                    ledger.c.source_id == str(source_id),
                    ledger.c.reason == reason,
                )
            ).first()
            is not None
        )

    # -- enrolment ------------------------------------------------------------------------------------------

    def customer_created(self, customer_id: int, session: Session) -> None:
        """Enrol a new customer in every active auto-enrolling program (with the sign-up bonus)."""
        now = self._crm.now()
        for program in self._active_programs(session):
            if program.auto_enroll:
                self._enroll(session, program, customer_id, now, owed=False)  # a new customer is owed nothing

    def _enroll(
        self, session: Session, program: Program, customer_id: int, now: datetime, *, owed: bool = True
    ) -> bool:
        """Create the balance row (lowest tier), pay the sign-up bonus and (``owed``) referral bonuses owed to the
        customer while not a member; False when already a member."""
        conn = session.connection()
        tiers = self._tiers_of(session, program)
        lowest = tiers[0] if tiers else None
        row = {
            "customer_id": customer_id,
            "program_id": program.id,
            "points": 0,
            "tier": lowest.code if lowest else None,
            "tier_since": now if lowest else None,
            "enrolled_at": now,
        }
        created = insert_ignore(conn, members, row, ("customer_id", "program_id"), members.c.customer_id)
        if created is None:
            return False
        if lowest is not None:
            self._crm.hooks.call(
                hookspecs.crmkit_tier_changed,
                customer_id=customer_id,
                program=program,
                old_tier=None,
                new_tier=lowest,
                session=session,
            )
        signup = self._config_of(session, program.id).rule("signup")
        if signup is not None and signup.bonus_points:
            self._ledger.post(
                session,
                program,
                customer_id,
                program.to_units(signup.bonus_points),
                kind="earn",
                reason="signup",
                source_kind="customer",
                source_id=customer_id,
                now=now,
                note="sign-up bonus",
                expires_at=program.expiry_from(now),
            )
        if owed:
            self._pay_owed_referrals(session, program, customer_id, now)
        return True

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
            config = self._config_of(session, program_id)  # read once per batch, not per merged member
            program = config.program
            if self._member(conn, program, kept_id) is None:
                conn.execute(members.update().where(member_key(program_id, merged_id)).values(customer_id=kept_id))
                journal_moved(conn, members, "customer_id", {merged_id: [program_id]})  # an unmerge gives it back
            else:
                conn.execute(members.delete().where(member_key(program_id, merged_id)))
            balance = self._ledger.settle(conn, program_id, kept_id)
            self._crm.audit.record(
                session,
                "merge",
                "loyalty_member",
                kept_id,
                customer_id=kept_id,
                changes={"program": program.code, "merged_id": merged_id, "balance": program.points(balance)},
            )
            self._evaluate_member(session, program, kept_id, now, config.tiers)

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
            config = self._config_of(session, program_id)
            program = config.program
            lock_members(conn, program_id, (kept_id, restored_id))
            for customer_id in (kept_id, restored_id):
                if self._member(conn, program, customer_id) is None:
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
                balance = self._ledger.rebuild(conn, program_id, customer_id)
                self._crm.audit.record(
                    session,
                    "unmerge",
                    "loyalty_member",
                    customer_id,
                    customer_id=customer_id,
                    changes={"program": program.code, "balance": program.points(balance)},
                )
                self._evaluate_member(session, program, customer_id, now, config.tiers)

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
                program = self._program_by_id(conn, row["program_id"])
                self._ledger.post(
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
            program = self._program_by_id(conn, row["program_id"])
            member = member_from_row(program, row)
            tier = _tier_named(self._tiers(conn, program), member.tier)
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


def _require_usable(code: str, row: Mapping[str, Any], customer_id: int, currency: str, zone: Any) -> None:
    """Refuse (field ``vouchers``, naming the code) a voucher that cannot be taken off this customer's order."""

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%d/%m/%Y %H:%M")

    if row["status"] == "used":
        problem = f"was already used on order {row['order_id']} ({local(row['used_at'])})"
    elif row["status"] == "cancelled":
        problem = f"was cancelled ({local(row['cancelled_at'])}): its points were given back"
    elif row["customer_id"] != customer_id:
        problem = f"belongs to another customer, not to customer {customer_id} of this order"  # (whose: not said)
    elif row["kind"] != "discount" or row["value_minor"] is None:
        problem = f"is for {row['reward_name']!r}, a {row['kind']} reward with no money value: hand the reward over"
    elif row["currency"] != currency:
        problem = f"is worth {row['currency']}, the order is in {currency}"
    else:
        return
    raise ValidationError(f"voucher {code} {problem}", field="vouchers")


def _in_currency(candidates: Sequence[Program], order: Any) -> list[Program]:
    """The programs an order can earn in: those of its currency."""
    return [program for program in candidates if program.currency == order.currency]


def _tier_named(tiers: Sequence[Any], code: str | None) -> Any:
    """The tier with ``code``, else the lowest tier (None when the program has no tiers)."""
    return next((tier for tier in tiers if tier.code == code), tiers[0] if tiers else None)


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
