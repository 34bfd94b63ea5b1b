"""Loud plugin failures and `crmkit doctor`: a plugin that fails to load is one warning line on stderr for every
command (once), `crmkit plugins list` exits 1, and `crmkit doctor` names each problem — plugins, database, schema,
the secret key and signing keys — with what to do, exiting 1 when there is one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmkit import migrations
from crmkit.cli.context import CLIContext
from crmkit.cli.main import EXIT_FAILED, cli

CRMKIT = Path(sys.executable).with_name("crmkit")
WARNING = "warning: plugin broken failed and is left out: cannot import crmkit_broken_doctor.plugin:plugin"


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    """A folder holding an installed distribution whose plugin module imports a dependency that is not installed."""
    site = tmp_path / "site"
    (site / "crmkit_broken_doctor").mkdir(parents=True)
    (site / "crmkit_broken_doctor" / "__init__.py").write_text("")
    (site / "crmkit_broken_doctor" / "plugin.py").write_text("import crmkit_dependency_not_installed  # noqa\n")
    dist_info = site / "crmkit_broken_doctor-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: crmkit-broken-doctor\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[crmkit.plugins]\nbroken = crmkit_broken_doctor.plugin:plugin\n")
    return site


def crmkit(site: Path | None, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`crmkit --locale en ARGS` as a user runs it, without strict mode, with ``site`` on the path."""
    environ = {k: v for k, v in os.environ.items() if k != "CRMKIT_STRICT_PLUGINS"}
    if site is not None:
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), environ.get("PYTHONPATH")]))
    environ.update(env)
    return subprocess.run(
        [str(CRMKIT), "--locale", "en", *args], env=environ, capture_output=True, text=True, timeout=120
    )


