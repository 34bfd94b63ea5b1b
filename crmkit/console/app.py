"""The console's WSGI dispatcher, mounted at ``/console`` by ``crmkit.web.create_app``: sessions, CSRF, pages.

Every page runs as the signed-in user through the same services as the API, so scopes and permissions
hold here too: a record outside the user's scope is the 404 page, a missing permission the 403 page.
Every response carries the security headers (CSP without inline scripts, no framing, no caching of pages).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    FunctionLoader,
    PackageLoader,
    pass_context,
    select_autoescape,
)
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from crmkit.console.extensions import ConsolePage, MenuEntry, Panel, Tile
from crmkit.console.sessions import (
    API_ACTION,
    COOKIE,
    IDLE,
    SAFE_METHODS,
    SIGN_IN_COOKIE,
    ConsoleSession,
    Sessions,
    csrf_token,
    csrf_valid,
    same_origin,
)
from crmkit.console.template_cache import COMPILED_TEMPLATES
from crmkit.errors import NotFound, PermissionDenied, PluginError
from crmkit.i18n import Translator, negotiate, translator
from crmkit.locales import CatalogRef
from crmkit.web.url_maps import url_map

if TYPE_CHECKING:
    from jinja2.runtime import Context

    from crmkit.core.models import User
    from crmkit.crm import CRM

PREFIX = "/console"
#: A folder of templates replacing the core's of the same name, set by whoever runs the server (never the database).
TEMPLATES_ENV = "CRMKIT_CONSOLE_TEMPLATES"
#: The largest file an import page takes while the user waits; bigger files go through the CLI.
MAX_UPLOAD = 10 << 20
#: The largest request body the console reads at all (an upload plus its form), checked before parsing.
MAX_REQUEST = MAX_UPLOAD + (256 << 10)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
StartResponse = Callable[..., Any]
Handler = Callable[["ConsoleRequest"], Response]


class ConsoleRequest:
    """One request to a console page: the CRM acting as the user, the route's params, and rendering helpers."""

    def __init__(
        self,
        app: ConsoleApp,
        http: Request,
        params: Mapping[str, Any],
        session: ConsoleSession | None,
        user: User | None,
        page: ConsolePage | None = None,
    ) -> None:
        self.app = app
        self.crm = app.crm
        self.http = http
        self.params = dict(params)
        self.session = session
        self.user = user
        self.locale = negotiate(
            user.locale if user else None, app.crm.settings.get("locale"), http.headers.get("Accept-Language")
        )
        #: The page's words: its plugin's catalogs first (for a plugin's page), then the core's.
        self.i18n: Translator = self.translator_of(page)

    def translator_of(self, item: Any) -> Translator:
        """The translator for a page, menu entry, panel or tile: its plugin's catalogs, then the core's."""
        return translator(self.locale, self.app.catalogs_of(item))

    def url(self, path: str, **query: Any) -> str:
        """``path`` (starting ``/console``) under the app's mount point, with the non-empty query arguments."""
        args = {k: v for k, v in query.items() if v not in (None, "")}
        return self.http.script_root + path + (f"?{urlencode(args)}" if args else "")

    def csrf(self, action: str) -> str:
        """The hidden token a form posting to ``action`` (a path starting ``/console``) carries."""
        return csrf_token(self.app.csrf_secret(self), action)

    @property
    def api_csrf(self) -> str:
        """The ``X-CSRF-Token`` header the page's htmx calls to the API send (``hx-headers`` on ``<body>``)."""
        return self.csrf(API_ACTION)

    def allowed(self, permission: str | None) -> bool:
        """Whether the user holds ``permission`` (None: everyone signed in)."""
        return permission is None or self.crm.access.allowed(permission)

    def render(self, template: str, *, status: int = 200, **values: Any) -> Response:
        """The page ``template`` (or, for an htmx request, its ``partial`` block when it has one) as HTML; the
        services' messages in ``errors`` (by input) shown in the user's language as far as the catalogs know them."""
        from crmkit.i18n import translate_message

        page = self.app.env.get_template(template)
        context = {
            "r": self,
            "_": self.i18n.gettext,
            "ngettext": self.i18n.ngettext,
            "i18n": self.i18n,
            "menu": self.app.menu_for(self) if self.user else [],
            "locale": self.i18n.locale,
            **values,
        }
        if isinstance(values.get("errors"), Mapping):
            context["errors"] = {
                field: [translate_message(self.i18n, m) if isinstance(m, str) else m for m in shown]
                if isinstance(shown, list)
                else shown
                for field, shown in values["errors"].items()
            }
        if self.http.headers.get("HX-Request") and "partial" in page.blocks:
            html = "".join(page.blocks["partial"](page.new_context(context)))
        else:
            html = page.render(context)
        return Response(html, status=status, content_type="text/html; charset=utf-8")

    def redirect(self, path: str, **query: Any) -> Response:
        """303 to a console page (htmx follows it by itself)."""
        return redirect(self.url(path, **query), 303)


