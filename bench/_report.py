"""What every benchmark prints: its figure, the target, and the peer or limit measured in the same run.

Benchmarks are programs, not tests: ``python bench/bench_x.py --size full`` prints figures;
the test suite runs each at ``--size tiny`` only to keep it from rotting.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SIZES = ("tiny", "small", "full")


def parse_args(
    description: str, argv: Sequence[str] | None = None, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """``--size tiny|small|full`` (tiny: seconds, for the test suite), ``--postgres URL``, ``--workdir DIR``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CRMKIT_BENCH_POSTGRES_URL") or os.environ.get("CRMKIT_TEST_POSTGRES_URL"),
        help="PostgreSQL URL for the PostgreSQL half (default: $CRMKIT_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--workdir", default=None, help="where to put generated databases and files")
    if extra:
        extra(parser)
    return parser.parse_args(argv)


def scale(size: str, *, tiny: int, small: int, full: int) -> int:
    """The number of rows/operations for ``size``."""
    return {"tiny": tiny, "small": small, "full": full}[size]


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: …`` then ``t[0]`` is the wall time in seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def alternating_adds(crms: dict[str, Any], inputs: Sequence[Any], *, source: str, rounds: int = 10) -> dict[str, float]:
    """Seconds each CRM spends on ``customers.add`` of its share of ``inputs``, in ``rounds`` that alternate which
    goes first, so both see the same machine conditions (the A/B timing of hook and outbox overhead)."""
    spent = dict.fromkeys(crms, 0.0)
    per_round = -(-len(inputs) // rounds)
    labels = list(crms)
    for round_no, first in enumerate(range(0, len(inputs), per_round)):
        chunk = inputs[first : first + per_round]
        for label in labels if round_no % 2 == 0 else labels[::-1]:
            add = crms[label].customers.add
            start = time.perf_counter()
            for values in chunk:
                add(values, source=source)
            spent[label] += time.perf_counter() - start
    return spent


def timed_runs(work: Callable[[], Any], runs: int = 3) -> tuple[float, float, Any]:
    """(median, first) wall time of ``work`` over ``runs`` runs, and the last result: a report's cold and warm cost."""
    import statistics

    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times[0], result


def percentile(samples: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0–100) by nearest rank."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(
    name: str, figure: float, unit: str, *, target: str, ok: bool, peer: str | None = None, **extra: Any
) -> None:
    """One result line: ``[bench] name: figure unit | target … | peer … | MET/MISSED``."""
    parts = [f"[bench] {name}: {figure:,.3f} {unit}", f"target {target}"]
    if peer:
        parts.append(peer)
    parts.extend(f"{key}={value}" for key, value in extra.items())
    parts.append("MET" if ok else "MISSED")
    print(" | ".join(parts), flush=True)


def run_sized(
    doc: str,
    argv: Sequence[str] | None,
    sizes_for: Callable[[str], Any],
    sqlite_database: Callable[[Any, Path], Path],
    postgres_database: Callable[[Any, str], str],
    measure: Callable[[str, str, Any], None],
) -> int:
    """A plugin benchmark's ``main``: build (or reuse) its data sets for ``--size``, then ``measure`` on SQLite
    and, when ``--postgres`` is given, on PostgreSQL."""
    from bench import datagen

    args = parse_args(doc.split("\n\n")[0], argv)
    sizes = sizes_for(args.size)
    folder = Path(args.workdir or datagen.DEFAULT_CACHE)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    path = sqlite_database(sizes, folder)
    print(f"SQLite data set ready in {time.perf_counter() - started:.1f} s: {path}", flush=True)
    measure(f"sqlite:///{path}", "SQLite", sizes)
    if args.postgres:
        started = time.perf_counter()
        url = postgres_database(sizes, args.postgres)
        print(f"PostgreSQL data set ready in {time.perf_counter() - started:.1f} s", flush=True)
        measure(url, "PostgreSQL", sizes)
    return 0
