"""The object the ``crmkit.plugins`` entry point names: it only names the plugin's parts (nothing heavy is imported)."""

from crmkit import Plugin

plugin = Plugin(
    name="idic",
    description="IDIC workflow: identify customers across channels, differentiate by value and needs, "
    "plan interactions, customize treatments",
    hooks=("crmkit_idic.hooks", "crmkit_idic.api", "crmkit_idic.console"),
    hookspecs="crmkit_idic.hookspecs",
    tables="crmkit_idic.models:metadata",
    migrations="crmkit_idic.migrations",
    cli="crmkit_idic.commands:idic",
)
