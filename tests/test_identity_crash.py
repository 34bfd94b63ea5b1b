"""Identity writes under concurrency and a kill -9: nothing lost, nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import crmkit
from crmkit.core import tables as t
from crmkit.testing import add_user

PASSWORD = "Sen-hong-2026!"

#: Adds a user with a team and a role and hands a customer over, all in one transaction, then waits to be killed.
WORKER = """
import sys, time
from pathlib import Path
import crmkit
url, ready = sys.argv[1], Path(sys.argv[2])
crm = crmkit.CRM(url, plugins=[])
with crm.transaction():
    crm.users.add("lan", "Nguyễn Thị Lan", password="Sen-hong-2026!", teams=["Hà Nội"], roles=["sales"])
    crm.users.reassign("minh", "lan")
    crm.roles.grant("sales", "customers.merge", "own")
    ready.touch()
    time.sleep(120)
"""


def _threads(count: int, work: Any) -> list[Any]:
    results: list[Any] = []
    barrier = threading.Barrier(count)

    def run() -> None:
        barrier.wait()
        results.append(work())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_concurrent_wrong_passwords_all_count_towards_the_lock(crm: Any) -> None:
    crm.users.add("lan", password=PASSWORD)

    def guess() -> bool:
        try:
            crm.users.authenticate("lan", "not-the-password")
        except crmkit.AuthenticationFailed:
            return False
        return True

    assert _threads(6, guess) == [False] * 6
    with crm.reading() as conn:
        failures, locked = conn.execute(sa.select(t.users.c.failed_logins, t.users.c.locked_until)).one()
    assert failures == 6 and locked is not None  # no guess lost to a race
    assert sum(e.action == "login_failed" for e in crm.audit.entries(entity="user")) == 6


def test_crms_opening_a_new_database_at_once_make_the_default_roles_once(crm_factory: Any) -> None:
    url = crm_factory().engine.url.render_as_string(hide_password=False)
    crms = [crmkit.CRM(url, plugins=[]) for _ in range(4)]
    try:
        queue = list(crms)
        lock = threading.Lock()

        def open_roles() -> int:
            with lock:
                mine = queue.pop()
            return len(mine.roles.list())

        assert _threads(4, open_roles) == [6] * 4
        with crms[0].reading() as conn:
            roles = conn.execute(sa.select(sa.func.count()).select_from(t.roles)).scalar_one()
            applied = conn.execute(sa.select(sa.func.count()).select_from(t.permission_defaults)).scalar_one()
        assert (roles, applied) == (6, len(crms[0].access.permissions))
    finally:
        for crm in crms:
            crm.close()


def test_a_killed_identity_change_leaves_nothing_behind(crm: Any, tmp_path: Path) -> None:
    crm.teams.add("Hà Nội")
    add_user(crm, "minh")
    customer = crm.customers.add(name="Khách của Minh", owner="minh")
    before = {table.name: _count(crm, table) for table in (t.users, t.team_members, t.user_roles, t.audit_log)}
    ready = tmp_path / "ready"
    url = crm.engine.url.render_as_string(hide_password=False)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, url, str(ready)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists(), worker.stderr.read() if worker.stderr else ""
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    assert {table.name: _count(crm, table) for table in (t.users, t.team_members, t.user_roles, t.audit_log)} == before
    assert crm.customers.get(customer.id).owner == "minh"
    assert "customers.merge" not in crm.roles.get("sales").grants
    with pytest.raises(crmkit.NotFound):
        crm.users.get("lan")
    crm.users.add("lan", "Nguyễn Thị Lan", password=PASSWORD, teams=["Hà Nội"], roles=["sales"])  # as if never tried
    assert crm.users.authenticate("lan", PASSWORD).roles == ("sales",)


def _count(crm: Any, table: sa.Table) -> int:
    with crm.reading() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
