"""Fixtures: a CRM with analytics and the table-backed purchase source of ``crmkit_analytics.testing``."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crmkit_analytics.testing import SOURCE, Shop

# Before NumPy and SciPy load (nothing above loads them): the models are fitted on small arrays, where BLAS
# threads only spin — on a busy two-core machine a CLV fit took 1.4 s with them and 0.1 s without.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@pytest.fixture
def analytics_crm(crm_factory: Callable[..., Any]) -> Any:
    """A CRM with the analytics plugin and the stand-in purchase source (its table created)."""
    return crm_factory(plugins=["analytics", SOURCE])


@pytest.fixture
def shop(analytics_crm: Any) -> Shop:
    """Buy things for customers of ``analytics_crm``."""
    return Shop(analytics_crm)


@pytest.fixture
def people(analytics_crm: Any) -> Callable[..., list[int]]:
    """``people(n, **fields)`` adds ``n`` customers (Vietnamese names) and returns their ids."""
    names = [
        "Nguyễn Văn An",
        "Trần Thị Bình",
        "Lê Minh Châu",
        "Phạm Quốc Dũng",
        "Hoàng Thu Hà",
        "Vũ Đức Hải",
        "Đặng Mai Lan",
        "Bùi Thanh Long",
        "Đỗ Ngọc Mai",
        "Hồ Quang Nam",
    ]

    def make(n: int, **fields: Any) -> list[int]:
        return [analytics_crm.customers.add(name=f"{names[i % len(names)]} {i}", **fields).id for i in range(n)]

    return make


@pytest.fixture
def purchase_history() -> Callable[..., list[int]]:
    """``purchase_history(crm, customers=24, owner=None)``: customers with 1–6 purchases of 1.500.000 ₫ each over
    the last 500 days (an import, aggregated on the first read; every third customer is ``owner``'s); their ids.
    For the console's tests, where measures are computed as of now."""

    def make(crm: Any, customers: int = 24, owner: str | None = None) -> list[int]:
        now = datetime.now(UTC)
        ids, rows = [], []
        for n in range(customers):
            customer = crm.customers.add(name=f"Khách hàng {n:02d}", owner=owner if n % 3 == 0 else None)
            ids.append(customer.id)
            rows.extend(
                {
                    "customer_id": customer.id,
                    "occurred_at": now - timedelta(days=(n * 37 + k * 61) % 500 + 1),
                    "amount_minor": 1_500_000,
                    "currency": "VND",
                }
                for k in range(1 + n % 6)
            )
        Shop(crm).insert_quietly(rows)
        return ids

    return make
