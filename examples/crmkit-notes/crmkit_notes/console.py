"""The plugin's part of the web console: a notes panel on the customer 360, a "My notes" page, its menu entry
and a home tile — each shown only to users holding ``notes.read``.

Templates live in ``crmkit_notes/templates/`` and are named ``"crmkit_notes:templates/…"``; the console renders
them with its helpers (``_``, ``r.url``, the ``datetime`` filter). Data comes from ``crm.notes`` as the signed-in user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmkit import hookimpl
from crmkit.console import ConsolePage, MenuEntry, Panel, Tile
from crmkit_notes.service import READ

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from crmkit.plugin_api import ConsoleRequest

MY_NOTES = "/console/notes/"


def my_notes(request: ConsoleRequest) -> Response:
    """The signed-in user's latest notes, each linking to its customer's 360."""
    return request.render("crmkit_notes:templates/my_notes.html", notes=request.crm.notes.mine(limit=50))


@hookimpl
def crmkit_console_pages() -> list[ConsolePage]:
    return [ConsolePage(MY_NOTES, my_notes, permission=READ)]


@hookimpl
def crmkit_console_menu() -> list[MenuEntry]:
    return [MenuEntry("My notes", MY_NOTES, permission=READ)]


@hookimpl
def crmkit_customer_panels() -> list[Panel]:
    return [
        Panel(
            "notes",
            "Notes",
            "crmkit_notes:templates/notes_panel.html",
            lambda crm, customer: crm.notes.summary(customer.id, latest=10),
            permission=READ,
        )
    ]


@hookimpl
def crmkit_home_tiles() -> list[Tile]:
    return [
        Tile(
            "notes",
            "My notes",
            "crmkit_notes:templates/notes_tile.html",
            lambda crm: crm.notes.mine(limit=3),
            permission=READ,
        )
    ]


@hookimpl
def crmkit_translations() -> list[tuple[str, str]]:
    return [("crmkit_notes", "crmkit_notes")]  # crmkit_notes/locale/vi/LC_MESSAGES/crmkit_notes.po
