"""The ``crmkit.Plugin`` object a distribution exposes through the ``crmkit.plugins`` entry point group.

Everything is named by dotted path and imported only when needed, so discovering
plugins (and ``crmkit --help``) stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any, Literal

import attrs


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, ModuleType)) or not isinstance(value, (list, tuple)):
        return (value,)
    return tuple(value)


def resolve(ref: str | Any) -> Any:
    """Import ``"package.module"`` or ``"package.module:attribute"``; other objects pass through."""
    if not isinstance(ref, str):
        return ref
    module_name, _, attribute = ref.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen
class Retained:
    """What erasure keeps of a table's rows about a customer, and why: ``Retained(reason, personal=(columns…))``.

    ``personal`` names every column of the kept rows that identifies or describes the person (names, phones,
    addresses, free text): erasure must clear them (NULL or empty) or replace them; the contract kit checks it.
    """

    reason: str
    personal: tuple[str, ...] = attrs.field(default=(), converter=_names)


def _check_retained(instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    for table, kept in value.items():
        if not isinstance(kept, Retained):
            raise ValueError(
                f"retained_tables[{table!r}] must be Retained(reason, personal=(columns…)), got {type(kept).__name__}"
            )


@attrs.frozen
class Owned:
    """A customer-owned table declared in ``Plugin(personal_data=…)``: the core exports, erases and merges its rows.

    ``what`` says what it holds (shown by ``crmkit plugins show``); ``erase`` is ``"delete"`` (the rows go) or a
    :class:`Retained` (the rows stay, its ``personal`` columns are cleared, for the reason it gives).
    """

    what: str
    erase: Literal["delete"] | Retained = attrs.field(default="delete")

    @erase.validator
    def _check_erase(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value != "delete" and not isinstance(value, Retained):
            raise ValueError(f'Owned(erase=…) must be "delete" or Retained(reason, personal=(columns…)), got {value!r}')


def _check_personal_data(instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    for table, owned in value.items():
        if not isinstance(owned, Owned):
            raise ValueError(f"personal_data[{table!r}] must be Owned(what, erase=…), got {type(owned).__name__}")


@attrs.frozen
class Plugin:
    """What a crmkit plugin declares about itself.

    ``hooks`` are the modules (or objects) holding ``@hookimpl`` functions; ``hookspecs``
    the modules of hooks it publishes for others; ``requires`` other plugins with optional
    version specifiers (``"sales>=0.1"``); ``tables`` its SQLAlchemy MetaData
    (``"pkg.models:metadata"``); ``migrations`` the package holding its Alembic versions;
    ``cli`` its click group; ``retained_tables`` the tables whose rows erasure keeps
    (anonymized), each a :class:`Retained` saying why (invoices a business must keep by law) and
    which of its columns are personal (cleared by erasure); ``personal_data`` the customer-owned tables
    whose export, erasure and merges the core does itself, each an :class:`Owned` (its ``Retained``
    erasures count as ``retained_tables`` too).
    """

    name: str = attrs.field()
    hooks: tuple[Any, ...] = attrs.field(default=(), converter=_as_tuple)
    hookspecs: tuple[Any, ...] = attrs.field(default=(), converter=_as_tuple)
    requires: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple)
    tables: str | Any | None = None
    migrations: str | None = None
    cli: str | Any | None = None
    description: str = ""
    version: str | None = None
    retained_tables: Mapping[str, Retained] = attrs.field(factory=dict, validator=_check_retained)
    personal_data: Mapping[str, Owned] = attrs.field(factory=dict, validator=_check_personal_data)

    def __attrs_post_init__(self) -> None:
        declared = {table: o.erase for table, o in self.personal_data.items() if isinstance(o.erase, Retained)}
        twice = sorted(set(declared) & set(self.retained_tables))
        if twice:
            raise ValueError(f"plugin {self.name}: {twice[0]!r} is in both personal_data and retained_tables")
        if declared:  # one place says what erasure keeps, whichever way it was declared
            object.__setattr__(self, "retained_tables", {**self.retained_tables, **declared})

    @name.validator
    def _check_name(self, attribute: attrs.Attribute[str], value: str) -> None:
        if not value.isidentifier() or value != value.lower():
            raise ValueError(f"plugin name must be a lower-case identifier, got {value!r}")
