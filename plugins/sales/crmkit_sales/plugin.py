"""The object the ``crmkit.plugins`` entry point names: it only *names* the plugin's parts, so discovery stays cheap."""

from crmkit import Plugin, Retained

plugin = Plugin(
    name="sales",
    description="Catalogue, price lists, pipelines and deals, quotes, orders, payments, contracts, appointments, tasks",
    hooks=("crmkit_sales.hooks", "crmkit_sales.events", "crmkit_sales.api", "crmkit_sales.console"),
    hookspecs="crmkit_sales.hookspecs",
    tables="crmkit_sales.models:metadata",
    migrations="crmkit_sales.migrations",
    cli="crmkit_sales.commands:sales",
    retained_tables={
        "sales_orders": Retained(
            "orders are accounting documents the law requires a business to keep (10 years under "
            "Vietnam's Law on Accounting); kept with shipping name, phone, address and notes removed",
            personal=("shipping_name", "shipping_phone", "shipping_address", "notes", "cancel_reason"),
        ),
        "sales_contracts": Retained(
            "signed contracts are legal and accounting records; kept with notes removed", personal=("title", "notes")
        ),
        "sales_order_lines": Retained("the lines of retained orders (products, quantities, prices: no personal data)"),
        "sales_payments": Retained(
            "payments received are accounting records; kept with reference and note removed",
            personal=("reference", "note"),
        ),
        "sales_refunds": Retained(
            "refunds paid are accounting records; kept with the free-text reason removed", personal=("reason",)
        ),
    },
)
