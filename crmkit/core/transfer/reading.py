"""Reading a CSV or JSON Lines file as numbered records of crmkit cells, streamed (the file is never held)."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs

from crmkit.core.safe_csv import QUOTE, restore
from crmkit.core.transfer.columns import _ADDRESS, ATTRIBUTE_PREFIX, COLUMNS, CONSENT_PREFIX, REJECT_COLUMNS
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    pass


def _format_of(source: Any, given: str | None) -> str:
    if given is not None:
        if given not in ("csv", "jsonl"):
            raise ValidationError("must be csv or jsonl", field="format")
        return given
    name = str(source) if isinstance(source, (str, os.PathLike)) else str(getattr(source, "name", ""))
    return "jsonl" if name.lower().endswith((".jsonl", ".ndjson")) else "csv"


def _label(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) else "stream"


def _default_reject_path(source: Any) -> Path:
    if isinstance(source, (str, os.PathLike)):
        return Path(f"{os.fspath(source)}.rejects.csv")
    name = getattr(source, "name", None)
    if isinstance(name, str) and os.path.isfile(name):
        return Path(f"{name}.rejects.csv")
    return Path("import.rejects.csv")


@contextmanager
def _open_source(source: Any) -> Iterator[IO[Any]]:
    if isinstance(source, (str, os.PathLike)):
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ValidationError(f"cannot read {os.fspath(source)}: {exc.strerror}", field="file") from None
        with stream:
            yield stream
    else:
        yield source


class _Lines:
    """The lines of a stream as text, numbered; keeps those of the record being read."""

    def __init__(self, stream: IO[Any], label: str) -> None:
        self._lines = iter(stream)
        self._label = label
        self.number = 0
        self.held: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = next(self._lines)
        self.number += 1
        if type(raw) is bytes:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(self._label, self.number, raw, exc) from None
        else:
            text = raw
        if self.number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        self.held.append(text)
        return text

    def take(self) -> str:
        """The text of the lines read since the last call (the record just read)."""
        text = "".join(self.held)
        self.held.clear()
        return text


def _not_utf8(label: str, line: int, raw: bytes, exc: UnicodeDecodeError) -> ValidationError:
    column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
    return ValidationError(
        f"{label}: line {line} is not UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}); "
        "save the file as UTF-8 (Excel: CSV UTF-8)"
    )


def _check_utf8(stream: IO[Any], label: str) -> None:
    """Fail before anything is written when a (seekable, binary) file is not UTF-8 throughout."""
    start = stream.tell()
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := stream.read(1 << 20):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        stream.seek(start)
        lines = _Lines(stream, label)
        for _ in lines:
            lines.held.clear()
        raise ValidationError(f"{label}: the last line is not complete UTF-8; save the file as UTF-8") from None
    stream.seek(start)


@attrs.define
class _Record:
    """One data row as read: its number, first line, crmkit cells (or why it is unreadable) and original cells."""

    row: int
    line: int
    cells: dict[str, Any] | None
    original: list[str]
    error: str | None = None
    with_address: bool = False


class _Reader:
    """Streams records from CSV or JSON Lines, mapping the file's columns to crmkit's (a customer file's here;
    a subclass reads another kind of file by its own ``COLUMNS``, ``_prefixed`` and ``_check_header``).

    Problems with the whole file (not UTF-8, unknown columns, no external_id column) raise
    ``ValidationError`` here, before anything is written.
    """

    COLUMNS: tuple[str, ...] = COLUMNS
    #: The column that identifies a row's record, so that a re-run finds it instead of adding it again.
    KEY = "external_id"
    #: What a JSON number with a fraction becomes (``Decimal`` for a file of money amounts: never a float).
    PARSE_FLOAT: Callable[[str], Any] = float

    def __init__(
        self, stream: IO[Any], fmt: str, mapping: Mapping[str, str], channels: Sequence[str], label: str
    ) -> None:
        self._fmt = fmt
        self._mapping = {k.strip(): v for k, v in mapping.items()}
        self._channels = channels
        self._label = label
        if isinstance(stream, (io.BufferedIOBase, io.RawIOBase)) and stream.seekable():
            _check_utf8(stream, label)
        self._lines = _Lines(stream, label)
        self._first: _Record | None = None
        if fmt == "csv":
            self._csv = csv.reader(self._lines, strict=True)
            header = self._read_header()
            missing = [k for k in self._mapping if k not in header]
            if missing:
                raise ValidationError(f"{label}: the mapping names columns the file does not have: {_names(missing)}")
            self._targets = self._plan(header)
            present = set(self._targets)
            if self.KEY not in present:
                raise ValidationError(
                    f"{label}: no {self.KEY} column: every row needs one so that a re-run updates "
                    f"it instead of adding it twice (map yours, e.g. --map 'ID={self.KEY}')"
                )
            self._check_header(present)
            self.reject_header = [*REJECT_COLUMNS, *header]
            self._with_address = bool(present & _ADDRESS.keys())
        else:
            self.reject_header = [*REJECT_COLUMNS, "json"]
            self._first = self._next_json(1, first=True)

    def __iter__(self) -> Iterator[_Record]:
        if self._fmt == "csv":
            return self._csv_records()
        return self._json_records()

    def _check_header(self, present: set[str | None]) -> None:
        """Raise when a CSV header lacks a column every row needs (besides external_id)."""
        if not {"name", "given_name", "family_name"} & present:
            raise ValidationError(f"{self._label}: no name column (name, or given_name / family_name)")

    def _prefixed(self, name: str, lowered: str) -> str | bool:
        """The crmkit column of a prefixed file column (``consent_email``, ``attr_so_thich``), else False."""
        if lowered.startswith(CONSENT_PREFIX) and lowered[len(CONSENT_PREFIX) :] in self._channels:
            return lowered
        if lowered.startswith(ATTRIBUTE_PREFIX) and len(name) > len(ATTRIBUTE_PREFIX):
            return ATTRIBUTE_PREFIX + name[len(ATTRIBUTE_PREFIX) :]
        return False

    def _described(self) -> str:
        """The columns a file may have, for the unknown-columns error."""
        return f"{', '.join(self.COLUMNS)}, {CONSENT_PREFIX}<{'|'.join(self._channels)}> and {ATTRIBUTE_PREFIX}<name>"

    def _plan(self, header: Sequence[str]) -> list[str | None]:
        """The crmkit column of each file column (None: skipped); the error names every unknown column."""
        targets: list[str | None] = []
        unknown: list[str] = []
        seen: dict[str, str] = {}
        for name in header:
            target = self._target(name)
            if target is False:
                unknown.append(name)
            elif target:
                if target in seen:
                    raise ValidationError(f"{self._label}: columns {seen[target]!r} and {name!r} are both {target}")
                seen[target] = name
            targets.append(target or None)
        if unknown:
            raise ValidationError(
                f"{self._label}: unknown column(s) {_names(unknown)}: map each to a crmkit column "
                f"(--map 'FILE_COLUMN=COLUMN') or remove it; the columns are {self._described()}"
            )
        return targets

    def _target(self, name: str) -> str | None | bool:
        """The crmkit column for file column ``name``: a column, None (skipped) or False (unknown)."""
        if name in self._mapping:
            name = self._mapping[name].strip()
            if not name or name == "-":
                return None
        elif name in REJECT_COLUMNS:
            return None
        lowered = name.lower()
        if lowered in self.COLUMNS:
            return lowered
        return self._prefixed(name, lowered)

    # CSV

    def _read_header(self) -> list[str]:
        try:
            for cells in self._csv:
                if cells:
                    self._lines.held.clear()
                    return [c.strip() for c in cells]
        except csv.Error as exc:
            raise ValidationError(
                f"{self._label}: the header (line {self._lines.number}) is not valid CSV: {exc}"
            ) from None
        raise ValidationError(f"{self._label}: the file is empty; its first line must name the columns")

    def _csv_records(self) -> Iterator[_Record]:
        targets = self._targets
        width = len(targets)
        lines = self._lines
        row = 0
        while True:
            start = lines.number + 1
            try:
                cells = next(self._csv)
            except StopIteration:
                return
            except csv.Error as exc:
                row += 1
                yield _Record(row, start, None, [lines.take().rstrip("\r\n")], f"line {start}: not valid CSV ({exc})")
                continue
            quoted = any(QUOTE in line for line in lines.held)
            lines.held.clear()
            if not cells:
                continue
            row += 1
            if quoted:  # remove the quote an export put before a formula-like cell
                cells = [restore(c) for c in cells]
            if len(cells) > width and not any(c.strip() for c in cells[width:]):
                cells = cells[:width]
            if len(cells) != width:
                yield _Record(
                    row,
                    start,
                    None,
                    cells,
                    f"line {start}: {len(cells)} cells where the header has {width} (a missing or extra comma?)",
                )
                continue
            yield _Record(
                row, start, {t: c for t, c in zip(targets, cells) if t}, cells, with_address=self._with_address
            )

    # JSON Lines

    def _json_records(self) -> Iterator[_Record]:
        row = 0
        record = self._first
        while record is not None:
            row += 1
            yield record
            record = self._next_json(row + 1)

    def _next_json(self, row: int, *, first: bool = False) -> _Record | None:
        """The next object; unknown keys reject the row (in the first object: the file)."""
        for text in self._lines:
            self._lines.held.clear()
            if not text.strip():
                continue
            line = self._lines.number
            original = [text.rstrip("\r\n")]
            try:
                obj = json.loads(text, parse_float=self.PARSE_FLOAT)
            except ValueError as exc:
                return _Record(row, line, None, original, f"line {line}: not valid JSON ({exc})")
            if not isinstance(obj, dict):
                return _Record(row, line, None, original, f"line {line}: not a JSON object")
            cells: dict[str, Any] = {}
            unknown = []
            for key, value in obj.items():
                target = self._target(str(key).strip())
                if target is False:
                    unknown.append(str(key))
                elif target:
                    cells[target] = value
            if unknown and first:
                self._plan([str(k).strip() for k in obj])  # raises, naming them
            if unknown:
                return _Record(row, line, None, original, f"unknown key(s) {_names(unknown)}")
            return _Record(row, line, cells, original, with_address=bool(cells.keys() & _ADDRESS.keys()))
        return None


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


class RecordReader(_Reader):
    """Reads a file of one kind of record: its :attr:`COLUMNS` and no prefixed ones; a subclass sets ``COLUMNS``
    and checks the header's other required columns in ``_check_header`` (``external_id`` is always required)."""

    def _check_header(self, present: set[str | None]) -> None:
        """Raise when the header lacks a column every row needs (besides external_id): none here."""

    def _prefixed(self, name: str, lowered: str) -> str | bool:
        return False

    def _described(self) -> str:
        return ", ".join(self.COLUMNS)
