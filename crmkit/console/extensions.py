"""What plugins add to the web console through hooks: pages, menu entries, customer-360 panels and home tiles.

Cheap to import (attrs only): a plugin's hook module builds these without loading Jinja or Werkzeug.
Templates are named ``"package:path"`` (``"crmkit_notes:console/panel.html"``), read from the plugin's
installed package; labels and titles are msgids, translated per user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from crmkit.console.app import ConsoleRequest
    from crmkit.core.models import Customer
    from crmkit.crm import CRM


@attrs.frozen
class ConsolePage:
    """A page under ``/console/<plugin>/``: a Werkzeug rule (``/console/notes/<int:note_id>``) and its handler."""

    path: str
    handler: Callable[[ConsoleRequest], Response]
    methods: tuple[str, ...] = ("GET",)
    permission: str | None = None  # a user without it gets the 403 page


@attrs.frozen
class MenuEntry:
    """A link in the console's menu, shown only to users holding ``permission``."""

    label: str  # a msgid
    url: str  # under /console/
    permission: str | None = None


@attrs.frozen
class Panel:
    """A section of the customer-360 page: ``template`` rendered with ``data`` = ``data(crm, customer)``."""

    name: str
    title: str  # a msgid
    template: str  # "package:path"
    data: Callable[[CRM, Customer], Any]
    permission: str | None = None


@attrs.frozen
class Tile:
    """A box on the home page: ``template`` rendered with ``data`` = ``data(crm)`` for the signed-in user."""

    name: str
    title: str  # a msgid
    template: str  # "package:path"
    data: Callable[[CRM], Any]
    permission: str | None = None


def static_files(plugin: str, package: str) -> ConsolePage:
    """The page serving ``package``'s ``static/`` CSS and JavaScript at ``/console/<plugin>/static/<name>``, cached
    by browsers for an hour; return it with your other pages and link your files from your templates'
    ``{% block head %}``."""

    def serve(request: ConsoleRequest) -> Response:
        from crmkit.console.pages import static_file

        return static_file(request, package, request.params["name"])

    return ConsolePage(f"/console/{plugin}/static/<name>", serve)
