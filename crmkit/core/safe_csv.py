"""CSV cells a spreadsheet will not run as formulas (OWASP's CSV-injection defence), and its exact inverse.

Every CSV crmkit writes goes through :class:`SafeWriter` (or :func:`neutralise` per cell): a cell
whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return — after any
single quotes it already starts with — gets one more single quote in front, so Excel,
LibreOffice and Google Sheets show it as text instead of evaluating ``=HYPERLINK(…)`` or
``+cmd|' /C calc'!A0``. A plain negative number (``-15``, ``-2.5``) cannot run anything and
stays a number. The customer and interaction imports call :func:`restore`, which removes
exactly the quote :func:`neutralise` added: ``restore(neutralise(s)) == s`` for every string,
so an export imports back unchanged (``+84912345678`` is written ``'+84912345678``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

#: The first characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_STARTS = frozenset("=+-@\t\r")
QUOTE = "'"
_NEGATIVE_NUMBER = re.compile(r"-[0-9]+(?:\.[0-9]+)?")


def _risky(text: str) -> bool:
    """True when ``text``, its leading quotes ignored, would start a formula."""
    bare = text.lstrip(QUOTE)
    return bool(bare) and bare[0] in FORMULA_STARTS and _NEGATIVE_NUMBER.fullmatch(bare) is None


def neutralise(cell: Any) -> Any:
    """``cell`` with a single quote in front when its text would start a formula; other values as they are."""
    if type(cell) is str and cell and (cell[0] in FORMULA_STARTS or cell[0] == QUOTE) and _risky(cell):
        return QUOTE + cell
    return cell


def restore(cell: str) -> str:
    """The value :func:`neutralise` was given: ``cell`` without the one quote it added, any other cell unchanged."""
    if cell[:1] == QUOTE and _risky(cell):
        return cell[1:]
    return cell


class SafeWriter:
    """A ``csv.writer`` (``\\n`` line ends) whose every cell goes through :func:`neutralise`."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row, its formula-like cells neutralised."""
        self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write every row of ``rows``, as :meth:`writerow` does."""
        for row in rows:
            self.writerow(row)
