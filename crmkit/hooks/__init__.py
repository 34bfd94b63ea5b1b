"""Hook specifications, the plugin manager that loads plugins, and the typed facade over them."""

import pluggy

#: Marks a function as a crmkit hook implementation (``@hookimpl def crmkit_customer_created(...)``).
hookimpl = pluggy.HookimplMarker("crmkit")
#: Marks a function as a hook specification; plugins use it for the hooks they publish.
hookspec = pluggy.HookspecMarker("crmkit")

__all__ = ["hookimpl", "hookspec"]
