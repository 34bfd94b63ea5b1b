"""The object the ``crmkit.plugins`` entry point names; it only names the plugin's parts (nothing heavy is imported)."""

from crmkit import Plugin

plugin = Plugin(
    name="analytics",
    description="RFM, customer types, past customer value, share of wallet, lifetime value, KPIs and reports",
    hooks=("crmkit_analytics.hooks", "crmkit_analytics.api", "crmkit_analytics.console"),
    tables="crmkit_analytics.models:metadata",
    migrations="crmkit_analytics.migrations",
    cli="crmkit_analytics.commands:analytics",
)
