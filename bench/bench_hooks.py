"""Hook overhead: creating 100,000 customers through ``crm.customers.add`` with six plugins vs. none.

Each of the six plugins implements every customer hook as a no-op; the peer is the same
work on a CRM with no plugin, measured in the same run (rounds alternate between the two
so that machine noise falls on both). Target: with/without ≤ 1.5.

    python bench/bench_hooks.py --size full
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import datagen
from bench._report import alternating_adds, parse_args, report, scale
from crmkit import CRM, Plugin, hookimpl

TARGET_RATIO = 1.5
PLUGINS = 6
ROUNDS = 10


class NoopCustomerHooks:
    """Implements every customer hook of the catalogue and does nothing."""

    @hookimpl
    def crmkit_customer_before_save(self, crm: Any, customer: Any, changes: Any, session: Any) -> None:
        """Would veto or adjust a save."""

    @hookimpl
    def crmkit_customer_created(self, crm: Any, customer: Any, session: Any) -> None:
        """Would react to a new customer."""

    @hookimpl
    def crmkit_customer_updated(self, crm: Any, customer: Any, changes: Any, session: Any) -> None:
        """Would react to a change."""

    @hookimpl
    def crmkit_customers_merged(self, crm: Any, kept: Any, merged: Any, session: Any) -> None:
        """Would re-point rows."""

    @hookimpl
    def crmkit_customer_export(self, crm: Any, customer: Any, session: Any) -> None:
        """Would export this plugin's data."""

    @hookimpl
    def crmkit_customer_erase(self, crm: Any, customer: Any, session: Any) -> None:
        """Would erase this plugin's data."""

    @hookimpl
    def crmkit_customer_profile(self, crm: Any, customer: Any, session: Any) -> None:
        """Would add a profile section."""


def noop_plugins() -> list[Plugin]:
    """Six distinct plugins, each registering its own no-op hook object."""
    return [Plugin(name=f"noop_{n}", hooks=[NoopCustomerHooks()], version="1.0") for n in range(1, PLUGINS + 1)]


def main(argv: Sequence[str] | None = None) -> int:
    """Add the same customers to two fresh SQLite CRMs, alternating rounds, and compare the time spent."""
    args = parse_args(__doc__.split("\n\n")[0], argv)
    count = scale(args.size, tiny=100, small=10_000, full=100_000)
    spec = datagen.Spec(count, 0)
    inputs = [values for _, values in datagen.customer_values(spec)]
    folder = Path(tempfile.mkdtemp(prefix="bench_hooks_", dir=args.workdir))
    try:
        bare = CRM(f"sqlite:///{folder / 'bare.db'}", plugins=[])
        hooked = CRM(f"sqlite:///{folder / 'hooked.db'}", plugins=noop_plugins())
        for crm in (bare, hooked):
            datagen.add_staff(crm)  # the customers' owners
        enabled = [info.name for info in hooked.registry.enabled()]
        if len(enabled) != PLUGINS or not all(
            hooked.hooks.has_implementations(h) for h in ("crmkit_customer_before_save", "crmkit_customer_created")
        ):
            raise SystemExit(f"expected {PLUGINS} plugins implementing the customer hooks, got {enabled}")
        spent = alternating_adds({"bare": bare, "hooked": hooked}, inputs, source=datagen.SOURCE, rounds=ROUNDS)
        bare.close()
        hooked.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ratio = spent["hooked"] / spent["bare"]
    report(
        f"hook overhead ({count:,} customers.add, {PLUGINS} no-op plugins vs none, SQLite)",
        ratio,
        "x",
        target=f"≤ {TARGET_RATIO:g}x",
        ok=ratio <= TARGET_RATIO,
        peer=f"peer no plugin: {count / spent['bare']:,.0f} customers/s ({spent['bare'] * 1e6 / count:.0f} µs each)",
        with_plugins=f"{count / spent['hooked']:,.0f} customers/s ({spent['hooked'] * 1e6 / count:.0f} µs each)",
        load=f"{os.getloadavg()[0]:.1f}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
