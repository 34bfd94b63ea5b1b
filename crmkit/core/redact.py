"""Secrets kept out of what is printed or logged: passwords in URLs, tokens in query strings and headers.

Configuration is shown with :func:`redact_options` and URLs with :func:`redact_url`; a redacted value reads
``***``. Options naming an environment variable (``password_env``, ``token_env``) and references
(``env:NAME``, ``file:/path``) are not secrets and stay.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HIDDEN = "***"
#: Names of options, headers and query parameters whose values are secrets.
SECRET_NAME = re.compile(
    r"pass(word|wd)?|secret|token|auth|api[-_]?key|apikey|credential|cookie|signature|^sig$|"
    r"^key$|private",
    re.IGNORECASE,
)


#: A secret reference, not a secret: ``env:NAME`` (an environment variable) or ``file:/path`` (``crmkit.core.secrets``).
_REFERENCE = re.compile(r"^(?:env:[A-Za-z_][A-Za-z0-9_]*|file:\S.*)$")


def is_reference(value: Any) -> bool:
    """Whether ``value`` is a secret reference (``env:NAME`` or ``file:/path``), shown as is, rather than a secret."""
    return isinstance(value, str) and _REFERENCE.match(value) is not None


def is_secret_name(name: str) -> bool:
    """Whether an option / header / query parameter called ``name`` holds a secret (``*_env`` names only point at one)."""
    return not name.lower().endswith("_env") and SECRET_NAME.search(name) is not None


def redact_url(url: str) -> str:
    """``url`` with the password of its user info and the values of secret query parameters replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:{HIDDEN}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(name) for name, _ in pairs):
            query = urlencode([(name, HIDDEN if is_secret_name(name) else value) for name, value in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a configuration mapping fit to show: secret-named values hidden, URLs redacted, nested mappings too."""
    return {str(name): _redacted(str(name), value) for name, value in options.items()}


def _redacted(name: str, value: Any) -> Any:
    if is_reference(value):
        return value
    if is_secret_name(name) and value not in (None, ""):
        return HIDDEN
    if isinstance(value, Mapping):
        return redact_options(value)
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


#: A URL in free text (an error message, a log line): scheme, then anything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
#: A URL split at its scheme: ``postgresql+psycopg://`` and the rest.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)$", re.DOTALL)
#: The end of a URL before an ``@`` when that ``@`` sits inside a query value (``?x=a@b``), not after a password.
_IN_QUERY = re.compile(r"[?&][^=&/]*=[^&]*$")


def mask_database_url(url: Any) -> str:
    """A database URL fit to show: its password hidden in every spelling — ``user:pa@ss@host`` (an unescaped
    ``@``), ``?password=``, secret query parameters — for text that SQLAlchemy's own parser splits wrongly."""
    text = url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else str(url)
    found = _SCHEME.match(text)
    if found is None:
        return text
    scheme, rest = found.groups()
    at = rest.rfind("@")
    while at > 0 and _IN_QUERY.search(rest[:at]):
        at = rest.rfind("@", 0, at)
    if at >= 0 and ":" in rest[:at]:
        rest = f"{rest[:at].split(':', 1)[0]}:{HIDDEN}{rest[at:]}"
    head, mark, query = rest.partition("?")
    if mark:
        query = "&".join(
            f"{name}={HIDDEN}" if is_secret_name(name) else f"{name}{eq}{value}"
            for name, eq, value in (pair.partition("=") for pair in query.split("&"))
        )
    return f"{scheme}{head}{mark}{query}"


def redact_text(text: str) -> str:
    """Free text (an error, a log line) with the password and secret parameters of every URL in it hidden."""
    return _URL_IN_TEXT.sub(_masked_in_text, text) if "://" in text else text


def _masked_in_text(found: re.Match[str]) -> str:
    url = found.group()
    kept = url.rstrip(":,.;)")  # the sentence's punctuation after the URL is not part of it
    return mask_database_url(kept) + url[len(kept) :]
