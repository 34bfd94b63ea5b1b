"""``crm.plugins``: which plugins this database runs, and turning them on or off per database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmkit.core.tables import plugin_states
from crmkit.errors import NotFound

if TYPE_CHECKING:
    from crmkit.crm import CRM
    from crmkit.hooks.manager import PluginInfo


class PluginsAdmin:
    """Plugin status and per-database enablement (changes apply the next time the CRM is opened)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def list(self) -> list[PluginInfo]:
        """Every discovered plugin: name, version, status (enabled / disabled / failed) and hooks."""
        return self._crm.plugin_info()

    def enable(self, name: str) -> None:
        """Enable an installed plugin for this database."""
        self._set(name, True)

    def disable(self, name: str) -> None:
        """Disable a plugin for this database; its tables and data stay."""
        self._set(name, False)

    def _set(self, name: str, enabled: bool) -> None:
        self._crm.access.require("settings.admin")
        if name not in self._crm.registry.infos:
            raise NotFound("plugin", name)
        with self._crm.transaction() as session:
            conn = session.connection()
            updated = conn.execute(
                plugin_states.update()
                .where(plugin_states.c.name == name)
                .values(enabled=enabled, changed_at=self._crm.now())
            )
            if updated.rowcount == 0:
                conn.execute(plugin_states.insert().values(name=name, enabled=enabled, changed_at=self._crm.now()))
            self._crm.audit.record(session, "enable" if enabled else "disable", "plugin", name)
