"""Text normalisation shared by storage, search and imports.

Folding keeps Vietnamese and English searchable alike: diacritics are kept in
storage but removed from search keys, so ``nguyen`` finds ``Nguyễn`` and ``d``
matches ``đ``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPACES = re.compile(r"\s+")
# đ/Đ are letters of their own, not d + a combining mark, so NFD leaves them.
_EXTRA = str.maketrans({"đ": "d", "Đ": "d", "ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "ß": "ss"})


@lru_cache(maxsize=65536)
def _fold_word(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word.translate(_EXTRA))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def fold(text: str | None) -> str:
    """Lower-case, accent-free, single-spaced form of ``text`` used for search and sorting."""
    if not text:
        return ""
    if text.isascii():
        return " ".join(text.casefold().split())
    return " ".join(_fold_word(w) for w in _SPACES.split(text.strip()) if w)


def clean_name(text: str) -> str:
    """A display name with Unicode composed (NFC) and whitespace collapsed, diacritics kept."""
    return " ".join(unicodedata.normalize("NFC", text).split())


#: The longest address SMTP can deliver to (RFC 5321 path limit).
MAX_EMAIL = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")


def normalize_email(raw: str) -> str:
    """Trimmed, lower-cased e-mail address; raises ``ValueError`` when it is not one."""
    value = raw.strip().lower()
    if not _EMAIL.match(value) or ".." in value or len(value) > MAX_EMAIL:
        raise ValueError(f"not a valid e-mail address: {raw!r}")
    return value


#: Characters no single-line text holds: C0 controls (NUL…US), DEL, C1 controls, Unicode line/paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: The same for multi-line text, where tab, line feed and carriage return are text.
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def has_control_character(text: str) -> bool:
    """Whether ``text`` holds any control character (one search: the quick test of a whole row)."""
    return _CONTROL.search(text) is not None


def control_character(text: str, *, multiline: bool = False) -> str | None:
    """The first control character in ``text``, described (``U+0000 at position 4``), or None when it is clean.

    NUL would abort a PostgreSQL write and be cut off by SQLite; other controls forge lines in logs,
    CSV exports and terminals. Only a multi-line field (a summary, a message body) may hold tab and newlines.
    """
    found = (_CONTROL_MULTILINE if multiline else _CONTROL).search(text)
    return None if found is None else f"U+{ord(found.group()):04X} at position {found.start() + 1}"
