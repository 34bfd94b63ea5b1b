"""The demo contribution: the same seed gives the same cases, in Vietnamese and English, in several statuses, each
with its interactions; the overview says how many; and the plugin object imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crmkit.testing import add_user

pytestmark = pytest.mark.crmkit_plugins("service")


def test_demo_population_is_deterministic_and_summarised(crm_factory):
    seen = []
    for _ in range(2):
        crm = crm_factory(plugins=["service"])
        add_user(crm, "hoa", teams=["CSKH Hà Nội"], roles=["support"])
        ids = [crm.customers.add(name=f"Khách Demo {n}").id for n in range(30)]
        crm.hooks.demo_populate(ids, seed=11)
        found = crm.service.list(limit=500)
        seen.append([(c.customer_id, c.subject, c.status) for c in found])
        overview = crm.hooks.demo_overview()
    assert seen[0] == seen[1] and len(seen[0]) == 3  # at least 3, one per 40 customers
    assert {c.team for c in found} == {"CSKH Hà Nội"} and {c.assignee for c in found} == {"hoa"}
    active = sum(1 for c in found if c.status not in ("resolved", "closed"))
    assert overview["Service"][0].startswith(f"3 cases ({active} still open)")


def test_plugin_object_imports_nothing_heavy():
    code = (
        "import sys, crmkit_service.plugin as p; "
        "print(p.plugin.name, sorted(m for m in ('sqlalchemy', 'marshmallow', 'crmkit_service.service') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["service", "[]"]


def test_demo_cases_exercise_group_slas_satisfaction_and_a_reopening(crm_factory):
    crm = crm_factory(plugins=["sales", "loyalty", "service"])
    add_user(crm, "hoa", teams=["CSKH Hà Nội"], roles=["support"])
    ids = [crm.customers.add(name=f"Khách Demo {n}").id for n in range(400)]
    crm.hooks.demo_populate(ids, seed=7)
    found = crm.service.list(limit=500)
    assert {(r.customer_group, r.priority) for r in crm.service.sla.rules()} >= {("diamond", "normal"), (None, "high")}
    assert sum(c.reopen_count for c in found) == 1 and any(c.status == "reopened" for c in found)
    rated = [c for c in found if c.csat_score is not None]
    assert rated and all(1 <= c.csat_score <= 5 for c in rated)
    lines = crm.hooks.demo_overview()["Service"]
    assert f"from {len(rated)} answers, 1 reopened" in lines[1]
