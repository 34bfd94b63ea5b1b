"""Accent-insensitive search keys: index-friendly prefix ranges instead of ``LIKE '%…%'`` scans.

Each customer gets rows in ``customer_search_keys``:

* ``n:`` + every word-suffix of the folded name (``nguyen van an``, ``van an``, ``an``),
  so a query matches names in which a word *starts* the query;
* ``e:`` + each e-mail, so a query matches e-mails that *start* with it;
* ``p:`` + each phone's digits reversed, so a query matches numbers that *end* with it.

A search is then one B-tree range scan per key kind, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from crmkit.core.text import fold

MAX_KEY = 200
_DIGITS = str.maketrans("", "", " +-.()/")


def search_keys(name: str, emails: Iterable[str] = (), phones: Iterable[str] = ()) -> set[str]:
    """The keys indexing one customer."""
    words = fold(name).split()
    keys = {"n:" + " ".join(words[i:])[:MAX_KEY] for i in range(len(words))}
    keys.update("e:" + email[:MAX_KEY] for email in emails)
    keys.update("p:" + phone.lstrip("+")[::-1] for phone in phones)
    return keys


def query_prefixes(query: str) -> list[str]:
    """The key prefixes a free-text query searches: name and e-mail, or phone digits."""
    text = fold(query)
    if not text:
        return []
    digits = text.translate(_DIGITS)
    if digits.isdigit():
        significant = digits.lstrip("0")
        return ["p:" + significant[::-1]] if len(significant) >= 3 else []
    prefixes = ["e:" + text.replace(" ", "")]
    if "@" not in text:
        prefixes.append("n:" + text)
    return prefixes


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (byte order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
