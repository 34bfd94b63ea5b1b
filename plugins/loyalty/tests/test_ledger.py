"""The ledger: reversals, manual changes, FIFO expiry, the balance check, statements, merge, privacy."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from loyalty_testkit import days_ago, ledger_count

from crmkit import Conflict, NotFound, ValidationError
from crmkit.core.types import utcnow
from crmkit_loyalty.models import ledger, members


def test_partial_refunds_reverse_proportionally_and_a_full_refund_reverses_the_rest(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    order = loyal.sales.place(an.id, 1_555_000)
    assert loyal.loyalty.balance(an.id) == 155
    loyal.sales.refund(order, 500_000)  # 155 × 500/1555 = 49.8 → 49 (floor)
    assert loyal.loyalty.balance(an.id) == 106
    loyal.sales.refund(order, 500_000)  # running total 1.000.000 → 99.6 → 99 reversed in all
    assert loyal.loyalty.balance(an.id) == 56
    loyal.sales.refund(order, 555_000)
    assert loyal.loyalty.balance(an.id) == 0
    assert [e.amount_minor for e in loyal.loyalty.history(an.id)] == [-555_000, -500_000, -500_000, 1_555_000]
    assert loyal.loyalty.jobs.verify() == []


def test_refund_redelivery_reverses_once(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    order = loyal.sales.place(an.id, 1_000_000)
    refund = loyal.sales.refund(order, 300_000)
    with loyal.transaction() as session:
        loyal.hooks.call("crmkit_order_refunded", order=order, refund=refund, session=session)
    assert loyal.loyalty.balance(an.id) == 70


def test_cancellation_reverses_purchase_and_bonuses_once(loyal):
    loyal.loyalty.programs.add_rule("birthday", bonus_points=50)
    an = loyal.customers.add(name="Đặng Thị Mai", birth_date=loyal.today().replace(year=1990).isoformat())
    order = loyal.sales.place(an.id, 400_000, placed_at=utcnow() - timedelta(seconds=5))
    assert loyal.loyalty.balance(an.id) == 90
    loyal.sales.cancel(order)
    loyal.sales.cancel(order)
    assert loyal.loyalty.balance(an.id) == 0
    assert {e.reason for e in loyal.loyalty.history(an.id)} >= {"cancel", "cancel:bonus"}
    assert loyal.loyalty.jobs.verify() == []


def test_a_reversal_after_spending_may_leave_a_debt_that_later_points_pay_back(loyal):
    loyal.loyalty.programs.add_reward("voucher-100k", "Voucher 100.000 ₫", 150, kind="discount")
    an = loyal.customers.add(name="Nguyễn Văn An")
    order = loyal.sales.place(an.id, 2_000_000)
    loyal.loyalty.redeem(an.id, "voucher-100k")
    loyal.sales.cancel(order)
    assert loyal.loyalty.balance(an.id) == -150
    loyal.sales.place(an.id, 3_000_000)
    assert loyal.loyalty.balance(an.id) == 150
    assert loyal.loyalty.jobs.verify() == []  # the open lots hold 150, not 300


def test_manual_grant_and_deduct_are_audited(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    with loyal.acting_as("lan.nguyen"):
        granted = loyal.loyalty.grant(an.id, 120, "Khiếu nại đơn SO-000042")
        loyal.loyalty.deduct(an.id, 20, "Tặng nhầm")
    assert (granted.kind, granted.reason, granted.actor) == ("adjust", "grant", "lan.nguyen")
    assert loyal.loyalty.balance(an.id) == 100
    audit = [(e.action, e.actor, e.changes["note"]) for e in loyal.audit.entries(entity="loyalty_points")]
    assert audit == [("deduct", "lan.nguyen", "Tặng nhầm"), ("grant", "lan.nguyen", "Khiếu nại đơn SO-000042")]


def test_a_grant_with_a_key_is_written_once(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    first = loyal.loyalty.grant(an.id, 30, "bù điểm", key="ticket-77")
    again = loyal.loyalty.grant(an.id, 30, "bù điểm", key="ticket-77")
    assert first.id == again.id and loyal.loyalty.balance(an.id) == 30


def test_an_idempotency_key_reused_for_another_request_is_refused_naming_what_differs(loyal):
    loyal.loyalty.programs.create("events", "Sự kiện", point_value_minor=500)
    an = loyal.customers.add(name="Nguyễn Văn An")
    binh = loyal.customers.add(name="Trần Thị Bình")
    first = loyal.loyalty.grant(an.id, 70, "bù điểm", key="K")
    entries = ledger_count(loyal)
    tries = [
        (lambda: loyal.loyalty.grant(binh.id, 70, "bù điểm", key="K"), f"customer {binh.id}, not {an.id}"),
        (lambda: loyal.loyalty.grant(an.id, 40, "bù điểm", key="K"), "40 points, not 70"),
        (lambda: loyal.loyalty.deduct(an.id, 70, "bù điểm", key="K"), "a deduct, not a grant"),
        (
            lambda: loyal.loyalty.grant(an.id, 70, "bù điểm", key="K", program="events"),
            "program 'events', not 'default'",
        ),
        (lambda: loyal.loyalty.grant(binh.id, 40, "bù điểm", key="K"), f"customer {binh.id}, not {an.id}; 40 points"),
    ]
    for call, differs in tries:
        with pytest.raises(ValidationError) as caught:
            call()
        message = caught.value.errors["key"][0]
        assert message.startswith(
            f"idempotency key 'K' was already used for a grant of 70 points to customer {an.id} "
            f"in program 'default' (entry {first.id}); this request differs: "
        )
        assert differs in message
    assert ledger_count(loyal) == entries
    assert (
        loyal.loyalty.balance(an.id),
        loyal.loyalty.balance(binh.id),
        loyal.loyalty.balance(binh.id, program="events"),
    ) == (70, 0, 0)
    assert loyal.loyalty.grant(an.id, 70, "bù điểm", key="K").id == first.id  # the same request: a retry
    taken = loyal.loyalty.deduct(an.id, 20, "tặng nhầm", key="D")
    with pytest.raises(ValidationError, match="'D' was already used for a deduct of 20 points"):
        loyal.loyalty.deduct(binh.id, 20, "tặng nhầm", key="D")
    assert loyal.loyalty.deduct(an.id, 20, "tặng nhầm", key="D").id == taken.id
    assert loyal.loyalty.balance(an.id) == 50


BAD_MANUAL_CHANGES = [
    (-5, "sai", "points", "must be a positive number"),
    (0, "sai", "points", "must be a positive number"),
    ("1.5", "lẻ", "points", "fractional points are not allowed"),
    (1.5, "float", "points", "not a float"),
    ("mười", "chữ", "points", "not a number"),
    (10, "  ", "note", "say why"),
]


def test_bad_manual_changes_are_refused_and_write_nothing(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    for points, note, field, message in BAD_MANUAL_CHANGES:
        with pytest.raises(ValidationError, match=message) as caught:
            loyal.loyalty.grant(an.id, points, note)
        assert field in caught.value.errors
    assert ledger_count(loyal) == 0 and loyal.loyalty.balance(an.id) == 0


def test_deducting_more_than_the_balance_is_refused(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.loyalty.grant(an.id, 40, "quà")
    with pytest.raises(ValidationError, match="not enough points: the balance is 40, 50 needed"):
        loyal.loyalty.deduct(an.id, 50, "quá tay")
    assert loyal.loyalty.balance(an.id) == 40 and len(loyal.loyalty.history(an.id)) == 1


def test_unknown_customer_and_program_are_refused(loyal):
    with pytest.raises(NotFound, match="customer 424242"):
        loyal.loyalty.grant(424242, 10, "ai?")
    an = loyal.customers.add(name="Nguyễn Văn An")
    with pytest.raises(NotFound, match="loyalty program 'vip'"):
        loyal.loyalty.grant(an.id, 10, "chương trình nào?", program="vip")
    with pytest.raises(NotFound, match="customer 424242"):
        loyal.loyalty.balance(424242)
    assert ledger_count(loyal) == 0


def test_expiry_is_fifo_and_running_it_twice_expires_nothing_more(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    now = utcnow()
    loyal.loyalty.grant(an.id, 50, "lô sau", expires_at=now + timedelta(days=100))
    loyal.loyalty.grant(an.id, 100, "lô đầu", expires_at=now + timedelta(days=10))
    loyal.loyalty.deduct(an.id, 30, "dùng điểm")  # taken from the lot expiring first
    (run,) = loyal.loyalty.jobs.expire(now=now + timedelta(days=20))
    assert (run.changed, run.points) == (1, 70)
    assert loyal.loyalty.balance(an.id) == 50
    entries = ledger_count(loyal)
    (again,) = loyal.loyalty.jobs.expire(now=now + timedelta(days=20))
    assert (again.changed, again.points) == (0, 0)
    assert ledger_count(loyal) == entries and loyal.loyalty.balance(an.id) == 50
    loyal.loyalty.jobs.expire(now=now + timedelta(days=200))
    assert loyal.loyalty.balance(an.id) == 0
    assert [e.kind for e in loyal.loyalty.history(an.id)][:2] == ["expire", "expire"]
    assert loyal.loyalty.jobs.verify() == []


def test_points_earned_from_an_old_purchase_expire_a_year_after_it(loyal):
    an, binh = (loyal.customers.add(name=n) for n in ("Nguyễn Văn An", "Trần Thị Bình"))
    loyal.sales.place(an.id, 1_000_000, placed_at=days_ago(400))
    loyal.sales.place(binh.id, 1_000_000, placed_at=days_ago(100))
    (run,) = loyal.loyalty.jobs.expire(batch_size=1)
    assert (run.changed, run.points) == (1, 100)
    assert (loyal.loyalty.balance(an.id), loyal.loyalty.balance(binh.id)) == (0, 100)


def test_verify_finds_a_balance_that_disagrees_with_the_ledger(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.loyalty.grant(an.id, 40, "quà")
    assert loyal.loyalty.jobs.verify() == []
    with loyal.transaction() as session:
        session.connection().execute(members.update().values(points=999))
    (mismatch,) = loyal.loyalty.jobs.verify()
    assert (mismatch.customer_id, mismatch.balance, mismatch.ledger_sum, mismatch.open_lots) == (an.id, 999, 40, 40)


def test_statement_for_a_period(loyal):
    loyal.loyalty.programs.add_reward("voucher-50k", "Voucher 50.000 ₫", 30, kind="discount")
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 800_000, placed_at=days_ago(60))
    order = loyal.sales.place(an.id, 500_000)
    loyal.sales.refund(order, 100_000)
    loyal.loyalty.redeem(an.id, "voucher-50k")
    loyal.loyalty.grant(an.id, 5, "xin lỗi")
    today = loyal.today()  # the business's date: the machine's can be a day behind Hà Nội
    statement = loyal.loyalty.statement(an.id, today - timedelta(days=30), today)
    assert (statement.opening, statement.earned, statement.reversed, statement.spent, statement.adjusted) == (
        80,
        50,
        10,
        30,
        5,
    )
    assert statement.closing == 80 + 50 - 10 - 30 + 5 == loyal.loyalty.balance(an.id)
    assert len(statement.entries) == 4
    with pytest.raises(ValidationError, match="end"):
        loyal.loyalty.statement(an.id, today, today - timedelta(days=1))


def test_merge_moves_the_ledger_and_recomputes_the_balance(loyal):
    loyal.loyalty.programs.add_reward("voucher-50k", "Voucher 50.000 ₫", 30, kind="discount")
    an = loyal.customers.add(name="Nguyễn Văn An", email="an@example.vn")
    twin = loyal.customers.add(name="Nguyen Van An", phone="0912345678")
    loyal.sales.place(an.id, 1_000_000)
    loyal.sales.place(twin.id, 500_000)
    loyal.loyalty.redeem(twin.id, "voucher-50k")
    loyal.customers.merge(an.id, twin.id)
    assert loyal.loyalty.balance(an.id) == 100 + 50 - 30
    assert loyal.loyalty.balance(twin.id) == 120  # the merged id resolves to the kept customer
    assert len(loyal.loyalty.history(an.id)) == 3 and len(loyal.loyalty.redemptions(an.id)) == 1
    with loyal.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(members.c.customer_id == twin.id)).scalar_one() == 0
    assert loyal.loyalty.jobs.verify() == []


def test_merge_with_a_member_in_debt_keeps_lots_and_balance_in_step(loyal):
    loyal.loyalty.programs.add_reward("gift", "Quà", 80)
    an = loyal.customers.add(name="Nguyễn Văn An")
    twin = loyal.customers.add(name="Nguyen Van An")
    order = loyal.sales.place(twin.id, 1_000_000)
    loyal.loyalty.redeem(twin.id, "gift")
    loyal.sales.cancel(order)  # twin: -80
    loyal.loyalty.grant(an.id, 200, "quà")
    loyal.customers.merge(an.id, twin.id)
    assert loyal.loyalty.balance(an.id) == 120
    assert loyal.loyalty.jobs.verify() == []


def test_export_covers_every_loyalty_table(loyal):
    loyal.loyalty.programs.add_reward("voucher-50k", "Voucher 50.000 ₫", 30, kind="discount")
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 500_000)
    loyal.loyalty.redeem(an.id, "voucher-50k")
    section = loyal.customers.export_data(an.id)["loyalty"]
    assert {name: len(rows) for name, rows in section.items()} == {
        "loyalty_members": 1,
        "loyalty_ledger": 2,
        "loyalty_redemptions": 1,
    }
    assert section["loyalty_members"][0]["points"] == 20
    assert [row["remaining"] for row in section["loyalty_ledger"]] == [20, 0]  # the purchase's open lot, spent in part


def test_erase_forfeits_the_balance_and_keeps_an_anonymous_ledger(loyal):
    loyal.loyalty.programs.add_reward("voucher-50k", "Voucher 50.000 ₫", 30, kind="discount")
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 500_000)
    loyal.loyalty.redeem(an.id, "voucher-50k")
    loyal.loyalty.grant(an.id, 10, "Khách Nguyễn Văn An gọi điện khiếu nại")
    loyal.customers.erase(an.id)
    entries = loyal.loyalty.history(an.id)
    assert entries[0].reason == "erasure" and sum(e.points for e in entries) == 0
    assert all(e.note is None for e in entries)
    with loyal.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(members)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).where(ledger.c.remaining > 0)).scalar_one() == 0  # no open lot
    assert loyal.loyalty.redemptions(an.id) == [] and loyal.loyalty.jobs.verify() == []
    with pytest.raises(Conflict, match="erased"):
        loyal.loyalty.grant(an.id, 10, "sau khi xoá")


def test_customer_360_shows_balance_tier_expiring_points_and_last_entries(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 2_000_000, placed_at=days_ago(350))
    loyal.sales.place(an.id, 500_000)
    (section,) = loyal.customers.profile(an.id).sections["loyalty"]
    assert (section["program"], section["balance"], section["tier"]) == ("default", 250, "Member")
    assert str(section["value"]) == "125.000 ₫"
    assert [item["points"] for item in section["expiring_soon"]] == [200]
    assert [item["points"] for item in section["recent"]] == [50, 200]


def test_segment_fields_filter_customers_by_tier_and_balance(loyal):
    from crmkit.core.tables import customers

    rich, poor = (loyal.customers.add(name=n) for n in ("Nguyễn Văn An", "Trần Thị Bình"))
    loyal.sales.place(rich.id, 8_000_000)
    loyal.sales.place(poor.id, 100_000)
    loyal.customers.add(name="Lê Văn Cường")
    fields = loyal.hooks.segment_fields()
    with loyal.reading() as conn:
        found = (
            conn.execute(
                sa.select(customers.c.id).where(fields["points_balance"] >= 100, fields["loyalty_tier"] == "silver")
            )
            .scalars()
            .all()
        )
        tiers = (
            conn.execute(sa.select(fields["loyalty_tier"]).select_from(customers).order_by(customers.c.id))
            .scalars()
            .all()
        )
    assert found == [rich.id]
    assert tiers == ["silver", "member", "member"]


def test_expiry_tells_points_changed_listeners_about_each_lot(listening):
    crm, listener = listening
    an = crm.customers.add(name="Nguyễn Văn An")
    now = utcnow()
    crm.loyalty.grant(an.id, 100, "lô 1", expires_at=now + timedelta(days=5))
    crm.loyalty.grant(an.id, 40, "lô 2", expires_at=now + timedelta(days=6))
    listener.points.clear()
    crm.loyalty.jobs.expire(now=now + timedelta(days=10))
    assert sorted(listener.points) == sorted([(an.id, "expiry", -100, 0), (an.id, "expiry", -40, 0)])


def test_open_lots_survive_the_move_into_the_ledger_and_back(loyal):
    """loyalty_0003 moves the open lots into the ledger (``remaining``); its downgrade moves them back out."""
    from crmkit import migrations

    loyal.loyalty.programs.add_reward("gift", "Quà", 30)
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 500_000)  # 50 points, one open lot
    loyal.loyalty.redeem(an.id, "gift")  # 20 left open
    loyal.loyalty.grant(an.id, 7, "quà sinh nhật")
    lineage = next(lin for lin in loyal.lineages() if lin.name == "loyalty")
    migrations.downgrade(loyal.engine, lineage, "loyalty_0002")
    with loyal.reading() as conn:
        assert conn.execute(sa.text("SELECT remaining FROM loyalty_lots ORDER BY entry_id")).scalars().all() == [20, 7]
    migrations.upgrade(loyal.engine, [lineage])
    with loyal.reading() as conn:
        assert conn.execute(sa.select(ledger.c.remaining).order_by(ledger.c.id)).scalars().all() == [20, 0, 7]
    assert loyal.loyalty.jobs.verify() == [] and loyal.loyalty.balance(an.id) == 27
    loyal.loyalty.grant(an.id, 10, "quà Tết")
    loyal.loyalty.redeem(an.id, "gift")  # 30: the oldest lots first (20, then 7), then 3 of the newest
    with loyal.reading() as conn:
        assert conn.execute(sa.select(ledger.c.remaining).order_by(ledger.c.id)).scalars().all() == [0, 0, 0, 7, 0]
    assert loyal.loyalty.balance(an.id) == 7 and loyal.loyalty.jobs.verify() == []
