"""Fixtures of the campaigns tests; helpers (``campaigns_testkit``) are imported from this folder."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import campaigns_testkit as kit


@pytest.fixture
def shop(crm, tmp_path):
    """The test's ``crm`` (mark the module ``crmkit_plugins("campaigns", …)``) sending e-mail to a file outbox."""
    kit.outbox(crm, tmp_path / "outbox")
    return crm
