"""The object the ``crmkit.plugins`` entry point names: it only names the plugin's parts (nothing heavy is imported)."""

from crmkit import Plugin, Retained

plugin = Plugin(
    name="loyalty",
    description="Loyalty points: programs, earn rules, an append-only ledger, rewards, tiers and reports",
    hooks=("crmkit_loyalty.hooks", "crmkit_loyalty.events", "crmkit_loyalty.api", "crmkit_loyalty.console"),
    hookspecs="crmkit_loyalty.hookspecs",
    requires=("sales",),
    tables="crmkit_loyalty.models:metadata",
    migrations="crmkit_loyalty.migrations",
    cli="crmkit_loyalty.commands:loyalty",
    retained_tables={
        "loyalty_ledger": Retained(
            "points are a liability of the business: the ledger is kept for its accounts, with the "
            "notes removed and the balance forfeited, linked only to the anonymized customer record",
            personal=("note",),
        )
    },
)
