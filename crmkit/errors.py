"""The exceptions crmkit raises: one family, each saying what went wrong and where."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CRMError(Exception):
    """Base class of every error crmkit raises on purpose."""


class NotFound(CRMError, LookupError):
    """A customer, interaction or plugin object with that id does not exist."""

    def __init__(self, kind: str, ident: Any) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!r} not found")


class PermissionDenied(CRMError, PermissionError):
    """The acting user lacks a permission; ``permission`` names it (a record outside the user's scope is ``NotFound``)."""

    def __init__(self, permission: str, user: str, detail: str = "") -> None:
        self.permission = permission
        self.user = user
        super().__init__(f"user {user!r} lacks permission {permission}" + (f": {detail}" if detail else ""))


class AuthenticationFailed(CRMError):
    """A sign-in or token was refused: wrong secret, unknown or disabled user, expired, revoked or locked.

    The message says no more than that to the caller; the audit log keeps the reason.
    """


class ValidationError(CRMError, ValueError):
    """Input was rejected; ``errors`` maps each field to its messages.

    ``row`` is set for errors raised while importing a file (1-based data row).
    Hooks named ``*_before_*`` raise it to veto a change.
    """

    def __init__(self, message: str | Mapping[str, Any], *, field: str | None = None, row: int | None = None) -> None:
        if isinstance(message, Mapping):
            self.errors: dict[str, Any] = dict(message)
        else:
            self.errors = {field or "_": [message]}
        self.row = row
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        for field, messages in self.errors.items():
            text = "; ".join(_flatten(messages))
            parts.append(text if field == "_" else f"{field}: {text}")
        prefix = f"row {self.row}: " if self.row is not None else ""
        return prefix + "; ".join(parts)


def _flatten(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Mapping):
        return [f"{key}: {m}" for key, value in messages.items() for m in _flatten(value)]
    return [m for item in messages for m in _flatten(item)]


class Conflict(CRMError):
    """The change clashes with existing data (a duplicate external id, a merge of a customer into itself)."""


class SchemaOutdated(CRMError):
    """The database schema is behind the installed code: run ``crmkit db upgrade``."""


class DatabaseUnavailable(CRMError):
    """The database URL cannot be reached or opened."""


class PluginError(CRMError):
    """A plugin failed to load, or one of its hook implementations raised."""

    def __init__(self, plugin: str, message: str, *, hook: str | None = None) -> None:
        self.plugin = plugin
        self.hook = hook
        where = f"plugin {plugin}" + (f": hook {hook}" if hook else "")
        super().__init__(f"{where}: {message}")
