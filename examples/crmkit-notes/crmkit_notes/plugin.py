"""The object the ``crmkit.plugins`` entry point names.

It only *names* the plugin's parts by dotted path: crmkit imports them when a CRM
loads the plugin, so discovering it (and ``crmkit --help``) stays cheap. Keep it that
way — no SQLAlchemy, marshmallow or service imports here.
"""

from crmkit import Owned, Plugin

plugin = Plugin(
    name="notes",
    description="Free-text notes about customers",
    hooks=("crmkit_notes.hooks", "crmkit_notes.api", "crmkit_notes.console"),
    tables="crmkit_notes.models:metadata",
    migrations="crmkit_notes.migrations",
    cli="crmkit_notes.commands:notes",
    # the core exports a customer's notes, deletes them on erasure and moves them on a merge (and back on unmerge)
    personal_data={"notes": Owned("free-text notes staff wrote about the customer")},
)
