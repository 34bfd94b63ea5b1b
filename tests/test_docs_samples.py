"""The code samples of README.md and docs/*.md run, so the documentation cannot drift from the code.

Each page's ```python blocks run in order in one namespace (a later block continues an earlier one, as a reader
does), each in an empty folder of its own holding the small CSV files the import samples read. Three kinds of block are not run
here, and are all spotted by rule, not listed:

* a block right after ``<!-- no-test: reason -->`` — an excerpt that cannot run alone (a fragment of a
  plugin's service, a server that is not there); the reason is required and the list is kept short;
* a block holding only a hook's signature (``crmkit_x(crm: CRM) -> None``): tests/test_hooks_meta.py checks those
  against crmkit/hooks/specs.py;
* a block whose first line names a file of the tutorial's plugin (``# crmkit-nps/crmkit_nps/models.py``): the
  tutorial test below writes those into a freshly generated plugin and runs its tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crmkit.hooks.manager import discover
from crmkit.scaffold import create
from crmkit.testing import write_csv

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent>[ ]*)```python\n(?P<body>.*?)^(?P=indent)```", re.MULTILINE | re.DOTALL)
NO_TEST = re.compile(r"<!--\s*no-test:\s*(?P<reason>[^>]*?)\s*-->\s*$")
SIGNATURE = re.compile(r"crmkit_\w+\(.*\) -> .+", re.DOTALL)
TUTORIAL_FILE = re.compile(r"# (?P<dist>crmkit-\w+)/(?P<path>\S+)(?P<append> \(append\))?\n")
MAX_NO_TEST = 8  # excerpts that cannot run: few, each with its reason


def samples(page: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, reason not run or None)`` of every ```python block of ``page``."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        indent = len(match.group("indent"))
        code = "\n".join(row[indent:] for row in match.group("body").splitlines())
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        marked = NO_TEST.search(before)
        if marked:
            assert marked.group("reason"), f"{page.name}:{line}: a no-test mark needs its reason"
            reason: str | None = f"no-test: {marked.group('reason')}"
        elif SIGNATURE.fullmatch(code.strip()):
            reason = "a hook signature (tests/test_hooks_meta.py)"
        elif TUTORIAL_FILE.match(code):
            reason = "a file of the tutorial's plugin (test_the_tutorial_builds_a_working_nps_plugin)"
        else:
            reason = None
        found.append((line, code, reason))
    return found


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_the_python_samples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace: dict[str, object] = {"__name__": f"sample_{page.stem}"}
    for line, code, reason in samples(page):
        if reason is not None:
            continue
        folder = tmp_path / f"line{line}"  # each sample's files (sqlite:///shop.db) are its own
        folder.mkdir()
        monkeypatch.chdir(folder)
        write_csv(
            folder / "clients.csv",
            ["external_id", "Họ tên", "email", "phone"],
            [["KH001", "Nguyễn Văn An", "an@example.vn", "0912345678"]],
        )
        write_csv(
            folder / "lich_su.csv",
            ["external_id", "customer_external_id", "channel", "direction", "occurred_at", "subject"],
            [["CG001", "KH001", "phone", "outbound", "2024-05-01T09:30:00+07:00", "Gọi xác nhận đơn hàng"]],
        )
        compiled = compile(code, f"{page.relative_to(ROOT)}:{line}", "exec", flags=annotations.compiler_flag)
        try:
            exec(compiled, namespace)  # noqa: S102 - the project's own documentation
        except Exception as exc:
            raise AssertionError(f"{page.relative_to(ROOT)}, the sample at line {line} fails: {exc!r}") from exc
    for value in namespace.values():  # the samples' CRMs: closed, so their files can go
        close = getattr(value, "close", None)
        if type(value).__name__ == "CRM" and callable(close):
            close()


def test_samples_that_do_not_run_are_few_and_say_why() -> None:
    marked = [(page.name, line, reason) for page in PAGES for line, _, reason in samples(page) if reason]
    excerpts = [m for m in marked if m[2].startswith("no-test")]
    assert len(excerpts) <= MAX_NO_TEST, excerpts
    running = sum(1 for page in PAGES for _, _, reason in samples(page) if reason is None)
    assert running > len(excerpts), "most samples must run"


def test_the_tutorial_builds_a_working_nps_plugin(tmp_path: Path) -> None:
    """docs/tutorial.md, followed to the letter: generate `nps`, write each file it shows, install it (on the path,
    with its entry point), and its tests pass; then its commands answer as the page says."""
    target = create("nps", tmp_path)
    written = []
    for _, code, _ in samples(ROOT / "docs" / "tutorial.md"):
        named = TUTORIAL_FILE.match(code)
        if named is None:
            continue
        assert named.group("dist") == "crmkit-nps"
        path = target / named.group("path")
        body = code[named.end() :]
        if named.group("append"):
            path.write_text(path.read_text(encoding="utf-8") + body + "\n", encoding="utf-8")
        else:
            path.write_text(body + "\n", encoding="utf-8")
        written.append(named.group("path"))
    assert "crmkit_nps/scores.py" in written and "tests/test_nps.py" in written
    site = tmp_path / "site"
    (site / "crmkit_nps-0.1.0.dist-info").mkdir(parents=True)
    (site / "crmkit_nps-0.1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: crmkit-nps\nVersion: 0.1.0\n"
    )
    (site / "crmkit_nps-0.1.0.dist-info" / "entry_points.txt").write_text(
        "[crmkit.plugins]\nnps = crmkit_nps.plugin:plugin\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env |= {"PYTHONPATH": os.pathsep.join([str(site), str(target)]), "CRMKIT_STRICT_PLUGINS": "1"}
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert re.search(r"\b\d+ passed", tested.stdout) and "failed" not in tested.stdout.splitlines()[-1]

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    env["CRMKIT_DISABLE_PLUGINS"] = ",".join(d.name for d in discover())  # only the tutorial's plugin

    def crmkit(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "crmkit.cli.main", "--locale", "en", "--db", url, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    crmkit("init")
    assert re.search(r"nps\s+nps_0002\s+nps_0002\s+up to date", crmkit("db", "current"))
    crmkit("customers", "add", "--name", "Nguyễn Văn An")
    assert crmkit("nps", "score", "1", "9") == "customer 1 scored 9\n"
    assert crmkit("nps", "report") == "NPS 100\n"
