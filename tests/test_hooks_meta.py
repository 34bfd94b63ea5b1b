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
(d) Every hookspec a bundled plugin publishes is exercised by a test, read from the tests' code (the
    plugins' suites are too large to run here): some test module implements it (a function of that name
    under ``@hookimpl``) or calls it (``crm.hooks.call(name or spec, …)``, ``collect``, ``call_each``,
    ``pm.hook.<name>(…)``) where a bundled plugin implements it. A new plugin hookspec with neither fails
    here by name: give it a test with a small plugin implementing it that asserts what the user sees.
"""

from __future__ import annotations

import ast
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


def suite_modules() -> list[Path]:
    """Every test module of the repository: tests/, the bundled plugins' and the example plugins' tests."""
    return sorted(
        {*ROOT.glob("tests/**/*.py"), *ROOT.glob("plugins/*/tests/**/*.py"), *ROOT.glob("examples/*/tests/**/*.py")}
    )


def plugin_modules() -> list[Path]:
    """Every module of the bundled and example plugins' own code (not their tests)."""
    return sorted({*ROOT.glob("plugins/*/crmkit_*/**/*.py"), *ROOT.glob("examples/*/crmkit_*/**/*.py")})


def implemented(tree: ast.AST, hooks: set[str]) -> set[str]:
    """The hooks of ``hooks`` a module implements: a function of that name decorated ``@hookimpl`` (or ``(…)``)."""

    def is_hookimpl(decorator: ast.expr) -> bool:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        return (target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)) == "hookimpl"

    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name in hooks
        and any(map(is_hookimpl, node.decorator_list))
    }


def called(tree: ast.AST, hooks: set[str]) -> set[str]:
    """The hooks of ``hooks`` a module calls: ``crm.hooks.call/collect/call_each(name or spec, …)``,
    ``pm.hook.<name>(…)``."""
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        relay = node.func.value
        if isinstance(relay, ast.Attribute) and relay.attr == "hook":
            found.add(node.func.attr)
        elif node.func.attr in ("call", "call_each", "collect") and node.args:
            first = node.args[0]
            found.add(first.value if isinstance(first, ast.Constant) else getattr(first, "attr", None))
    return found & hooks


def unexercised_plugin_hooks(published: dict[str, tuple[str, Any]]) -> list[str]:
    """The published hooks no test implements, nor calls while a bundled plugin implements them."""
    hooks = set(published)
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in suite_modules()}
    in_tests = set().union(*(implemented(tree, hooks) for tree in trees.values()))
    tests_call = set().union(*(called(tree, hooks) for tree in trees.values()))
    in_plugins = set().union(
        *(implemented(ast.parse(path.read_text(encoding="utf-8"), str(path)), hooks) for path in plugin_modules())
    )
    exercised = in_tests | (tests_call & in_plugins)
    return [f"{published[name][0]}: {name}" for name in sorted(hooks - exercised)]


def test_every_plugin_hookspec_is_exercised_by_a_test():
    missing = unexercised_plugin_hooks(plugin_hookspecs())
    assert not missing, (
        f"plugin hookspecs no test implements (with @hookimpl) or calls where a plugin implements them: {missing}; "
        "give each a test with a small plugin implementing it that asserts what the user sees"
    )


def test_a_new_unexercised_plugin_hookspec_fails_by_name():
    """The check above is not vacuous: a hookspec nobody implements or calls is reported with its plugin."""
    published = plugin_hookspecs()
    published["crmkit_sales_nobody_listens"] = ("sales", published["crmkit_order_placed"][1])
    assert unexercised_plugin_hooks(published) == ["sales: crmkit_sales_nobody_listens"]


#: Hooks published before new hooks had to carry their plugin's name: implementers use these names, so they stay.
#: (Service's first three are the names issue 17 gave them.) Add nothing here: name a new hook crmkit_<plugin>_….
UNPREFIXED_SINCE_BEFORE = frozenset(
    {
        "crmkit_channel_adapters",
        "crmkit_message_event",
        "crmkit_points_changed",
        "crmkit_tier_changed",
        "crmkit_order_placed",
        "crmkit_order_discounts",
        "crmkit_orders_imported",
        "crmkit_order_refunded",
        "crmkit_order_cancelled",
        "crmkit_deal_stage_changed",
        "crmkit_payment_recorded",
        "crmkit_case_opened",
        "crmkit_case_resolved",
        "crmkit_sla_breached",
    }
)


def test_a_plugins_new_hooks_carry_its_name():
    """Two plugins cannot publish one hook name (the second fails to load), so a plugin's hooks are namespaced."""
    published = plugin_hookspecs()
    unnamed = sorted(
        f"{plugin}: {name}"
        for name, (plugin, _) in published.items()
        if not name.startswith(f"crmkit_{plugin}_") and name not in UNPREFIXED_SINCE_BEFORE
    )
    assert not unnamed, f"name these hooks crmkit_<plugin>_…: {unnamed}"
    assert UNPREFIXED_SINCE_BEFORE <= set(published), "a grandfathered hook is gone: take it off the list"
