"""``import_customers``: the customer file import, from reader to writer."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from crmkit.core.access import UserHandle
from crmkit.core.transfer.links import LinkColumns, apply_links, attribute_fields
from crmkit.core.transfer.pipeline import ImportSummary, _apply, _as_caller, _Batch, _in_processes, _jobs
from crmkit.core.transfer.reading import _default_reject_path, _format_of, _label, _open_source, _Reader
from crmkit.core.transfer.rejects import _RejectFile
from crmkit.core.transfer.validation import INVALID_PHONE_CHOICES, RowValidator
from crmkit.core.transfer.writing import _OwnerRules, _prepared_batches, _Writer
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from crmkit.crm import CRM


def import_customers(
    crm: CRM | UserHandle,
    source: str | os.PathLike[str] | IO[Any],
    *,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    reject_path: str | os.PathLike[str] | None = None,
    batch_size: int = 5000,
    default_country: str | None = None,
    progress: Callable[[int], None] | None = None,
    parallel: bool | None = None,
    reject_bom: bool = True,
    jobs: int | None = None,
    invalid_phone: str = "drop",
) -> ImportSummary:
    """Create or update customers from a CSV or JSON Lines file, keyed by ``external_id``.

    ``mapping`` renames file columns to crmkit columns (``""`` drops one). Rows are written in
    transactions of ``batch_size`` rows (a commit writes out every index page its batch touched:
    larger batches write faster and take more memory); ``progress`` is called
    with the number of rows of each committed batch. ``jobs`` processes read and validate while
    this one writes (default: for files of 4 MiB and more, one per core but the writer's;
    ``parallel=False``: none). A phone that is possible but not a valid number (``0123 456 789``
    since Vietnam's 2018 renumbering) is dropped from the row by default, or kept, each such row
    listed in the reject file too; ``invalid_phone="reject"`` rejects the row. Raises
    ``ValidationError`` for a file that cannot be imported at all (unknown columns, not UTF-8);
    bad rows are rejected, not raised. Memberships and attributes naming customers are set by external id once
    every row is written, in one transaction (a link naming no customer: listed in the reject file, ``unlinked``).
    The reject file is for people: it starts with a UTF-8
    BOM, so Excel shows Vietnamese correctly, unless ``reject_bom=False``.
    """
    if invalid_phone not in INVALID_PHONE_CHOICES:
        raise ValidationError(f"must be one of {', '.join(INVALID_PHONE_CHOICES)}", field="invalid_phone")
    with _as_caller(crm) as crm:
        return _import(
            crm,
            source,
            format,
            mapping,
            reject_path,
            batch_size,
            default_country,
            progress,
            parallel,
            reject_bom,
            jobs,
            invalid_phone,
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
    reject_bom: bool,
    jobs: int | None,
    invalid_phone: str,
) -> ImportSummary:
    crm.access.require("customers.create")
    if batch_size < 1:
        raise ValidationError("must be at least 1", field="batch_size")
    fmt = _format_of(source, format)
    country = (default_country or crm.default_country).upper()
    label = _label(source)
    rejects_to = Path(reject_path) if reject_path is not None else _default_reject_path(source)
    validator = RowValidator(crm, country)
    links = LinkColumns(attribute_fields(crm))
    with ExitStack() as stack:
        stream = stack.enter_context(_open_source(source))
        reader = _Reader(stream, fmt, mapping or {}, crm.channels, label)
        processes = _jobs(parallel, jobs, source, stream)
        writer = _Writer(crm, label, _OwnerRules(crm))

        def prepared(share: tuple[int, int], records: _Reader = reader) -> Iterator[_Batch]:
            return _prepared_batches(
                records, validator, writer.form, batch_size, invalid_phone=invalid_phone, share=share, links=links
            )

        def in_child(share: tuple[int, int]) -> Callable[[], Iterator[_Batch]]:
            def batches() -> Iterator[_Batch]:  # the child's own reader: the parent's shares its file offset
                with _open_source(source) as own:
                    yield from prepared(share, _Reader(own, fmt, mapping or {}, crm.channels, label))

            return batches

        if processes:
            batches = stack.enter_context(_in_processes([in_child((k, processes)) for k in range(processes)]))
        else:
            batches = prepared((0, 1))
        rejects = stack.enter_context(_RejectFile(rejects_to, reader.reject_header, bom=reject_bom))
        stack.callback(writer.restore_settings)
        return _apply(crm, batches, writer.write, rejects, "customers", label, progress, partial(apply_links, crm))
