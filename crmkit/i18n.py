"""Languages and formats: gettext catalogs and Babel formatting, one locale for everything a person reads.

The console, the CLI's human output and the HTML reports all ask :func:`translator` for a
:class:`Translator` (``vi`` or ``en``) chosen by :func:`negotiate`: the user's locale, else the
business setting ``locale``, else the browser's ``Accept-Language``, else Vietnamese.

Source strings are English; translations live in gettext ``.po`` files,
``<package>/locale/<locale>/LC_MESSAGES/<domain>.po`` (the core's is ``crmkit/locale/vi/LC_MESSAGES/crmkit.po``).
No ``.mo`` file is committed: the ``.po`` files are compiled in memory the first time a locale is
used. A plugin declares its own catalogs with the ``crmkit_translations`` hook; they translate its pages and
texts (before the core's catalog), never the core's pages or another plugin's. Machine formats (JSON, CSV, the API) stay
locale-independent and never go through this module.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from importlib.resources import files
from io import BytesIO
from typing import TYPE_CHECKING, Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import Translations

from crmkit.locales import CORE_CATALOG, DEFAULT_LOCALE, LOCALES, CatalogRef

if TYPE_CHECKING:
    from datetime import tzinfo

    from crmkit.crm import CRM
    from crmkit.money import Money

#: Date patterns per locale: Vietnamese writes ``06/12/2026`` (CLDR's short form would be ``6/12/26``).
DATE_FORMATS = {"vi": "dd/MM/yyyy", "en": "medium"}
#: Date-time patterns per locale: local time, then the zone's name (standard or daylight time).
DATETIME_FORMATS = {"vi": "dd/MM/yyyy HH:mm (zzzz)", "en": "MMM d, yyyy, h:mm a (zzzz)"}
#: A zone's name by (locale, zone, offset, daylight saving): CLDR's lookup costs more than the rest of the formatting.
_zone_names: dict[tuple[str, tzinfo, object, object], str] = {}

_lock = threading.Lock()
#: Translators by locale and the catalogs they were compiled from.
_translators: dict[tuple[str, tuple[tuple[str, str], ...]], Translator] = {}


def supported(locale: str | None) -> str | None:
    """The crmkit locale ``locale`` names (``"vi_VN"``, ``"vi-VN"`` and ``"VI"`` all name ``"vi"``), or None."""
    language = (locale or "").replace("_", "-").partition("-")[0].strip().lower()
    return language if language in LOCALES else None


def negotiate(user_locale: str | None, business_locale: str | None, accept_language: str | None) -> str:
    """The locale to speak: the user's, else the business setting, else the best ``Accept-Language`` match, else vi."""
    return supported(user_locale) or supported(business_locale) or _best_accepted(accept_language) or DEFAULT_LOCALE


def _best_accepted(header: str | None) -> str | None:
    """The crmkit locale the browser ranks highest (``vi-VN`` counts as ``vi``; ``q=0`` refuses; ``*`` is anything)."""
    ranked: list[tuple[float, int, int]] = []  # (-quality, position in the header, position in LOCALES)
    refused: set[int] = set()
    for position, item in enumerate((header or "").split(",")):
        tag, *params = (part.strip() for part in item.split(";"))
        weights = [value for key, _, value in (param.partition("=") for param in params) if key.strip() == "q"]
        try:
            quality = float(weights[0]) if weights else 1.0
        except ValueError:
            continue  # a malformed entry counts for nothing
        for index, locale in enumerate(LOCALES):
            if tag == "*" or supported(tag) == locale:
                if quality > 0:
                    ranked.append((-quality, position, index))
                else:
                    refused.add(index)
    acceptable = [entry for entry in ranked if entry[2] not in refused]
    return LOCALES[min(acceptable)[2]] if acceptable else None


