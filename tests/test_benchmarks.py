"""Benchmarks must keep running: each ``bench/bench_*.py`` runs at ``--size tiny`` (no timing is asserted).

Benchmarks added later are picked up by the glob. The data generator the benchmarks
rely on is checked against the real API: what it bulk-loads must be exactly what
``crm.customers.add`` and ``crm.interactions.log`` would have written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "bench").glob("bench_*.py"))
sys.path.insert(0, str(ROOT))

from bench import datagen  # noqa: E402

#: Columns holding the wall-clock time of the write itself, which no generator can reproduce.
WRITE_TIMES = {"created_at", "updated_at", "at"}


@pytest.fixture(scope="module")
def bench_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the module, so benchmarks sharing a generated data set build it once."""
    return tmp_path_factory.mktemp("bench")


def run_python(*args: str | Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def bench_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("[bench] ")]


@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_benchmark_runs_and_reports_against_its_target(script: Path, bench_workdir: Path) -> None:
    result = run_python(script, "--size", "tiny", "--workdir", bench_workdir)
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    lines = bench_lines(result.stdout)
    assert lines, f"{script.name} printed no [bench] line:\n{result.stdout}"
    for line in lines:
        assert " | target " in line, f"no target in: {line}"
        assert line.endswith(("| MET", "| MISSED")), f"no verdict in: {line}"


def test_runner_runs_the_named_benchmark_and_summarises_it(bench_workdir: Path) -> None:
    result = run_python(ROOT / "bench" / "run.py", "search", "--size", "tiny", "--workdir", bench_workdir)
    assert result.returncode in (0, 3), result.stdout + result.stderr  # 3: ran, but a target was missed
    assert "=== bench_search.py --size tiny" in result.stdout
    assert "=== bench_hooks.py" not in result.stdout
    summary = result.stdout.split("=== summary\n", 1)[1].splitlines()
    assert summary[0].split() == ["status", "benchmark", "measure", "figure", "target"]
    rows = summary[1:4]  # one per kind of query
    assert [row.split()[1] for row in rows] == ["bench_search"] * 3
    assert all(row.split()[0] in ("MET", "MISSED") and row.endswith("< 50 ms") for row in rows), rows
    assert summary[4].startswith("1 benchmark(s) in ")


def test_runner_names_the_benchmarks_when_one_is_unknown() -> None:
    result = run_python(ROOT / "bench" / "run.py", "no_such_thing", timeout=60)
    assert result.returncode != 0
    assert "no benchmark 'no_such_thing'" in result.stderr
    assert "customer360" in result.stderr and "hooks" in result.stderr


def _raw_rows(engine: sa.Engine, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` as the driver returns it (stored text on SQLite), minus write times, JSON parsed."""
    columns = [c for c in datagen.TABLES[table] if c not in WRITE_TIMES]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)} FROM {table}").all()
    parsed = [
        tuple(
            json.loads(v) if c in ("changes", "attributes") and isinstance(v, str) else v for c, v in zip(columns, row)
        )
        for row in rows
    ]
    return sorted(parsed, key=repr)


def test_a_test_database_a_bulk_load_filled_is_handed_on_empty_with_ids_from_1(
    _crmkit_databases: Any, tmp_path: Path
) -> None:
    from crmkit import CRM

    url = _crmkit_databases.url_for([], 90, tmp_path)  # slot 90: no other test uses it
    datagen.build(url, datagen.Spec(customers=30, interactions=40, seed=5))  # sets its sequences past its rows
    with CRM(_crmkit_databases.url_for([], 90, tmp_path), plugins=[]) as crm:  # what the next test gets
        added = crm.customers.add(name="Nguyễn Văn An", addresses=[{"line1": "1 Lê Lợi"}], email="an@example.vn")
        with crm.reading() as conn:
            rows = {
                table: conn.exec_driver_sql(f"SELECT id FROM {table}").scalars().all()
                for table in ("customers", "customer_addresses", "customer_contact_points")
            }
        assert (added.id, crm.interactions.log(added.id, "email").id) == (1, 1)
        assert rows == {"customers": [1], "customer_addresses": [1], "customer_contact_points": [1]}


def test_generated_data_is_what_the_api_would_have_written(crm_factory: Any) -> None:
    from crmkit import CRM
    from crmkit.storage import create_engine

    spec = datagen.Spec(customers=60, interactions=150, seed=3)
    reference = crm_factory(plugins=[])
    datagen.add_staff(reference)  # owners are users: the employees come first
    for customer_id, values in datagen.customer_values(spec):
        assert reference.customers.add(values, source=datagen.SOURCE).id == customer_id
    for batch in datagen.interaction_batches(spec):
        for row in batch:
            given = dict(zip(datagen.INTERACTION_COLUMNS, row))
            occurred = datetime.fromisoformat(given["occurred_at"]).replace(tzinfo=UTC)
            extra = {
                k: given[k] for k in ("subject", "summary", "outcome", "rating", "employee") if given[k] is not None
            }
            logged = reference.interactions.log(
                given["customer_id"], given["channel"], direction=given["direction"], occurred_at=occurred, **extra
            )
            assert logged.id == given["id"]
    generated = crm_factory(plugins=[])
    url = generated.engine.url.render_as_string(hide_password=False)
    generated.close()
    datagen.build(url, spec)
    engine = create_engine(url)
    try:
        for table in datagen.TABLES:
            expected = _raw_rows(reference.engine, table)
            assert expected, f"the reference wrote nothing to {table}: the data set does not exercise it"
            assert _raw_rows(engine, table) == expected, table
    finally:
        engine.dispose()
    with CRM(url, plugins=[]) as crm:  # the loaded database goes on working through the API
        _, first = next(datagen.customer_values(spec))
        assert [c.id for c in crm.customers.find(first["name"], limit=1000)].count(1) == 1
        assert crm.customers.add(name="Added After Load").id == spec.customers + 1
        assert crm.interactions.log(1, "email").id == spec.interactions + 1
