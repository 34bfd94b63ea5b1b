"""Which languages crmkit speaks and where the core's gettext catalog is: cheap to import (no Babel).

:mod:`crmkit.i18n` formats and translates; this module only names the locales, so opening a CRM or
parsing ``--locale`` does not load Babel. A plugin's catalogs are declared by its ``crmkit_translations``
hook and kept per plugin on the CRM (``crm.catalogs``).
"""

from __future__ import annotations

#: The languages crmkit speaks, the default first.
LOCALES = ("vi", "en")
DEFAULT_LOCALE = LOCALES[0]

#: A gettext catalog as (package, domain): ``<package>/locale/<locale>/LC_MESSAGES/<domain>.po``.
CatalogRef = tuple[str, str]

#: The core's catalog: ``crmkit/locale/<locale>/LC_MESSAGES/crmkit.po``.
CORE_CATALOG: CatalogRef = ("crmkit", "crmkit")
