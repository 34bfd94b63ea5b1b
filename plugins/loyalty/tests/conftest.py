"""Fixtures of loyalty's tests; helpers (``loyalty_testkit``) are imported from this folder."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loyalty_testkit as kit


@pytest.fixture
def loyal(crm_factory):
    """A CRM with the stand-in sales plugin, loyalty, and a default VND program (1 point per 10.000 ₫)."""
    crm = kit.make(crm_factory)
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    return crm


@pytest.fixture
def listening(crm_factory):
    """Like ``loyal``, plus a plugin recording every ``crmkit_points_changed`` and ``crmkit_tier_changed``."""
    listener = kit.Listener()
    crm = crm_factory(plugins=[*kit.PLUGINS, listener.plugin])
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    return crm, listener
