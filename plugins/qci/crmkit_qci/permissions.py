"""QCI's permissions (declared through ``crmkit_permissions``; the README's "Permissions" table is this list).

Assessing and planning are about the business, not about a customer's records, so they are all or
nothing. Reading is scoped: the KPIs a user reads count only the customers their ``qci.read`` scope
reaches (own, team, all) — see ``crmkit_qci.kpis.Coverage``.
"""

from __future__ import annotations

from crmkit import Permission

ASSESS = "qci.assess"
READ = "qci.read"
PLAN = "qci.plan"

PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        ASSESS,
        "record assessments and costs, import or reset the question bank",
        scoped=False,
        roles={"manager": "all"},
    ),
    Permission(
        READ,
        "see assessments, KPIs, the scorecard, the plan, costs and the report; KPIs count only the customers in scope",
        roles={"manager": "team", "read-only": "all"},
    ),
    Permission(
        PLAN,
        "generate the plan, assign, start and finish actions, set area owners and KPI targets",
        scoped=False,
        roles={"manager": "all"},
    ),
)
