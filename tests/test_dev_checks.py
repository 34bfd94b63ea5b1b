"""``python3 dev.py lint`` / ``test``: pip-audit fails the run on a known vulnerability and never because
the advisory service cannot be reached (one line says the dependencies were not audited)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """dev.py as a module, its tools looked for in ``tmp_path`` (where each test puts a stand-in pip-audit)."""
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "BIN", tmp_path)
    return module


def pip_audit(folder: Path, *, stdout: str = "", stderr: str = "", code: int = 0) -> None:
    """A stand-in ``pip-audit`` answering as the real one does in that situation."""
    script = folder / "pip-audit"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nsys.stdout.write({stdout!r})\nsys.stderr.write({stderr!r})\n"
        f"sys.exit({code})\n"
    )
    script.chmod(0o755)


def report(*dependencies: dict[str, Any]) -> str:
    return json.dumps({"dependencies": list(dependencies), "fixes": []})


def test_a_known_vulnerability_fails_the_checks_naming_the_package_and_the_fix(
    dev: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pip_audit(
        tmp_path,
        code=1,
        stdout=report(
            {"name": "jinja2", "version": "3.1.2", "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}]},
            {"name": "click", "version": "8.1.7", "vulns": []},
        ),
    )

    assert dev.audit() is False
    assert "jinja2 3.1.2 has a known vulnerability: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)" in capsys.readouterr().out


def test_no_known_vulnerability_passes_and_says_how_many_were_audited(
    dev: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pip_audit(
        tmp_path,
        stdout=report(
            {"name": "click", "version": "8.1.7", "vulns": []}, {"name": "attrs", "version": "25.1.0", "vulns": []}
        ),
    )

    assert dev.audit() is True
    assert "no known vulnerability in 2 dependencies" in capsys.readouterr().out


@pytest.mark.parametrize(
    "answer",
    [
        {
            "code": 1,
            "stderr": "Traceback (most recent call last):\nrequests.exceptions.ConnectionError: Failed to resolve",
        },
        {
            "code": 0,
            "stdout": report({"name": "click", "skip_reason": "Dependency not found on PyPI and could not be audited"}),
        },
    ],
    ids=["unreachable", "unknown-everywhere"],
)
def test_an_unreachable_advisory_service_is_one_line_and_passes(
    dev: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], answer: dict[str, Any]
) -> None:
    pip_audit(tmp_path, **answer)

    assert dev.audit() is True
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "advisory service cannot be reached" in lines[0] and "not audited" in lines[0]
