"""``crmkit db backup`` / ``restore`` on SQLite (the online backup API), and PostgreSQL's own pg_dump / pg_restore."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.crm import CRM


def crmkit(crm: Any, *args: str, input: str | None = None) -> Result:
    url = crm.engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=[]), input=input)


def names(crm: Any) -> list[str]:
    return sorted(c.name for c in crm.customers.find(limit=1000).items)


sqlite_only = pytest.mark.sqlite_only("SQLite's backup API; PostgreSQL's pg_dump has its own test")


@sqlite_only
def test_a_backup_taken_in_use_restores_the_crm_as_it_was(crm: Any, tmp_path: Path) -> None:
    crm.customers.add(name="Nguyễn Văn An", phone="0912 345 678")
    crm.customers.add(name="Trần Thị Bình")
    target = tmp_path / "sao-mai-2026-12-07.crmkit"
    made = crmkit(crm, "--format", "json", "db", "backup", str(target))
    assert made.exit_code == 0, made.output
    shown = json.loads(made.stdout)[0]
    assert shown["file"] == str(target) and shown["size"] == target.stat().st_size
    assert not Path(f"{target}-wal").exists()  # one self-contained file
    crm.customers.add(name="Lê Văn Cường")  # after the backup
    crm.customers.erase(crm.customers.find("binh").items[0].id)

    refused = crmkit(crm, "db", "restore", str(target), input="n\n")
    assert refused.exit_code != 0 and names(crm) == ["Lê Văn Cường", "Nguyễn Văn An"]
    restored = crmkit(crm, "db", "restore", str(target), "--yes")
    assert restored.exit_code == 0, restored.output
    assert "Database restored" in restored.stdout
    assert "Erased again: 1 customer(s) erased after this backup was taken." in restored.stderr
    assert names(crm) == ["Nguyễn Văn An"]  # Bình, erased after the backup, is not brought back
    assert crm.customers.get(2).status == "erased" and crm.customers.get(2).name == "Erased customer 2"
    assert crm.customers.find("an").items[0].phones == ("+84912345678",)
    assert [(e.action, e.entity) for e in crm.audit.entries(entity="database").items] == [("restore", "database")]


@sqlite_only
def test_backup_and_restore_refuse_what_would_lose_or_break_data(crm: Any, tmp_path: Path) -> None:
    crm.customers.add(name="Nguyễn Văn An")
    kept = tmp_path / "hom-qua.crmkit"
    kept.write_bytes(b"yesterday's backup")
    exists = crmkit(crm, "db", "backup", str(kept))
    assert exists.exit_code != 0 and "exists: choose another name, or --overwrite it" in exists.stderr
    assert kept.read_bytes() == b"yesterday's backup"
    assert crmkit(crm, "db", "backup", str(kept), "--overwrite").exit_code == 0

    not_sqlite = tmp_path / "ghi-chu.txt"
    not_sqlite.write_text("không phải cơ sở dữ liệu " * 100, encoding="utf-8")
    wrong = crmkit(crm, "db", "restore", str(not_sqlite), "--yes")
    assert wrong.exit_code != 0 and "is not a SQLite database" in wrong.stderr
    other = tmp_path / "khac.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    foreign = crmkit(crm, "db", "restore", str(other), "--yes")
    assert foreign.exit_code != 0 and "is not a crmkit database" in foreign.stderr

    newer = tmp_path / "newer.crmkit"
    shutil.copyfile(kept, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE crmkit_version_crmkit SET version_num = 'from_the_future'")
    future = crmkit(crm, "db", "restore", str(newer), "--yes")
    assert future.exit_code != 0 and "was made by a newer version of crmkit" in future.stderr
    assert names(crm) == ["Nguyễn Văn An"]  # every refusal left the database alone
    assert crmkit(crm, "db", "restore", str(tmp_path / "missing.crmkit"), "--yes").exit_code != 0


@sqlite_only
def test_an_older_backup_restores_and_says_to_upgrade(crm: Any, tmp_path: Path) -> None:
    crm.customers.add(name="Nguyễn Văn An")
    target = tmp_path / "cu.crmkit"
    assert crmkit(crm, "db", "backup", str(target)).exit_code == 0
    with sqlite3.connect(target) as conn:  # as if taken before the core's newest revision
        conn.execute("UPDATE crmkit_version_crmkit SET version_num = 'crmkit_0007'")
    restored = crmkit(crm, "db", "restore", str(target), "--yes")
    assert restored.exit_code == 0, restored.output
    assert "run `crmkit db upgrade`" in restored.stderr


WRITER = textwrap.dedent("""
    import sys
    from crmkit.crm import CRM
    crm = CRM(sys.argv[1], plugins=[])
    for batch in range(10_000):
        with crm.transaction():
            for n in range(10):
                crm.customers.add(name=f"Khách {batch} {n}")
