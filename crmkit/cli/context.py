"""The state every command shares: database URL, output format, acting user — and the CRM, opened on demand.

Plugin commands take the CRM with ``@pass_crm`` and never open databases themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import click

if TYPE_CHECKING:
    from crmkit.crm import CRM

F = TypeVar("F", bound=Callable[..., Any])


@attrs.define
class CLIContext:
    """Options of the root ``crmkit`` group; ``crm`` opens the database the first time it is used."""

    db: str | None = None
    format: str = "table"
    debug: bool = False
    user: str | None = None
    upgrade: bool = False
    _crm: CRM | None = None

    @property
    def crm(self) -> CRM:
        if self._crm is None:
            from crmkit.crm import CRM

            self._crm = CRM(self.db, actor=self.user, upgrade=self.upgrade)
        return self._crm

    def close(self) -> None:
        if self._crm is not None:
            self._crm.close()
            self._crm = None


def pass_crm(function: F) -> F:
    """Decorator: call the command with the open ``CRM`` as its first argument."""

    @click.pass_context
    @functools.wraps(function)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        state = ctx.find_object(CLIContext)
        if state is None:
            raise click.UsageError("this command must run under the `crmkit` group")
        return ctx.invoke(function, state.crm, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
