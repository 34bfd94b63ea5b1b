"""The object the ``crmkit.plugins`` entry point names: it only names the plugin's parts (nothing heavy is imported)."""

from crmkit import Plugin, Retained

plugin = Plugin(
    name="campaigns",
    description="Segments, consented multichannel campaigns, occasions (birthdays, Tết), A/B with holdout, tracking, ROI",
    hooks=("crmkit_campaigns.hooks", "crmkit_campaigns.events", "crmkit_campaigns.api", "crmkit_campaigns.console"),
    hookspecs="crmkit_campaigns.hookspecs",
    tables="crmkit_campaigns.models:metadata",
    migrations="crmkit_campaigns.migrations",
    cli="crmkit_campaigns.commands:campaigns",
    retained_tables={
        "campaign_suppressions": Retained(
            "a suppressed address must stay blocked should it come back: kept as a keyed digest of the address, "
            "unlinked from the customer, its reason replaced",
            personal=("address", "customer_id", "reason"),
        )
    },
)
