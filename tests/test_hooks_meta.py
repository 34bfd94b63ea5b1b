"""Meta-tests keeping the hook catalogue honest: every hookspec is documented and exercised.

(a) Every hookspec in ``crmkit.hooks.specs`` has a docstring and a section in
    docs/hooks.md showing its exact signature (as declared, annotations as written), and
    the docs list no hook that does not exist.
(b) Every hookspec runs at least one implementation during a passing test. This is checked
    at run time, not by grepping: the hook catalogue's tests — tests/test_plugins.py and the
    example plugins' own tests — run in a child pytest on SQLite with
    ``--crmkit-hook-report``, which monitors every pluggy manager crmkit creates and records,
    per hook, the tests in which an implementation ran. A hook added to specs.py without a
    test there that makes it run (with a plugin implementing it) fails here by name: give
    the new hook a test in tests/test_plugins.py (or exercise it from an example plugin).
(c) Every hookspec a bundled plugin publishes has a docstring and its signature (argument names,
    annotations optional) in the plugin's README or docs/hooks.md.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from crmkit.hooks import specs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "hooks.md"


def hookspecs() -> dict[str, Any]:
    """Every hookspec function of the core catalogue, by name."""
    return {
        name: fn
        for name, fn in vars(specs).items()
        if name.startswith("crmkit_") and callable(fn) and hasattr(fn, "crmkit_spec")
    }


def declared(name: str, fn: Any) -> str:
    """The signature as declared in specs.py: ``name(arg: Annotation, ...) -> Return``."""
    signature = inspect.signature(fn)
    params = []
    for p in signature.parameters.values():
        text = p.name if p.annotation is inspect.Parameter.empty else f"{p.name}: {p.annotation}"
        params.append(text if p.default is inspect.Parameter.empty else f"{text} = {p.default!r}")
    returns = "" if signature.return_annotation is inspect.Signature.empty else f" -> {signature.return_annotation}"
    return f"{name}({', '.join(params)}){returns}"


def doc_sections() -> dict[str, str]:
    """docs/hooks.md's hook sections (``#### `crmkit_x` ``) by hook name, with their text."""
    parts = re.split(r"^#### `(crmkit_\w+)`\s*$", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {parts[i]: re.split(r"^#{1,3} ", parts[i + 1], flags=re.MULTILINE)[0] for i in range(1, len(parts), 2)}


def test_catalogue_is_not_empty():
    assert {"crmkit_customer_created", "crmkit_customer_erase", "crmkit_add_hookspecs"} <= set(hookspecs())


def test_every_hookspec_has_a_docstring():
    undocumented = [name for name, fn in hookspecs().items() if not (fn.__doc__ or "").strip()]
    assert not undocumented, f"hookspecs without a docstring: {undocumented}"


def test_every_hookspec_is_in_the_docs_with_its_exact_signature():
    sections = doc_sections()
    problems = []
    for name, fn in hookspecs().items():
        section = sections.get(name)
        if section is None:
            problems.append(f"{name}: no '#### `{name}`' section in docs/hooks.md")
            continue
        blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
        if declared(name, fn) not in [line.strip() for block in blocks for line in block.splitlines()]:
            problems.append(f"{name}: docs/hooks.md must show `{declared(name, fn)}` in a python block")
        opts = fn.crmkit_spec
        if opts.get("historic") and "historic" not in section:
            problems.append(f"{name}: is historic, its section does not say so")
        if opts.get("firstresult") and "first non-None result" not in section:
            problems.append(f"{name}: is firstresult, its section must say it stops at the first non-None result")
    assert not problems, "\n".join(problems)


def test_docs_list_no_hook_that_does_not_exist():
    stale = sorted(set(doc_sections()) - set(hookspecs()))
    assert not stale, f"docs/hooks.md documents hooks that are not in crmkit.hooks.specs: {stale}"


# --- hooks the bundled plugins publish --------------------------------------------------------------------------


def plugin_hookspecs() -> dict[str, tuple[str, Any]]:
    """Every hookspec a bundled plugin publishes (its ``Plugin(hookspecs=…)`` modules): ``{hook: (plugin, spec)}``."""
    from crmkit.hooks.manager import discover
    from crmkit.plugin import resolve

    found = {}
    for plugin in (d.plugin for d in discover() if d.plugin is not None):
        for module in map(resolve, plugin.hookspecs):
            for name, fn in vars(module).items():
                if name.startswith("crmkit_") and callable(fn) and hasattr(fn, "crmkit_spec"):
                    found[name] = (plugin.name, fn)
    return found


def readme_of(plugin: str) -> Path:
    """A bundled plugin's README (plugins/<name>/README.md, or the example's)."""
    bundled = ROOT / "plugins" / plugin / "README.md"
    return bundled if bundled.exists() else ROOT / "examples" / f"crmkit-{plugin}" / "README.md"


def test_bundled_plugins_publish_hooks():
    assert {"crmkit_order_placed", "crmkit_points_changed", "crmkit_message_event"} <= set(plugin_hookspecs())


def test_every_plugin_hookspec_has_a_docstring_and_its_signature_in_the_plugins_readme():
    problems = []
    for name, (plugin, fn) in sorted(plugin_hookspecs().items()):
        if not (fn.__doc__ or "").strip():
            problems.append(f"{plugin}: {name} has no docstring")
        arguments = [a for a in inspect.signature(fn).parameters if a != "self"]
        shown = re.escape(name) + r"\(" + r",\s*".join(re.escape(a) + r"(?::[^,()]*)?" for a in arguments) + r"\)"
        text = readme_of(plugin).read_text(encoding="utf-8") + DOCS.read_text(encoding="utf-8")
        if not re.search(shown, text):
            problems.append(
                f"{plugin}: {name}({', '.join(arguments)}) is not shown in {readme_of(plugin).relative_to(ROOT)} "
                "(nor docs/hooks.md) with exactly these arguments"
            )
    assert not problems, "\n".join(problems)


def hook_test_files() -> list[Path]:
    """Where the hook catalogue is tested: tests/test_plugins.py and the example plugins' tests."""
    return [ROOT / "tests" / "test_plugins.py", *sorted((ROOT / "examples").glob("*/tests/test_*.py"))]


def test_every_hookspec_runs_in_a_passing_test(tmp_path):
    report = tmp_path / "hooks.json"
    files = hook_test_files()
    env = {k: v for k, v in os.environ.items() if k not in ("CRMKIT_TEST_POSTGRES_URL", "PYTEST_ADDOPTS")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--crmkit-hook-report={report}",
            *map(str, files),
        ],
        cwd=ROOT,
        env={**env, "CRMKIT_STRICT_PLUGINS": "1"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"the hook tests failed:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
    exercised = json.loads(report.read_text())
    missing = sorted(name for name in hookspecs() if not exercised.get(name))
    assert not missing, (
        f"hookspecs no passing test makes run (with a plugin implementing them): {missing}; "
        f"looked in {[str(f.relative_to(ROOT)) for f in files]}"
    )
