"""crmkit's plugin contract for loyalty: strict loading, export/erase coverage, migrations down and up,
every declared permission enforced, and every list, report and profile section scoped.

``populate`` gives each customer a program of its own (``c<id>``, no auto-enrolment) in which it is
the only member, with a grant, a redemption and a purchase. A report lists its figures per program,
so the programs it shows with members (or entries) in them tell exactly which customers it counted.
"""

from datetime import timedelta

from loyalty_testkit import SALES, Order, days_ago

from crmkit.testing import PluginContract


def own_program(customer_id):
    """The code of the program ``populate`` made for this customer."""
    return f"c{customer_id}"


def counted(rows, has_members):
    """The customers a per-program report counted: those whose own program has a row with members in it."""
    return sorted({int(row.program[1:]) for row in rows if row.program.startswith("c") and has_members(row)})


def _statement(crm, customer_id):
    today = crm.today()
    return crm.loyalty.statement(customer_id, today - timedelta(days=1), today, program=own_program(customer_id))


def _quote(crm, customer_id):
    order = Order(id=999_999, customer_id=customer_id, total_minor=500_000, placed_at=days_ago(0))
    return {"customer_id": customer_id, "lines": crm.loyalty.orders.quote(order)}


def _repeat(crm, customer_id):
    members, _others = crm.loyalty.reports.repeat_purchase(program=own_program(customer_id))
    return [customer_id] if members.buyers else []


def _profile(crm, customer_id):
    return [customer_id] if crm.customers.profile(customer_id).sections.get("loyalty") else []


class TestLoyaltyContract(PluginContract):
    plugin = "loyalty"
    with_plugins = (SALES,)

    def populate(self, crm, customer_id):
        code = own_program(customer_id)
        crm.loyalty.programs.create(code, f"Chương trình {customer_id}", auto_enroll=False, point_value_minor=500)
        crm.loyalty.programs.add_reward("gift", "Quà", 10, program=code)
        crm.loyalty.grant(customer_id, 50, "quà khai trương", program=code)
        crm.loyalty.redeem(customer_id, "gift", program=code)
        crm.sales.place(customer_id, 200_000)  # earns 20 points, in this customer's program only

    def permission_calls(self):
        return {
            "loyalty.programs.manage": lambda crm, cid: crm.loyalty.programs.add_reward(
                "more", "Thêm", 5, program=own_program(cid)
            ),
            "loyalty.members.read": lambda crm, cid: crm.loyalty.history(cid, program=own_program(cid)),
            "loyalty.members.enroll": lambda crm, cid: crm.loyalty.enroll(cid, program=own_program(cid)),
            "loyalty.points.grant": lambda crm, cid: crm.loyalty.grant(cid, 5, "bù điểm", program=own_program(cid)),
            "loyalty.points.adjust": lambda crm, cid: crm.loyalty.deduct(cid, 5, "trừ điểm", program=own_program(cid)),
            "loyalty.points.redeem": lambda crm, cid: crm.loyalty.redeem(cid, "gift", program=own_program(cid)),
            "loyalty.reports.read": lambda crm, cid: crm.loyalty.reports.liability(),
            "loyalty.jobs.run": lambda crm, cid: crm.loyalty.jobs.expire(),
        }

    def scoped_calls(self):
        return {
            # a customer's own view
            "member": lambda crm, cid: crm.loyalty.member(cid, program=own_program(cid)),
            "balance": lambda crm, cid: {
                "customer_id": cid,
                "points": crm.loyalty.balance(cid, program=own_program(cid)),
            },
            "history": lambda crm, cid: crm.loyalty.history(cid, program=own_program(cid)),
            "statement": _statement,
            "redemptions": lambda crm, cid: crm.loyalty.redemptions(cid, program=own_program(cid)),
            "quote": _quote,
            "profile section": _profile,
            # reports over every program
            "liability": lambda crm, cid: counted(crm.loyalty.reports.liability(), lambda row: row.members),
            "earn-burn": lambda crm, cid: counted(crm.loyalty.reports.earn_burn(), lambda row: True),
            "tiers": lambda crm, cid: counted(crm.loyalty.reports.tier_counts(), lambda row: row.members),
            "redemption rate": lambda crm, cid: counted(crm.loyalty.reports.redemption_rate(), lambda row: row.members),
            "repeat purchases": _repeat,
        }
