"""Unmerge gives loyalty back what came from the merged customer: its ledger, redemptions and balance row, with both
members' balances, open lots and tiers rebuilt from the ledger."""

import sqlalchemy as sa

from crmkit_loyalty.models import ledger, members


def _open_lots(crm, customer_id):
    with crm.reading() as conn:
        return conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(ledger.c.remaining), 0)).where(ledger.c.customer_id == customer_id)
        ).scalar_one()


def test_unmerge_gives_back_the_ledger_and_rebuilds_both_balances(loyal):
    loyal.loyalty.programs.add_reward("voucher-50k", "Voucher 50.000 ₫", 30, kind="discount")
    an = loyal.customers.add(name="Nguyễn Văn An", email="an@example.vn")
    twin = loyal.customers.add(name="Nguyen Van An", phone="0912345678")
    loyal.sales.place(an.id, 1_000_000)
    loyal.sales.place(twin.id, 500_000)
    loyal.loyalty.redeem(twin.id, "voucher-50k")
    (merge,) = loyal.customers.merge_many([(an.id, twin.id)])
    assert loyal.loyalty.balance(an.id) == 120
    loyal.sales.place(an.id, 200_000)  # after the merge, on the kept customer: it stays there
    done = loyal.customers.unmerge(merge.id)
    assert done.rows_moved_back["loyalty_ledger"] == 2 and done.rows_moved_back["loyalty_redemptions"] == 1
    assert loyal.loyalty.balance(an.id) == 100 + 20
    assert loyal.loyalty.balance(twin.id) == 50 - 30
    assert len(loyal.loyalty.history(twin.id)) == 2 and len(loyal.loyalty.redemptions(twin.id)) == 1
    assert len(loyal.loyalty.redemptions(an.id)) == 0
    assert (_open_lots(loyal, an.id), _open_lots(loyal, twin.id)) == (120, 20)
    assert loyal.loyalty.jobs.verify() == []


def test_a_member_whose_balance_row_the_merge_dropped_is_enrolled_again_since_its_first_entry(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    twin = loyal.customers.add(name="Nguyen Van An")
    loyal.sales.place(an.id, 300_000)
    loyal.sales.place(twin.id, 700_000)
    with loyal.reading() as conn:
        enrolled = conn.execute(sa.select(members.c.enrolled_at).where(members.c.customer_id == twin.id)).scalar()
    merge = loyal.customers.merge_many([(an.id, twin.id)])[0]
    with loyal.reading() as conn:  # both were members: the merged record's balance row went
        assert conn.execute(sa.select(sa.func.count()).where(members.c.customer_id == twin.id)).scalar_one() == 0
    loyal.customers.unmerge(merge.id)
    assert (loyal.loyalty.balance(an.id), loyal.loyalty.balance(twin.id)) == (30, 70)
    with loyal.reading() as conn:
        again = conn.execute(sa.select(members.c.enrolled_at).where(members.c.customer_id == twin.id)).scalar()
    assert abs((again - enrolled).total_seconds()) < 60
    assert loyal.loyalty.jobs.verify() == []


def test_a_member_in_debt_gets_its_debt_back_and_the_kept_lots_are_whole_again(loyal):
    loyal.loyalty.programs.add_reward("gift", "Quà", 80)
    an = loyal.customers.add(name="Nguyễn Văn An")
    twin = loyal.customers.add(name="Nguyen Van An")
    order = loyal.sales.place(twin.id, 1_000_000)
    loyal.loyalty.redeem(twin.id, "gift")
    loyal.sales.cancel(order)  # twin: -80
    loyal.loyalty.grant(an.id, 200, "quà")
    merge = loyal.customers.merge_many([(an.id, twin.id)])[0]
    assert (loyal.loyalty.balance(an.id), _open_lots(loyal, an.id)) == (120, 120)
    loyal.customers.unmerge(merge.id)
    assert (loyal.loyalty.balance(an.id), _open_lots(loyal, an.id)) == (200, 200)
    assert (loyal.loyalty.balance(twin.id), _open_lots(loyal, twin.id)) == (-80, 0)
    assert loyal.loyalty.jobs.verify() == []


def test_tiers_follow_the_rebuilt_balances(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    twin = loyal.customers.add(name="Nguyen Van An")
    loyal.sales.place(an.id, 3_000_000)
    loyal.sales.place(twin.id, 3_000_000)
    merge = loyal.customers.merge_many([(an.id, twin.id)])[0]
    assert loyal.loyalty.member(an.id).tier == "silver"  # 600 qualifying points together: Silver from 500
    loyal.customers.unmerge(merge.id)
    assert (loyal.loyalty.member(an.id).tier, loyal.loyalty.member(twin.id).tier) == ("member", "member")
