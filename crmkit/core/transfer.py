"""Customer import and export: CSV or JSON Lines in, the same columns out; and the import of past interactions.

An import is streamed (memory does not grow with the file), validated by the customer
schema, keyed by ``external_id`` (a re-run updates, never duplicates), and written in
batches of one transaction each: interrupting it leaves whole batches, and running it
again finishes the job. Rejected rows go to a reject file with their reasons.

Validation: ``CustomerSchema`` is the contract, but ``Schema.load`` costs ~60 µs a row.
:class:`RowValidator` runs the schema's own field conversions, validators and hooks
without the ``Schema.load`` machinery; any row it cannot vouch for goes through
``crm.customers.validate`` itself, so both accept and reject exactly the same rows
(``tests/test_import_export.py`` proves it on generated rows). Large files are read and
validated in a second process while this one writes.

Owners and permissions, as ``crm.customers.add`` / ``update`` apply them: a row's ``owner``
must be an active user (checked against the set of active usernames read once per import)
within the acting user's scope of ``customers.create`` (new customers) or ``customers.update``
(a changed owner); a user's new customer without an owner is theirs. Importing needs
``customers.create``; a row that would change a customer outside the user's
``customers.update`` scope is rejected with ``external_id: 'X' is used by a customer you
cannot change`` — it names neither the customer nor its owner, and says no more than adding a
customer with that external id would (external ids are unique). Exporting needs
``customers.export``: only customers in its scope are written, with their phones, e-mails and
street lines masked where the user may not see contact details (``customers.contact_details``).
The plain ``crm`` (the system) imports and exports everything; ``crm.as_user(...)`` (the
handle, or a ``with`` block around the call) imports and exports as that user.

:func:`import_interactions` loads past calls, visits and e-mails with the same machinery (the
reader, the reject file, batches of one transaction each), keyed by the interactions' own
``external_id``; it needs ``interactions.log`` and the customer's scope of it.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import multiprocessing
import os
import queue as queue_module
import signal
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from itertools import count, repeat
from operator import itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs
import marshmallow
import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit.core import tables as t
from crmkit.core.access import UserHandle
from crmkit.core.customers import ADDRESS_FIELDS, SCALARS
from crmkit.core.jsonable import to_jsonable
from crmkit.core.masking import mask_customer
from crmkit.core.phones import normalize_phone
from crmkit.core.safe_csv import QUOTE, SafeWriter, neutralise, restore
from crmkit.core.schemas import Email, FlexibleDate, Gender, Name, Phone
from crmkit.core.search import search_keys
from crmkit.core.text import clean_name, fold, normalize_email
from crmkit.core.types import utcnow
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.core.models import Customer
    from crmkit.crm import CRM

#: The columns an import reads and an export writes, in export order; then ``consent_<channel>``
#: (yes/no) for every channel and ``attr_<name>`` for customer attributes.
COLUMNS: tuple[str, ...] = (
    "external_id",
    "kind",
    "name",
    "given_name",
    "family_name",
    "email",
    "emails",
    "phone",
    "phones",
    "birth_date",
    "gender",
    "lifecycle_stage",
    "owner",
    "country",
    "city",
    "province",
    "tags",
    "address_line1",
    "address_line2",
    "ward",
    "district",
    "postal_code",
    "created_at",
)
CONSENT_PREFIX = "consent_"
ATTRIBUTE_PREFIX = "attr_"
#: Columns of a reject file in front of the original ones; an import skips them, so a
#: corrected reject file can be imported as it is.
REJECT_COLUMNS = ("reject_row", "reject_line", "reject_reason")
LIST_SEPARATOR = ";"

_LISTS = frozenset({"emails", "phones", "tags"})
#: Columns that are one schema field each (blank: None, which clears the value).
_PLAIN = frozenset(
    {
        "external_id",
        "given_name",
        "family_name",
        "email",
        "phone",
        "birth_date",
        "gender",
        "owner",
        "country",
        "city",
        "province",
    }
)
#: Blank cells in these columns say nothing (a new customer gets the default, an existing one keeps its value).
_KEEP_WHEN_BLANK = frozenset({"kind", "name", "lifecycle_stage", "created_at"})
_ADDRESS = {
    "address_line1": "line1",
    "address_line2": "line2",
    "ward": "ward",
    "district": "district",
    "postal_code": "postal_code",
}
_CUSTOMER_HOOKS = ("crmkit_customer_before_save", "crmkit_customer_created", "crmkit_customer_updated")
#: Files at least this large are read and validated in a second process (when the machine has two cores).
PARALLEL_MIN_BYTES = 4 << 20
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


# -- public API ---------------------------------------------------------------------------------------


def import_customers(
    crm: CRM | UserHandle,
    source: str | os.PathLike[str] | IO[Any],
    *,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    reject_path: str | os.PathLike[str] | None = None,
    batch_size: int = 1000,
    default_country: str | None = None,
    progress: Callable[[int], None] | None = None,
    parallel: bool | None = None,
    reject_bom: bool = True,
) -> ImportSummary:
    """Create or update customers from a CSV or JSON Lines file, keyed by ``external_id``.

    ``mapping`` renames file columns to crmkit columns (``""`` drops one); ``progress`` is
    called with the number of rows of each committed batch. ``parallel`` (default: for files
    of 4 MiB and more) reads and validates in a second process. Raises ``ValidationError``
    for a file that cannot be imported at all (unknown columns, not UTF-8); bad rows are
    rejected, not raised. The reject file is for people: it starts with a UTF-8 BOM, so Excel
    shows Vietnamese correctly, unless ``reject_bom=False``.
    """
    with _as_caller(crm) as crm:
        return _import(
            crm, source, format, mapping, reject_path, batch_size, default_country, progress, parallel, reject_bom
        )


def _import(
    crm: CRM,
    source: str | os.PathLike[str] | IO[Any],
    format: str | None,
    mapping: Mapping[str, str] | None,
    reject_path: str | os.PathLike[str] | None,
    batch_size: int,
    default_country: str | None,
    progress: Callable[[int], None] | None,
    parallel: bool | None,
    reject_bom: bool = True,
) -> ImportSummary:
    crm.access.require("customers.create")
    if batch_size < 1:
        raise ValidationError("must be at least 1", field="batch_size")
    fmt = _format_of(source, format)
    country = (default_country or crm.default_country).upper()
    label = _label(source)
    rejects_to = Path(reject_path) if reject_path is not None else _default_reject_path(source)
    validator = RowValidator(crm, country)
    with ExitStack() as stack:
        stream = stack.enter_context(_open_source(source))
        reader = _Reader(stream, fmt, mapping or {}, crm.channels, label)
        use_process = _use_process(parallel, source, stream)
        writer = _Writer(crm, label, _OwnerRules(crm))
        batches = _prepared_batches(reader, validator, writer.form, batch_size)
        if use_process:
            batches = stack.enter_context(_in_child_process(batches))
        rejects = stack.enter_context(_RejectFile(rejects_to, reader.reject_header, bom=reject_bom))
        stack.callback(writer.restore_settings)
        return _apply(crm, batches, writer.write, rejects, "customers", label, progress)


def _apply(
    crm: CRM,
    batches: Iterable[_Batch],
    write: Callable[[Session, _Batch], ImportOutcome],
    rejects: _RejectFile,
    entity: str,
    label: str,
    progress: Callable[[int], None] | None,
) -> ImportSummary:
    """Write each batch in a transaction of its own (audited as one ``import`` of ``entity``), then its rejects."""
    counts = {"rows": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    for batch in batches:
        with crm.transaction() as session:
            outcome = write(session, batch) if batch.accepted else ImportOutcome()
            late = outcome.rejects
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
                },
            )
        rejects.write(sorted([*batch.rejects, *late]))
        counts["rows"] += batch.rows
        counts["inserted"] += outcome.inserted
        counts["updated"] += outcome.updated
        counts["unchanged"] += outcome.unchanged
        counts["rejected"] += len(batch.rejects) + len(late)
        if progress is not None:
            progress(batch.rows)
    written = rejects.finish()
    return ImportSummary(reject_path=str(written) if written else None, **counts)


def export_customers(
    crm: CRM | UserHandle, dest: str | os.PathLike[str] | IO[Any], *, format: str = "csv", bom: bool | None = None
) -> int:
    """Write every active customer in the import's columns (CSV or JSON Lines); returns the rows written.

    Importing the result into an empty CRM gives the same customers (one postal address
    each; in CSV, attribute values are text). Needs ``customers.export``; a user exports the
    customers in its scope, contact details masked where they may not see them. A CSV file
    (``dest`` a path) starts with a UTF-8 BOM so Excel shows Vietnamese correctly; a stream
    gets none. ``bom`` True or False decides instead (JSON Lines never has one).
    """
    with _as_caller(crm) as crm:
        return _export(crm, dest, format, bom)


def _export(crm: CRM, dest: str | os.PathLike[str] | IO[Any], format: str, bom: bool | None = None) -> int:
    scope = crm.access.owner_filter(t.customers.c.owner, "customers.export")
    if format not in ("csv", "jsonl"):
        raise ValidationError("must be csv or jsonl", field="format")
    clear = crm.access.contact_owners()  # None: every customer's contact details in clear
    attribute_keys = _attribute_keys(crm, scope)
    columns = [*COLUMNS, *(CONSENT_PREFIX + ch for ch in crm.channels), *(ATTRIBUTE_PREFIX + k for k in attribute_keys)]
    written = 0
    with _open_dest(dest) as out:
        csv_writer = csv.writer(out, lineterminator="\n") if format == "csv" else None
        if csv_writer is not None:
            if bom if bom is not None else isinstance(dest, (str, os.PathLike)):
                out.write("\ufeff")  # a UTF-8 BOM: Excel then reads the file as UTF-8
            csv_writer.writerow(columns)
        for customer in _active_customers(crm, scope):
            if clear is not None and customer.owner not in clear:
                customer = mask_customer(customer)
            record = _export_record(customer, crm.channels, attribute_keys)
            if csv_writer is not None:
                csv_writer.writerow([_csv_cell(record.get(c)) for c in columns])
            else:
                out.write(json.dumps({c: record.get(c) for c in columns}, ensure_ascii=False) + "\n")
            written += 1
    return written


@contextmanager
def _as_caller(crm: CRM | UserHandle) -> Iterator[CRM]:
    """The plain CRM, running as whoever calls: a handle from ``crm.as_user(...)`` acts as its user."""
    if isinstance(crm, UserHandle):
        with crm:
            yield crm._crm
    else:
        yield crm


# -- validation ----------------------------------------------------------------------------------------


class _Unsure(Exception):
    """The fast path cannot vouch for a value; the schema itself decides."""


class RowValidator:
    """Validates import rows exactly as ``crm.customers.validate`` does, about 5x faster on good rows.

    The fast path calls the schema's own hooks and each field's conversion and validator
    objects directly (compiled once from the schema); a row it is not sure about — any
    error, any field type it does not know — goes through ``crm.customers.validate``,
    which raises with the schema's own messages.
    """

    def __init__(self, crm: CRM, country: str) -> None:
        self._crm = crm
        self.country = country
        self.schema = crm.customers.schema(country)
        self._compiled = _compile_schema(self.schema)
        self._hooks = _schema_hooks(self.schema)

    def __call__(self, data: dict[str, Any], row: int) -> dict[str, Any]:
        """Normalized values of one row; ``ValidationError`` (naming the row) when the schema rejects it."""
        values = self.fast(data)
        if values is not None:
            return values
        return self._crm.customers.validate(data, row=row, default_country=self.country)

    def fast(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The normalized values, or None when the schema must decide (any doubt, any error)."""
        if self._compiled is None or self._hooks is None:
            return None
        checks, required = self._compiled
        pre, schema_checks, post = self._hooks
        try:
            for hook in pre:
                data = hook(data, many=False, partial=False)
            if not required <= data.keys():
                return None
            out = {key: checks[key](value) for key, value in data.items()}
            for hook in schema_checks:
                hook(out, many=False, partial=False)
            for hook in post:
                out = hook(out, many=False, partial=False)
        except Exception:  # noqa: BLE001 - whatever it is, marshmallow gives the verdict and the message
            return None
        return out if out.get("name") else None


