"""Order placement: 100,000 orders of 3 lines through ``crm.sales.orders.place`` with the plugins that react to
``crmkit_order_placed`` (loyalty, campaigns — whichever are installed) vs. with no plugin implementing it.

When neither is installed, inline plugins stand in for them, each doing what loyalty does with an
order — look the order up in its ledger (re-delivery must not double-count) and write a ledger row —
and the output says so (``--stand-in`` uses them anyway, to measure the hook mechanism apart from
what loyalty itself costs; ``--only loyalty`` installs that one alone). Both CRMs are fresh SQLite
files with the same customers and catalogue; rounds alternate between them so machine noise falls
on both. Also printed: the CPU-time ratio and the SQL statements per order. Target: with/without ≤ 1.5.

    python bench/bench_sales_orders.py --size full
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import parse_args, report, scale
from crmkit import CRM, Plugin, hookimpl
from crmkit.core.types import Id, new_metadata
from crmkit.hooks.manager import discover

TARGET_RATIO = 1.5
ROUNDS = 10
REACTING = ("loyalty", "campaigns")
PRODUCTS = 40

ledger_metadata = new_metadata()
ledger = sa.Table(
    "bench_points_ledger",
    ledger_metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("customer_id", Id, nullable=False),
    sa.Column("order_id", Id, nullable=False, index=True),
    sa.Column("points", sa.BigInteger, nullable=False),
)


class LedgerPlugin:
    """Stands in for loyalty: one ledger row per order (1 point per 10.000 ₫), never twice for the same order."""

    @hookimpl
    def crmkit_startup(self, crm: Any) -> None:
        ledger_metadata.create_all(crm.engine, checkfirst=True)

    @hookimpl
    def crmkit_order_placed(self, order: Any, session: Any) -> None:
        conn = session.connection()
        if conn.execute(sa.select(ledger.c.id).where(ledger.c.order_id == order.id)).first() is None:
            conn.execute(
                ledger.insert().values(
                    customer_id=order.customer_id, order_id=order.id, points=order.total_minor // 10_000
                )
            )


def _loyalty_program(crm: CRM) -> None:
    crm.loyalty.programs.create(
        "bench",
        "Khách hàng thân thiết",
        currency="VND",
        earn_points=1,
        earn_amount_minor=10_000,
        point_value_minor=500,
        expiry_days=365,
        auto_enroll=True,
    )


#: What each reacting plugin needs before orders earn anything (campaigns needs nothing).
SETUP: dict[str, Callable[[CRM], None]] = {"loyalty": _loyalty_program}


def reacting_plugins(stand_in: bool, only: str | None = None) -> tuple[list[Any], str]:
    """The installed reacting plugins (just ``only``, if given; none when ``stand_in``), or inline stand-ins,
    and a sentence saying which."""
    installed = {d.name for d in discover() if d.plugin is not None}
    if only is not None and only not in installed:
        raise SystemExit(f"--only {only}: that plugin is not installed")
    present = [name for name in REACTING if name in installed and only in (None, name)]
    if present and not stand_in:
        return present, f"with {' + '.join(present)} (installed)"
    stand_ins = [Plugin(name=f"ledger_{n}", hooks=[LedgerPlugin()], requires=("sales",)) for n in (1, 2)]
    why = "as asked" if present else "neither is installed"
    return stand_ins, f"with 2 inline ledger plugins standing in for loyalty and campaigns ({why})"


def prepare(url: str, extra: Sequence[Any], customers: int) -> tuple[CRM, list[int], list[str]]:
    """A CRM with the sales plugin (and ``extra``), the same customers and catalogue every time."""
    crm = CRM(url, plugins=["sales", *extra], upgrade=True, strict=True)
    for name in extra:
        if isinstance(name, str) and name in SETUP:
            SETUP[name](crm)
    rng = random.Random(11)
    customer_ids = [crm.customers.add(name=f"Khách hàng {n}", lifecycle_stage="customer").id for n in range(customers)]
    skus = []
    for n in range(PRODUCTS):
        sku = f"SP-{n:03d}"
        crm.sales.products.add(
            sku=sku,
            name=f"Sản phẩm {n}",
            price_minor=rng.randrange(20_000, 2_000_000, 1_000),
            currency="VND",
            cost_minor=None,
            tax_rate=rng.choice(("5%", "8%", "10%")),
        )
        skus.append(sku)
    return crm, customer_ids, skus


def count_statements(crm: CRM) -> list[int]:
    """A one-item list counting the SQL statements ``crm`` sends from now on (BEGIN included)."""
    box = [0]

    def seen(*_: Any) -> None:
        box[0] += 1

    sa.event.listen(crm.engine, "before_cursor_execute", seen)
    return box


def order_inputs(count: int, customer_ids: list[int], skus: list[str]) -> list[dict[str, Any]]:
    """``count`` orders of 3 distinct products, deterministic."""
    rng = random.Random(7)
    return [
        {
            "customer_id": rng.choice(customer_ids),
            "lines": [{"sku": sku, "quantity": rng.randint(1, 5)} for sku in rng.sample(skus, 3)],
        }
        for _ in range(count)
    ]


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stand-in",
        action="store_true",
        help="use the inline ledger plugins even when loyalty or campaigns is installed",
    )
    parser.add_argument("--only", choices=REACTING, help="install just this one of the reacting plugins")


def main(argv: Sequence[str] | None = None) -> int:
    """Place the same orders in both CRMs, alternating rounds, and compare the time spent."""
    args = parse_args(__doc__.split("\n\n")[0], argv, extra=_options)
    count = scale(args.size, tiny=300, small=10_000, full=100_000)
    customers = scale(args.size, tiny=100, small=2_000, full=2_000)
    extra, described = reacting_plugins(args.stand_in, args.only)
    folder = Path(tempfile.mkdtemp(prefix="bench_sales_orders_", dir=args.workdir))
    try:
        bare, customer_ids, skus = prepare(f"sqlite:///{folder / 'bare.db'}", [], customers)
        hooked, _, _ = prepare(f"sqlite:///{folder / 'hooked.db'}", extra, customers)
        if bare.hooks.has_implementations("crmkit_order_placed"):
            raise SystemExit("the bare CRM must have no plugin implementing crmkit_order_placed")
        if not hooked.hooks.has_implementations("crmkit_order_placed"):
            raise SystemExit(f"no plugin implements crmkit_order_placed in the hooked CRM ({described})")
        inputs = order_inputs(count, customer_ids, skus)
        spent = {"bare": 0.0, "hooked": 0.0}
        cpu = {"bare": 0.0, "hooked": 0.0}  # CPU seconds too: less disturbed than wall time on a loaded machine
        statements = {"bare": count_statements(bare), "hooked": count_statements(hooked)}
        per_round = -(-count // ROUNDS)
        for round_no, first in enumerate(range(0, count, per_round)):
            chunk = inputs[first : first + per_round]
            turns = (("bare", bare), ("hooked", hooked)) if round_no % 2 == 0 else (("hooked", hooked), ("bare", bare))
            for label, crm in turns:
                place = crm.sales.orders.place
                start, start_cpu = time.perf_counter(), time.process_time()
                for order in chunk:
                    place(order)
                spent[label] += time.perf_counter() - start
                cpu[label] += time.process_time() - start_cpu
        with bare.reading() as conn:
            placed = conn.execute(sa.text("SELECT count(*) FROM sales_orders")).scalar_one()
        bare.close()
        hooked.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if placed != count:
        raise SystemExit(f"placed {placed} orders, expected {count}")
    ratio = spent["hooked"] / spent["bare"]
    print(
        f"order placement {described}: {count / spent['hooked']:,.0f} orders/s, "
        f"{statements['hooked'][0] / count:.1f} SQL statements per order; "
        f"without: {count / spent['bare']:,.0f} orders/s, {statements['bare'][0] / count:.1f} statements; "
        f"CPU time with/without: {cpu['hooked'] / cpu['bare']:.2f}x",
        flush=True,
    )
    report(
        f"sales order placement ({count:,} orders × 3 lines, {described} vs none, SQLite)",
        ratio,
        "x",
        target=f"≤ {TARGET_RATIO:g}x",
        ok=ratio <= TARGET_RATIO,
        peer=f"peer no order hook: {count / spent['bare']:,.0f} orders/s ({spent['bare'] * 1e6 / count:.0f} µs each)",
        with_plugins=f"{count / spent['hooked']:,.0f} orders/s ({spent['hooked'] * 1e6 / count:.0f} µs each)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
