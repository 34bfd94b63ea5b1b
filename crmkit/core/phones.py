"""Phone numbers to E.164 (``0912 345 678`` in VN → ``+84912345678``).

`phonenumbers` (Google's libphonenumber) decides what is valid, but parsing costs
~55 µs a number, too slow for a million-row import. Numbers written the usual
national way (``0912…``) or with the region's own ``+CC`` are checked against a
regex compiled once from the same libphonenumber metadata; anything else goes
through ``phonenumbers`` itself. Both routes give the same answer (tested).
"""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata

_FORMATTING = re.compile(r"[\s.\-()/]")
_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


class PhoneError(ValueError):
    """The text is not a valid phone number for the given default country."""


@cache
def _region_rules(region: str) -> tuple[str, str, re.Pattern[str]] | None:
    """(country code, national prefix, valid-number regex) for a region with a single-region code."""
    meta = PhoneMetadata.metadata_for_region(region.upper())
    if meta is None:
        return None
    code = str(meta.country_code)
    if len(phonenumbers.region_codes_for_country_code(meta.country_code)) != 1:
        return None  # shared codes (+1, +7, …) need libphonenumber's region resolution
    patterns = [
        getattr(meta, t).national_number_pattern
        for t in _TYPES
        if getattr(meta, t) is not None and getattr(meta, t).national_number_pattern
    ]
    prefix_rule = meta.national_prefix_for_parsing
    if not patterns or meta.national_prefix_transform_rule or prefix_rule not in (None, meta.national_prefix):
        return None  # carrier-prefix stripping rules: leave to libphonenumber
    regex = re.compile("(?:" + "|".join(f"(?:{p})" for p in patterns) + ")")
    return code, meta.national_prefix or "", regex


def normalize_phone(raw: str, default_country: str = "VN") -> str:
    """E.164 form of ``raw``; national numbers take ``default_country`` (ISO 3166 alpha-2)."""
    text = _FORMATTING.sub("", raw.strip())
    if not text:
        raise PhoneError("empty phone number")
    rules = _region_rules(default_country) if default_country else None
    # ASCII only: str.isdigit() and regex \d also accept fullwidth or Arabic-Indic digits,
    # which libphonenumber converts but an f-string would copy verbatim into the result.
    if rules is not None and text.isascii() and text.lstrip("+").isdigit():
        code, national_prefix, regex = rules
        nsn = None
        if text.startswith("+" + code):
            nsn = text[len(code) + 1 :]
        elif national_prefix and text.startswith(national_prefix) and not text.startswith("00"):
            nsn = text[len(national_prefix) :]
        if nsn is not None and regex.fullmatch(nsn):
            return f"+{code}{nsn}"
    # Unusual forms (and every rejection) get libphonenumber's full rules and message.
    return _normalize_slow(raw, default_country)


def _normalize_slow(raw: str, default_country: str) -> str:
    try:
        number = phonenumbers.parse(raw, (default_country or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"not a phone number: {raw!r} ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def possible_phone(raw: str, default_country: str = "VN") -> str | None:
    """E.164 form of a number libphonenumber finds possible (right length) but not valid (not assigned), else None.

    An import may keep or drop such a number instead of losing the whole row (``--invalid-phone``).
    """
    try:
        number = phonenumbers.parse(raw, (default_country or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_valid_number(number) or not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
