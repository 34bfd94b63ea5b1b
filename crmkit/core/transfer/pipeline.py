"""From records to committed batches: validated into batches (here or in other processes), one transaction each."""

from __future__ import annotations

import json
import multiprocessing
import os
import queue as queue_module
import signal
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from itertools import count, islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import attrs

from crmkit.core.access import UserHandle
from crmkit.core.transfer.columns import reason_text
from crmkit.core.transfer.reading import (
    RecordReader,
    _default_reject_path,
    _format_of,
    _label,
    _open_source,
    _Reader,
    _Record,
)
from crmkit.core.transfer.rejects import _RejectFile
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.core.transfer.links import PendingLink
    from crmkit.core.transfer.writing import _TableRows
    from crmkit.crm import CRM


#: Files at least this large are read and validated in a second process (when the machine has two cores).
PARALLEL_MIN_BYTES = 4 << 20
#: The most processes an import validates in (``jobs``).
MAX_JOBS = 32
_QUEUE_DEPTH = 4


@attrs.frozen
class ImportSummary:
    """What an import did: counts per outcome, and where the rejected rows went (None: no rejects)."""

    rows: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    reject_path: str | None
    #: Rows imported without (or with) a phone that is not a valid number, listed in the reject file too.
    invalid_phones: int = 0
    #: Rows imported without their links (a membership or reference naming no customer), in the reject file too.
    unlinked: int = 0


def _apply(
    crm: CRM,
    batches: Iterable[_Batch],
    write: Callable[[Session, _Batch], ImportOutcome],
    rejects: _RejectFile,
    entity: str,
    label: str,
    progress: Callable[[int], None] | None,
    link: Callable[[list[PendingLink], set[int]], list[RejectedRow]] | None = None,
) -> ImportSummary:
    """Write each batch in a transaction of its own (audited as one ``import`` of ``entity``), then its rejects;
    then ``link`` sets the written rows' links (given the rows refused) and returns those it could not set."""
    counts = {"rows": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0, "invalid_phones": 0}
    links: list[PendingLink] = []
    refused_rows: set[int] = set()
    for batch in batches:
        with crm.transaction() as session:
            outcome = write(session, batch) if batch.accepted else ImportOutcome()
            late = outcome.rejects
            refused = {reject[0] for reject in late}
            notes = [note for note in batch.notes if note.row not in refused]  # a refused row: its reason only
            crm.audit.record(
                session,
                "import",
                entity,
                label[-100:],
                changes={
                    "file": label,
                    "rows": [batch.first_row, batch.first_row + batch.rows - 1],
                    "inserted": outcome.inserted,
                    "updated": outcome.updated,
                    "unchanged": outcome.unchanged,
                    "rejected": len(batch.rejects) + len(late),
                    **({"invalid_phones": len(notes)} if notes else {}),
                },
            )
        rejects.write(sorted([*batch.rejects, *late, *notes]))
        if link is not None:
            links.extend(batch.links)
            refused_rows.update(reject[0] for reject in [*batch.rejects, *late])
        counts["rows"] += batch.rows
        counts["inserted"] += outcome.inserted
        counts["updated"] += outcome.updated
        counts["unchanged"] += outcome.unchanged
        counts["rejected"] += len(batch.rejects) + len(late)
        counts["invalid_phones"] += len(notes)
        if progress is not None:
            progress(batch.rows)
    if link is not None and links:
        unlinked = link(links, refused_rows)
        rejects.write(sorted(unlinked))
        counts["unlinked"] = len(unlinked)
    written = rejects.finish()
    return ImportSummary(reject_path=str(written) if written else None, **counts)


@contextmanager
def _as_caller(crm: CRM | UserHandle) -> Iterator[CRM]:
    """The plain CRM, running as whoever calls: a handle from ``crm.as_user(...)`` acts as its user."""
    if isinstance(crm, UserHandle):
        with crm:
            yield crm._crm
    else:
        yield crm


def _jobs(parallel: bool | None, jobs: int | None, source: Any, stream: IO[Any]) -> int:
    """How many processes read and validate while this one writes (0: this one does everything).

    ``jobs`` decides when given; else ``parallel`` False means none, and by default (or ``parallel`` True)
    files of 4 MiB and more get one per core but the writer's, up to :data:`MAX_JOBS`.
    """
    if jobs is not None and not 0 <= jobs <= MAX_JOBS:
        raise ValidationError(f"must be from 0 to {MAX_JOBS}", field="jobs")
    if not isinstance(source, (str, os.PathLike)) or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    if jobs is not None:
        return jobs
    cores = os.cpu_count() or 1
    if parallel is False or (
        parallel is None and (cores < 2 or os.fstat(stream.fileno()).st_size < PARALLEL_MIN_BYTES)
    ):
        return 0
    return max(1, min(cores - 1, MAX_JOBS))


