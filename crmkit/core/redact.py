"""Secrets kept out of what is printed or logged: passwords in URLs, tokens in query strings and headers.

Configuration is shown with :func:`redact_options` and URLs with :func:`redact_url`; a redacted value reads
``***``. Options naming an environment variable (``password_env``, ``token_env``) are not secrets and stay.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HIDDEN = "***"
#: Names of options, headers and query parameters whose values are secrets.
SECRET_NAME = re.compile(r"pass(word|wd)?|secret|token|auth|api[-_]?key|apikey|credential|cookie|signature|^sig$|"
                         r"^key$|private", re.IGNORECASE)


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
    if is_secret_name(name) and value not in (None, ""):
        return HIDDEN
    if isinstance(value, Mapping):
        return redact_options(value)
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value