def _template_source(name: str) -> tuple[str, None, Callable[[], bool]] | None:
    """A plugin's template ``"package:path"`` from its installed package."""
    package, sep, path = name.partition(":")
    if not sep:
        return None
    try:
        found = resources.files(package).joinpath(path)
    except ModuleNotFoundError:
        return None
    if not found.is_file():
        return None
    return found.read_text(encoding="utf-8"), None, lambda: True


@pass_context
def _money(context: Context, value: Any) -> str:
    return context["i18n"].format_money(value) if value is not None else ""


@pass_context
def _number(context: Context, value: Any) -> str:
    return context["i18n"].format_number(value) if value is not None else ""


@pass_context
def _date(context: Context, value: Any) -> str:
    return context["i18n"].format_date(value) if value is not None else ""


@pass_context
def _datetime(context: Context, value: Any) -> str:
    request: ConsoleRequest = context["r"]
    from crmkit.vncalendar import zone_named

    zone = zone_named(request.user.timezone) if request.user and request.user.timezone else request.crm.timezone
    return context["i18n"].format_datetime(value, zone) if value is not None else ""


class ConsoleApp:
    """The console's pages (the core's and every plugin's) behind one Werkzeug URL map under ``/console``."""

    def __init__(self, crm: CRM, *, templates: str | Path | None = None) -> None:
        """The console of ``crm``; ``templates`` (else ``$CRMKIT_CONSOLE_TEMPLATES``) is a folder whose files replace
        the core's templates of the same name (``base.html`` for a company's header, logo and colours)."""
        from crmkit.console import admin_pages, display, pages

        self.crm = crm
        self.sessions = Sessions(crm)
        overrides = templates or os.environ.get(TEMPLATES_ENV)
        self.env = Environment(
            loader=ChoiceLoader(
                [
                    *([FileSystemLoader(overrides)] if overrides else []),
                    PackageLoader("crmkit.console", "templates"),
                    FunctionLoader(_template_source),
                ]
            ),
            autoescape=select_autoescape(default=True, default_for_string=True),
            bytecode_cache=COMPILED_TEMPLATES,
        )
        self.env.filters.update(money=_money, number=_number, date=_date, datetime=_datetime, **display.FILTERS)
        self._owners: dict[Any, str] = {}
        self.pages: list[ConsolePage] = [
            *pages.core_pages(),
            *admin_pages.admin_pages(),
            *self._collected(crm.hooks.console_pages(), ConsolePage, "crmkit_console_pages", paths=True),
        ]
        self.menu: list[MenuEntry] = [
            *pages.CORE_MENU,
            *self._collected(crm.hooks.console_menu(), MenuEntry, "crmkit_console_menu"),
            *admin_pages.ADMIN_MENU,
        ]
        self.panels: list[Panel] = self._collected(crm.hooks.customer_panels(), Panel, "crmkit_customer_panels")
        self.tiles: list[Tile] = self._collected(crm.hooks.home_tiles(), Tile, "crmkit_home_tiles")
        self.url_map = url_map(tuple((page.path, n, tuple(page.methods)) for n, page in enumerate(self.pages)))

    def _collected(self, declared: list[tuple[str, Any]], kind: type, hook: str, paths: bool = False) -> list[Any]:
        """Every plugin's items of one hook, checked to be of ``kind`` (and, for pages, under ``/console/<plugin>/``),
        each remembered with its plugin (whose catalogs translate it)."""
        found = []
        for plugin, items in declared:
            for item in items:
                if not isinstance(item, kind):
                    raise PluginError(
                        plugin, f"{hook} returned {item!r}, not a crmkit.console.{kind.__name__}", hook=hook
                    )
                if paths and not item.path.startswith(f"{PREFIX}/{plugin}/"):
                    raise PluginError(plugin, f"console page {item.path} must live under {PREFIX}/{plugin}/", hook=hook)
                found.append(item)
                self._owners[item] = plugin
        return found

    def catalogs_of(self, item: Any) -> tuple[CatalogRef, ...]:
        """The gettext catalogs of the plugin that declared ``item`` (none for the core's own)."""
        return self.crm.catalogs.get(self._owners.get(item, ""), ())

    def menu_for(self, request: ConsoleRequest) -> list[tuple[str, list[tuple[MenuEntry, str]]]]:
        """The menu entries this user may open with their labels in the user's language, grouped: the core's one
        by one, each plugin's together under its first entry's label (a short menu with every plugin installed)."""
        groups: dict[str, tuple[str, list[tuple[MenuEntry, str]]]] = {}
        for n, entry in enumerate(self.menu):
            if request.allowed(entry.permission):
                label = request.translator_of(entry).gettext(entry.label)
                key = self._owners.get(entry) or f"#{n}"
                groups.setdefault(key, (label, []))[1].append((entry, label))
        return list(groups.values())

    def csrf_secret(self, request: ConsoleRequest) -> str:
        """The session's CSRF secret, or before sign-in the sign-in cookie's."""
        if request.session is not None:
            return request.session.csrf_secret
        return request.http.environ.setdefault(
            "crmkit.sign_in_secret", request.http.cookies.get(SIGN_IN_COOKIE) or _new_secret()
        )

    # -- WSGI ------------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        http = Request(environ)
        http.max_content_length = MAX_REQUEST
        try:
            response = self._dispatch(http)
        except RequestEntityTooLarge:  # refused from its Content-Length (or at the limit when chunked), unread
            response = ConsoleRequest(self, http, {}, None, None).render(
                "error.html",
                status=413,
                message="The file is larger than 10 MB: import it with the command crmkit customers import.",
            )
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-store")
        return response(environ, start_response)

    def _dispatch(self, http: Request) -> Response:
        if http.method in SAFE_METHODS:  # a page view reads its session, user and records on one connection
            with self.crm.reading_together():
                return self._signed_in(http)
        return self._signed_in(http)

    def _signed_in(self, http: Request) -> Response:
        """The request's page, as the user of its session cookie when the session is live."""
        token = http.cookies.get(COOKIE)
        session = self.sessions.find(token) if token else None
        if session is None:
            return self._route(http, None, None)
        user, principal = self.crm.users.get(session.username), self.crm.users.principal(session.username)
        with self.crm.access.acting(principal):
            return self._route(http, session, user)

    def _route(self, http: Request, session: ConsoleSession | None, user: User | None) -> Response:
        """The page of the request, run as the signed-in user (when there is one)."""
        adapter = self.url_map.bind_to_environ(http.environ)
        try:
            endpoint, params = adapter.match()
        except MethodNotAllowed as exc:
            return Response(status=405, headers={"Allow": ", ".join(exc.valid_methods or ())})
        except HTTPException:
            return ConsoleRequest(self, http, {}, session, user).render(
                "error.html", status=404, message="Page not found"
            )
        page = self.pages[int(endpoint)]
        request = ConsoleRequest(self, http, params, session, user, page)
        if http.method not in SAFE_METHODS and not self._trusted_change(request):
            return request.render("error.html", status=403, message="You may not do this.")
        if getattr(page.handler, "console_public", False):
            return self._finish(request, page.handler(request))
        if session is None:
            target = request.url("/console/sign-in", next=http.full_path.rstrip("?"))
            if http.headers.get("HX-Request"):  # htmx would follow a redirect and swap the sign-in page into a part
                return Response(status=204, headers={"HX-Redirect": target})
            return redirect(target, 303)
        try:
            if not request.allowed(page.permission) or not all(
                request.allowed(entry.permission)
                for entry in self.menu
                if entry.url.rstrip("/") == http.path.rstrip("/")
            ):
                raise PermissionDenied(page.permission or "console", session.username)
            return self._finish(request, page.handler(request))
        except NotFound:
            return request.render("error.html", status=404, message="Page not found")
        except PermissionDenied:
            return request.render("error.html", status=403, message="You may not do this.")

    def _trusted_change(self, request: ConsoleRequest) -> bool:
        """A change from the console's own page: same origin, and the form's CSRF token for this path (or, from
        htmx, the page's ``X-CSRF-Token`` header)."""
        secret, http = self.csrf_secret(request), request.http
        header = http.headers.get("X-CSRF-Token")
        return same_origin(http) and (
            csrf_valid(secret, http.path, http.form.get("csrf_token")) or csrf_valid(secret, API_ACTION, header)
        )

    def _finish(self, request: ConsoleRequest, response: Response) -> Response:
        """Set the sign-in form's CSRF cookie when a page made one up."""
        made = request.http.environ.get("crmkit.sign_in_secret")
        if made and made != request.http.cookies.get(SIGN_IN_COOKIE):
            set_cookie(request, response, SIGN_IN_COOKIE, made, max_age=IDLE)
        return response


def _new_secret() -> str:
    return secrets.token_hex(32)


def public(handler: Handler) -> Handler:
    """Mark a page that needs no session (signing in): it checks what it needs itself."""
    handler.console_public = True
    return handler


def set_cookie(request: ConsoleRequest, response: Response, name: str, value: str, *, max_age: Any = None) -> None:
    """A console cookie: HttpOnly, SameSite=Lax, Secure when the request came over https (behind the trusted proxy)."""
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="Lax", secure=request.http.scheme == "https"
    )