def _schema_hooks(schema: marshmallow.Schema) -> tuple[list[Any], list[Any], list[Any]] | None:
    """The schema's pre_load, validates_schema and post_load methods, or None if it has others."""
    hooks = getattr(schema, "_hooks", None)
    if not isinstance(hooks, Mapping) or {tag for tag, found in hooks.items() if found} - {
        "pre_load",
        "validates_schema",
        "post_load",
    }:
        return None
    found: dict[str, list[Any]] = {}
    for tag in ("pre_load", "validates_schema", "post_load"):
        found[tag] = []
        for name, many, options in hooks.get(tag, []):
            if many or options.get("pass_original") or options.get("pass_many"):
                return None
            found[tag].append(getattr(schema, name))
    return found["pre_load"], found["validates_schema"], found["post_load"]


def _compile_schema(schema: marshmallow.Schema) -> tuple[dict[str, Callable[[Any], Any]], frozenset[str]] | None:
    """One check per loadable field and the required fields' names; None when the schema loads
    in ways the fast path does not mirror (renamed keys, defaults).
    """
    checks: dict[str, Callable[[Any], Any]] = {}
    for name, field in schema.load_fields.items():
        if field.data_key not in (None, name) or field.load_default is not marshmallow.missing:
            return None
        checks[name] = _compile_field(field, schema)
    return _Checks(checks), frozenset(name for name, field in schema.load_fields.items() if field.required)


class _Checks(dict[str, Callable[[Any], Any]]):
    """Field checks by name; an unknown key makes the row unsure (the schema raises for it)."""

    def __missing__(self, key: str) -> Callable[[Any], Any]:
        raise _Unsure(key)


def _unsure(*_: Any) -> Any:
    raise _Unsure


def _compile_field(field: fields.Field, schema: marshmallow.Schema) -> Callable[[Any], Any]:
    """A function doing what ``field.deserialize`` does for the inputs it is sure about."""
    if getattr(field, "pre_load", None) or getattr(field, "post_load", None):
        return lambda value: field.deserialize(value)
    convert = _compile_conversion(field, schema)
    checks = [_compile_validator(v) for v in field.validators]
    allow_none = field.allow_none

    def check(value: Any) -> Any:
        if value is None:
            return None if allow_none else _unsure()
        result = convert(value)
        for validator_check in checks:
            validator_check(result)
        return result

    return check


def _compile_conversion(field: fields.Field, schema: marshmallow.Schema) -> Callable[[Any], Any]:
    kind = type(field)
    if kind is fields.String:
        return lambda value: value if type(value) is str else _unsure()
    if kind is Name:
        return lambda value: (clean_name(value) or _unsure()) if type(value) is str else _unsure()
    if kind is Email:
        return lambda value: normalize_email(value) if type(value) is str else _unsure()
    if kind is Phone:
        country = schema.default_country
        return lambda value: normalize_phone(value, country) if type(value) is str else _unsure()
    if kind is fields.List:
        inner = _compile_field(field.inner, schema)
        return lambda value: [inner(item) for item in value] if type(value) is list else _unsure()
    if kind is fields.Dict:
        return _compile_dict(field, schema)
    if kind is fields.Boolean:
        truthy, falsy = field.truthy, field.falsy
        if not truthy:
            return bool
        return lambda value: True if value in truthy else False if value in falsy else _unsure()
    if kind is fields.Nested and isinstance(field.schema, marshmallow.Schema):
        return _compile_nested(field)
    if kind in (Gender, FlexibleDate):  # their own conversion is cheap; marshmallow's wrapper is what is slow
        return lambda value: field._deserialize(value, None, None)
    return lambda value: field.deserialize(value)


def _compile_dict(field: fields.Dict, schema: marshmallow.Schema) -> Callable[[Any], Any]:
    keys = _compile_field(field.key_field, schema) if field.key_field is not None else None
    values = _compile_field(field.value_field, schema) if field.value_field is not None else None

    def convert(value: Any) -> Any:
        if type(value) is not dict:
            _unsure()
        if keys is None and values is None:
            return dict(value)
        return {(keys(k) if keys else k): (values(v) if values else v) for k, v in value.items()}

    return convert


