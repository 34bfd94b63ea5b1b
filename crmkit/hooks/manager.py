"""Plugin discovery (stevedore, once per process) and loading into one pluggy manager per CRM.

Loading never lets one broken plugin take the CRM down: a plugin that fails to
import, misses a dependency or implements a hook wrongly is reported by name
with the reason and left out (``CRMKIT_STRICT_PLUGINS=1`` makes that an error).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import types
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import pluggy
from packaging.requirements import InvalidRequirement, Requirement

from crmkit.errors import PluginError
from crmkit.hooks import specs
from crmkit.plugin import Plugin, resolve

GROUP = "crmkit.plugins"


@attrs.define
class PluginInfo:
    """What ``crmkit plugins list`` shows about one plugin."""

    name: str
    version: str
    status: str  # enabled | disabled | failed
    reason: str | None = None
    hooks: list[str] = attrs.field(factory=list)
    distribution: str | None = None
    plugin: Plugin | None = None
    depth: int = 0


@attrs.frozen
class Discovered:
    """An entry point of the ``crmkit.plugins`` group, loaded or not."""

    name: str
    plugin: Plugin | None
    error: str | None
    distribution: str | None
    version: str


_discovered: list[Discovered] | None = None


def discover(refresh: bool = False) -> list[Discovered]:
    """Every installed plugin, scanned with stevedore once per process (``refresh`` rescans)."""
    global _discovered
    if _discovered is None or refresh:
        _discovered = _scan(refresh)
    return list(_discovered)


def _scan(refresh: bool) -> list[Discovered]:
    from stevedore import ExtensionManager

    if refresh:  # stevedore keeps each group's entry points for the life of the process
        ExtensionManager.ENTRY_POINT_CACHE.pop(GROUP, None)
    failures: dict[str, str] = {}

    def on_failure(manager: Any, entry_point: importlib.metadata.EntryPoint, exc: BaseException) -> None:
        failures[entry_point.name] = f"cannot import {entry_point.value}: {type(exc).__name__}: {exc}"

    manager = ExtensionManager(GROUP, invoke_on_load=False, on_load_failure_callback=on_failure)
    owners = _distributions_by_module()
    found = []
    for ext in manager.extensions:
        dist = owners.get(ext.module_name.split(".")[0])
        version = _dist_version(dist)
        plugin = ext.plugin
        if not isinstance(plugin, Plugin):
            found.append(
                Discovered(
                    ext.name, None, f"entry point {ext.entry_point_target} is not a crmkit.Plugin", dist, version
                )
            )
        elif plugin.name != ext.name:
            found.append(
                Discovered(
                    ext.name,
                    None,
                    f"entry point name {ext.name!r} differs from plugin name {plugin.name!r}",
                    dist,
                    version,
                )
            )
        else:
            found.append(Discovered(ext.name, plugin, None, dist, plugin.version or version))
    for name, error in failures.items():
        found.append(Discovered(name, None, error, None, "?"))
    return sorted(found, key=lambda d: d.name)


def _distributions_by_module() -> dict[str, str]:
    return {module: dists[0] for module, dists in importlib.metadata.packages_distributions().items()}


def _dist_version(dist: str | None) -> str:
    if dist is None:
        return "?"
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def strict_from_env() -> bool:
    """True when ``CRMKIT_STRICT_PLUGINS`` asks for plugin failures to be errors."""
    return os.environ.get("CRMKIT_STRICT_PLUGINS", "").lower() in ("1", "true", "yes")


def blocked_from_env() -> set[str]:
    """Plugin names listed in ``CRMKIT_DISABLE_PLUGINS`` (comma-separated)."""
    return {n.strip() for n in os.environ.get("CRMKIT_DISABLE_PLUGINS", "").split(",") if n.strip()}


def new_plugin_manager() -> pluggy.PluginManager:
    """A pluggy manager for crmkit's hooks; every one crmkit makes comes from here.

    ``crmkit.testing --crmkit-hook-report`` wraps this to see which hooks the tests exercise.
    """
    return pluggy.PluginManager("crmkit")


class PluginRegistry:
    """Loads plugins into a fresh ``pluggy.PluginManager("crmkit")`` and records each one's status."""

    def __init__(self, candidates: Sequence[Discovered], *, disabled: Iterable[str] = (), strict: bool = False) -> None:
        self.pm = new_plugin_manager()
        self.pm.add_hookspecs(specs)
        self.strict = strict
        self.infos: dict[str, PluginInfo] = {}
        self._modules: dict[str, list[Any]] = {}
        #: Who published each hookspec (the core's are ``None``): a second plugin publishing one is told whose it is.
        self._spec_owners: dict[str, str | None] = dict.fromkeys(vars(self.pm.hook))
        self._load(candidates, set(disabled))

    # -- loading -----------------------------------------------------------------

    def _load(self, candidates: Sequence[Discovered], disabled: set[str]) -> None:
        from crmkit.core.declared_data import declared

        for cand in candidates:
            info = PluginInfo(cand.name, cand.version, "enabled", distribution=cand.distribution, plugin=cand.plugin)
            self.infos[cand.name] = info
            if cand.name in disabled:  # blocking a plugin is also how one works around a broken one
                info.status, info.reason = "disabled", cand.error
            elif cand.plugin is None:
                self._fail(cand.name, cand.error or "not a crmkit.Plugin")
        order = self._resolve_order()
        hook_modules: dict[str, list[Any]] = {}
        for name in order:  # dependencies first: their specs exist before anyone implements them
            plugin = self.infos[name].plugin
            assert plugin is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
            try:
                spec_modules = [resolve(ref) for ref in plugin.hookspecs]
                modules = [resolve(ref) for ref in plugin.hooks]
            except Exception as exc:  # noqa: BLE001 - any import error is reported, not raised
                self._fail(name, f"cannot import: {type(exc).__name__}: {exc}")
                continue
            try:
                declared(plugin)  # its personal_data names its own tables and columns
            except PluginError as exc:
                self._fail(name, str(exc).split(": ", 1)[1])
                continue
            except Exception as exc:  # noqa: BLE001 - its tables cannot be imported: reported, not raised
                self._fail(name, f"cannot import: {type(exc).__name__}: {exc}")
                continue
            try:
                for spec_module in spec_modules:
                    self.pm.add_hookspecs(spec_module)
                for module in modules:
                    self._publish_hookspecs(module)
            except pluggy.PluginValidationError as exc:  # its crmkit_add_hookspecs has a wrong signature
                self._fail(name, _validation_reason(exc, self.pm))
                continue
            except Exception as exc:  # noqa: BLE001 - a bad spec module is the plugin's fault, reported
                self._fail(name, self._clash(exc) or f"cannot publish its hookspecs: {type(exc).__name__}: {exc}")
                continue
            finally:
                for hook in vars(self.pm.hook).keys() - self._spec_owners.keys():
                    self._spec_owners[hook] = name
            hook_modules[name] = modules
        # pluggy calls the last registered first: register dependants first so that a
        # dependency's implementation runs before its dependants'.
        for name in reversed(order):
            if self.infos[name].status != "enabled":
                continue
            if not self._missing_dependency(name):
                self._register(name, hook_modules[name])
        self._check_unknown_hooks()
        self._fail_dependants()
        for name, info in self.infos.items():
            if info.status == "enabled":
                info.hooks = sorted(
                    {impl_name for mod in self._modules.get(name, []) for impl_name in self._hooks_of(mod)}
                )

    def _resolve_order(self) -> list[str]:
        """Enabled plugins ordered by dependency depth, then name; cycles and missing ones fail."""
        depth: dict[str, int] = {}

        def visit(name: str, stack: tuple[str, ...]) -> int:
            if name in depth:
                return depth[name]
            info = self.infos[name]
            assert info.plugin is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
            level = 0
            for req in info.plugin.requires:
                dep = _requirement(req).name
                if dep in stack:
                    raise PluginError(name, f"dependency cycle: {' -> '.join(stack + (dep,))}")
                dep_info = self.infos.get(dep)
                if dep_info is not None and dep_info.status == "enabled":
                    level = max(level, visit(dep, stack + (dep,)) + 1)
            depth[name] = level
            return level

        for name, info in list(self.infos.items()):
            if info.status == "enabled":
                try:
                    visit(name, (name,))
                except PluginError as exc:
                    self._fail(name, str(exc).split(": ", 1)[1])
        for name, level in depth.items():
            self.infos[name].depth = level
        return sorted((n for n in depth if self.infos[n].status == "enabled"), key=lambda n: (depth[n], n))

    def _missing_dependency(self, name: str) -> bool:
        plugin = self.infos[name].plugin
        assert plugin is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
        for req_text in plugin.requires:
            req = _requirement(req_text)
            dep = self.infos.get(req.name)
            if dep is None:
                return self._fail(name, f"requires {req_text}, which is not installed")
            if dep.status != "enabled":
                return self._fail(name, f"requires {req_text}, which is {dep.status}")
            if req.specifier and dep.version != "?" and not req.specifier.contains(dep.version, prereleases=True):
                return self._fail(
                    name, f"version mismatch: requires {req_text}, but {req.name} {dep.version} is installed"
                )
        return False

    def _register(self, name: str, modules: list[Any]) -> None:
        registered = []
        try:
            for index, module in enumerate(modules):
                self.pm.register(module, name=f"{name}" if index == 0 else f"{name}#{index}")
                registered.append(module)
        except (pluggy.PluginValidationError, ValueError) as exc:
            for module in registered:
                self.pm.unregister(module)
            self._fail(name, _validation_reason(exc, self.pm))
            return
        self._modules[name] = registered

    def _clash(self, exc: Exception) -> str | None:
        """The reason a plugin fails when it publishes a hookspec that the core or another plugin already did."""
        found = re.match(r"Hook '(\w+)' is already registered", str(exc))
        if found is None:
            return None
        hook = found[1]
        owner = self._spec_owners.get(hook)
        by = f"plugin {owner!r}" if owner else "the core"
        return f"publishes hookspec {hook}, which {by} already publishes (name a plugin's own hooks crmkit_<plugin>_…)"

    def _publish_hookspecs(self, module: Any) -> None:
        """Call the module's ``crmkit_add_hookspecs`` (if any) with this manager, before anything is registered.

        The real manager registers dependants first (so that dependencies' implementations
        run first), yet every spec must exist before the first implementation is checked
        against it; so the call goes through a throwaway manager holding only that function.
        """
        if self.pm.parse_hookimpl_opts(module, "crmkit_add_hookspecs") is None:
            return
        publisher = new_plugin_manager()
        publisher.add_hookspecs(specs)
        publisher.register(types.SimpleNamespace(crmkit_add_hookspecs=module.crmkit_add_hookspecs))
        publisher.hook.crmkit_add_hookspecs.call_historic(kwargs={"pm": self.pm})

    def _check_unknown_hooks(self) -> None:
        for name, modules in list(self._modules.items()):
            for module in modules:
                for hook_name in self._hooks_of(module):
                    caller = getattr(self.pm.hook, hook_name)
                    if not caller.has_spec():
                        impl = next(i for i in caller.get_hookimpls() if i.plugin is module)
                        if not impl.optionalhook:
                            self._fail(
                                name,
                                f"implements unknown hook {hook_name} (is the plugin publishing it installed and required?)",
                            )

    def _fail_dependants(self) -> None:
        changed = True
        while changed:
            changed = False
            for name, info in self.infos.items():
                if info.status == "enabled" and info.plugin is not None:
                    for req_text in info.plugin.requires:
                        dep = self.infos.get(_requirement(req_text).name)
                        if dep is None or dep.status != "enabled":
                            self._fail(name, f"requires {req_text}, which is {dep.status if dep else 'not installed'}")
                            changed = True
                            break

    def _fail(self, name: str, reason: str) -> bool:
        info = self.infos[name]
        info.status, info.reason = "failed", reason
        for module in self._modules.pop(name, []):
            if self.pm.is_registered(module):
                self.pm.unregister(module)
        if self.strict:
            raise PluginError(name, reason)
        return True

    def _hooks_of(self, module: Any) -> list[str]:
        return [caller.name for caller in self.pm.get_hookcallers(module) or []]

    # -- queries -----------------------------------------------------------------

    def enabled(self) -> list[PluginInfo]:
        """Plugins registered with the manager, in dependency order."""
        return sorted((i for i in self.infos.values() if i.status == "enabled"), key=lambda i: (i.depth, i.name))

    def dependencies(self, *names: str) -> set[str]:
        """Every plugin the named ones require, directly or through others (themselves not included)."""
        found: set[str] = set()
        todo = list(names)
        while todo:
            info = self.infos.get(todo.pop())
            for requirement in info.plugin.requires if info is not None and info.plugin is not None else ():
                dependency = _requirement(requirement).name
                if dependency not in found:
                    found.add(dependency)
                    todo.append(dependency)
        return found

    def plugin_of(self, hook_function: Any) -> str | None:
        """The name of the plugin whose module defines ``hook_function`` (for error messages)."""
        for name, modules in self._modules.items():
            for module in modules:
                for caller in self.pm.get_hookcallers(module) or []:
                    for impl in caller.get_hookimpls():
                        if impl.plugin is module and impl.function.__code__ is hook_function:
                            return name
        return None


def _requirement(text: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise PluginError("?", f"bad requirement {text!r}: {exc}") from None


def _validation_reason(exc: Exception, pm: pluggy.PluginManager) -> str:
    """pluggy's multi-line message as one line a plugin author can act on.

    "hook crmkit_x: Argument(s) {'y'} are declared in the hookimpl but can not be found in
    the hookspec; implemented as crmkit_x(y), the hookspec is crmkit_x(crm, session)".
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    found = re.search(r"for hook '([^']+)'", lines[0]) if lines else None
    if found is None:
        return "; ".join(lines) or repr(exc)
    hook = found.group(1)
    prefix = "hookimpl definition:"
    detail = "; ".join(line for line in lines[1:] if not line.startswith(prefix))
    definition = next((line[len(prefix) :].strip() for line in lines if line.startswith(prefix)), None)
    caller = getattr(pm.hook, hook, None)
    if definition:
        detail += f"; implemented as {definition}"
    if caller is not None and caller.spec is not None:
        detail += f", the hookspec is {hook}({', '.join(caller.spec.argnames)})"
    return f"hook {hook}: {detail}"
