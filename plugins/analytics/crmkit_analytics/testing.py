"""Test helpers of analytics: ``AS_OF``, the CDNOW data, and the core's purchase source under its old names.

``SOURCE``, ``purchases`` and ``source_metadata`` are :mod:`crmkit.testing`'s purchase source; :class:`Shop`
is its ``Shop`` (purchases written as sales writes orders, so the incremental aggregates run as sales drives
them) with ``days_ago``. ``crm_factory(plugins=["analytics", SOURCE])``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from crmkit import testing
from crmkit.testing import PURCHASE_SOURCE as SOURCE
from crmkit.testing import purchase_metadata as source_metadata
from crmkit.testing import purchases

__all__ = ["AS_OF", "SOURCE", "Shop", "cdnow_file", "purchases", "source_metadata"]


def cdnow_file(name: str) -> Path:
    """A CDNOW data file shipped in the ``lifetimes`` wheel (``CDNOW_sample.txt``, ``cdnow_customers_summary.csv``…).

    Located through the distribution's metadata: lifetimes' own code (which needs an old pandas)
    is never imported. Install it with the test extra: ``pip install -e 'plugins/analytics[test]'``.
    """
    try:
        path = Path(str(distribution("lifetimes").locate_file(f"lifetimes/datasets/{name}")))
    except PackageNotFoundError:
        raise FileNotFoundError(
            "the CDNOW data ships in the `lifetimes` package: "
            "pip install -e 'plugins/analytics[test]' (or pip install lifetimes)"
        ) from None
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed lifetimes package")
    return path


#: A date to compute measures for in tests: ahead of the real clock, so customers created now already exist.
AS_OF = datetime(datetime.now(UTC).year + 1, 6, 30, 12, 0, tzinfo=UTC)


class Shop(testing.Shop):
    """The core's :class:`crmkit.testing.Shop`, where a purchase's date can be given as days before ``AS_OF``."""

    def buy(
        self,
        customer_id: int,
        when: datetime | None = None,
        amount: int = 100_000,
        currency: str = "VND",
        *,
        days_ago: float | None = None,
        margin: int | None = None,
        category: str | None = None,
        channel: str | None = None,
    ) -> int:
        """Record one purchase (as the core's ``buy``); ``days_ago`` counts back from ``AS_OF``."""
        at = when if when is not None else AS_OF - timedelta(days=days_ago or 0)
        return super().buy(customer_id, at, amount, currency, margin=margin, category=category, channel=channel)