def _compile_nested(field: fields.Nested) -> Callable[[Any], Any]:
    nested = field.schema
    hooks = getattr(nested, "_hooks", None)
    compiled = _compile_schema(nested)
    if hooks is None or any(hooks.values()) or compiled is None or field.many or nested.unknown != marshmallow.RAISE:
        return lambda value: field.deserialize(value)
    checks, required = compiled

    def convert(value: Any) -> Any:
        if type(value) is not dict or not required <= value.keys():
            _unsure()
        return {key: checks[key](item) for key, item in value.items()}

    return convert


def _compile_validator(validator: Any) -> Callable[[Any], None]:
    if type(validator) is validate.Length:
        low, high, equal = validator.min, validator.max, validator.equal

        def length(value: Any) -> None:
            size = len(value)
            if (
                (equal is not None and size != equal)
                or (low is not None and size < low)
                or (high is not None and size > high)
            ):
                _unsure()

        return length
    if type(validator) is validate.OneOf:
        choices = validator.choices
        return lambda value: None if value in choices else _unsure()
    if type(validator) is validate.Regexp:
        match = validator.regex.match
        return lambda value: None if match(value) is not None else _unsure()

    def other(value: Any) -> None:
        if validator(value) is False:
            _unsure()

    return other


# -- reading -------------------------------------------------------------------------------------------


def schema_input(cells: Mapping[str, Any], *, with_address: bool) -> dict[str, Any]:
    """The customer-schema input for one row of cells keyed by crmkit column.

    Blank cells clear a value (``kind``, ``name`` and ``lifecycle_stage`` excepted: blank
    keeps the default or current one); ``;`` separates list items; ``consent_*`` and
    ``attr_*`` cells become ``consents`` and ``attributes`` (blank: not mentioned); the
    address columns (``with_address``) make one postal address in the row's city and province.
    """
    data: dict[str, Any] = {}
    address: dict[str, Any] = {}
    for column, value in cells.items():
        blank = value is None or (type(value) is str and (not value or value.isspace()))
        if column in _PLAIN:
            data[column] = None if blank else value
        elif column in _ADDRESS:
            if not blank:
                address[_ADDRESS[column]] = value
        elif column in _LISTS:
            data[column] = [] if blank else _split(value)
        elif column in _KEEP_WHEN_BLANK:
            if not blank:
                data[column] = value
        elif column.startswith(CONSENT_PREFIX):
            if not blank:
                data.setdefault("consents", {})[column[len(CONSENT_PREFIX) :]] = value
        elif column.startswith(ATTRIBUTE_PREFIX):
            if not blank:
                data.setdefault("attributes", {})[column[len(ATTRIBUTE_PREFIX) :]] = value
        else:
            data[column] = None if blank else value
    if with_address:
        if address:
            for part in ("city", "province"):
                value = cells.get(part)
                if value is not None and not (type(value) is str and (not value or value.isspace())):
                    address[part] = value
        data["addresses"] = [address] if address else []
    return data


def _split(value: Any) -> Any:
    if type(value) is str:
        return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
    return value  # a JSON list as it is (anything else: the schema says what is wrong)


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


def _use_process(parallel: bool | None, source: Any, stream: IO[Any]) -> bool:
    if not isinstance(source, (str, os.PathLike)) or "fork" not in multiprocessing.get_all_start_methods():
        return False
    if parallel is not None:
        return parallel
    return (os.cpu_count() or 1) > 1 and os.fstat(stream.fileno()).st_size >= PARALLEL_MIN_BYTES


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


# -- preparing batches (this process or a child) ---------------------------------------------------------


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


#: An accepted row as a writer gets it: row, line, original cells, values, whether the row named the record
#: (a customer row: or only gave name parts).
AcceptedRow = tuple[int, int, list[str], dict[str, Any], bool]
#: A rejected row: row, line, reason (``column: message``), original cells.
RejectedRow = tuple[int, int, str, list[str]]


def _prepared_batches(reader: _Reader, validator: RowValidator, form: _Form, batch_size: int) -> Iterator[_Batch]:
    """Validated batches of customer rows, each with the table rows inserting its accepted rows (``fresh``)."""

    def prepare(record: _Record) -> tuple[dict[str, Any], bool]:
        assert record.cells is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
        data = schema_input(record.cells, with_address=record.with_address)
        return validator(data, record.row), "name" in data

    def finish(batch: _Batch) -> None:
        batch.fresh = _TableRows.inserting(form, enumerate(entry[3] for entry in batch.accepted))

    return _batches(reader, prepare, batch_size, finish)


def _batches(
    reader: _Reader,
    prepare: Callable[[_Record], tuple[dict[str, Any], bool]],
    batch_size: int,
    finish: Callable[[_Batch], None] | None = None,
) -> Iterator[_Batch]:
    """Batches of ``batch_size`` rows, each row accepted with what ``prepare`` makes of it (values, whether it
    named the record) or rejected with the reason (``ValidationError`` of ``prepare``, no key (``reader.KEY``),
    or the second of two rows with one key); ``finish`` completes each batch before it is handed on."""
    key = reader.KEY
    with _SeenIds() as seen:
        batch = _Batch(first_row=1)
        for record in reader:
            batch.rows += 1
            reason = record.error
            values: dict[str, Any] | None = None
            if reason is None:
                assert record.cells is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
                external_id = record.cells.get(key)
                if external_id is None or (type(external_id) is str and not external_id.strip()):
                    reason = (
                        f"{key}: required — a row without one could not be matched on a re-run "
                        "(it would be added twice)"
                    )
                else:
                    earlier = seen.first_row(external_id, record.row)
                    if earlier is not None:
                        reason = f"{key}: {external_id!r} is also on row {earlier} of this file"
            named = False
            if reason is None:
                try:
                    values, named = prepare(record)
                except ValidationError as exc:
                    reason = reason_text(exc.errors)
            if reason is None:
                assert values is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
                batch.accepted.append((record.row, record.line, record.original, values, named))
            else:
                batch.rejects.append((record.row, record.line, reason, record.original))
            if batch.rows == batch_size:
                if finish is not None:
                    finish(batch)
                yield batch
                batch = _Batch(first_row=record.row + 1)
        if batch.rows:
            if finish is not None:
                finish(batch)
            yield batch


class _SeenIds:
    """External ids met so far in this file, in a temporary SQLite file (memory stays flat)."""

    def __enter__(self) -> _SeenIds:
        self._db = sqlite3.connect("")  # a private temporary file, deleted when closed
        self._db.execute("CREATE TABLE seen (external_id TEXT PRIMARY KEY, row INTEGER) WITHOUT ROWID")
        self._db.execute("BEGIN")
        return self

    def first_row(self, external_id: Any, row: int) -> int | None:
        """The row that already had ``external_id``, else None (and ``row`` is remembered)."""
        key = external_id if type(external_id) is str else json.dumps(external_id)
        cursor = self._db.execute("INSERT INTO seen VALUES (?, ?) ON CONFLICT DO NOTHING", (key, row))
        if cursor.rowcount:
            return None
        return self._db.execute("SELECT row FROM seen WHERE external_id = ?", (key,)).fetchone()[0]

    def __exit__(self, *exc: object) -> None:
        self._db.close()


@contextmanager
def _in_child_process(batches: Iterator[_Batch]) -> Iterator[Iterator[_Batch]]:
    """Run ``batches`` in a forked child (reading and validating) while this process writes."""
    context = multiprocessing.get_context("fork")
    channel = context.Queue(maxsize=_QUEUE_DEPTH)
    child = context.Process(target=_child_main, args=(batches, channel, os.getpid()), daemon=True)
    child.start()

    def receive() -> Iterator[_Batch]:
        while True:
            try:
                kind, payload = channel.get(timeout=1.0)
            except queue_module.Empty:
                if not child.is_alive():
                    raise RuntimeError(f"the import's reader process died (exit code {child.exitcode})") from None
                continue
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
        if child.is_alive():
            child.terminate()
        child.join()
        channel.close()
        channel.join_thread()


