"""The shell examples of README.md, docs/*.md and every plugin's README run, so a renamed option or command breaks
the suite instead of a reader's first try (issue 20, item 6; tests/test_docs_samples.py runs the ```python ones).

The rule, spotted by the test and not listed by hand:

* **Commands.** In a fenced block, a ``$ crmkit …`` line is a command, and so is a ``crmkit …`` line of a ``sh``,
  ``bash`` or ``shell`` block (a block without a language, or ``console``/``text``, needs the ``$``: there a line
  starting with ``crmkit`` is output, like the demo's report). A line ending in ``\\`` goes on on the next one; a
  ``# comment`` is dropped. Other programs (``pip``, ``curl``, ``pytest``, ``pg_dump``) are not run.
* **State.** Each section of a page (from one ``## `` heading to the next) runs its commands in order, in an
  empty folder of its own holding the small files the import examples read (:data:`FILES`), against a new
  database (``crmkit init``, every bundled plugin) — or, when the page's first command is ``crmkit demo``, a copy
  of one demo database (``crmkit demo --customers 60 --seed 7``, built once per run): what a reader who starts
  there and follows the section sees. Not run: ``crmkit demo`` lines themselves, commands that start
  a long-running process (``crmkit serve``, ``crmkit worker`` without ``--once``) and ``crmkit db revision`` (it
  writes a migration into the installed plugin's source). A command naming its own ``--db`` uses it.
* **How.** In-process through click's ``CliRunner`` (``shlex.split``; English unless the line says ``--locale``;
  a password prompt is answered with :data:`PASSWORD`, twice).
  ``> FILE`` writes the output to FILE, so a later line can read it; what follows ``|`` (``grep``, ``cut``) runs
  in bash with the output as its input, and what it prints is the command's output.
* **Files.** ``$ cat FILE`` followed by lines shows a file: when FILE is not there yet (an input the page
  shows), it is written with those lines; otherwise (one a command wrote) it must hold them. A ``yaml``, ``json``
  or ``csv`` block whose first line is ``# FILE`` shows FILE the same way.
* **Expected output.** A command must exit 0 — or fail (non-zero) when the first line shown after it starts with
  ``error:`` (vi ``lỗi:``). The lines shown after a ``$`` command (up to the next ``$`` line; blank lines and ``#`` lines aside)
  must each appear in what it printed, spaces collapsed, ``…`` or ``...`` matching anything.
* **Opt-out.** ``<!-- no-test: reason -->`` on the line before a block (a session at an interactive prompt, a
  plugin the page is writing); the reason is required and the list kept short.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from crmkit.cli.context import CLIContext
from crmkit.cli.main import EXIT_OK, cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "plugins").glob("*/README.md"))]
FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>[\w-]*)[ ]*$")
NO_TEST = re.compile(r"<!--\s*no-test:\s*(?P<reason>[^>]*?)\s*-->\s*$")
SHELL = {"sh", "bash", "shell"}
TRANSCRIPT = {"", "console", "text"}
SHOWN_FILE = re.compile(r"# (?P<name>[\w.-]+\.\w+)")
MAX_NO_TEST = 7
DEMO = ["demo", "--customers", "60", "--seed", "7"]
PASSWORD = "Mật khẩu đủ dài 2026"
_CLIENTS = "external_id,name,email,phone\nKH001,Nguyễn Văn An,an@example.vn,0912345678\n"
#: The files the pages' import examples read, as a reader would have them.
FILES = {
    "clients.csv": _CLIENTS,
    "big.csv": _CLIENTS,
    "clients.jsonl": '{"external_id": "KH002", "name": "Trần Thị Bích", "phone": "0987654321"}\n',
    "export_from_old_crm.csv": "Mã KH,Họ tên,SĐT\nKH003,Lê Văn Cường,0903123456\n",
    "khach_hang.csv": "Mã KH,Họ tên,email,mobile,city\nKH-001,Nguyễn Thị Mai,mai@example.vn,0912 000 111,Hà Nội\n"
    "KH-002,Phạm Quốc Bảo,bao.pham@example,0987 111 222,Hà Nội\nKH-003,Lê Thu Hà,ha.le@example.vn,0903 222 333,Huế\n",
    "lich_su.csv": "external_id,customer_external_id,channel,direction,occurred_at,subject\n"
    "CG001,KH001,phone,outbound,2024-05-01T09:30:00+07:00,Gọi xác nhận đơn hàng\n",
    "old_crm_calls.csv": "Mã cuộc gọi,Mã KH,channel,occurred_at\nOLD1,KH001,phone,2023-03-01T10:00:00+07:00\n",
}


@attrs.frozen
class Command:
    """One ``crmkit …`` line of a page: where it is, its words, and the output shown after it."""

    page: Path
    line: int
    text: str
    section: int  # the line of its ``## `` heading
    shown: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> Iterator[tuple[int, str, list[str], str | None, int]]:
    """``(first line, language, lines, reason not run or None, line of its section)`` of every fenced block."""
    lines = page.read_text(encoding="utf-8").splitlines()
    index = section = 0
    while index < len(lines):
        opened = FENCE.match(lines[index])
        if not opened:
            section = index + 1 if lines[index].startswith("## ") else section
            index += 1
            continue
        indent = opened.group("indent")
        end = next(i for i in range(index + 1, len(lines)) if lines[i].rstrip() == f"{indent}```")
        before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marked = NO_TEST.search(before)
        if marked:
            assert marked.group("reason"), f"{page.name}:{index + 1}: a no-test mark needs its reason"
        body = [row[len(indent) :] for row in lines[index + 1 : end]]
        yield index + 1, opened.group("lang"), body, marked.group("reason") if marked else None, section
        index = end + 1


def commands(page: Path, every: bool = False) -> Iterator[Command]:
    """Every command of ``page`` the rule runs, in order (see the module's docstring); ``every``: those not run too."""
    for first, lang, body, reason, section in blocks(page):
        named = SHOWN_FILE.fullmatch(body[0]) if body and lang in {"yaml", "json", "csv"} else None
        if named and reason is None:  # a file the page shows, for the commands after it
            yield Command(page, first, f"cat {named.group('name')}", section, tuple(body[1:]))
        if reason is not None or lang not in SHELL | TRANSCRIPT:
            continue
        found: list[Command] = []
        showing = False  # whether the lines now are the output of found[-1]
        index = 0
        while index < len(body):
            row, at = body[index], first + 1 + index
            text = row.removeprefix("$ ") if row.startswith(("$ crmkit ", "$ cat ")) else None
            if text is None and lang in SHELL and row.startswith("crmkit "):
                text = row
            index += 1
            if text is None:
                showing = showing and not row.startswith("$")
                if showing and row.strip() and not row.lstrip().startswith("#"):
                    found[-1] = attrs.evolve(found[-1], shown=(*found[-1].shown, row))
                continue
            showing = lang in TRANSCRIPT
            while text.rstrip().endswith("\\") and index < len(body):
                text = text.rstrip()[:-1] + " " + body[index].strip()
                index += 1
            found.append(Command(page, at, text, section))
        yield from (command for command in found if every or _runs(_split(command.text)[0]))


def _runs(args: list[str]) -> bool:
    """Whether the rule runs ``crmkit ARGS`` (see the module's docstring)."""
    ends = "serve" not in args and ("worker" not in args or "--once" in args)
    return ends and "demo" not in args and not ("db" in args and "revision" in args)


def _split(text: str) -> tuple[list[str], str | None, str | None]:
    """(the crmkit command's arguments, the file after ``>`` or None, the shell pipeline after ``|`` or None)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars="|>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words = list(lexer)
    stop = next((i for i, word in enumerate(words) if word in {"|", ">"}), len(words))
    out = words[stop + 1] if stop < len(words) and words[stop] == ">" else None
    pipe = shlex.join(words[stop + 1 :]) if stop < len(words) and words[stop] == "|" else None
    return words[1:stop], out, pipe


def _matches(shown: str, printed: list[str]) -> bool:
    """Whether ``shown`` (spaces collapsed, ``…``/``...`` for anything) is within one printed line."""
    parts = [re.escape(" ".join(part.split())) for part in re.split(r"…|\.\.\.", shown)]
    pattern = re.compile(r".*?".join(parts))
    return any(pattern.search(" ".join(line.split())) for line in printed)


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database every page starts from, made once (xdist workers share it through a lock)."""
    run = tmp_path_factory.getbasetemp()
    shared = (run.parent if os.environ.get("PYTEST_XDIST_WORKER") else run) / "crmkit-docs-demo"  # this run's
    shared.mkdir(exist_ok=True)
    database = shared / "demo.db"
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "ready").exists():
            made = CliRunner().invoke(cli, ["--locale", "en", "--db", f"sqlite:///{database}", *DEMO], obj=CLIContext())
            assert made.exit_code == EXIT_OK, made.output
            (shared / "ready").write_text("")
    return database


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_the_shell_examples_run(page: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    every = list(commands(page, every=True))
    if every and "demo" in _split(every[0].text)[0]:
        start = request.getfixturevalue("demo_database")
    else:
        start = tmp_path / "new.db"
        made = CliRunner().invoke(cli, ["--db", f"sqlite:///{start}", "init"], obj=CLIContext())
        assert made.exit_code == EXIT_OK, made.output
    monkeypatch = request.getfixturevalue("monkeypatch")
    env: dict[str, str | None] = {"CRMKIT_LOCALE": "en", "CRMKIT_USER": None}
    failures = []
    for command in commands(page):
        folder = tmp_path / f"section{command.section}"
        if not folder.exists():
            folder.mkdir()
            monkeypatch.chdir(folder)
            for name, text in FILES.items():
                Path(name).write_text(text, encoding="utf-8")
            shutil.copyfile(start, "crm.db")
            env["CRMKIT_DATABASE_URL"] = f"sqlite:///{folder / 'crm.db'}"
        args, out, pipe = _split(command.text)
        if command.text.startswith("cat "):  # a file the page shows: written for the next commands, or checked
            if not Path(args[0]).exists():
                Path(args[0]).write_text("\n".join(command.shown) + "\n", encoding="utf-8")
            elif unseen := [
                line for line in command.shown if not _matches(line, Path(args[0]).read_text().splitlines())
            ]:
                failures.append(f"{command.where}: {args[0]} does not hold {unseen[:3]}")
            continue
        ran = CliRunner().invoke(cli, args, obj=CLIContext(), env=env, input=f"{PASSWORD}\n{PASSWORD}\n")
        if out is not None:
            Path(out).write_text(ran.stdout, encoding="utf-8")
        refused = bool(command.shown) and command.shown[0].lstrip().startswith(("error:", "lỗi:"))
        printed = (ran.stdout + ran.stderr).splitlines()
        if pipe is not None and ran.exit_code == EXIT_OK:
            piped = subprocess.run(["bash", "-c", pipe], input=ran.stdout, capture_output=True, text=True, check=False)
            printed = (piped.stdout + piped.stderr).splitlines()
            if piped.returncode != 0:
                failures.append(f"{command.where}: `{command.text}`: the pipeline exited {piped.returncode}: {printed}")
                continue
        if (ran.exit_code != EXIT_OK) != refused:
            failures.append(f"{command.where}: `{command.text}` exited {ran.exit_code}: {ran.output[-600:]}")
            continue
        unseen = [line for line in command.shown if not _matches(line, printed)]
        if unseen:
            failures.append(f"{command.where}: `{command.text}` did not print {unseen[:3]}, but: {ran.output[-600:]}")
    assert not failures, "\n".join(failures)


def test_examples_that_do_not_run_are_few_and_say_why() -> None:
    marked = [
        (page.name, line, reason)
        for page in PAGES
        for line, lang, _, reason, _ in blocks(page)
        if reason and lang in SHELL | TRANSCRIPT  # the ```python ones are tests/test_docs_samples.py's
    ]
    assert len(marked) <= MAX_NO_TEST, marked
    assert sum(1 for page in PAGES for _ in commands(page)) > 200, "most examples run"