def test_a_failed_plugin_is_one_warning_per_command_and_plugins_list_fails(broken_site: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    init = crmkit(broken_site, "--db", url, "init")
    assert init.returncode == 0 and "crmkit database ready" in init.stdout
    assert init.stderr.count(WARNING) == 1, init.stderr
    assert "No module named 'crmkit_dependency_not_installed'" in init.stderr
    assert "(see `crmkit doctor`)" in init.stderr

    added = crmkit(broken_site, "--db", url, "customers", "add", "--name", "Nguyễn Văn An")
    assert added.returncode == 0 and added.stderr.count(WARNING) == 1

    listed = crmkit(broken_site, "--db", url, "--format", "json", "plugins", "list")
    assert listed.returncode == EXIT_FAILED
    status = {row["name"]: row["status"] for row in json.loads(listed.stdout)}
    assert status["broken"].startswith("failed: cannot import") and status["notes"] == "enabled"

    healthy = crmkit(None, "--db", url, "plugins", "list")
    assert healthy.returncode == 0 and "warning" not in healthy.stderr


def test_doctor_names_the_failed_plugin_and_what_to_do(broken_site: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    assert crmkit(None, "--db", url, "init").returncode == 0
    checked = crmkit(broken_site, "--db", url, "--format", "json", "doctor")
    assert checked.returncode == EXIT_FAILED, checked.stderr
    rows = {row["check"]: row for row in json.loads(checked.stdout)}
    broken = rows["plugin broken"]
    assert broken["state"] == "problem" and "No module named 'crmkit_dependency_not_installed'" in broken["detail"]
    assert "CRMKIT_DISABLE_PLUGINS=broken" in broken["what to do"]
    assert rows["database"]["state"] == "ok" and rows["plugin notes"]["state"] == "ok"
    assert rows["schema crmkit"]["state"] == "ok"

    left_out = crmkit(broken_site, "--db", url, "doctor", CRMKIT_DISABLE_PLUGINS="broken")
    assert left_out.returncode == 0, left_out.stdout
    assert "warning" not in left_out.stderr


def run_doctor(url: str | None = None, crm: Any = None, **env: str) -> tuple[int, dict[str, dict[str, str]]]:
    state = CLIContext(db=url, crm=crm, plugins=None if crm is None else [])
    result = CliRunner().invoke(cli, ["--locale", "en", "--format", "json", "doctor"], obj=state, env=env)
    return result.exit_code, {row["check"]: row for row in json.loads(result.stdout)}


def test_a_healthy_database_passes_and_a_behind_schema_says_run_db_upgrade(
    crm_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = tmp_path / "secret.key"
    key.write_text("k" * 64)
    monkeypatch.setenv("CRMKIT_SECRET_KEY", f"file:{key}")
    crm = crm_factory(plugins=["notes"])
    code, rows = run_doctor(crm=crm)
    assert code == 0, rows
    assert rows["schema notes"] == {
        "check": "schema notes",
        "state": "ok",
        "detail": "database at notes_0001, code at notes_0001",
        "what to do": "",
    }
    assert rows["CRM secret key"]["state"] == "ok" and f"file:{key}" in rows["CRM secret key"]["detail"]

    notes = next(lineage for lineage in crm.lineages() if lineage.name == "notes")
    migrations.downgrade(crm.engine, notes, "base")
    try:
        code, rows = run_doctor(crm=crm)
    finally:
        migrations.upgrade(crm.engine, [notes])  # the fixture's PostgreSQL databases are reused by other tests
    assert code == EXIT_FAILED
    assert rows["schema notes"]["state"] == "problem" and rows["schema notes"]["detail"].startswith("database at -")
    assert "crmkit db upgrade" in rows["schema notes"]["what to do"]
    assert run_doctor(crm=crm)[0] == 0  # `crmkit db upgrade` was the cure


def test_an_unreachable_database_and_an_unreadable_secret_key_are_problems(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CRMKIT_SECRET_KEY", "env:CRMKIT_DOCTOR_KEY_NOT_SET")
    monkeypatch.delenv("CRMKIT_DOCTOR_KEY_NOT_SET", raising=False)
    code, rows = run_doctor("postgresql://crmkit:secret@127.0.0.1:1/nowhere")
    assert code == EXIT_FAILED
    assert rows["database"]["state"] == "problem" and "secret" not in rows["database"]["detail"]
    assert "CRMKIT_DATABASE_URL" in rows["database"]["what to do"]
    assert rows["CRM secret key"]["state"] == "problem"
    assert "CRMKIT_DOCTOR_KEY_NOT_SET" in rows["CRM secret key"]["detail"]
    assert not any(check.startswith("schema") for check in rows)  # nothing to say about a schema it cannot read
    assert rows["plugin notes"]["state"] == "ok"  # plugins are checked without the database


def test_webhook_keys_wrapped_with_another_secret_key_are_a_problem(
    crm: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.key", tmp_path / "second.key"
    first.write_text("a" * 64)
    second.write_text("b" * 64)
    monkeypatch.setenv("CRMKIT_SECRET_KEY", f"file:{first}")
    crm.set_setting("webhooks.allow_private_urls", True)  # the receiver is a local service
    crm.webhooks.subscribe("http://127.0.0.1:9/crm", ["customer.created"])
    code, rows = run_doctor(crm=crm)
    assert code == 0 and rows["webhook signing keys"]["state"] == "ok"
    monkeypatch.setenv("CRMKIT_SECRET_KEY", f"file:{second}")
    code, rows = run_doctor(crm=crm)
    assert code == EXIT_FAILED and rows["webhook signing keys"]["state"] == "problem"
    assert "restore the CRM secret key" in rows["webhook signing keys"]["what to do"]


def test_doctor_and_the_failed_plugin_warning_speak_vietnamese(broken_site: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    assert crmkit(None, "--db", url, "init").returncode == 0
    checked = crmkit(broken_site, "--db", url, "--locale", "vi", "doctor")  # the last --locale wins
    assert checked.returncode == EXIT_FAILED
    assert "cảnh báo: phần mở rộng broken bị lỗi nên không được nạp: cannot import" in checked.stderr
    assert "(xem `crmkit doctor`)" in checked.stderr
    header = checked.stdout.splitlines()[0].split()
    assert header[:2] == ["Hạng", "mục"] and "Chi" in header and "Cách" in header
    assert re.search(r"^phần mở rộng broken +có vấn đề +\S+ bị lỗi: cannot import", checked.stdout, re.MULTILINE)
    assert "hoặc bỏ nó ra: `crmkit plugins disable broken` hay CRMKIT_DISABLE_PLUGINS=broken" in checked.stdout
    assert "lược đồ crmkit" in checked.stdout and "cơ sở dữ liệu ở crmkit_" in checked.stdout
    as_json = json.loads(crmkit(broken_site, "--db", url, "--locale", "vi", "--format", "json", "doctor").stdout)
    assert {row["check"]: row["state"] for row in as_json}["plugin broken"] == "problem"  # machine codes stay
