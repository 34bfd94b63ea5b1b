"""The object the ``crmkit.plugins`` entry point names: it only names the plugin's parts (nothing heavy is imported)."""

from crmkit import Plugin

plugin = Plugin(
    name="campaigns",
    description="Segments, consented multichannel campaigns, occasions (birthdays, Tết), A/B with holdout, tracking, ROI",
    hooks=("crmkit_campaigns.hooks", "crmkit_campaigns.events", "crmkit_campaigns.api", "crmkit_campaigns.console"),
    hookspecs="crmkit_campaigns.hookspecs",
    tables="crmkit_campaigns.models:metadata",
    migrations="crmkit_campaigns.migrations",
    cli="crmkit_campaigns.commands:campaigns",
)
