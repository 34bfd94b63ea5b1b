"""Typed calls into the hook registry, so the rest of crmkit never touches ``pm.hook`` by hand.

Every call passes ``crm`` for the caller, and turns an unexpected exception from an
implementation into ``PluginError("plugin X: hook Y: …")`` naming the plugin at fault.
``crmkit.ValidationError`` (a veto) and other ``CRMError`` pass through unchanged.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from crmkit.core import declared_data
from crmkit.core.declared_data import Declared, declared
from crmkit.core.segments import SegmentField, as_segment_field
from crmkit.errors import CRMError, PluginError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import pluggy
    from marshmallow import fields
    from sqlalchemy.orm import Session

    from crmkit.core.models import Customer, Interaction
    from crmkit.crm import CRM
    from crmkit.hooks.manager import PluginRegistry


class Hooks:
    """The hook catalogue as methods; plugins' own hooks are reached with :meth:`call`."""

    def __init__(self, crm: CRM, registry: PluginRegistry) -> None:
        self._crm = crm
        self._registry = registry
        self._hook = registry.pm.hook
        self._declared: list[Declared] | None = None

    def declared_tables(self) -> list[Declared]:
        """The enabled plugins' ``personal_data`` tables (checked when the plugins loaded), which the core exports,
        erases and merges itself."""
        if self._declared is None:
            self._declared = [
                item for info in self._registry.enabled() if info.plugin for item in declared(info.plugin)
            ]
        return self._declared

    def call(self, name: str | Callable[..., Any], **kwargs: Any) -> Any:
        """Call hook ``name`` (any plugin's) with ``crm`` added; returns pluggy's result list.

        A plugin calling the hooks it publishes passes the hookspec itself (``call(hookspecs.crmkit_order_placed,
        order=order, session=session)``): a misspelt hook then fails on import instead of reaching no one, and
        arguments the spec does not declare, or misses, raise ``TypeError`` here.
        """
        if not isinstance(name, str):
            name = _checked_call(name, kwargs)
        caller = getattr(self._hook, name, None)
        if caller is None:
            return []  # a hook nobody published (its plugin is absent): nothing listens
        return self._invoke(caller, name, kwargs)

    def _invoke(self, caller: Any, name: str, kwargs: dict[str, Any]) -> Any:
        """Run a hook caller (or a subset of one), adding ``crm`` and naming the plugin at fault."""
        if caller.spec is not None and "crm" in caller.spec.argnames:
            kwargs.setdefault("crm", self._crm)
        try:
            return caller(**kwargs)
        except CRMError:
            raise
        except Exception as exc:
            plugin = self._blame(exc.__traceback__) or "?"
            raise PluginError(plugin, f"{type(exc).__name__}: {exc}", hook=name) from exc

    def call_each(self, name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Like :meth:`call`, but each non-None result comes with the name of the plugin that returned it,
        so a malformed result can be blamed on its plugin (each plugin's implementations run alone)."""
        caller = getattr(self._hook, name, None)
        if caller is None:
            return []
        pm = self._registry.pm
        registered = [impl.plugin for impl in caller.get_hookimpls()]
        results = []
        for plugin in dict.fromkeys(reversed(registered)):  # pluggy's own calling order, each plugin once
            alone = pm.subset_hook_caller(name, remove_plugins=[other for other in registered if other is not plugin])
            name_of = _plugin_name(pm, plugin)
            results.extend(
                (name_of, result) for result in self._invoke(alone, name, dict(kwargs)) if result is not None
            )
        return results

    def collect(self, name: str | Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
        """Merge every plugin's ``{key: value}`` answer to hook ``name`` (services, fields, adapters), in calling
        order. A key two plugins both claim raises ``PluginError`` naming both, instead of the last one winning,
        unless one requires the other: a dependant replaces what its dependency gave (``name``: as for :meth:`call`)."""
        if not isinstance(name, str):
            name = _checked_call(name, kwargs)
        merged: dict[str, Any] = {}
        clash = False
        for result in self.call(name, **kwargs):
            for key, value in (result or {}).items():
                clash = clash or key in merged
                merged[key] = value
        if clash:  # rare: find who claims what, one plugin at a time
            owners: dict[str, str] = {}
            for plugin, result in self.call_each(name, **kwargs):
                for key in result:
                    first = owners.setdefault(key, plugin)
                    if first != plugin and not ({first, plugin} & self._registry.dependencies(first, plugin)):
                        raise PluginError(
                            plugin, f"{key!r} is claimed by both plugin {first} and plugin {plugin}", hook=name
                        )
        return merged

    def has_implementations(self, name: str) -> bool:
        """True when at least one enabled plugin implements hook ``name``."""
        caller = getattr(self._hook, name, None)
        return bool(caller and caller.get_hookimpls())

    def _blame(self, tb: TracebackType | None) -> str | None:
        while tb is not None:
            plugin = self._registry.plugin_of(tb.tb_frame.f_code)
            if plugin:
                return plugin
            tb = tb.tb_next
        return None

    # -- start-up ------------------------------------------------------------------

    def startup(self) -> None:
        self.call("crmkit_startup")

    def services(self) -> dict[str, Any]:
        return self.collect("crmkit_services")

    def channels(self) -> list[str]:
        return [name for result in self.call("crmkit_channels") for name in (result or [])]

    def customer_fields(self) -> dict[str, fields.Field]:
        return self.collect("crmkit_customer_fields")

    def permissions(self) -> list[tuple[str, Any]]:
        """``(plugin name, its declared permissions)`` for every plugin implementing ``crmkit_permissions``."""
        return self.call_each("crmkit_permissions")

    def webhook_events(self) -> list[tuple[str, Any]]:
        """``(plugin name, its declared event types)`` for every plugin implementing ``crmkit_webhook_events``."""
        return self.call_each("crmkit_webhook_events")

    def jobs(self) -> list[tuple[str, Any]]:
        """``(plugin name, its scheduled jobs)`` for every plugin implementing ``crmkit_jobs``."""
        return self.call_each("crmkit_jobs")

    def api_operations(self) -> list[tuple[str, Any]]:
        """``(plugin name, its HTTP operations)`` for every plugin implementing ``crmkit_api_operations``."""
        return self.call_each("crmkit_api_operations")

    def translations(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """Each plugin's ``(package, domain)`` gettext catalogs (``crmkit_translations``), by plugin name."""
        found: dict[str, tuple[tuple[str, str], ...]] = {}
        for plugin, catalogs in self.call_each("crmkit_translations"):
            found[plugin] = found.get(plugin, ()) + tuple((str(package), str(domain)) for package, domain in catalogs)
        return found

    def console_pages(self) -> list[tuple[str, Any]]:
        """``(plugin name, its console pages)`` for every plugin implementing ``crmkit_console_pages``."""
        return self.call_each("crmkit_console_pages")

    def console_menu(self) -> list[tuple[str, Any]]:
        """``(plugin name, its menu entries)`` for every plugin implementing ``crmkit_console_menu``."""
        return self.call_each("crmkit_console_menu")

    def customer_panels(self) -> list[tuple[str, Any]]:
        """``(plugin name, its customer-360 panels)`` for every plugin implementing ``crmkit_customer_panels``."""
        return self.call_each("crmkit_customer_panels")

    def home_tiles(self) -> list[tuple[str, Any]]:
        """``(plugin name, its home tiles)`` for every plugin implementing ``crmkit_home_tiles``."""
        return self.call_each("crmkit_home_tiles")

    # -- customers -------------------------------------------------------------------

    def customer_before_save(self, customer: Customer | None, changes: dict[str, Any], session: Session) -> None:
        self.call("crmkit_customer_before_save", customer=customer, changes=changes, session=session)

    def customer_created(self, customer: Customer, session: Session) -> None:
        self.call("crmkit_customer_created", customer=customer, session=session)

    def customer_updated(self, customer: Customer, changes: dict[str, Any], session: Session) -> None:
        self.call("crmkit_customer_updated", customer=customer, changes=changes, session=session)

    def customers_merged_many(
        self,
        pairs: Mapping[int, int],
        merged: Mapping[int, Customer],
        load: Callable[[list[int]], Mapping[int, Customer]],
        session: Session,
    ) -> None:
        """A batch merge (``pairs``: merged id → kept id): the batch hook on the plugins implementing it, then
        ``crmkit_customers_merged`` pair by pair on the plugins that implement only that one (older plugins).

        The plugins' declared tables (``personal_data``) are re-pointed first. ``merged`` holds the merged customers
        as they were before the batch; ``load`` reads customers
        (the kept ones after the batch), called only when a plugin needs the per-pair hook.
        """
        pm = self._registry.pm
        declared_data.merge(session, self.declared_tables(), pairs)
        self.call("crmkit_customers_merged_many", pairs=pairs, session=session)
        batch = {_plugin_name(pm, impl.plugin) for impl in self._hook.crmkit_customers_merged_many.get_hookimpls()}
        single = self._hook.crmkit_customers_merged
        skip = [impl.plugin for impl in single.get_hookimpls() if _plugin_name(pm, impl.plugin) in batch]
        if len(skip) == len(single.get_hookimpls()):
            return
        caller = pm.subset_hook_caller("crmkit_customers_merged", skip) if skip else single
        kept = load(sorted(set(pairs.values())))
        for merged_id, kept_id in pairs.items():
            self._invoke(
                caller,
                "crmkit_customers_merged",
                {"kept": kept[kept_id], "merged": merged[merged_id], "session": session},
            )

    # -- interactions ------------------------------------------------------------------

    def interaction_before_log(self, interaction: dict[str, Any], session: Session) -> None:
        self.call("crmkit_interaction_before_log", interaction=interaction, session=session)

    def interaction_logged(self, interaction: Interaction, session: Session) -> None:
        self.call("crmkit_interaction_logged", interaction=interaction, session=session)

    # -- privacy and profile ---------------------------------------------------------------

    def customer_export(self, customer: Customer, session: Session) -> dict[str, Any]:
        """Each plugin's section: its declared tables' rows, with what its export hook returns added."""
        sections: dict[str, Any] = declared_data.export(session, self.declared_tables(), customer.id)
        for name, section in self._sections("crmkit_customer_export", customer=customer, session=session).items():
            both = isinstance(section, dict) and isinstance(sections.get(name), dict)
            sections[name] = {**sections[name], **section} if both else section
        return sections

    def customer_erase(self, customer: Customer, session: Session) -> None:
        """The plugins' erase hooks, then the erasure of their declared tables."""
        self.call("crmkit_customer_erase", customer=customer, session=session)
        declared_data.erase(session, self.declared_tables(), customer.id)

    def customer_profile(self, customer: Customer, session: Session) -> dict[str, Any]:
        return self._sections("crmkit_customer_profile", customer=customer, session=session)

    def segment_fields(self) -> dict[str, Any]:
        """Every plugin's segment fields as SQL expressions (a :class:`SegmentField` gives its expression)."""
        return {name: field.expression for name, field in self.segment_field_definitions().items()}

    def segment_field_definitions(self) -> dict[str, SegmentField]:
        """Every plugin's segment fields as :class:`SegmentField` (expression, and choices when enumerated), after
        the custom fields defined at run time (``crm.fields``; a plugin's field wins a name both use)."""
        fields = getattr(self._crm, "fields", None)
        merged: dict[str, SegmentField] = dict(fields.segment_fields()) if fields is not None else {}
        merged.update({name: as_segment_field(value) for name, value in self.collect("crmkit_segment_fields").items()})
        return merged

    # -- the demo ------------------------------------------------------------------------

    def demo_populate(self, customer_ids: list[int], seed: int) -> None:
        self.call("crmkit_demo_populate", customer_ids=customer_ids, seed=seed)

    def demo_overview(self) -> dict[str, list[str]]:
        return self._sections("crmkit_demo_overview")

    def _sections(self, name: str, **kwargs: Any) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for result in self.call(name, **kwargs):  # in plugin dependency order
            merged.update(result or {})
        return merged


def _checked_call(spec: Callable[..., Any], kwargs: Mapping[str, Any]) -> str:
    """The name of hookspec ``spec``, once ``kwargs`` are exactly its arguments (``crm`` may be left out)."""
    import inspect

    if not hasattr(spec, "crmkit_spec"):
        raise TypeError(f"{getattr(spec, '__name__', spec)!r} is not a crmkit hookspec (mark it with @hookspec)")
    declared = [name for name in inspect.signature(spec).parameters if name != "self"]  # specs may be methods
    unknown = sorted(set(kwargs) - set(declared))
    missing = sorted(set(declared) - set(kwargs) - {"crm"})
    if unknown or missing:
        problems = [f"unknown {unknown}" if unknown else "", f"missing {missing}" if missing else ""]
        raise TypeError(
            f"hook {spec.__name__}: arguments {' and '.join(p for p in problems if p)}; "
            f"the hookspec is {spec.__name__}({', '.join(declared)})"
        )
    return spec.__name__


def _plugin_name(pm: pluggy.PluginManager, module: Any) -> str:
    """The crmkit plugin a registered object belongs to (a plugin's extra modules register as ``name#n``)."""
    return (pm.get_name(module) or "").split("#")[0]