def _child_main(batches: Iterator[_Batch], channel: Any, parent: int) -> None:
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
        for batch in batches:
            send(("batch", batch))
        send(("done", None))
    except ValidationError as exc:
        send(("invalid", exc.errors))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        send(("error", f"{type(exc).__name__}: {exc}"))


def reason_text(errors: Mapping[str, Any]) -> str:
    """``column: message`` for each error of the schema, named by the import's columns."""
    parts: list[str] = []
    for field, messages in errors.items():
        if field == "addresses" and isinstance(messages, Mapping):
            for part_errors in messages.values():
                if isinstance(part_errors, Mapping):
                    columns = {v: k for k, v in _ADDRESS.items()}
                    parts.extend(f"{columns.get(p, p)}: {_flat(m)}" for p, m in part_errors.items())
                else:
                    parts.append(f"address: {_flat(part_errors)}")
        elif field in ("consents", "attributes") and isinstance(messages, Mapping):
            prefix = CONSENT_PREFIX if field == "consents" else ATTRIBUTE_PREFIX
            parts.extend(f"{prefix}{key}: {_flat(m)}" for key, m in messages.items())
        else:
            parts.append(f"{field}: {_flat(messages)}" if field != "_" else _flat(messages))
    return "; ".join(parts)


def _flat(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    if isinstance(messages, Mapping):
        return "; ".join(_flat(m) for m in messages.values())
    return "; ".join(_flat(m) for m in messages)


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


# -- writing -------------------------------------------------------------------------------------------


@attrs.define
class ImportOutcome:
    """What a writer did with one batch: counts, and the rows it could not apply (row, line, reason, cells)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[RejectedRow] = attrs.field(factory=list)


@attrs.frozen
class _Target:
    """The customer a row's external_id leads to; ``via_merge`` when it was merged into that one."""

    customer_id: int | None
    problem: str | None = None
    via_merge: bool = False
    owner: str | None = None  # of the record the external id names (scope decides what a user is told of a problem)


#: SQLite settings of the import's connection while it runs: checkpoint the write-ahead log every
#: ~400 MB instead of every 4 MB (an index page that many batches dirty is copied into the database
#: once, not once per batch) and a 64 MiB page cache for the indexes' pages. Measured on the rows of
#: 300,000 customers: 1.8x the rows/s of the defaults.
_SQLITE_BULK = {"wal_autocheckpoint": 100_000, "cache_size": -65_536}
_CUSTOMER_COLUMNS = ("id", *SCALARS, "name_key", "attributes", "status", "created_at", "updated_at")
_UPDATE_COLUMNS = (*SCALARS, "name_key", "attributes", "created_at", "updated_at")
_POINT_COLUMNS = ("customer_id", "kind", "value", "position")
_ADDRESS_COLUMNS = ("customer_id", *ADDRESS_FIELDS, "position")
_CONSENT_COLUMNS = ("customer_id", "channel", "granted", "at", "source")
_KIND, _STAGE, _BIRTH = (SCALARS.index(f) for f in ("kind", "lifecycle_stage", "birth_date"))
_OWNER = 1 + SCALARS.index("owner")  # in a customers row of ``_TableRows`` (after the id)


def _same(value: Any) -> Any:
    return value


class _Form:
    """Values as the writer's executemany takes them: stored form for SQLite's raw cursor, Python values for Core.

    The conversions are the columns' own SQLAlchemy bind processors, so rows are stored
    exactly as ``crm.customers.add`` stores them.
    """

    def __init__(self, dialect: sa.Dialect) -> None:
        self._dialect = dialect
        self.raw = dialect.name == "sqlite"
        self.date = self._processor(t.customers.c.birth_date)
        self.json = self._processor(t.customers.c.attributes)
        self.flag = self._processor(t.consents.c.granted)
        self.time = self._processor(t.customers.c.created_at)

    def _processor(self, column: sa.Column[Any]) -> Callable[[Any], Any]:
        process = column.type._cached_bind_processor(self._dialect) if self.raw else None
        return process or _same


@attrs.define
class _TableRows:
    """What inserting customers adds to each table; rows start with the customer's id (or batch index)."""

    customers: list[tuple[Any, ...]] = attrs.field(factory=list)  # id, *SCALARS, name_key, attributes, created_at
    points: list[tuple[Any, ...]] = attrs.field(factory=list)  # id, kind, value, position
    addresses: list[tuple[Any, ...]] = attrs.field(factory=list)  # id, *ADDRESS_FIELDS, position
    tags: list[tuple[Any, ...]] = attrs.field(factory=list)  # id, tag
    consents: list[tuple[Any, ...]] = attrs.field(factory=list)  # id, channel, granted
    keys: list[tuple[Any, ...]] = attrs.field(factory=list)  # key, id, owner

    @classmethod
    def inserting(cls, form: _Form, items: Iterable[tuple[int, Mapping[str, Any]]]) -> _TableRows:
        """The rows of new customers from ``(id, values)``, as ``Customers.insert_validated`` writes them."""
        rows = cls()
        for key, values in items:
            scalars = list(map(values.get, SCALARS))
            scalars[_KIND] = scalars[_KIND] or "person"
            scalars[_STAGE] = scalars[_STAGE] or "lead"
            scalars[_BIRTH] = form.date(scalars[_BIRTH])
            since = values.get("created_at")
            rows.customers.append(
                (
                    key,
                    *scalars,
                    fold(values["name"])[:400],
                    form.json(values.get("attributes") or {}),
                    None if since is None else form.time(since),
                )
            )
            rows.add_children(form, key, values)
            rows.add_keys(key, values["name"], values.get("emails", ()), values.get("phones", ()), values.get("owner"))
        rows.sort()
        return rows

    def add_children(self, form: _Form, key: int, values: Mapping[str, Any]) -> None:
        """Contact points, addresses, tags and consents given in ``values``."""
        for kind in ("email", "phone"):
            if kind + "s" in values:
                self.points.extend(zip(repeat(key), repeat(kind), values[kind + "s"], count()))
        if "addresses" in values:
            self.addresses.extend(
                (key, *(a.get(f) for f in ADDRESS_FIELDS), n) for n, a in enumerate(values["addresses"])
            )
        if "tags" in values:
            self.tags.extend(zip(repeat(key), values["tags"]))
        if values.get("consents"):
            self.consents.extend((key, channel, form.flag(granted)) for channel, granted in values["consents"].items())

    def add_keys(self, key: int, name: str, emails: Iterable[str], phones: Iterable[str], owner: str | None) -> None:
        self.keys.extend(zip(search_keys(name, emails, phones), repeat(key), repeat(owner)))

    def sort(self) -> None:
        """Index order: B-tree inserts in key order touch fewer pages."""
        self.points.sort(key=itemgetter(1, 2))
        self.tags.sort(key=itemgetter(1))
        self.keys.sort()

    def renumbered(self, ids: Sequence[int | None]) -> _TableRows:
        """These rows with batch indexes replaced by ``ids[index]``, leaving out those whose id is None."""

        def remap(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
            return [(ids[r[0]], *r[1:]) for r in rows if ids[r[0]] is not None]

        return _TableRows(
            remap(self.customers),
            remap(self.points),
            remap(self.addresses),
            remap(self.tags),
            remap(self.consents),
            [(k, ids[i], o) for k, i, o in self.keys if ids[i] is not None],
        )

    def insert(self, bulk: _Bulk, form: _Form, now: Any, source: str) -> None:
        stamp = form.time(now)
        bulk.insert(
            t.customers,
            _CUSTOMER_COLUMNS,
            [(*r[:-1], "active", stamp if r[-1] is None else r[-1], stamp) for r in self.customers],
        )
        bulk.insert(t.contact_points, _POINT_COLUMNS, self.points)
        bulk.insert(t.addresses, _ADDRESS_COLUMNS, self.addresses)
        bulk.insert(t.tags, ("customer_id", "tag"), self.tags)
        bulk.insert(t.consents, _CONSENT_COLUMNS, [(*r, stamp, source) for r in self.consents])
        bulk.insert(t.search_keys, ("key", "customer_id", "owner"), self.keys)


_CONTACTS = ("emails", "phones", "addresses")


class _OwnerRules:
    """What ``crm.customers.add`` / ``update`` check about owners and scope, for the acting principal.

    Read once per import: the active usernames and the owners each permission's scope reaches.
    A row whose owner passes these set lookups is fine; any other goes through the customer
    service's own check (cached per owner), so the reason is word for word the API's.
    """

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        access = crm.access
        principal = access.principal
        #: The owner a user's new customer gets when the row names none (the system leaves it unowned).
        self.default = None if principal.is_system else principal.username
        self._reach = {p: principal.owners(p) for p in ("customers.create", "customers.update")}
        self._clear = access.contact_owners()
        with crm.reading() as conn:
            self._active = crm.users.active_usernames(conn)
        self._reasons: dict[tuple[str | None, str], str | None] = {}

    def owner_problem(self, conn: sa.Connection, owner: str | None, permission: str) -> str | None:
        """Why ``owner`` cannot own a customer this principal creates or updates (``permission``); None if it can."""
        reach = self._reach[permission]
        if reach is None and owner is None:
            return None
        if owner in self._active and (reach is None or owner in reach):
            return None
        key = (owner, permission)
        if key not in self._reasons:
            try:
                self._crm.access.check_owner(conn, owner, permission)
                self._reasons[key] = None
            except ValidationError as exc:
                self._reasons[key] = reason_text(exc.errors)
        return self._reasons[key]

    def update_problem(self, customer: Customer, values: Mapping[str, Any], external_id: Any) -> str | None:
        """Why this principal may not apply a row's ``values`` to ``customer`` (the one its ``external_id``
        leads to): outside its scope, or contact details it does not see; None if it may."""
        if self.hides(customer.owner):
            return self.hidden(external_id)
        if self._clear is not None and customer.owner not in self._clear:
            hidden = [key for key in _CONTACTS if key in values]
            if hidden:
                return (
                    f"{', '.join(hidden)}: cannot be changed without seeing them (this customer's contact details "
                    "are masked for you: customers.contact_details)"
                )
        return None

    def hides(self, owner: str | None) -> bool:
        """Whether customers owned by ``owner`` are outside this principal's ``customers.update`` scope."""
        reach = self._reach["customers.update"]
        return reach is not None and owner not in reach

    @staticmethod
    def hidden(external_id: Any) -> str:
        """The reason for a row naming a customer the principal may not change: neither who nor whose."""
        return f"external_id: {external_id!r} is used by a customer you cannot change"


class _Writer:
    """Writes validated rows to every customer table as ``crm.customers.add/update`` would, in bulk.

    The customer hooks fire as they do for ``add``/``update``: ``before_save`` for each row
    first (a veto rejects that row), then ``created``/``updated`` after the batch's writes,
    in its transaction. Without a plugin implementing them no ``Customer`` object is built.
    Owners and scope are checked as those methods check them (:class:`_OwnerRules`).
    """

    def __init__(self, crm: CRM, label: str, owners: _OwnerRules) -> None:
        self._crm = crm
        self._owners = owners
        self._customers = crm.customers
        self._source = f"import {label}"[:200]
        self._hooked = any(crm.hooks.has_implementations(h) for h in _CUSTOMER_HOOKS)
        self.form = _Form(crm.engine.dialect)
        self._settings: dict[sqlite3.Connection, dict[str, Any]] = {}  # each tuned connection: its own settings

    def write(self, session: Session, batch: _Batch) -> ImportOutcome:
        """Insert or update one batch in the caller's transaction; rows that cannot be applied come back as rejects."""
        conn = session.connection()
        self._tune(conn)
        bulk = _Bulk(conn)
        outcome = ImportOutcome()
        accepted = batch.accepted
        owners = self._owners
        targets = _targets(conn, [entry[3]["external_id"] for entry in accepted])
        new: list[int] = []
        owned: dict[int, str] = {}  # batch index: the owner given to a new customer whose row named none
        updates: list[tuple[int, AcceptedRow]] = []
        named: dict[int, Any] = {}  # row: the external id it names (a merged-away customer's, maybe)
        for index, entry in enumerate(accepted):
            target = targets.get(entry[3]["external_id"])
            if target is None:
                values = entry[3]
                if values.get("owner") is None and owners.default is not None:
                    values["owner"] = owned[index] = owners.default
                problem = owners.owner_problem(conn, values.get("owner"), "customers.create")
                if problem is None:
                    new.append(index)
                else:
                    outcome.rejects.append((entry[0], entry[1], problem, entry[2]))
            elif target.customer_id is None:
                problem = owners.hidden(entry[3]["external_id"]) if owners.hides(target.owner) else target.problem
                outcome.rejects.append((entry[0], entry[1], problem or "cannot be updated", entry[2]))
            else:
                named[entry[0]] = entry[3]["external_id"]
                if target.via_merge:  # the customer it was merged into keeps its own external id
                    entry[3].pop("external_id", None)
                if not entry[4]:  # a name built from its parts: follow them as ``update`` does
                    entry[3].pop("name", None)
                updates.append((target.customer_id, entry))
        self._insert(session, bulk, batch, new, owned, outcome)
        while updates:  # two rows reaching one customer (through a merge) apply one after the other
            first: dict[int, AcceptedRow] = {}
            later: list[tuple[int, AcceptedRow]] = []
            for customer_id, entry in updates:
                if customer_id in first:
                    later.append((customer_id, entry))
                else:
                    first[customer_id] = entry
            self._update(session, bulk, first, named, outcome)
            updates = later
        return outcome

    def _tune(self, conn: sa.Connection) -> None:
        """On SQLite, give the import's connection ``_SQLITE_BULK`` settings (the old ones are kept to restore)."""
        if conn.dialect.name != "sqlite":
            return
        raw = conn.connection.driver_connection
        if raw not in self._settings:
            self._settings[raw] = {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in _SQLITE_BULK}
            for name, value in _SQLITE_BULK.items():
                raw.execute(f"PRAGMA {name}={value}")

    def restore_settings(self) -> None:
        """Give every tuned connection its own settings back (idle in the pool, or closed since: nothing to do)
        and fold the write-ahead log into the database."""
        tuned, self._settings = self._settings, {}
        restored = None
        for raw, settings in tuned.items():
            try:
                for name, value in settings.items():
                    raw.execute(f"PRAGMA {name}={value}")
            except sqlite3.ProgrammingError:  # the pool closed it: its settings went with it
                continue
            restored = raw
        if restored is not None:
            restored.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _vetoed(
        self,
        outcome: ImportOutcome,
        entry: AcceptedRow,
        customer: Customer | None,
        changes: dict[str, Any],
        session: Session,
    ) -> bool:
        """Run the ``before_save`` hooks; a veto (``ValidationError``) rejects the row."""
        if not self._hooked:
            return False
        try:
            self._crm.hooks.customer_before_save(customer, changes, session)
        except ValidationError as exc:
            outcome.rejects.append((entry[0], entry[1], reason_text(exc.errors), entry[2]))
            return True
        return False

    def _insert(
        self,
        session: Session,
        bulk: _Bulk,
        batch: _Batch,
        new: list[int],
        owned: Mapping[int, str],
        outcome: ImportOutcome,
    ) -> None:
        accepted = batch.accepted
        new = [i for i in new if not self._vetoed(outcome, accepted[i], None, accepted[i][3], session)]
        if not new:
            return
        ids: list[int | None] = [None] * len(accepted)
        for index, customer_id in zip(new, bulk.new_customer_ids(len(new))):
            ids[index] = customer_id
        if self._hooked or batch.fresh is None:  # a before_save hook may have changed the values
            rows = _TableRows.inserting(self.form, ((ids[i], accepted[i][3]) for i in new))
        else:
            rows = batch.fresh.renumbered(ids)
            if owned:  # prepared before the owner was known: give those rows the importing user
                given = {ids[i]: owner for i, owner in owned.items() if ids[i] is not None}
                rows.customers = [
                    (*r[:_OWNER], given[r[0]], *r[_OWNER + 1 :]) if r[0] in given else r for r in rows.customers
                ]
                rows.keys = [(k, i, given[i]) if i in given else (k, i, o) for k, i, o in rows.keys]
        rows.insert(bulk, self.form, utcnow(), self._source)
        outcome.inserted += len(new)
        if self._hooked:
            for customer in self._customers._load_many(session.connection(), [ids[i] for i in new]):
                self._crm.hooks.customer_created(customer, session)
        self._crm.events.emit_many(
            session,
            "customer.created",
            (  # read only when a webhook listens
                ({"customer": to_jsonable(c)}, c.id)
                for c in self._customers._load_many(session.connection(), [ids[i] for i in new])
            ),
        )

    def _update(
        self,
        session: Session,
        bulk: _Bulk,
        entries: dict[int, AcceptedRow],
        named: Mapping[int, Any],
        outcome: ImportOutcome,
    ) -> None:
        conn = session.connection()
        current = {c.id: c for c in self._customers._load_many(conn, list(entries), for_update=True)}
        changed: list[tuple[Customer, dict[str, Any]]] = []
        owners = self._owners
        for customer_id, entry in entries.items():
            customer = current[customer_id]
            problem = owners.update_problem(customer, entry[3], named[entry[0]])
            changes = self._customers.changes(customer, entry[3]) if problem is None else {}
            if problem is None and "owner" in changes:
                problem = owners.owner_problem(conn, changes["owner"], "customers.update")
            if problem is not None:
                outcome.rejects.append((entry[0], entry[1], problem, entry[2]))
            elif not changes:
                outcome.unchanged += 1
            elif not self._vetoed(outcome, entry, customer, changes, session):
                changed.append((customer, changes))
        if not changed:
            return
        form, now = self.form, utcnow()
        stamp = form.time(now)
        updates, rows = [], _TableRows()
        cleared: dict[str, list[int]] = {"email": [], "phone": [], "addresses": [], "tags": [], "keys": []}
        consents: list[dict[str, Any]] = []
        owned: list[dict[str, Any]] = []  # a new owner for the search keys of a customer whose keys stay
        for customer, changes in changed:
            scalars = [changes[f] if f in changes else getattr(customer, f) for f in SCALARS]
            scalars[_BIRTH] = form.date(scalars[_BIRTH])
            name = changes.get("name", customer.name)
            attributes = changes["attributes"] if "attributes" in changes else customer.attributes
            since = form.time(changes["created_at"]) if "created_at" in changes else form.time(customer.created_at)
            updates.append((*scalars, fold(name)[:400], form.json(attributes), since, stamp, customer.id))
            for key in ("email", "phone", "addresses", "tags"):
                if (key + "s" if key in ("email", "phone") else key) in changes:
                    cleared[key].append(customer.id)
            consents.extend({"c": customer.id, "ch": channel} for channel in changes.get("consents") or {})
            rows.add_children(form, customer.id, changes)
            owner = changes.get("owner", customer.owner)
            if {"name", "emails", "phones"} & changes.keys():
                cleared["keys"].append(customer.id)
                rows.add_keys(
                    customer.id,
                    name,
                    changes.get("emails", customer.emails),
                    changes.get("phones", customer.phones),
                    owner,
                )
            elif "owner" in changes:
                owned.append({"c": customer.id, "o": owner})
        rows.sort()
        bulk.update_customers(updates)
        cp, cs = t.contact_points.c, t.consents.c
        for kind in ("email", "phone"):
            bulk.delete(t.contact_points, cleared[kind], cp.kind == kind)
        bulk.delete(t.addresses, cleared["addresses"])
        bulk.delete(t.tags, cleared["tags"])
        bulk.delete(t.search_keys, cleared["keys"])
        if owned:
            conn.execute(
                t.search_keys.update()
                .where(t.search_keys.c.customer_id == sa.bindparam("c"))
                .values(owner=sa.bindparam("o")),
                owned,
            )
        if consents:
            conn.execute(
                t.consents.delete().where(cs.customer_id == sa.bindparam("c"), cs.channel == sa.bindparam("ch")),
                consents,
            )
        rows.insert(bulk, form, now, self._source)
        outcome.updated += len(changed)
        if self._hooked:
            by_id = {c.id: c for c in self._customers._load_many(conn, [c.id for c, _ in changed])}
            for customer, changes in changed:
                self._crm.hooks.customer_updated(by_id[customer.id], changes, session)
        changed_fields = {customer.id: sorted(changes) for customer, changes in changed}
        self._crm.events.emit_many(
            session,
            "customer.updated",
            (  # read only when a webhook listens
                ({"customer": to_jsonable(c), "changed": changed_fields[c.id]}, c.id)
                for c in self._customers._load_many(conn, list(changed_fields))
            ),
        )


_BY_EXTERNAL_ID = sa.select(
    t.customers.c.id, t.customers.c.external_id, t.customers.c.status, t.customers.c.merged_into_id, t.customers.c.owner
).where(t.customers.c.external_id.in_(sa.bindparam("ids", expanding=True)))


def _targets(conn: sa.Connection, external_ids: list[str]) -> dict[str, _Target]:
    """The customers these external ids lead to: themselves, or the customer they were merged into."""
    c = t.customers.c
    found: dict[str, tuple[int, str, int | None]] = {}
    owners: dict[str, str | None] = {}
    for start in range(0, len(external_ids), 5000):
        chunk = external_ids[start : start + 5000]
        for customer_id, external_id, status, into, owner in conn.execute(_BY_EXTERNAL_ID, {"ids": chunk}):
            found[external_id] = (customer_id, status, into)
            owners[external_id] = owner
    kept = {into for _, status, into in found.values() if status == "merged" and into is not None}
    states = dict(conn.execute(sa.select(c.id, c.status).where(c.id.in_(kept))).all()) if kept else {}
    result: dict[str, _Target] = {}
    for external_id, (customer_id, status, into) in found.items():
        if status == "active":
            result[external_id] = _Target(customer_id)
        elif status == "merged" and into is not None and states.get(into) == "active":
            result[external_id] = _Target(into, via_merge=True)
        else:
            where = f"customer {customer_id}" + (f", merged into customer {into}," if into is not None else "")
            result[external_id] = _Target(
                None,
                f"external_id: {external_id!r} belongs to {where} which is "
                f"{states.get(into, status) if into is not None else status}; "
                "it cannot be updated",
                owner=owners[external_id],
            )
    return result


_SQL: dict[tuple[str, str, tuple[str, ...]], str] = {}


class _Bulk:
    """executemany on the batch's connection: the raw sqlite3 cursor on SQLite (rows in stored form), Core elsewhere."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._dialect = conn.dialect
        self._raw = conn.connection.driver_connection.cursor() if conn.dialect.name == "sqlite" else None

    def insert(self, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self._raw is None:
            self.conn.execute(table.insert(), [dict(zip(columns, row)) for row in rows])
        else:
            self._raw.executemany(self._sql("insert", table, tuple(columns)), rows)

    def update_customers(self, rows: Sequence[Sequence[Any]]) -> None:
        """``UPDATE customers`` of every column in ``_UPDATE_COLUMNS``; each row ends with the id."""
        if self._raw is None:
            statement = (
                t.customers.update()
                .where(t.customers.c.id == sa.bindparam("_id"))
                .values({c: sa.bindparam("_" + c) for c in _UPDATE_COLUMNS})
            )
            self.conn.execute(statement, [{"_" + k: v for k, v in zip((*_UPDATE_COLUMNS, "id"), row)} for row in rows])
        else:
            self._raw.executemany(self._sql("update", t.customers, _UPDATE_COLUMNS), rows)

    def delete(self, table: sa.Table, customer_ids: list[int], *where: Any) -> None:
        if customer_ids:
            self.conn.execute(table.delete().where(table.c.customer_id.in_(customer_ids), *where))

    def new_customer_ids(self, count: int) -> list[int]:
        """Ids for ``count`` new customers, as the database would have given them."""
        if self._dialect.name == "sqlite":  # the write transaction holds the lock: max + 1 is what rowid gives
            start = self.conn.execute(sa.select(sa.func.max(t.customers.c.id))).scalar() or 0
            return list(range(start + 1, start + count + 1))
        if self._dialect.name == "postgresql":
            return list(
                self.conn.execute(
                    sa.text("SELECT nextval(pg_get_serial_sequence('customers', 'id')) FROM generate_series(1, :n)"),
                    {"n": count},
                ).scalars()
            )
        raise NotImplementedError(f"bulk import on {self._dialect.name}")

    def _sql(self, kind: str, table: sa.Table, columns: tuple[str, ...]) -> str:
        key = (kind, table.name, columns)
        if key not in _SQL:
            quote = self._dialect.identifier_preparer.quote
            names = [quote(c) for c in columns]
            if kind == "insert":
                _SQL[key] = (
                    f"INSERT INTO {quote(table.name)} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"  # noqa: S608 - names from the model, quoted
                )
            else:
                _SQL[key] = (
                    f"UPDATE {quote(table.name)} SET {', '.join(n + ' = ?' for n in names)} WHERE {quote('id')} = ?"  # noqa: S608 - as above
                )
        return _SQL[key]


# -- interactions --------------------------------------------------------------------------------------

#: The columns of an interactions file: the interaction's own ``external_id`` (its id in the system it
#: comes from: a re-run updates it, never adds it twice), its customer by ``customer_id`` or
#: ``customer_external_id``, then what ``crm.interactions.log`` takes.
INTERACTION_COLUMNS: tuple[str, ...] = (
    "external_id",
    "customer_id",
    "customer_external_id",
    "channel",
    "direction",
    "occurred_at",
    "subject",
    "summary",
    "outcome",
    "rating",
    "employee",
    "sender",
)
#: What a re-run compares (and updates) of an interaction imported before.
_INTERACTION_VALUES = (
    "customer_id",
    "channel",
    "direction",
    "occurred_at",
    "subject",
    "summary",
    "outcome",
    "rating",
    "employee",
    "sender",
)


def import_interactions(
    crm: CRM | UserHandle,
    source: str | os.PathLike[str] | IO[Any],
    *,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    reject_path: str | os.PathLike[str] | None = None,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    reject_bom: bool = True,
) -> ImportSummary:
    """Load past contacts (calls, visits, e-mails, …) from a CSV or JSON Lines file, keyed by ``external_id``.

    Each row names its customer by ``customer_id`` or ``customer_external_id`` (merged-away
    customers lead to the one they were merged into) and says when it happened (``occurred_at``,
    with a time zone, not in the future). A re-run updates the interactions it imported before
    where they differ and never duplicates them; bad rows go to the reject file with the field
    and row; each batch is one transaction. Needs ``interactions.log``, and a user's rows must
    be about customers in its scope of it. The reject file starts with a BOM (for Excel) unless
    ``reject_bom=False``.
    """
    with _as_caller(crm) as crm:
        crm.access.require("interactions.log")
        return import_records(
            crm,
            source,
            entity="interactions",
            reader=_InteractionReader,
            prepare=_InteractionRows(crm),
            write=_InteractionWriter(crm).write,
            format=format,
            mapping=mapping,
            reject_path=reject_path,
            batch_size=batch_size,
            progress=progress,
            parallel=False,
            reject_bom=reject_bom,
        )


class RecordReader(_Reader):
    """Reads a file of one kind of record: its :attr:`COLUMNS` and no prefixed ones; a subclass sets ``COLUMNS``
    and checks the header's other required columns in ``_check_header`` (``external_id`` is always required)."""

    def _check_header(self, present: set[str | None]) -> None:
        """Raise when the header lacks a column every row needs (besides external_id): none here."""

    def _prefixed(self, name: str, lowered: str) -> str | bool:
        return False

    def _described(self) -> str:
        return ", ".join(self.COLUMNS)


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
            if _use_process(parallel, source, stream):
                batches = stack.enter_context(_in_child_process(batches))
            rejects = stack.enter_context(_RejectFile(rejects_to, records.reject_header, bom=reject_bom))
            return _apply(crm, batches, write, rejects, entity, label, progress)


class _InteractionReader(RecordReader):
    """Reads an interactions file: :data:`INTERACTION_COLUMNS`."""

    COLUMNS = INTERACTION_COLUMNS

    def _check_header(self, present: set[str | None]) -> None:
        if not {"customer_id", "customer_external_id"} & present:
            raise ValidationError(f"{self._label}: no customer column (customer_id or customer_external_id)")
        missing = [c for c in ("channel", "occurred_at") if c not in present]
        if missing:
            raise ValidationError(f"{self._label}: no {' or '.join(missing)} column")

    def _prefixed(self, name: str, lowered: str) -> str | bool:
        return False

    def _described(self) -> str:
        return ", ".join(self.COLUMNS)


class _InteractionRows:
    """One interaction row's values, validated by ``crm.interactions``' schema (``ValidationError`` naming the fields)."""

    def __init__(self, crm: CRM) -> None:
        self._interactions = crm.interactions

    def __call__(self, record: _Record) -> tuple[dict[str, Any], bool]:
        assert record.cells is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
        cells = {k: v for k, v in record.cells.items() if not (v is None or (type(v) is str and not v.strip()))}
        errors: dict[str, list[str]] = {}
        external_id = cells.pop("external_id")
        if type(external_id) is not str or len(external_id) > 200:
            errors["external_id"] = ["must be text of at most 200 characters"]
        customer_key = cells.pop("customer_external_id", None)
        if customer_key is not None and "customer_id" in cells:
            errors["customer_id"] = ["give customer_id or customer_external_id, not both"]
        elif customer_key is None and "customer_id" not in cells:
            errors["customer_id"] = ["required (or customer_external_id): whose contact it was"]
        elif customer_key is not None and (type(customer_key) is not str or len(customer_key) > 200):
            errors["customer_external_id"] = ["must be text of at most 200 characters"]
        if "occurred_at" not in cells:
            errors["occurred_at"] = ["required: when it happened, with a time zone (2019-03-01T09:30+07:00)"]
        try:
            values = self._interactions.validate(cells, row=record.row, customer_required=False)
        except ValidationError as exc:
            values = {}
            for field, messages in exc.errors.items():
                errors.setdefault(field, []).extend(messages if isinstance(messages, list) else [messages])
        if not errors and values["occurred_at"] > utcnow():
            errors["occurred_at"] = ["is in the future (history only: log what happened)"]
        if errors:
            order = {column: n for n, column in enumerate(INTERACTION_COLUMNS)}
            raise ValidationError(
                {k: errors[k] for k in sorted(errors, key=lambda k: order.get(k, len(order)))}, row=record.row
            )
        values["external_id"] = external_id
        if customer_key is not None:
            values["customer_external_id"] = customer_key
        return values, True


class _InteractionWriter:
    """Writes one batch of interaction rows as ``crm.interactions.log`` would, in bulk.

    Each row's customer is resolved (following merges) and must be active and within the acting
    user's ``interactions.log`` scope; one out of scope reads as not found. New interactions go
    through ``crm.interactions.insert_validated`` (hooks fire, a ``before_log`` veto rejects the
    row); one imported before is updated where it differs (audited) or counted unchanged.
    """

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._reach = crm.access.principal.owners("interactions.log")

    def write(self, session: Session, batch: _Batch) -> ImportOutcome:
        """Insert or update one batch in the caller's transaction; rows that cannot be applied come back as rejects."""
        conn = session.connection()
        outcome = ImportOutcome()
        accepted = batch.accepted
        by_id = self._customers(conn, "id", {e[3]["customer_id"] for e in accepted if "customer_id" in e[3]})
        by_key = self._customers(
            conn, "external_id", {e[3]["customer_external_id"] for e in accepted if "customer_external_id" in e[3]}
        )
        existing = self._existing(conn, [e[3]["external_id"] for e in accepted])
        new: list[AcceptedRow] = []
        changed: list[tuple[AcceptedRow, dict[str, Any]]] = []
        for entry in accepted:
            values = entry[3]
            key = values.pop("customer_external_id", None)
            column, asked = ("customer_id", values["customer_id"]) if key is None else ("customer_external_id", key)
            customer_id, problem = (by_id if key is None else by_key).get(asked, (None, None))
            if customer_id is None:
                shown = asked if key is None else repr(asked)
                problem = (
                    f"{column}: {problem}"
                    if problem
                    else (
                        f"{column}: no customer {shown}"
                        if self._reach is None
                        else f"{column}: {shown} is not a customer you can log interactions for"
                    )
                )
                outcome.rejects.append((entry[0], entry[1], problem, entry[2]))
                continue
            values["customer_id"] = customer_id
            before = existing.get(values["external_id"])
            if before is None:
                new.append(entry)
            elif not self._reaches(before["owner"]):
                outcome.rejects.append(
                    (
                        entry[0],
                        entry[1],
                        f"external_id: {values['external_id']!r} is used by an interaction you cannot change",
                        entry[2],
                    )
                )
            else:
                diff = {f: values.get(f) for f in _INTERACTION_VALUES if values.get(f) != before[f]}
                if diff:
                    changed.append((entry, {"id": before["id"], "before": {f: before[f] for f in diff}, "after": diff}))
                else:
                    outcome.unchanged += 1
        self._insert(session, new, outcome)
        self._update(session, changed, outcome)
        return outcome

    def _reaches(self, owner: str | None) -> bool:
        return self._reach is None or owner in self._reach

    def _customers(self, conn: sa.Connection, column: str, keys: set[Any]) -> dict[Any, tuple[int | None, str | None]]:
        return resolve_customers(conn, column, keys, self._reach, inactive="nothing can be logged for it")

    @staticmethod
    def _existing(conn: sa.Connection, external_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Interactions imported before under these external ids, with their customer's owner."""
        i = t.interactions.c
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(external_ids), 5000):
            query = (
                sa.select(i.id, i.external_id, *(i[f] for f in _INTERACTION_VALUES), t.customers.c.owner)
                .join(t.customers, t.customers.c.id == i.customer_id)
                .where(i.external_id.in_(external_ids[start : start + 5000]))
            )
            found.update((row["external_id"], dict(row)) for row in conn.execute(query).mappings())
        return found

    def _insert(self, session: Session, new: list[AcceptedRow], outcome: ImportOutcome) -> None:
        def vetoed(index: int, exc: ValidationError) -> None:
            entry = new[index]
            outcome.rejects.append((entry[0], entry[1], reason_text(exc.errors), entry[2]))

        logged = self._crm.interactions.insert_validated(session, [entry[3] for entry in new], vetoed=vetoed)
        outcome.inserted += len(logged)

    def _update(
        self, session: Session, changed: list[tuple[AcceptedRow, dict[str, Any]]], outcome: ImportOutcome
    ) -> None:
        if not changed:
            return
        conn = session.connection()
        i = t.interactions.c
        statement = (
            t.interactions.update()
            .where(i.id == sa.bindparam("_id"))
            .values({f: sa.bindparam("_" + f) for f in _INTERACTION_VALUES})
        )
        conn.execute(
            statement,
            [
                {"_id": change["id"], **{"_" + f: entry[3].get(f) for f in _INTERACTION_VALUES}}
                for entry, change in changed
            ],
        )
        self._crm.audit.record_many(
            session,
            "update",
            "interaction",
            (
                (change["id"], entry[3]["customer_id"], {"before": change["before"], "after": change["after"]})
                for entry, change in changed
            ),
        )
        outcome.updated += len(changed)


def resolve_customers(
    conn: sa.Connection, column: str, keys: set[Any], reach: frozenset[str] | set[str] | None, *, inactive: str
) -> dict[Any, tuple[int | None, str | None]]:
    """For each key of ``customers.<column>`` (``id`` or ``external_id``): the active customer it leads to
    (following a merge) whose owner is in ``reach`` (None: any), or (None, ``customer N is <status>: <inactive>``)
    for an inactive one; keys of no customer, or of one out of reach, are left out (callers say "not found")."""
    c = t.customers.c
    found: dict[Any, tuple[int | None, str | None]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 5000):
        rows = conn.execute(
            sa.select(c[column], c.id, c.status, c.merged_into_id, c.owner).where(
                c[column].in_(ordered[start : start + 5000])
            )
        ).all()
        kept = {r.merged_into_id for r in rows if r.status == "merged" and r.merged_into_id is not None}
        into = {r.id: r for r in conn.execute(sa.select(c.id, c.status, c.owner).where(c.id.in_(kept)))} if kept else {}
        for r in rows:
            final = into.get(r.merged_into_id, r) if r.status == "merged" else r
            if reach is not None and final.owner not in reach:
                continue
            if final.status == "active":
                found[r[0]] = (final.id, None)
            else:
                found[r[0]] = (None, f"customer {final.id} is {final.status}: {inactive}")
    return found


# -- export --------------------------------------------------------------------------------------------


def _attribute_keys(crm: CRM, scope: sa.ColumnElement[bool]) -> list[str]:
    """Every attribute name the active customers in ``scope`` use, sorted (computed in SQL)."""
    c = t.customers.c
    with crm.reading() as conn:
        if conn.dialect.name == "sqlite":
            each = sa.func.json_each(c.attributes).table_valued("key").alias("j")
            query = sa.select(each.c.key).select_from(t.customers).join(each, sa.true())
        elif conn.dialect.name == "postgresql":
            query = sa.select(sa.func.jsonb_object_keys(c.attributes))
        else:
            raise NotImplementedError(f"export on {conn.dialect.name}")
        return list(
            conn.execute(query.where(c.status == "active", scope).distinct().order_by(sa.literal_column("1"))).scalars()
        )


def _active_customers(crm: CRM, scope: sa.ColumnElement[bool], chunk: int = 1000) -> Iterator[Customer]:
    """Active customers in ``scope`` by id, loaded a chunk at a time."""
    c = t.customers.c
    with crm.reading() as conn:
        last = 0
        while ids := list(
            conn.execute(
                sa.select(c.id).where(c.status == "active", c.id > last, scope).order_by(c.id).limit(chunk)
            ).scalars()
        ):
            yield from sorted(crm.customers._load_many(conn, ids), key=lambda customer: customer.id)
            last = ids[-1]


def _export_record(customer: Customer, channels: Sequence[str], attribute_keys: Sequence[str]) -> dict[str, Any]:
    """One customer as import columns, JSON-typed (lists, booleans, None for empty)."""
    address = customer.addresses[0] if customer.addresses else None
    record: dict[str, Any] = {
        "external_id": customer.external_id,
        "kind": customer.kind,
        "name": customer.name,
        "given_name": customer.given_name,
        "family_name": customer.family_name,
        "email": customer.email,
        "emails": list(customer.emails[1:]),
        "phone": customer.phone,
        "phones": list(customer.phones[1:]),
        "birth_date": customer.birth_date.isoformat() if customer.birth_date else None,
        "gender": customer.gender,
        "lifecycle_stage": customer.lifecycle_stage,
        "owner": customer.owner,
        "country": customer.country,
        "city": customer.city,
        "province": customer.province,
        "tags": list(customer.tags),
        "created_at": customer.created_at.isoformat() if customer.created_at else None,
    }
    for column, part in _ADDRESS.items():
        record[column] = getattr(address, part) if address else None
    for channel in channels:
        consent = customer.consents.get(channel)
        record[CONSENT_PREFIX + channel] = consent.granted if consent else None
    for key in attribute_keys:
        record[ATTRIBUTE_PREFIX + key] = customer.attributes.get(key)
    return record


def _csv_cell(value: Any) -> str:
    """One exported CSV cell as the import reads it back; text that would start a formula gets a quote."""
    if value is None:
        return ""
    if type(value) is str:
        return neutralise(value)
    if type(value) is bool:
        return "yes" if value else "no"
    if type(value) is list:
        return neutralise(LIST_SEPARATOR.join(value))
    return json.dumps(value, ensure_ascii=False)


@contextmanager
def _open_dest(dest: Any) -> Iterator[IO[str]]:
    if isinstance(dest, (str, os.PathLike)):
        with open(dest, "w", encoding="utf-8", newline="") as out:
            yield out
    elif isinstance(dest, io.TextIOBase):
        yield dest
    else:  # a binary stream: write UTF-8 into it, and leave it open
        wrapper = io.TextIOWrapper(dest, encoding="utf-8", newline="")
        try:
            yield wrapper
            wrapper.flush()
        finally:
            wrapper.detach()
