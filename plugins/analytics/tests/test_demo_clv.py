"""The demo's purchase history (written by crmkit-sales' demo) supports a sound CLV fit: what a new user sees first."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def test_the_demo_clv_fit_is_away_from_the_bounds(crm_factory: Callable[..., Any]) -> None:
    crm = crm_factory(plugins=["analytics", "sales"])
    ids = [crm.customers.add(name=f"Khách demo {n}").id for n in range(300)]
    crm.hooks.demo_populate(ids, 42)  # `crmkit demo`'s default seed; it picks 300 buyers
    run = crm.analytics.clv()
    bgnbd, spend = run.parameters["bgnbd"], run.parameters["gamma_gamma"]

    assert bgnbd["at_bound"] == [] and spend["fitted"] and spend["at_bound"] == []
    for name in ("r", "alpha", "a", "b"):  # well inside the search range [e^-12, e^12]
        assert abs(math.log(bgnbd[name])) < 8, (name, bgnbd[name])
    # drop-outs exist: customers who bought often long ago and not since are judged likely gone
    assert 0 < run.summary["likely_inactive"] < run.summary["customers"]
    assert 0.3 < run.summary["mean_p_alive"] < 0.95
