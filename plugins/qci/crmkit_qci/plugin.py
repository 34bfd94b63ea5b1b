"""The object the ``crmkit.plugins`` entry point names: it only names the plugin's parts (nothing heavy is imported)."""

from crmkit import Plugin

plugin = Plugin(
    name="qci",
    description="QCI workflow: assessment, KPI scorecard from the CRM's data, action plan and a printable report",
    hooks=("crmkit_qci.hooks", "crmkit_qci.api", "crmkit_qci.console"),
    tables="crmkit_qci.models:metadata",
    migrations="crmkit_qci.migrations",
    cli="crmkit_qci.commands:qci",
)
