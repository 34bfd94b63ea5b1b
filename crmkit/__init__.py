"""crmkit: a plugin-based CRM framework — customers, interactions and a hook registry.

``from crmkit import CRM`` is the entry point for embedding; ``Plugin`` and ``hookimpl``
are what plugin authors need. Heavy modules (SQLAlchemy, marshmallow) load on first
use so that ``crmkit --help`` and plugin discovery stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit.errors import (
    AuthenticationFailed,
    Conflict,
    CRMError,
    DatabaseUnavailable,
    NotFound,
    PermissionDenied,
    PluginError,
    SchemaOutdated,
    ValidationError,
)
from crmkit.hooks import hookimpl, hookspec

if TYPE_CHECKING:
    from crmkit.core.events import EventType
    from crmkit.core.jobs import Job
    from crmkit.core.models import Address, Consent, Customer, Interaction, Page, Profile
    from crmkit.core.permissions import Permission
    from crmkit.crm import CRM
    from crmkit.plugin import Owned, Plugin, Retained

__version__ = "0.1.0"

_LAZY = {
    "CRM": "crmkit.crm",
    "Plugin": "crmkit.plugin",
    "Retained": "crmkit.plugin",
    "Owned": "crmkit.plugin",
    "Customer": "crmkit.core.models",
    "Interaction": "crmkit.core.models",
    "Address": "crmkit.core.models",
    "Consent": "crmkit.core.models",
    "Page": "crmkit.core.models",
    "Profile": "crmkit.core.models",
    "Permission": "crmkit.core.permissions",
    "EventType": "crmkit.core.events",
    "Job": "crmkit.core.jobs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'crmkit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "CRM",
    "Plugin",
    "Retained",
    "Owned",
    "Permission",
    "EventType",
    "Job",
    "hookimpl",
    "hookspec",
    "Customer",
    "Interaction",
    "Address",
    "Consent",
    "Page",
    "Profile",
    "CRMError",
    "NotFound",
    "PermissionDenied",
    "AuthenticationFailed",
    "ValidationError",
    "Conflict",
    "SchemaOutdated",
    "DatabaseUnavailable",
    "PluginError",
]
