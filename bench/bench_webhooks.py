"""Webhooks: delivery rate of two ``crmkit worker`` processes to a local receiver, and the outbox's cost on
``customers.add``.

Delivery: N events wait in the outbox; two worker processes deliver them (signed, one keep-alive
connection per thread) to a threaded HTTP server in this process; the rate is N over the time
from the first POST received to the last (process start-up is printed apart). Target ≥ 500
events/s. Outbox: customers added to a CRM with one subscription listening to
``customer.created`` vs. one whose subscription listens to something else (rounds alternate, as
in bench_hooks); target with/without ≤ 1.2.

    python bench/bench_webhooks.py --size full [--postgres URL]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import datagen
from bench._report import alternating_adds, parse_args, report, scale
from crmkit import CRM
from crmkit.testing import WebhookReceiver

TARGET_RATE = 500.0
TARGET_RATIO = 1.2
ROUNDS = 10
WORKERS = 2
CRMKIT = str(Path(sys.executable).with_name("crmkit"))


def outbox_cost(folder: Path, count: int) -> None:
    """``customers.add`` with a subscription listening to customer.created vs. one listening to another type."""
    inputs = [values for _, values in datagen.customer_values(datagen.Spec(count, 0))]
    quiet = CRM(f"sqlite:///{folder / 'quiet.db'}", plugins=[])
    loud = CRM(f"sqlite:///{folder / 'loud.db'}", plugins=[])
    for crm, events in ((quiet, ["interaction.logged"]), (loud, ["customer.created"])):
        datagen.add_staff(crm)
        crm.set_setting("webhooks.allow_private_urls", True)
        crm.webhooks.subscribe("http://127.0.0.1:9/hook", events)
    spent = alternating_adds({"quiet": quiet, "loud": loud}, inputs, source=datagen.SOURCE, rounds=ROUNDS)
    quiet.close()
    loud.close()
    ratio = spent["loud"] / spent["quiet"]
    report(
        f"outbox cost ({count:,} customers.add, one subscription listening vs none, SQLite)",
        ratio,
        "x",
        target=f"≤ {TARGET_RATIO:g}x",
        ok=ratio <= TARGET_RATIO,
        peer=f"peer none listening: {spent['quiet'] * 1e6 / count:.0f} µs each",
        listening=f"{spent['loud'] * 1e6 / count:.0f} µs each",
        load=f"{os.getloadavg()[0]:.1f}",
    )


def delivery_rate(url: str, label: str, count: int) -> None:
    """Two worker processes deliver ``count`` outbox events to a receiver in this process."""
    arrivals: list[float] = []
    lock = threading.Lock()

    def answer(body: Any, tries: int) -> int:
        with lock:
            arrivals.append(time.perf_counter())
        return 200

    crm = CRM(url, plugins=[])
    crm.set_setting("webhooks.allow_private_urls", True)
    customer = crm.customers.add(name="Nguyễn Văn An")
    with WebhookReceiver(answer=answer) as receiver:
        crm.webhooks.subscribe(receiver.url, ["interaction.logged"])
        for first in range(0, count, 5000):
            crm.interactions.log_many([{"customer_id": customer.id, "channel": "phone"}] * min(5000, count - first))
        env = {**os.environ, "CRMKIT_DISABLE_PLUGINS": ",".join(ep.name for ep in entry_points(group="crmkit.plugins"))}
        db = crm.engine.url.render_as_string(hide_password=False)
        started = time.perf_counter()
        workers = [
            subprocess.Popen(
                [CRMKIT, "--db", db, "worker", "--once", "--batch", "100", "--name", f"bench{i}"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(WORKERS)
        ]
        for worker in workers:
            _, err = worker.communicate(timeout=3600)
            if worker.returncode != 0:
                raise SystemExit(f"worker failed: {err[-2000:]}")
        wall = time.perf_counter() - started
    delivered = len(receiver.ids())
    pending = len(crm.webhooks.deliveries(status="pending", limit=10_000))
    crm.close()
    if delivered < count or pending:
        raise SystemExit(f"{label}: {delivered} of {count} events delivered, {pending} pending")
    rate = (count - 1) / (arrivals[-1] - arrivals[0]) if count > 1 else float(count)
    report(
        f"webhook delivery ({count:,} events, {WORKERS} workers, local receiver, {label})",
        rate,
        "events/s",
        target=f"≥ {TARGET_RATE:g} events/s",
        ok=rate >= TARGET_RATE,
        peer=f"wall with start-up {count / wall:,.0f} events/s ({wall:.1f} s)",
        load=f"{os.getloadavg()[0]:.1f}",
    )


@contextmanager
def postgres_database(server_url: str, name: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL server, dropped afterwards."""
    import sqlalchemy as sa

    from crmkit.storage import create_engine

    admin = create_engine(sa.make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """The outbox's cost, then the delivery rate on SQLite (and PostgreSQL when given)."""
    args = parse_args(__doc__.split("\n\n")[0], argv)
    adds = scale(args.size, tiny=50, small=2_000, full=5_000)
    events = scale(args.size, tiny=100, small=2_000, full=20_000)
    folder = Path(tempfile.mkdtemp(prefix="bench_webhooks_", dir=args.workdir))
    try:
        outbox_cost(folder, adds)
        delivery_rate(f"sqlite:///{folder / 'delivery.db'}", "SQLite", events)
        if args.postgres:
            with postgres_database(args.postgres, "crmkit_bench_webhooks") as url:
                delivery_rate(url, "PostgreSQL", events)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
