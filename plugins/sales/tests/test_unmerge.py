"""Unmerge gives sales back what came from the merged customer: orders (with their lines, payments and refunds),
quotes, deals, contracts, appointments and tasks; orders placed for the kept customer since stay with it, even when
they are placed while the unmerge runs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Shop
from .test_customer_data import _fill

pytestmark = pytest.mark.crmkit_plugins("sales")


def holdings(crm: Any, customer_id: int) -> dict[str, list[int]]:
    """The ids of the sales rows listed for the customer, per kind."""
    sales = crm.sales
    return {
        "orders": sorted(o.id for o in sales.orders.list(customer_id=customer_id, limit=1000)),
        "deals": sorted(d.id for d in sales.deals.list(customer_id=customer_id)),
        "contracts": sorted(c.id for c in sales.contracts.list(customer_id=customer_id)),
    }


def test_unmerge_gives_back_every_sales_row_and_keeps_what_came_since(shop: Shop) -> None:
    crm = shop.crm
    _fill(crm, shop.an.id)
    other = crm.customers.add(name="Nguyễn Văn An", email="an.nguyen@example.com")
    _fill(crm, other.id)
    mine, theirs = holdings(crm, shop.an.id), holdings(crm, other.id)
    merge = crm.customers.merge_many([(shop.an.id, other.id)])[0]
    assert holdings(crm, shop.an.id) == {k: sorted(mine[k] + theirs[k]) for k in mine}
    since = crm.sales.orders.place(customer_id=shop.an.id, lines=[{"sku": "CF-ROB-500", "quantity": 1}])

    done = crm.customers.unmerge(merge.id)

    assert holdings(crm, other.id) == theirs
    assert holdings(crm, shop.an.id) == {**mine, "orders": sorted([*mine["orders"], since.id])}
    assert {"sales_orders", "sales_quotes", "sales_deals", "sales_contracts"} <= set(done.rows_moved_back)
    export = crm.customers.export_data(other.id)["sales"]
    assert (
        len(export["sales_quotes"]) == 1 and len(export["sales_appointments"]) == 1 and len(export["sales_tasks"]) == 1
    )
    assert export["sales_payments"] and export["sales_refunds"]  # child rows follow their order back


#: Places orders for the kept customer as fast as it can from the start signal until told to stop; prints their ids.
ORDERS = """
import sys, time
from pathlib import Path
import crmkit
url, customer, ready, go, stop = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
crm = crmkit.CRM(url, plugins=["sales"])
ready.touch()
while not go.exists():
    time.sleep(0.002)
while not stop.exists():
    print(crm.sales.orders.place(customer_id=customer, lines=[{"sku": "CF-ROB-500", "quantity": 1}]).id, flush=True)
"""


def test_orders_placed_for_the_kept_customer_while_an_unmerge_runs_stay_with_it(shop: Shop, tmp_path: Path) -> None:
    crm = shop.crm
    other = crm.customers.add(name="Nguyễn Văn An", email="an.nguyen@example.com")
    theirs = [
        crm.sales.orders.place(customer_id=other.id, lines=[{"sku": "CF-ROB-500", "quantity": n + 1}]).id
        for n in range(20)
    ]
    merge = crm.customers.merge_many([(shop.an.id, other.id)])[0]
    ready, go, stop = tmp_path / "ready", tmp_path / "go", tmp_path / "stop"
    url = crm.engine.url.render_as_string(hide_password=False)
    command = [sys.executable, "-c", ORDERS, url, str(shop.an.id), str(ready), str(go), str(stop)]
    placer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists() and placer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists(), placer.communicate()
    go.touch()
    time.sleep(0.3)  # orders are being placed
    crm.customers.unmerge(merge.id)
    time.sleep(0.3)
    stop.touch()
    out, err = placer.communicate(timeout=120)
    assert placer.returncode == 0, err
    placed = [int(line) for line in out.split()]
    assert placed
    assert holdings(crm, other.id)["orders"] == sorted(theirs)
    assert holdings(crm, shop.an.id)["orders"] == sorted(placed)
