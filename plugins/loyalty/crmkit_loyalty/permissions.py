"""The loyalty plugin's permissions (declared through ``crmkit_permissions``) and their default roles.

Scoped permissions reach the customers of the user's scope (own / team / all); the catalogue
and the batch jobs are not about one customer, so they are all or nothing. The catalogue itself
(programs, rules, tiers, rewards) is readable by every user: it is what the business offers.
"""

from __future__ import annotations

from crmkit import Permission

PROGRAMS_MANAGE = "loyalty.programs.manage"
MEMBERS_READ = "loyalty.members.read"
MEMBERS_ENROLL = "loyalty.members.enroll"
POINTS_GRANT = "loyalty.points.grant"
POINTS_ADJUST = "loyalty.points.adjust"
POINTS_REDEEM = "loyalty.points.redeem"
REPORTS_READ = "loyalty.reports.read"
JOBS_RUN = "loyalty.jobs.run"

PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        PROGRAMS_MANAGE, "create and change programs, earn rules, tiers and the rewards catalogue", scoped=False
    ),
    Permission(
        MEMBERS_READ,
        "see members' balances, tiers, ledger history, statements, redemptions and what an "
        "order would earn (also the customer-360 loyalty section)",
        roles={"manager": "team", "sales": "own", "marketing": "all", "support": "all", "read-only": "all"},
    ),
    Permission(
        MEMBERS_ENROLL,
        "make a customer a member of a program (pays the program's sign-up bonus)",
        roles={"manager": "team", "sales": "own", "support": "all"},
    ),
    Permission(POINTS_GRANT, "give points by hand", roles={"manager": "team"}),
    Permission(POINTS_ADJUST, "take points away by hand", roles={"manager": "team"}),
    Permission(
        POINTS_REDEEM,
        "exchange a member's points for a reward, and cancel a redemption",
        roles={"manager": "team", "sales": "own", "support": "all"},
    ),
    Permission(
        REPORTS_READ,
        "read the loyalty reports (liability, earn-burn, tiers, redemption, repeat purchases) "
        "over the customers in scope",
        roles={"manager": "team", "marketing": "all", "read-only": "all"},
    ),
    Permission(
        JOBS_RUN, "run expiry, tier evaluation, the ledger check and the order backfill over every member", scoped=False
    ),
)