class Translator:
    """Messages and formats in one locale; immutable once built, so one instance serves every thread."""

    def __init__(self, locale: str, translations: Translations) -> None:
        self.locale = locale
        self._locale = Locale.parse(locale)
        self._translations = translations

    def __repr__(self) -> str:
        return f"Translator({self.locale!r})"

    def gettext(self, message: str) -> str:
        """``message`` (English) in this locale; the message itself when no catalog translates it."""
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The form of ``singular``/``plural`` for ``n`` things, by this locale's plural rule (vi has one form)."""
        return self._translations.ngettext(singular, plural, n)

    def format_money(self, money: Money) -> str:
        """An amount as people here write it: vi ``1.234.567 ₫``, en ``₫1,234,567`` (a no-break space in vi)."""
        return format_currency(money.amount, money.currency, locale=self._locale)

    def format_number(self, value: int | Decimal, places: int | None = None) -> str:
        """A number with this locale's separators: vi ``1.234.567`` and ``60,1``, en ``1,234,567`` and ``60.1``;
        ``places`` fixes the decimals shown (``places=2``: vi ``5,00``), for figures read side by side."""
        if places is None:
            return format_decimal(value, locale=self._locale)
        pattern = "#,##0" + ("." + "0" * places if places else "")
        return format_decimal(value, pattern, locale=self._locale, decimal_quantization=True)

    def format_percent(self, value: Decimal | float) -> str:
        """A ratio as a percentage with at most one decimal: ``0.601`` is vi ``60,1%``, en ``60.1%``."""
        pattern = self._locale.percent_formats[None].pattern.replace("#,##0", "#,##0.#", 1)
        return format_percent(value, pattern, locale=self._locale)

    def format_date(self, value: date) -> str:
        """A calendar date: vi ``06/12/2026``, en ``Dec 6, 2026``."""
        return format_date(value, DATE_FORMATS[self.locale], locale=self._locale)

    def format_datetime(self, value: datetime, zone: tzinfo) -> str:
        """The local time in ``zone``, the zone named: vi ``06/12/2026 10:30 (Giờ chuẩn miền Đông)``."""
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
        local = value.astimezone(zone)
        key = (self.locale, zone, local.utcoffset(), local.dst())
        name = _zone_names.get(key)
        if name is None:
            name = _zone_names[key] = format_datetime(local, "zzzz", tzinfo=zone, locale=self._locale)
        when, _, _ = DATETIME_FORMATS[self.locale].rpartition(" (zzzz)")
        return f"{format_datetime(local, when, tzinfo=zone, locale=self._locale)} ({name})"

    def format_weekday(self, value: date) -> str:
        """The day of the week by name: vi ``Chủ Nhật``, en ``Sunday``."""
        return format_date(value, "EEEE", locale=self._locale)


#: Messages a person reads whose words vary (an id, a user, a limit): the English pattern and the msgid it is.
#: A ``rest`` group is kept as it is, after the translation. (The services' own messages are English.)
MESSAGE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?P<kind>[\w .-]+?) (?P<ident>'[^']*'|-?\d+) not found"), "%(kind)s %(ident)s not found"),
    (
        re.compile(r"user (?P<user>'[^']*') lacks permission (?P<permission>[\w.:*-]+?)(?P<rest>: .*)?"),
        "user %(user)s lacks permission %(permission)s",
    ),
    (re.compile(r"Longer than maximum length (?P<max>\d+)\."), "Longer than maximum length %(max)s."),
    (re.compile(r"Shorter than minimum length (?P<min>\d+)\."), "Shorter than minimum length %(min)s."),
    (
        re.compile(r"Length must be between (?P<min>\d+) and (?P<max>\d+)\."),
        "Length must be between %(min)s and %(max)s.",
    ),
    (re.compile(r"Must be one of: (?P<choices>.+)\."), "Must be one of: %(choices)s."),
    (re.compile(r"Must be greater than or equal to (?P<min>[\d.-]+)\."), "Must be greater than or equal to %(min)s."),
)


def translate_message(t: Translator, message: str, patterns: Sequence[tuple[re.Pattern[str], str]] = ()) -> str:
    """A service's English message as ``t``'s reader reads it: the catalog's translation of the whole message
    (marshmallow's ``Not a valid integer.``), else of a known pattern (a plugin's ``patterns`` first, then
    :data:`MESSAGE_PATTERNS`: ``customer 12 not found``), each part through the catalog too, else as it is.

    Only presentation layers call this (the CLI, the console, a report): the API and JSON keep the English message.
    """
    said = t.gettext(message)
    if said != message or t.locale == "en":
        return said
    for pattern, msgid in (*patterns, *MESSAGE_PATTERNS):
        found = pattern.fullmatch(message)
        if found and t.gettext(msgid) != msgid:
            parts = found.groupdict()
            rest = parts.pop("rest", None) or ""
            return t.gettext(msgid) % {key: t.gettext(value) for key, value in parts.items()} + rest
    return message


