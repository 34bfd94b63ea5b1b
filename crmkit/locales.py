"""Which languages crmkit speaks and where their gettext catalogs are: cheap to import (no Babel).

:mod:`crmkit.i18n` formats and translates; this module only names the locales and keeps the list of
catalogs the core and plugins ship, so opening a CRM or parsing ``--locale`` does not load Babel.
"""

from __future__ import annotations

import threading

#: The languages crmkit speaks, the default first.
LOCALES = ("vi", "en")
DEFAULT_LOCALE = LOCALES[0]

#: The core's catalog, as (package, domain): ``crmkit/locale/<locale>/LC_MESSAGES/crmkit.po``.
CORE_CATALOG = ("crmkit", "crmkit")

_lock = threading.Lock()
_sources: list[tuple[str, str]] = [CORE_CATALOG]


def register_catalog(package: str, domain: str) -> None:
    """Add ``<package>/locale/<locale>/LC_MESSAGES/<domain>.po`` to every locale, after the catalogs already there.

    Plugins declare theirs with the ``crmkit_translations`` hook and the CRM registers them when it opens:
    translators built afterwards include its strings, but a msgid an earlier catalog (the core's first)
    already translates keeps that translation. A locale the plugin has no ``.po`` for is simply skipped.
    """
    with _lock:
        if (package, domain) not in _sources:
            _sources.append((package, domain))


def catalog_sources() -> tuple[tuple[str, str], ...]:
    """Every registered catalog, the core's first (earlier ones win on a shared msgid)."""
    with _lock:
        return tuple(_sources)
