"""Orders of one customer placed, cancelled and refunded from several processes at once, every plugin enabled:
none fails, and the per-customer figures the plugins keep (analytics' aggregates, loyalty's balance) add up."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crmkit import CRM

WORKERS, ROUNDS, PRICE = 4, 3, 120_000

#: Opens the CRM with every installed plugin, waits for the start signal, then per round places three orders of
#: the same customer: one kept, one paid and half refunded, one cancelled. Prints each failure's type and message.
WORKER = """
import sys, time
from pathlib import Path
import crmkit
url, customer, rounds, ready, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
crm = crmkit.CRM(url, actor="lan")
orders = crm.sales.orders
ready.touch()
while not go.exists():
    time.sleep(0.005)
for _ in range(rounds):
    try:
        orders.place(customer_id=customer, lines=[{"sku": "CF-500", "quantity": 1}])
        paid = orders.place(customer_id=customer, lines=[{"sku": "CF-500", "quantity": 2}])
        crm.sales.payments.record(paid.id, paid.total_minor)
        orders.refund(paid.id, paid.total_minor // 2, reason="one bag returned")
        orders.cancel(orders.place(customer_id=customer, lines=[{"sku": "CF-500", "quantity": 1}]).id)
    except Exception as exc:
        print(type(exc).__name__, " | ".join(str(exc).splitlines()))
"""


def _run_workers(crm: CRM, customer_id: int, tmp_path: Path) -> list[str]:
    """Start :data:`WORKERS` processes, release them together, and return every failure they printed."""
    url = crm.engine.url.render_as_string(hide_password=False)
    go = tmp_path / "go"
    workers = []
    for n in range(WORKERS):
        ready = tmp_path / f"ready{n}"
        command = [sys.executable, "-c", WORKER, url, str(customer_id), str(ROUNDS), str(ready), str(go)]
        workers.append((ready, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    deadline = time.monotonic() + 300
    while not all(ready.exists() for ready, _ in workers) and time.monotonic() < deadline:
        assert all(process.poll() is None for _, process in workers), [p.communicate() for _, p in workers]
        time.sleep(0.05)
    go.touch()
    failures: list[str] = []
    for _, process in workers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        failures.extend(out.splitlines())
    return failures


def test_orders_of_one_customer_written_at_once_by_several_processes_all_succeed_and_add_up(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    crm = crm_factory(plugins=None)  # every installed plugin
    crm.users.add("lan", "Nguyễn Thị Lan", password="Sen-hong-2026!")
    crm.sales.products.add(sku="CF-500", name="Cà phê Robusta 500g", price_minor=PRICE, currency="VND", tax_rate="0%")
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn")

    assert _run_workers(crm, an.id, tmp_path) == []

    placed = crm.sales.orders.list(customer_id=an.id, limit=1000)
    assert sorted(o.status for o in placed).count("cancelled") == WORKERS * ROUNDS
    assert len(placed) == 3 * WORKERS * ROUNDS
    [purchases] = _purchases(crm, an.id)
    bought = WORKERS * ROUNDS
    assert (purchases["purchase_count"], purchases["total_minor"]) == (2 * bought, bought * (PRICE + 2 * PRICE - PRICE))
    crm.analytics.rebuild()  # recomputed from scratch: the figures the concurrent orders left are the same
    assert _purchases(crm, an.id) == [purchases]
    assert crm.loyalty.jobs.verify() == []  # every member's balance is the sum of their ledger, lots included


def _purchases(crm: CRM, customer_id: int) -> list[dict[str, Any]]:
    """The customer's purchase aggregates as analytics shows them, without the time they were computed."""
    return [
        {k: v for k, v in row.items() if k != "updated_at"}
        for row in crm.analytics.customer_values(customer_id)["purchases"]
    ]
