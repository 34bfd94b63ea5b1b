"""The reject file: the rows an import could not take, with their row, line and reason, in their original cells."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from crmkit.core.safe_csv import SafeWriter
from crmkit.core.transfer.columns import REJECT_COLUMNS

if TYPE_CHECKING:
    pass


class _RejectFile:
    """The reject file: written after each committed batch; a run without rejects removes an old one."""

    def __init__(self, path: Path, header: list[str], *, bom: bool = True) -> None:
        self.path = path
        self._header = header
        self._encoding = "utf-8-sig" if bom else "utf-8"  # with a BOM by default: the file is for people (Excel)
        self._file: IO[str] | None = None
        self._writer: Any = None

    def __enter__(self) -> _RejectFile:
        return self

    def write(self, rejects: Sequence[tuple[int, int, str, list[str]]]) -> None:
        if not rejects:
            return
        if self._writer is None:
            self._file = open(self.path, "w", encoding=self._encoding, newline="")  # noqa: SIM115 - closed in finish/__exit__
            self._writer = SafeWriter(self._file)
            self._writer.writerow(self._header)
        self._writer.writerows([row, line, reason, *original] for row, line, reason, original in rejects)
        assert self._file is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
        self._file.flush()

    def finish(self) -> Path | None:
        """Close the file; the path when rows were rejected."""
        if self._file is not None:
            self._file.close()
            return self.path
        if self.path.is_file():
            with open(self.path, encoding="utf-8-sig", errors="replace") as old:
                stale = old.readline().startswith(",".join(REJECT_COLUMNS))
            if stale:
                self.path.unlink()
        return None

    def __exit__(self, *exc: object) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
