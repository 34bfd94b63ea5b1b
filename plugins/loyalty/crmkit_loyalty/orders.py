"""``crm.loyalty.orders``: what the sales plugin's order hooks drive, in the sale's transaction — vouchers taken off
an order, points earned by it, reversed by its refunds and its cancellation — and the quote of what an order earns.

The hook paths run inside sales' already checked operation (``sales.orders.place`` on the customer) and check
nothing more; every change of points is a ledger entry written through :class:`crmkit_loyalty.ledger.Ledger`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.errors import NotFound, ValidationError
from crmkit.money import Money
from crmkit.plugin_api import insert_ignore
from crmkit.vncalendar import founding_day
from crmkit_loyalty.base import REFERRAL_OWED, REFERRED_BY, CustomerFacts, tier_named
from crmkit_loyalty.earning import order_earnings, refund_share
from crmkit_loyalty.ledger import ENTRY_KEY, WindowTotal, lock_member, lock_members, locked_member
from crmkit_loyalty.models import ledger, programs, redemptions, rewards
from crmkit_loyalty.permissions import MEMBERS_READ
from crmkit_loyalty.records import EarnLine, Program

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit_loyalty.base import Shared
    from crmkit_loyalty.tiering import Tiering

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


class Orders:
    """``crm.loyalty.orders``: loyalty's side of an order (``crmkit_order_discounts``, ``crmkit_order_placed``,
    ``crmkit_order_refunded``, ``crmkit_order_cancelled``) and :meth:`quote`."""

    def __init__(self, shared: Shared, tiering: Tiering) -> None:
        self._shared = shared
        self._crm = shared.crm
        self._tiering = tiering

    # -- vouchers at the till (called by the sales hooks, in the sale's transaction) ------------------------

    def discounts(self, order_draft: Any, codes: Sequence[str], session: Session) -> list[dict[str, Any]]:
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
        customer_id = self._shared.customer(conn, order_draft.customer_id, active=False).id  # following a merge
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
            customer = self._shared.customer(conn, order.customer_id, permission=MEMBERS_READ)
            result = []
            for program in _in_currency(self._shared.programs(conn, active_only=True), order):
                member = self._shared.member(conn, program, customer.id)
                if member is None and not program.auto_enroll:
                    continue
                tiers = self._shared.tiers(conn, program)
                tier = tier_named(tiers, member.tier if member else None)
                for earning in order_earnings(
                    program,
                    self._shared.rules(conn, program),
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

    def earn(self, order: Any, session: Session) -> None:
        """Earn the points of a placed order in every active program of its currency; re-delivery earns nothing.

        On the usual path (a member, no referral rule, one program) that is three statements on SQLite:
        the customer with the programs and memberships, the ledger row with its open lot, the balance
        (returning the tier window) — and the tier when it moves; PostgreSQL adds the member's row lock. Programs,
        rules and tiers are read only when their version changed (see ``Shared``).
        """
        conn = session.connection()
        context = self._shared.order_context(session, order.customer_id)
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
                self._shared.enroll(session, program, customer.id, now)
                member = lock_member(conn, program.id, customer.id)
            tiers = config.tiers
            tier = tier_named(tiers, member.member_tier if member else None)
            # The purchase is the order's only qualifying entry: its balance update reads the tier window.
            window = WindowTotal(program.tier_basis, program.window_start(now))
            for earning in order_earnings(
                program, config.rules, tier, order, customer.birth_date, zone, founding=founding_day(self._crm.settings)
            ):
                source = ("order", order.id) if earning.is_purchase else ("customer", customer.id)
                self._shared.ledger.post(
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
            self._tiering.settle(
                session, program, customer.id, now, tiers, member.member_tier if member else None, window.total
            )

    def refund(self, order: Any, refund: Any, session: Session) -> None:
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

    def cancel(self, order: Any, session: Session) -> None:
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
            self._shared.ledger.post(
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
            self._shared.ledger.post(
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
        self._tiering.evaluate_member(session, program, customer_id, now, self._shared.tiers_of(session, program))

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
            result.append((self._shared.program_by_id(conn, program_id), customer_id, entries))
        return result

    def _pay_referral(
        self, session: Session, program: Program, referrer: int, referred: int, units: int, order_id: Any, now: datetime
    ) -> None:
        """Pay ``referrer`` the referral bonus for ``referred``'s first order (once: the ledger's unique key).

        A referrer who is not a member of a program that does not enrol automatically is owed it: a 0-point
        ``referral_owed`` entry in their ledger says so and why, and :meth:`Shared.enroll` pays it when they join.
        """
        conn = session.connection()
        if self._shared.member(conn, program, referrer) is None:
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
            self._shared.enroll(session, program, referrer, now)
        self._shared.pay_referral(
            session, program, referrer, referred, order_id, units, now, f"referred customer {referred}"
        )

    def _referrer(self, conn: sa.Connection, customer: CustomerFacts) -> int | None:
        """The active customer named in ``referred_by`` (following merges), or None."""
        referrer = customer.attributes.get(REFERRED_BY)
        if not isinstance(referrer, int) or referrer == customer.id:
            return None
        try:
            found = self._shared.customer(conn, referrer, active=False)
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