@attrs.define
class _Batch:
    """Rows of one transaction: the accepted ones and the rejects.

    ``fresh`` holds the table rows that insert every accepted row as a new customer (by its
    index in ``accepted``), built where the batch was prepared so the writer only adds ids.
    """

    first_row: int
    rows: int = 0
    accepted: list[AcceptedRow] = attrs.field(factory=list)
    rejects: list[RejectedRow] = attrs.field(factory=list)
    fresh: _TableRows | None = None
    notes: list[RejectedRow] = attrs.field(factory=list)  # accepted rows the reject file lists (an invalid phone)
    links: list[PendingLink] = attrs.field(factory=list)  # accepted rows' links, set once every row is written


class RejectedRow(NamedTuple):
    """A row the import could not take, as the reject file writes it."""

    row: int
    line: int
    reason: str  # ``column: message``
    original: list[str]  # the file's cells


class AcceptedRow(NamedTuple):
    """A validated row as a writer gets it."""

    row: int
    line: int
    original: list[str]
    values: dict[str, Any]
    named: bool  # whether the row named the record (a customer row: or only gave name parts)

    def rejected(self, reason: str) -> RejectedRow:
        """This row rejected by the writer for ``reason``."""
        return RejectedRow(self.row, self.line, reason, self.original)


def _batches(
    reader: _Reader,
    prepare: Callable[[_Record], tuple[dict[str, Any], bool]],
    batch_size: int,
    finish: Callable[[_Batch], None] | None = None,
    share: tuple[int, int] = (0, 1),
) -> Iterator[_Batch]:
    """Batches of ``batch_size`` rows, each row accepted with what ``prepare`` makes of it (values, whether it
    named the record) or rejected with the reason (``ValidationError`` of ``prepare``, no key (``reader.KEY``),
    or the second of two rows with one key); ``finish`` completes each batch before it is handed on.

    ``share`` ``(k, n)``: only every n-th batch from the k-th (one of n processes reading the same file); the
    others are read for their keys only, so a repeated external id is found whichever process has its rows.
    """
    mine, every = share
    records = iter(reader)
    with _SeenIds() as seen:
        for number in count():
            chunk = list(islice(records, batch_size))
            if not chunk:
                return
            reasons = seen.reasons(chunk, reader.KEY)
            if number % every != mine:  # another process prepares this batch
                continue
            batch = _Batch(first_row=chunk[0].row, rows=len(chunk))
            for record, reason in zip(chunk, reasons):
                values: dict[str, Any] | None = None
                named = False
                if reason is None:
                    try:
                        values, named = prepare(record)
                    except ValidationError as exc:
                        reason = reason_text(exc.errors)
                if reason is None:
                    assert values is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
                    batch.accepted.append(AcceptedRow(record.row, record.line, record.original, values, named))
                else:
                    batch.rejects.append(RejectedRow(record.row, record.line, reason, record.original))
            if finish is not None:
                finish(batch)
            yield batch


class _SeenIds:
    """External ids met so far in this file, in a temporary SQLite file (memory stays flat), checked a batch at a
    time: one ``executemany`` a batch, and a lookup only when an id was met in an earlier one."""

    def __enter__(self) -> _SeenIds:
        self._db = sqlite3.connect("")  # a private temporary file, deleted when closed
        self._db.execute("CREATE TABLE seen (external_id TEXT PRIMARY KEY, row INTEGER) WITHOUT ROWID")
        self._db.execute("BEGIN")
        return self

    def reasons(self, records: Sequence[_Record], key: str) -> list[str | None]:
        """Why each record is rejected before it is validated (unreadable, no ``key``, a ``key`` met on an earlier
        row), None for the others; the records' keys are remembered."""
        reasons: list[str | None] = []
        first: dict[str, int] = {}  # each key's first row in these records
        keyed: list[tuple[int, str, Any]] = []  # (index, stored form, as given) of every record with a key
        for index, record in enumerate(records):
            reason = record.error
            if reason is None:
                assert record.cells is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
                external_id = record.cells.get(key)
                if external_id is None or (type(external_id) is str and not external_id.strip()):
                    reason = (
                        f"{key}: required — a row without one could not be matched on a re-run "
                        "(it would be added twice)"
                    )
                else:
                    stored = external_id if type(external_id) is str else json.dumps(external_id)
                    first.setdefault(stored, record.row)
                    keyed.append((index, stored, external_id))
            reasons.append(reason)
        earlier = self._earlier(first, records[0].row if records else 0)
        for index, stored, external_id in keyed:
            row = earlier.get(stored, first[stored])
            if row != records[index].row:
                reasons[index] = f"{key}: {external_id!r} is also on row {row} of this file"
        return reasons

    def _earlier(self, first: Mapping[str, int], start: int) -> dict[str, int]:
        """Remember ``first`` (key: row); the rows before ``start`` that already had one of its keys."""
        added = self._db.executemany("INSERT INTO seen VALUES (?, ?) ON CONFLICT DO NOTHING", first.items()).rowcount
        if added == len(first):
            return {}
        keys = list(first)
        found: dict[str, int] = {}
        for low in range(0, len(keys), 500):
            part = keys[low : low + 500]
            found.update(
                self._db.execute(
                    f"SELECT external_id, row FROM seen WHERE row < ? AND external_id IN ({', '.join('?' * len(part))})",  # noqa: S608 - placeholders only
                    (start, *part),
                ).fetchall()
            )
        return found

    def __exit__(self, *exc: object) -> None:
        self._db.close()


