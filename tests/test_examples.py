"""The examples run as a user runs them: the embedding script, and the notes plugin through `crmkit`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import crmkit
from crmkit.hooks.manager import discover

ROOT = Path(__file__).resolve().parents[1]
CRMKIT = Path(sys.executable).with_name("crmkit")


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_embedding_example_runs_and_shows_what_it_promises(tmp_path):
    result = run([sys.executable, "examples/embedding.py", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "added #1 Nguyễn Văn An +84912345678 and #2 Emily Carter +442079460958"
    assert "find 'nguyen van an': ['Nguyễn Văn An']" in lines
    assert "find '0958': ['Emily Carter']" in lines
    timeline = lines.index("timeline of Nguyễn Văn An")
    assert lines[timeline + 1].split()[2:] == ["email", "inbound", "Hỏi", "lại", "báo", "giá"]  # newest first
    assert lines[timeline + 2].split()[2:4] == ["phone", "outbound"]
    assert "profile: Nguyễn Văn An, Hà Nội, interactions {'email': 1, 'phone': 1}" in lines
    assert "audit: lan@shop.vn did update on customer 1" in lines
    assert any(line.startswith("ValidationError: email: ") and "(fields: ['email'])" in line for line in lines)
    assert "NotFound: customer 10000 not found" in lines
    assert lines[-2] == "branch sees ['Trần Thị Bích']; shop sees ['Emily Carter', 'Nguyễn Văn An']"
    assert lines[-1] == (
        "branch plugins: []; has welcome: False; welcome messages queued: ['Nguyễn Văn An', 'Emily Carter']"
    )
    # the data is really in the application's database files, each on its own
    with crmkit.CRM(f"sqlite:///{tmp_path / 'shop.db'}", plugins=[]) as shop:
        assert sorted(c.name for c in shop.customers.find()) == ["Emily Carter", "Nguyễn Văn An"]
        assert shop.customers.get(1).lifecycle_stage == "customer"


def test_notes_plugin_commands_through_crmkit(tmp_path):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    with crmkit.CRM(url, plugins=["notes"]) as crm:
        crm.users.add("lan", "Nguyễn Thị Lan", roles=["sales"])
        customer = crm.customers.add(name="Nguyễn Thị Hoa", owner="lan")
    others = ",".join(d.name for d in discover() if d.name != "notes")  # only the plugin under test
    env = {"CRMKIT_DISABLE_PLUGINS": others, "CRMKIT_STRICT_PLUGINS": "1"}

    added = run([str(CRMKIT), "--db", url, "--user", "lan", "notes", "add", str(customer.id), "Gọi lại lúc 9h"], **env)
    assert added.returncode == 0, added.stderr
    assert "Gọi lại lúc 9h" in added.stdout and "lan" in added.stdout
    listed = run([str(CRMKIT), "--db", url, "--format", "json", "notes", "list", str(customer.id)], **env)
    assert listed.returncode == 0, listed.stderr
    [note] = json.loads(listed.stdout)
    assert (note["customer_id"], note["author"], note["text"]) == (customer.id, "lan", "Gọi lại lúc 9h")

    missing = run([str(CRMKIT), "--db", url, "notes", "list", "999"], **env)
    assert (missing.returncode, missing.stderr) == (1, "error: customer 999 not found\n")
