"""The core hook catalogue, grouped by phase.

Every hook is called with keyword arguments; an implementation may accept any
subset of them. ``crm`` is the :class:`crmkit.CRM`, ``session`` the SQLAlchemy
session of the running transaction. Implementations of one hook run in plugin
dependency order (a dependency's before its dependants'). Hooks that run "in the
transaction" roll the whole change back if they raise; ``*_before_*`` hooks veto
by raising :class:`crmkit.ValidationError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit.hooks import hookspec

if TYPE_CHECKING:
    import pluggy
    from marshmallow import fields
    from sqlalchemy.orm import Session
    from sqlalchemy.sql import ColumnElement

    from crmkit.core.models import Customer, Interaction
    from crmkit.crm import CRM

# --- Start-up -------------------------------------------------------------


@hookspec(historic=True)
def crmkit_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Called once when a plugin is registered: publish its own hookspecs with ``pm.add_hookspecs(module)``."""


@hookspec
def crmkit_startup(crm: CRM) -> None:
    """Called once per CRM after every plugin is registered and the schema checked; raising fails start-up."""


@hookspec
def crmkit_services(crm: CRM) -> dict[str, Any] | None:
    """Return ``{name: service}``; each service becomes ``crm.<name>`` (a plugin's Python API)."""


@hookspec
def crmkit_channels() -> list[str] | None:
    """Return extra channel names (e.g. ``zalo``) that interactions and consents may use."""


@hookspec
def crmkit_customer_fields() -> dict[str, fields.Field] | None:
    """Return ``{attribute: marshmallow field}`` validating keys of ``customer.attributes``."""


# --- Customers --------------------------------------------------------------


@hookspec
def crmkit_customer_before_save(crm: CRM, customer: Customer | None, changes: dict[str, Any], session: Session) -> None:
    """Before a customer is inserted (``customer`` is None) or updated; ``changes`` holds the validated new values.

    Runs in the write transaction; raise ``crmkit.ValidationError`` to veto (nothing is written).
    """


@hookspec
def crmkit_customer_created(crm: CRM, customer: Customer, session: Session) -> None:
    """After a customer is inserted, in the same transaction; raising rolls the insert back."""


@hookspec
def crmkit_customer_updated(crm: CRM, customer: Customer, changes: dict[str, Any], session: Session) -> None:
    """After a customer is updated (``changes``: field → new value), in the same transaction."""


@hookspec
def crmkit_customers_merged(crm: CRM, kept: Customer, merged: Customer, session: Session) -> None:
    """After the core moved ``merged``'s rows to ``kept``, in the same transaction: re-point your own rows."""


# --- Interactions -------------------------------------------------------------


@hookspec
def crmkit_interaction_before_log(crm: CRM, interaction: dict[str, Any], session: Session) -> None:
    """Before an interaction (validated field dict, no id yet) is inserted; raise ``ValidationError`` to veto."""


@hookspec
def crmkit_interaction_logged(crm: CRM, interaction: Interaction, session: Session) -> None:
    """After an interaction is inserted, in the same transaction."""


# --- Privacy and the customer 360 ------------------------------------------------


@hookspec
def crmkit_customer_export(crm: CRM, customer: Customer, session: Session) -> dict[str, Any] | None:
    """Right of access: return ``{section: JSON-able data}`` of everything you hold about ``customer``."""


@hookspec
def crmkit_customer_erase(crm: CRM, customer: Customer, session: Session) -> None:
    """Right to erasure: delete or anonymize your rows for ``customer``, in the erase transaction."""


@hookspec
def crmkit_customer_profile(crm: CRM, customer: Customer, session: Session) -> dict[str, Any] | None:
    """Customer 360: return ``{section: data}`` to show on the customer's profile (keep it to a few queries)."""


@hookspec
def crmkit_segment_fields(crm: CRM) -> dict[str, ColumnElement[Any]] | None:
    """Return ``{field name: SQL expression over customers.c.id}`` that segment filters may use."""


# --- The demo ---------------------------------------------------------------------


@hookspec
def crmkit_demo_populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    """Called by ``crmkit demo`` after the core made its customers: add your demo data (deterministic from ``seed``)."""


@hookspec
def crmkit_demo_overview(crm: CRM) -> dict[str, list[str]] | None:
    """Return ``{section title: lines}`` for the overview ``crmkit demo`` prints after populating."""
