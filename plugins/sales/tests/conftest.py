"""Shared set-up for the sales tests: a CRM with the sales plugin, a few customers, a small catalogue and the staff."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from crmkit import NotFound, Plugin, hookimpl
from crmkit.testing import add_user

#: Employees the tests name as owners of deals and orders, and of appointments and tasks (users now).
STAFF = ("lan.nguyen", "minh.tran")


@attrs.frozen
class Shop:
    """A CRM with customers (``an``: retail, VN address; ``dist``: a distributor; ``bob``: no address) and products."""

    crm: Any
    an: Any
    dist: Any
    bob: Any


@pytest.fixture
def shop(crm: Any) -> Shop:
    """The standard shop on the test's ``crm`` (mark the module ``crmkit_plugins("sales")``)."""
    return make_shop(crm)


def ensure_users(crm: Any, *usernames: str) -> None:
    """Make these users (no role) unless they exist: owners and employees must be users."""
    for username in usernames:
        try:
            crm.users.get(username)
        except NotFound:
            add_user(crm, username)


def make_shop(crm: Any) -> Shop:
    """Customers and a catalogue (three VND products with VAT 10/5/8%, one USD product at 0%) on ``crm``,
    and the :data:`STAFF` as users."""
    ensure_users(crm, *STAFF)
    an = crm.customers.add(
        name="Nguyễn Văn An",
        email="an@example.com",
        tags=["vip"],
        addresses=[
            {
                "line1": "12 Lý Thường Kiệt",
                "ward": "Phường Hàng Bài",
                "district": "Quận Hoàn Kiếm",
                "province": "Hà Nội",
            }
        ],
    )
    dist = crm.customers.add(
        name="Công ty TNHH Phân phối Mekong",
        kind="organization",
        lifecycle_stage="distributor",
        addresses=[
            {"line1": "88 Trần Hưng Đạo", "ward": "Phường 1", "district": "Quận 5", "province": "TP. Hồ Chí Minh"}
        ],
    )
    bob = crm.customers.add(name="Bob Smith", email="bob@example.com", country="US")
    products = crm.sales.products
    products.add(
        sku="CF-ROB-500",
        name="Cà phê Robusta 500g",
        unit="gói",
        category="Cà phê",
        price_minor=95_000,
        currency="VND",
        cost_minor=61_000,
        tax_rate="10%",
    )
    products.add(
        sku="GAO-ST25-5",
        name="Gạo ST25 túi 5kg",
        unit="túi",
        category="Gạo",
        price_minor=185_000,
        currency="VND",
        cost_minor=140_000,
        tax_rate="5%",
    )
    products.add(
        sku="DV-BT-GIO",
        name="Dịch vụ bảo trì (giờ)",
        kind="service",
        unit="giờ",
        category="Dịch vụ",
        price_minor=350_000,
        currency="VND",
        tax_rate="8%",
    )
    products.add(
        sku="TEA-GIFT",
        name="Shan Tuyet tea gift box",
        unit="box",
        category="Trà",
        price_minor=1_250,
        currency="USD",
        cost_minor=700,
        tax_rate="0",
    )
    return Shop(crm, an, dist, bob)


def count(crm: Any, table: sa.Table) -> int:
    """Rows in a table (to prove that a refused write left nothing behind)."""
    with crm.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


class Recorder:
    """An inline plugin recording every sales hook call it receives (as loyalty or analytics would react)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    @hookimpl
    def crmkit_order_placed(self, order: Any, session: Any) -> None:
        self.calls.append(("order_placed", {"order": order, "session": session}))

    @hookimpl
    def crmkit_order_refunded(self, order: Any, refund: Any) -> None:
        self.calls.append(("order_refunded", {"order": order, "refund": refund}))

    @hookimpl
    def crmkit_order_cancelled(self, order: Any) -> None:
        self.calls.append(("order_cancelled", {"order": order}))

    @hookimpl
    def crmkit_payment_recorded(self, order: Any, payment: Any) -> None:
        self.calls.append(("payment_recorded", {"order": order, "payment": payment}))

    @hookimpl
    def crmkit_deal_stage_changed(self, deal: Any, old_stage: Any, new_stage: Any) -> None:
        self.calls.append(("deal_stage_changed", {"deal": deal, "old": old_stage, "new": new_stage}))


@pytest.fixture
def recorded(crm_factory: Any) -> tuple[Shop, Recorder]:
    """A shop whose CRM also runs a :class:`Recorder` plugin (requires sales)."""
    recorder = Recorder()
    crm = crm_factory(plugins=["sales", Plugin(name="recorder", hooks=(recorder,), requires=("sales",))])
    return make_shop(crm), recorder