def translate_error(t: Translator, error: BaseException) -> str:
    """``error``'s one-line message in ``t``'s language: a ``ValidationError`` field by field (the field names and
    the row kept, each message through :func:`translate_message`), any other error's message as a whole."""
    from crmkit.errors import ValidationError

    if not isinstance(error, ValidationError):
        return translate_message(t, str(error))

    def flat(messages: Any) -> list[str]:
        if isinstance(messages, str):
            return [translate_message(t, messages)]
        if isinstance(messages, Mapping):
            return [f"{key}: {m}" for key, value in messages.items() for m in flat(value)]
        return [m for item in messages for m in flat(item)]

    parts = [
        "; ".join(flat(messages)) if field == "_" else f"{field}: {'; '.join(flat(messages))}"
        for field, messages in error.errors.items()
    ]
    prefix = t.gettext("row %(row)s: ") % {"row": error.row} if error.row is not None else ""
    return prefix + "; ".join(parts)


def translator(locale: str, catalogs: Sequence[CatalogRef] = ()) -> Translator:
    """The (cached) translator for ``locale``, one of :data:`LOCALES`: ``catalogs`` first (a plugin's, for its
    own pages and texts), then the core's. ``ValueError`` for any other locale.

    A plugin's words therefore serve its own pages only: the core's pages and other plugins' never see them.
    """
    chosen = supported(locale)
    if chosen is None:
        raise ValueError(f"unsupported locale {locale!r}: crmkit speaks {', '.join(LOCALES)}")
    sources = (*(tuple(c) for c in catalogs if tuple(c) != CORE_CATALOG), CORE_CATALOG)
    with _lock:
        found = _translators.get((chosen, sources))
        if found is None:
            found = _translators[chosen, sources] = Translator(chosen, _compile(chosen, sources))
        return found


def plugin_translator(crm: CRM, plugin: str, locale: str | None = None) -> Translator:
    """The translator for something ``plugin`` writes for people outside a request (an HTML report, a printable
    document): ``locale`` (e.g. the CLI's ``--locale``), else the business setting ``locale``, else vi; the plugin's
    own catalogs first (``crm.catalogs[plugin]``), then the core's."""
    return translator(negotiate(locale, crm.settings.get("locale"), None), crm.catalogs.get(plugin, ()))


def read_catalog(package: str, domain: str, locale: str, *, strict: bool = False) -> Catalog | None:
    """``package``'s parsed ``domain`` catalog for ``locale`` (``<package>/locale/<locale>/LC_MESSAGES/<domain>.po``).

    None when there is no such file. A malformed entry is skipped (a plugin's typo must not take the console
    down), or raises with ``strict=True`` — what the tests of a catalog use.
    """
    path = files(package) / "locale" / locale / "LC_MESSAGES" / f"{domain}.po"
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain=domain, abort_invalid=strict)


def _compile(locale: str, sources: Iterable[tuple[str, str]]) -> Translations:
    """The catalogs of ``sources`` for ``locale`` merged (first translation of a msgid wins), compiled in memory."""
    merged = Catalog(locale=locale, domain=CORE_CATALOG[1])
    for package, domain in sources:
        for message in read_catalog(package, domain, locale) or ():
            if is_translated(message) and merged.get(message.id, message.context) is None:
                merged[message.id] = message
    buffer = BytesIO()
    write_mo(buffer, merged)
    buffer.seek(0)
    return Translations(buffer, domain=CORE_CATALOG[1])


def is_translated(message: Message) -> bool:
    """Whether ``message`` is a real translation: not the header, not fuzzy, every plural form filled in."""
    strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
    return bool(message.id) and not message.fuzzy and all(strings)