""")


@sqlite_only
def test_a_backup_while_another_process_writes_is_one_consistent_snapshot(crm: Any, tmp_path: Path) -> None:
    url = crm.engine.url.render_as_string(hide_password=False)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url], stderr=subprocess.PIPE, text=True)
    try:
        counts = []
        for n in range(3):
            while crm.customers.find(limit=1).items == [] or len(counts) == n and _count(crm.engine) < 30 * (n + 1):
                assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
                time.sleep(0.05)
            target = tmp_path / f"dang-ghi-{n}.crmkit"
            assert crmkit(crm, "db", "backup", str(target)).exit_code == 0
            copy = sa.create_engine(f"sqlite:///{target}")
            assert sa.inspect(copy).has_table("customers")
            with copy.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            counts.append(_count(copy))
            copy.dispose()
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert all(count % 10 == 0 and count > 0 for count in counts), counts  # whole transactions only
    assert counts == sorted(counts)


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM customers").scalar_one())


KILLED_BEFORE_RENAME = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from crmkit.core import backup
    from crmkit.crm import CRM

    def stall(src, dst):
        Path(sys.argv[3]).write_text("copied")
        time.sleep(600)

    backup.os.replace = stall
    backup.backup(CRM(sys.argv[1], plugins=[]), sys.argv[2])
""")

KILLED_IN_RESTORE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from crmkit.core import backup
    from crmkit.crm import CRM

    crm = CRM(sys.argv[1], plugins=[])
    Path(sys.argv[3]).write_text("restoring")
    backup.restore(crm, sys.argv[2])
""")


def _killed(script: str, url: str, file: Path, ready: Path, *, delay: float = 0.0) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", script, url, str(file), str(ready)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ready.exists(), child.stderr.read() if child.stderr else ""
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)


@sqlite_only
def test_a_backup_killed_before_it_completes_leaves_no_file_that_looks_like_a_backup(crm: Any, tmp_path: Path) -> None:
    crm.customers.add(name="Nguyễn Văn An")
    url, target = crm.engine.url.render_as_string(hide_password=False), tmp_path / "dem-nay.crmkit"
    _killed(KILLED_BEFORE_RENAME, url, target, tmp_path / "ready")
    assert not target.exists()
    assert crmkit(crm, "db", "backup", str(target)).exit_code == 0  # the next backup is whole
    assert sorted(p.name for p in tmp_path.iterdir() if "dem-nay" in p.name) == ["dem-nay.crmkit"]
    assert names(CRM(f"sqlite:///{target}", plugins=[])) == ["Nguyễn Văn An"]


@sqlite_only
def test_a_restore_killed_part_way_leaves_the_old_database_or_the_new_one_never_a_mix(crm: Any, tmp_path: Path) -> None:
    crm.customers.add(name="Bản sao")
    backup_file = tmp_path / "lon.crmkit"
    assert crmkit(crm, "db", "backup", str(backup_file)).exit_code == 0
    with sqlite3.connect(backup_file) as conn:  # a backup big enough for the kill to land inside the restore
        conn.execute("CREATE TABLE ballast (b BLOB)")
        conn.executemany("INSERT INTO ballast VALUES (?)", [(os.urandom(1 << 16),) for _ in range(800)])
    crm.customers.add(name="Bản gốc")
    url = crm.engine.url.render_as_string(hide_password=False)
    for delay in (0.0, 0.05, 0.2):
        _killed(KILLED_IN_RESTORE, url, backup_file, tmp_path / f"ready-{delay}", delay=delay)
        fresh = sa.create_engine(url)
        with fresh.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            shown = sorted(conn.exec_driver_sql("SELECT name FROM customers").scalars())
        fresh.dispose()
        assert shown in (["Bản gốc", "Bản sao"], ["Bản sao"])


@pytest.mark.postgresql_only("PostgreSQL's own tools")
def test_on_postgresql_backup_names_pg_dump_which_round_trips_the_crm(crm: Any, tmp_path: Path) -> None:
    crm.customers.add(name="Nguyễn Văn An", phone="0912 345 678")
    refused = crmkit(crm, "db", "backup", str(tmp_path / "x.crmkit"))
    assert refused.exit_code != 0 and "pg_dump --format=custom" in refused.stderr
    url = crm.engine.url
    dump, copy_name = tmp_path / "crm.dump", f"crmkit_restored_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    where = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432), "--username", url.username or ""]
    subprocess.run(
        [_pg_tool("pg_dump"), *where, "--format=custom", f"--file={dump}", url.database],
        env=env,
        check=True,
        capture_output=True,
    )
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{copy_name}"')
    try:
        subprocess.run(
            [_pg_tool("pg_restore"), *where, f"--dbname={copy_name}", str(dump)],
            env=env,
            check=True,
            capture_output=True,
        )
        restored = CRM(url.set(database=copy_name), plugins=[])
        assert [c.phones for c in restored.customers.find("nguyen van an").items] == [("+84912345678",)]
        restored.close()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{copy_name}" WITH (FORCE)')
        admin.dispose()


def _pg_tool(name: str) -> str:
    """The PostgreSQL client program ``name`` (Debian keeps the versioned ones under /usr/lib/postgresql)."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed"
    return found
