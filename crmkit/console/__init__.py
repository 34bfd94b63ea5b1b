"""The web console: server-rendered pages for people (Jinja2, htmx), served by the same app as the API at ``/console/``.

Plugins extend it through the hooks ``crmkit_console_pages``, ``crmkit_console_menu``,
``crmkit_customer_panels`` and ``crmkit_home_tiles`` with the objects defined here.
"""

from crmkit.console.extensions import ConsolePage, MenuEntry, Panel, Tile, static_files

__all__ = ["ConsolePage", "MenuEntry", "Panel", "Tile", "static_files"]