@contextmanager
def _in_processes(sources: Sequence[Callable[[], Iterator[_Batch]]]) -> Iterator[Iterator[_Batch]]:
    """Run each source in a forked child (reading and validating) while this process writes; source ``k`` of
    ``n`` makes batches ``k``, ``k + n``, …, which come back in the file's order."""
    context = multiprocessing.get_context("fork")
    channels = [context.Queue(maxsize=_QUEUE_DEPTH) for _ in sources]
    children = [
        context.Process(target=_child_main, args=(source, channel, os.getpid()), daemon=True)
        for source, channel in zip(sources, channels)
    ]
    for child in children:
        child.start()

    def receive() -> Iterator[_Batch]:
        for number in count():
            channel, child = channels[number % len(children)], children[number % len(children)]
            while True:
                try:
                    kind, payload = channel.get(timeout=1.0)
                    break
                except queue_module.Empty:
                    if not child.is_alive():
                        raise RuntimeError(f"the import's reader process died (exit code {child.exitcode})") from None
            if kind == "batch":
                yield payload
            elif kind == "done":
                return
            elif kind == "invalid":
                raise ValidationError(payload)
            else:
                raise RuntimeError(f"the import's reader process failed: {payload}")

    try:
        yield receive()
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
        for child, channel in zip(children, channels):
            child.join()
            channel.close()
            channel.join_thread()


def _child_main(source: Callable[[], Iterator[_Batch]], channel: Any, parent: int) -> None:
    """The reader process: Ctrl-C is the parent's to handle; stops when the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def send(item: tuple[str, Any]) -> None:
        while True:
            try:
                channel.put(item, timeout=1.0)
                return
            except queue_module.Full:
                if os.getppid() != parent:
                    os._exit(1)

    try:
        for batch in source():
            send(("batch", batch))
        send(("done", None))
    except ValidationError as exc:
        send(("invalid", exc.errors))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        send(("error", f"{type(exc).__name__}: {exc}"))


@attrs.define
class ImportOutcome:
    """What a writer did with one batch: counts, and the rows it could not apply (row, line, reason, cells)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[RejectedRow] = attrs.field(factory=list)


def import_records(
    crm: CRM | UserHandle,
    source: str | os.PathLike[str] | IO[Any],
    *,
    entity: str,
    reader: type[RecordReader],
    prepare: Callable[[_Record], tuple[dict[str, Any], bool]],
    write: Callable[[Session, _Batch], ImportOutcome],
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    reject_path: str | os.PathLike[str] | None = None,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    parallel: bool | None = None,
    reject_bom: bool = True,
) -> ImportSummary:
    """Import any kind of record with the customer import's guarantees, so plugins need not build their own.

    ``reader`` names the file's columns; ``prepare`` turns one record's cells into values (raising
    ``ValidationError`` naming the fields rejects the row; rows without an ``external_id``, or
    repeating one, are rejected before); ``write`` applies one batch in its transaction and returns
    an :class:`ImportOutcome`. Each batch commits whole, audited as one ``import`` of ``entity``,
    its rejects go to the reject file (row, line, reason) and ``progress`` gets its row count.
    ``parallel`` (default: for files of 4 MiB and more) reads and prepares in a second process
    (``prepare`` must not touch the database). The caller checks permissions.
    """
    with _as_caller(crm) as crm:
        if batch_size < 1:
            raise ValidationError("must be at least 1", field="batch_size")
        fmt = _format_of(source, format)
        label = _label(source)
        rejects_to = Path(reject_path) if reject_path is not None else _default_reject_path(source)
        with ExitStack() as stack:
            stream = stack.enter_context(_open_source(source))
            records = reader(stream, fmt, mapping or {}, crm.channels, label)
            batches = _batches(records, prepare, batch_size)
            if _jobs(parallel, None, source, stream):  # one process: ``prepare`` reads the file as it is
                whole = batches
                batches = stack.enter_context(_in_processes([lambda: whole]))
            rejects = stack.enter_context(_RejectFile(rejects_to, records.reject_header, bom=reject_bom))
            return _apply(crm, batches, write, rejects, entity, label, progress)
