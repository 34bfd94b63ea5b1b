"""Schema changes: ``crmkit init`` all or nothing, and ``crmkit db downgrade`` with data in the tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.crm import CRM

pytestmark = pytest.mark.crmkit_plugins("sales", "loyalty")


def crmkit(crm: Any, *args: str) -> Result:
    url = crm.engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(
        cli, ["--db", url, "--format", "json", *args], obj=CLIContext(plugins=["sales", "loyalty"])
    )


def states(crm: Any) -> dict[str, str]:
    result = crmkit(crm, "db", "current")
    assert result.exit_code == 0, result.output
    return {row["lineage"]: row["current"] for row in json.loads(result.stdout)}


def loyalty_tables(crm: Any) -> set[str]:
    return {name for name in sa.inspect(crm.engine).get_table_names() if name.startswith("loyalty_")}


def with_points(crm: Any) -> int:
    """A member with points, a reward and a redemption: rows in loyalty's tables that reference each other."""
    an = crm.customers.add(name="Nguyễn Văn An", phone="0912 345 678")
    crm.loyalty.programs.create("vip", "Khách thân thiết", auto_enroll=False)
    crm.loyalty.grant(an.id, 500, "Tết", program="vip")
    return an.id


def test_a_plugin_goes_down_to_base_with_its_data_and_comes_back_up(crm: Any) -> None:
    with_points(crm)
    head = states(crm)["loyalty"]
    down = crmkit(crm, "db", "downgrade", "loyalty", "base", "--yes")
    assert down.exit_code == 0, down.output
    assert states(crm)["loyalty"] == "-" and loyalty_tables(crm) == set()
    assert [c.name for c in crm.customers.find().items] == ["Nguyễn Văn An"]  # the core's data is untouched
    up = crmkit(crm, "db", "upgrade")
    assert up.exit_code == 0, up.output
    assert states(crm)["loyalty"] == head and "loyalty_ledger" in loyalty_tables(crm)


def test_one_revision_down_keeps_the_rows(crm: Any) -> None:
    customer_id = with_points(crm)
    down = crmkit(crm, "db", "downgrade", "--yes", "loyalty", "--", "-1")  # one revision down
    assert down.exit_code == 0, down.output
    with crm.engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM loyalty_ledger WHERE customer_id = :c"), {"c": customer_id}
            ).scalar_one()
            == 1
        )
    assert crmkit(crm, "db", "upgrade").exit_code == 0
    assert crm.loyalty.balance(customer_id, program="vip") == 500


def test_an_unknown_lineage_or_revision_is_refused_by_name_and_changes_nothing(crm: Any) -> None:
    with_points(crm)
    before = states(crm)
    lineage = crmkit(crm, "db", "downgrade", "khuyen_mai", "base", "--yes")
    assert lineage.exit_code != 0 and "khuyen_mai" in lineage.stderr
    revision = crmkit(crm, "db", "downgrade", "loyalty", "loyalty_9999", "--yes")
    assert revision.exit_code != 0 and "revision:" in revision.stderr and "loyalty_9999" in revision.stderr
    assert "unexpected" not in revision.stderr
    assert states(crm) == before


DOWNGRADE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from crmkit import migrations
    from crmkit.crm import CRM

    crm = CRM(sys.argv[1], plugins=["sales", "loyalty"])
    lineage = next(lin for lin in crm.lineages() if lin.name == "loyalty")
    Path(sys.argv[2]).write_text("going down")
    migrations.downgrade(crm.engine, lineage, "base")
""")


def test_a_downgrade_killed_part_way_leaves_the_schema_whole_at_one_revision(crm: Any, tmp_path: Path) -> None:
    with_points(crm)
    url = crm.engine.url.render_as_string(hide_password=False)
    head = states(crm)["loyalty"]
    for delay in (0.0, 0.02, 0.1):
        ready = tmp_path / f"ready-{delay}"
        child = subprocess.Popen([sys.executable, "-c", DOWNGRADE, url, str(ready)], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert ready.exists(), child.stderr.read() if child.stderr else ""
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        crm.engine.dispose()
        now, tables = states(crm)["loyalty"], loyalty_tables(crm)
        assert (now, "loyalty_ledger" in tables) in ((head, True), ("-", False)), (now, tables)
        if now == "-":  # the kill came after the commit: put it back for the next round
            assert crmkit(crm, "db", "upgrade").exit_code == 0


INIT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from crmkit.crm import CRM

    Path(sys.argv[2]).write_text("creating")
    CRM(sys.argv[1], plugins=None, upgrade=True)
""")


def test_a_first_init_killed_part_way_leaves_no_half_made_schema(tmp_path: Path) -> None:
    whole = {lin.name for lin in CRM(f"sqlite:///{tmp_path / 'whole.db'}", plugins=None, upgrade=True).lineages()}
    assert {"crmkit", "sales", "loyalty"} <= whole
    for delay in (0.3, 0.6, 1.0, 1.5):
        db = tmp_path / f"moi-{delay}.db"
        ready = tmp_path / f"ready-{delay}"
        child = subprocess.Popen(
            [sys.executable, "-c", INIT, f"sqlite:///{db}", str(ready)], stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert ready.exists(), child.stderr.read() if child.stderr else ""
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        engine = sa.create_engine(f"sqlite:///{db}")
        tables = set(sa.inspect(engine).get_table_names()) if db.exists() else set()
        engine.dispose()
        made = {name.removeprefix("crmkit_version_") for name in tables if name.startswith("crmkit_version_")}
        assert made in (set(), whole), (delay, made)
        assert ("customers" in tables) == bool(made)
