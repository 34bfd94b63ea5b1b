"""The object the ``crmkit.plugins`` entry point names.

It only *names* the plugin's parts by dotted path, so discovering the plugin (and ``crmkit --help``)
imports nothing heavy: no SQLAlchemy, marshmallow or service module here.
"""

from crmkit import Plugin

plugin = Plugin(
    name="service",
    description="Customer service: cases, their conversation, assignment and SLAs in business hours",
    hooks=(
        "crmkit_service.hooks",
        "crmkit_service.events",
        "crmkit_service.api",
        "crmkit_service.console",
        "crmkit_service.hooks_desk",
        "crmkit_service.api_desk",
        "crmkit_service.console_desk",
        "crmkit_service.api_quality",
        "crmkit_service.console_quality",
    ),
    hookspecs="crmkit_service.hookspecs",
    tables="crmkit_service.models:metadata",
    migrations="crmkit_service.migrations",
    cli="crmkit_service.commands:service",
)
