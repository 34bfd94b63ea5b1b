"""The demo and backfill: points for orders placed before the program existed, read through ``crm.sales``."""

from loyalty_testkit import Refund, days_ago, make


def test_backfill_earns_for_existing_orders_once(crm_factory):
    crm = make(crm_factory)
    an, binh = (crm.customers.add(name=n) for n in ("Nguyễn Văn An", "Trần Thị Bình"))
    first = crm.sales.place(an.id, 1_000_000, placed_at=days_ago(40), fire=False)
    crm.sales.place(binh.id, 500_000, placed_at=days_ago(20), fire=False)
    first.refunded_minor = 400_000
    crm.sales.orders.refunded[first.id] = [Refund(1, first.id, 400_000, "VND", days_ago(30))]
    crm.loyalty.programs.create("default", "Khách hàng thân thiết")
    assert crm.loyalty.jobs.backfill() == 2
    assert (crm.loyalty.balance(an.id), crm.loyalty.balance(binh.id)) == (60, 50)
    assert crm.loyalty.history(binh.id)[0].created_at == crm.sales.orders.list()[0].placed_at
    assert crm.loyalty.jobs.backfill() == 2
    assert (crm.loyalty.balance(an.id), crm.loyalty.balance(binh.id)) == (60, 50)
    assert crm.loyalty.jobs.verify() == []


def test_demo_builds_a_program_members_and_an_overview(crm_factory):
    crm = make(crm_factory)
    people = [crm.customers.add(name=f"Khách hàng {n}") for n in range(20)]
    for n, person in enumerate(people):
        for k in range(n % 4):
            crm.sales.place(person.id, 500_000 * (n + 1), placed_at=days_ago(10 + 50 * k), fire=False)
    crm.hooks.demo_populate([p.id for p in people], seed=7)
    (program,) = crm.loyalty.programs.list()
    assert program.name == "Khách hàng thân thiết" and not program.auto_enroll
    assert [r.name for r in crm.loyalty.programs.rewards()][:2] == ["Voucher 50.000 ₫", "Voucher 100.000 ₫"]
    (liability,) = crm.loyalty.reports.liability()
    assert 0 < liability.members < 20 and liability.outstanding > 0
    assert crm.loyalty.jobs.verify() == []
    lines = crm.hooks.demo_overview()["Loyalty"]
    assert lines[0].startswith(f"{liability.members:,} members")
    crm.hooks.demo_populate([p.id for p in people], seed=7)  # a second run leaves the demo program alone
    assert crm.loyalty.reports.liability()[0].outstanding == liability.outstanding
