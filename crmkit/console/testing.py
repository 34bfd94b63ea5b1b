"""Test helpers for console pages (the core's and plugins'): a signed-in Werkzeug client that fills forms like a person.

``console_user`` makes a user with a password; ``ConsoleBrowser(crm)`` signs in through the sign-in form,
opens pages, and ``submit`` posts a form found on a page with that form's own CSRF token; ``text`` is what
a person reads on a page (tags dropped, entities decoded, spaces collapsed); ``untranslated`` lists what a
plugin's console part shows that its catalogs leave in English.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from werkzeug.test import Client, TestResponse

PASSWORD = "correct horse battery staple"  # noqa: S105 - the test users' password
_FORM = re.compile(r"<form\b[^>]*\baction=\"([^\"]*)\"[^>]*>(.*?)</form>", re.DOTALL)
_TOKEN = re.compile(r"name=\"csrf_token\" value=\"([0-9a-f]+)\"")


def console_user(
    crm: Any,
    username: str,
    *,
    roles: Sequence[str] = ("sales",),
    teams: Sequence[str] = (),
    grants: Mapping[str, str] | None = None,
    locale: str | None = None,
    password: str = PASSWORD,
) -> Any:
    """An active user who can sign in to the console with ``password`` (created with ``crmkit.testing.add_user``)."""
    from crmkit.testing import add_user

    add_user(crm, username, teams=teams, roles=roles, grants=grants)
    crm.users.set_password(username, password)
    if locale:
        crm.users.update(username, locale=locale)
    return crm.users.get(username)


def text(response: TestResponse) -> str:
    """The words of a page as a person reads them."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", response.get_data(as_text=True), flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def csrf_of(page: TestResponse, action: str) -> str:
    """The CSRF token of the form on ``page`` posting to ``action``."""
    for target, inner in _FORM.findall(page.get_data(as_text=True)):
        if html.unescape(target) == action:
            found = _TOKEN.search(inner)
            if found:
                return found.group(1)
    raise AssertionError(f"no form posting to {action} with a csrf_token on the page")


class ConsoleBrowser:
    """A Werkzeug client of ``create_app(crm)`` keeping cookies like a browser, at ``base_url`` (http://localhost)."""

    def __init__(self, crm: Any, *, app: Any = None, base_url: str = "http://localhost") -> None:
        from crmkit.web import create_app

        self.client = Client(app if app is not None else create_app(crm))
        self.base_url = base_url

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        """Open a page (redirects are not followed unless ``follow_redirects=True``)."""
        return self.client.get(path, base_url=self.base_url, **kwargs)

    def post(self, path: str, data: Mapping[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        """A raw POST, with no token added (to test refusals)."""
        return self.client.post(path, data=dict(data or {}), base_url=self.base_url, **kwargs)

    def submit(self, page: str, action: str, data: Mapping[str, Any], **kwargs: Any) -> TestResponse:
        """Open ``page``, then post ``data`` to its form whose action is ``action``, with that form's token."""
        token = csrf_of(self.get(page), action)
        return self.post(action, {**data, "csrf_token": token}, **kwargs)

    def sign_in(self, username: str, password: str = PASSWORD) -> TestResponse:
        """Fill the sign-in form; a success answers 303 to the home page with the session cookie."""
        return self.submit("/console/sign-in", "/console/sign-in", {"username": username, "password": password})

    def cookie(self, name: str) -> Any:
        """The client's cookie ``name`` (None when it has none)."""
        return self.client.get_cookie(name, domain=self.base_url.split("://")[1].split("/")[0].split(":")[0])


_KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def untranslated(
    crm: Any, plugin: str, *, locale: str = "vi", sources: Sequence[str] = ("console.py",), also: Iterable[str] = ()
) -> list[str]:
    """What ``plugin``'s console part shows in English to a ``locale`` user: the msgids of ``_()``, ``gettext()``
    and ``ngettext()`` in its templates (``*.html`` under its package) and ``sources`` (modules of its package),
    its menu labels and panel and tile titles, and ``also`` (labels it looks up from tables), that neither its
    catalogs nor the core's translate. Its catalogs are read strictly (a malformed entry raises) and each
    translation must keep its msgid's ``%(name)s`` placeholders. A plugin's test asserts this is ``[]``.
    """
    from babel.messages.extract import extract_from_file

    from crmkit.i18n import is_translated, read_catalog
    from crmkit.locales import CORE_CATALOG

    catalogs = crm.catalogs.get(plugin, ())
    if not catalogs:
        raise AssertionError(f"plugin {plugin!r} declares no catalog (crmkit_translations)")
    known: set[str] = set()  # msgids a catalog translates, even to the same word ("IDIC")
    for package, domain in (*catalogs, CORE_CATALOG):
        for message in read_catalog(package, domain, locale, strict=(package, domain) != CORE_CATALOG) or ():
            if is_translated(message):
                known.add(message.id if isinstance(message.id, str) else message.id[0])
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            wanted = set(re.findall(r"%\(\w+\)\w", str(message.id)))
            for string in strings:
                if string and set(re.findall(r"%\(\w+\)\w", string)) != wanted:
                    raise AssertionError(f"{domain}.po: {message.id!r} -> {string!r} changes the placeholders")
    root = Path(str(files(catalogs[0][0])))
    found: set[tuple[str, str | None]] = set()  # (msgid, plural msgid)
    for method, path in [("jinja2", p) for p in sorted(root.rglob("*.html"))] + [("python", root / s) for s in sources]:
        for _, message, _, _ in extract_from_file(method, str(path), keywords=_KEYWORDS):
            found.add((message, None) if isinstance(message, str) else (message[0], message[1]))
    declared = [*crm.hooks.console_menu(), *crm.hooks.customer_panels(), *crm.hooks.home_tiles()]
    found |= {
        (getattr(item, "label", None) or item.title, None)
        for owner, items in declared
        if owner == plugin
        for item in items
    }
    found |= {(msgid, None) for msgid in also}
    return sorted(msgid for msgid, _plural in found if msgid not in known)
