"""QCI on the real purchase and analysis plugins: sales' orders are the purchases, analytics' runs feed
share of wallet and the age of the last analysis (reached by name and through ``crm.<service>`` only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crmkit_qci import periods


def test_purchases_from_sales_and_measures_from_analytics(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["sales", "analytics", "qci"])
    products = crm.sales.products
    products.add(
        sku="CF-ROB-500",
        name="Cà phê Robusta 500g",
        unit="gói",
        category="Cà phê",
        price_minor=100_000,
        currency="VND",
        cost_minor=60_000,
        tax_rate="0",
    )
    products.add(
        sku="GAO-ST25-5",
        name="Gạo ST25 túi 5kg",
        unit="túi",
        category="Gạo",
        price_minor=200_000,
        currency="VND",
        tax_rate="0",
    )  # no cost known: no margin for orders with it
    an = crm.customers.add(name="Nguyễn Văn An", attributes={"category_spend": 3_000_000}).id
    binh = crm.customers.add(name="Trần Thị Bình").id
    crm.sales.orders.place(customer_id=an, lines=[{"sku": "CF-ROB-500", "quantity": 3}])
    crm.sales.orders.place(customer_id=an, lines=[{"sku": "GAO-ST25-5", "quantity": 1}])
    crm.sales.orders.place(customer_id=binh, lines=[{"sku": "CF-ROB-500", "quantity": 1}])
    crm.interactions.log(an, "phone", employee="lan.nguyen")
    month = periods.current_month(crm)
    m = {x.key: x for x in crm.qci.kpis(month)}
    assert (m["purchases_per_buyer"].value, m["purchases_per_buyer"].detail) == (
        Decimal("1.50"),
        "3 purchases by 2 buyers",
    )
    assert m["revenue_per_employee"].value == 600_000  # 300.000 + 200.000 + 100.000, one employee
    assert m["gross_margin_rate"].value == Decimal("0.4000")  # (120.000 + 40.000) / (300.000 + 100.000)
    # sales' crmkit_value_transactions gives one row per order, without a product category
    assert m["multi_category_share"].status == "not available"
    assert (m["share_of_wallet"].status, m["analysis_age"].status) == ("no data", "no data")

    crm.analytics.rfm()
    crm.analytics.sow()
    m = {x.key: x for x in crm.qci.kpis(month, keys=["share_of_wallet", "analysis_age"])}
    sow = crm.analytics.latest("sow")
    assert m["share_of_wallet"].value == Decimal(str(sow.summary["share"])).quantize(Decimal("0.0001"))
    assert m["share_of_wallet"].detail.startswith("1 customer with a known category spend")
    assert (m["analysis_age"].value, m["analysis_age"].detail.split(" computed")[0]) == (0, "last analysis: sow")
