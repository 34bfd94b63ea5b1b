"""What every ``… import FILE`` command shares: its options, the progress bar, and the summary it prints.

``crmkit customers import`` and ``crmkit interactions import`` (and a plugin's own import) take
the same file options and report the same counts, so a user learns them once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from crmkit.cli.output import N_, current_translator, emit, progress_bar
from crmkit.cli.params import RENAME

F = TypeVar("F", bound=Callable[..., Any])
SUMMARY = (N_("rows"), N_("inserted"), N_("updated"), N_("unchanged"), N_("rejected"), N_("reject_file"))


def import_options(map_example: str, batch_size: int = 1000) -> Callable[[F], F]:
    """The FILE argument and ``--map``, ``--rejects``, ``--batch-size`` (default ``batch_size``), ``--format``,
    ``--no-bom`` of an import command; ``map_example`` shows ``--map`` for that kind of file (``--map "Họ tên=name"``)."""

    def decorate(function: F) -> F:
        for option in reversed(
            (
                click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
                click.option(
                    "--map",
                    "mapping",
                    type=RENAME,
                    multiple=True,
                    metavar="COLUMN=FIELD",
                    help=f"Read the file's COLUMN as FIELD (e.g. {map_example}); repeat.",
                ),
                click.option(
                    "--rejects",
                    type=click.Path(dir_okay=False, writable=True, path_type=Path),
                    help="Where to write rejected rows with their row number and reason (default: FILE.rejects.csv).",
                ),
                click.option(
                    "--batch-size",
                    type=click.IntRange(1, 100_000),
                    default=batch_size,
                    show_default=True,
                    help="Rows per transaction: an interruption keeps whole batches only.",
                ),
                click.option(
                    "--format",
                    "file_format",
                    type=click.Choice(("csv", "jsonl")),
                    help="File format (default: from the extension, .jsonl/.ndjson for JSON Lines, else CSV).",
                ),
                click.option(
                    "--no-bom",
                    is_flag=True,
                    help="Write the reject file without the UTF-8 BOM (by default it "
                    "has one, so Excel shows Vietnamese).",
                ),
            )
        ):
            function = option(function)
        return function

    return decorate


def run_import(file: Path, load: Callable[[Callable[[int], None]], Any], *, invalid_phones: bool = False) -> None:
    """Run ``load(progress)`` under a progress bar sized from FILE, then print its summary (with the rows
    imported despite an invalid phone, and those imported without their links, when ``invalid_phones``: a
    customer import)."""
    with progress_bar(estimated_rows(file), f"Importing {file.name}") as bar:
        summary = load(bar.update)
    row = {
        "rows": summary.rows,
        "inserted": summary.inserted,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "rejected": summary.rejected,
        "reject_file": summary.reject_path,
    }
    if invalid_phones:
        row["invalid_phones"] = summary.invalid_phones
        row["unlinked"] = summary.unlinked
    emit(
        [row],
        (*SUMMARY, N_("invalid_phones"), N_("unlinked")) if invalid_phones else SUMMARY,
        title=current_translator().gettext("Imported %(file)s") % {"file": file},
    )


def estimated_rows(path: Path) -> int:
    """Lines in the file, less a header: the progress bar's length (read in chunks, never whole)."""
    lines = ends_with_newline = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            lines += chunk.count(b"\n")
            ends_with_newline = chunk.endswith(b"\n")
    lines += 0 if ends_with_newline else 1
    return max(1, lines - (0 if path.suffix in (".jsonl", ".ndjson") else 1))
