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
    from collections.abc import Mapping

    import pluggy
    from marshmallow import fields
    from sqlalchemy.orm import Session
    from sqlalchemy.sql import ColumnElement, FromClause, Select

    from crmkit.console.extensions import ConsolePage, MenuEntry, Panel, Tile
    from crmkit.core.events import EventType
    from crmkit.core.jobs import Job
    from crmkit.core.models import Customer, Interaction
    from crmkit.core.permissions import Permission
    from crmkit.core.segments import SegmentField
    from crmkit.crm import CRM
    from crmkit.web.operations import Operation

# --- Start-up -------------------------------------------------------------


@hookspec(historic=True)
def crmkit_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Publish your plugin's own hookspecs with ``pm.add_hookspecs(namespace)``.

    Called once per plugin, in dependency order, before any plugin's implementations are
    registered — the same effect as ``Plugin(hookspecs=...)``, for specs built at load time.
    No database access; raising marks the plugin failed.
    """


@hookspec
def crmkit_startup(crm: CRM) -> None:
    """Called once per CRM after every plugin is registered, the schema checked and services created.

    No transaction is open. Raising makes ``CRM(...)`` raise ``PluginError`` naming the plugin.
    """


@hookspec
def crmkit_services(crm: CRM) -> dict[str, Any] | None:
    """Return ``{name: service}``; each service becomes ``crm.<name>`` (a plugin's Python API).

    Called once while the CRM opens, before ``crmkit_startup``; a name clashing with a CRM
    attribute raises ``PluginError``.
    """


@hookspec
def crmkit_channels() -> list[str] | None:
    """Return extra channel names (e.g. ``zalo``) that interactions and consents may use.

    Called once while the CRM opens; the core's channels come first, duplicates are dropped.
    """


@hookspec
def crmkit_customer_fields() -> dict[str, fields.Field] | None:
    """Return ``{attribute: marshmallow field}`` validating keys of ``customer.attributes``.

    Called when the customer schema is built (the CRM opening); other attribute keys pass unchecked.
    """


@hookspec
def crmkit_permissions() -> list[Permission] | None:
    """Return the ``crmkit.Permission`` objects your plugin checks (names start with the plugin's name).

    Called once while the CRM opens; ``crmkit permissions list`` shows them, roles grant them,
    and each permission's ``roles`` says which default roles get it. A name declared twice, or
    not under the plugin's name, marks the CRM failed to open with ``PluginError``.
    """


@hookspec
def crmkit_webhook_events() -> list[EventType] | None:
    """Return the ``crmkit.EventType`` objects your plugin emits with ``crm.events.emit`` (e.g. ``order.placed``).

    Called once while the CRM opens; webhook subscriptions may listen only to declared types
    (``crmkit webhooks events`` lists them). A name the core or another plugin already declared
    marks the CRM failed to open with ``PluginError`` naming your plugin.
    """


@hookspec
def crmkit_jobs(crm: CRM) -> list[Job] | None:
    """Return the ``crmkit.Job`` objects ``crmkit worker`` runs on a schedule (each ``every``, one worker at a time).

    Called once when a worker starts (no transaction). Each job's ``run(crm)`` runs as the system,
    outside any transaction: open your own. A name declared twice fails the worker's start naming the plugin.
    """


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
    """After the core moved ``merged``'s rows to ``kept``, in the same transaction: re-point your own rows.

    ``merged`` is the customer as it was before the merge; raising rolls the whole merge back.
    """


@hookspec
def crmkit_customers_merged_many(crm: CRM, pairs: Mapping[int, int], session: Session) -> None:
    """After the core merged many customers at once (``pairs``: merged id → kept id), in the same transaction.

    Re-point your rows set-based (``crmkit.core.bulk_sql.repoint``). A plugin implementing this
    is not called ``crmkit_customers_merged`` for the merges of a batch; one that does not is
    called it pair by pair. Raising rolls the whole batch back.
    """


@hookspec
def crmkit_customer_unmerged(crm: CRM, kept: Customer, restored: Customer, merge_id: int, session: Session) -> None:
    """After ``crm.customers.unmerge`` gave ``restored`` back every row the merge journal holds, in the same
    transaction: rebuild what you derive from those rows for both customers (balances, aggregates, counters).

    Rows moved through ``crmkit.core.bulk_sql.repoint`` (or named to ``crmkit.plugin_api.journal_moved``) are
    already back; raising rolls the whole unmerge back.
    """


# --- Interactions -------------------------------------------------------------


@hookspec
def crmkit_interaction_before_log(crm: CRM, interaction: dict[str, Any], session: Session) -> None:
    """Before an interaction (validated field dict, no id yet) is inserted; raise ``ValidationError`` to veto."""


@hookspec
def crmkit_interaction_logged(crm: CRM, interaction: Interaction, session: Session) -> None:
    """After an interaction is inserted, in the same transaction; raising rolls the insert back."""


# --- Purchases -----------------------------------------------------------------


@hookspec
def crmkit_value_transactions(crm: CRM) -> Select[Any] | FromClause | None:
    """Return your purchases as a selectable: one row per transaction with ``customer_id``, ``occurred_at``
    (UTC), ``amount_minor`` (net of refunds, integer minor units), ``currency``, and optionally
    ``margin_minor``, ``category`` and ``channel``.

    ``crmkit.purchases.purchases(crm)`` unions every implementation (asked once per CRM, outside any
    transaction); analytics, loyalty, campaigns and QCI read purchases only there. A row with a
    positive net amount is a purchase.
    """


# --- Privacy and the customer 360 ------------------------------------------------


@hookspec
def crmkit_customer_export(crm: CRM, customer: Customer, session: Session) -> dict[str, Any] | None:
    """Right of access: return ``{section: JSON-able data}`` of everything you hold about ``customer``.

    Runs in the export's transaction (a consistent snapshot); use ``crmkit.privacy.export_rows``.
    """


@hookspec
def crmkit_customer_erase(crm: CRM, customer: Customer, session: Session) -> None:
    """Right to erasure: delete or anonymize your rows for ``customer``, in the erase transaction.

    Runs before the core removes its own data (``customer`` is still complete); raising rolls
    the whole erasure back. Use ``crmkit.privacy.delete_rows`` / ``anonymize_rows``; rows kept keep only
    enumerations, numbers and dates (every free-text column cleared or replaced).
    """


@hookspec
def crmkit_customer_profile(crm: CRM, customer: Customer, session: Session) -> dict[str, Any] | None:
    """Customer 360: return ``{section: data}`` to show on the customer's profile (keep it to a few queries)."""


@hookspec
def crmkit_segment_fields(crm: CRM) -> dict[str, ColumnElement[Any] | SegmentField] | None:
    """Return ``{field name: SQL expression over customers.c.id}`` that segment filters may use.

    Called when a segment query is built (no transaction); the expression is correlated to the
    core ``customers`` table, e.g. a scalar subquery counting your rows per customer. A field with
    a fixed set of values returns ``crmkit.core.segments.SegmentField(expression, choices=(…))``
    instead (choices may be a function reading them from the database): a filter on another value
    is then refused with the closest choice suggested rather than matching nobody.
    ``crm.hooks.segment_fields()`` gives the expressions, ``segment_field_definitions()`` the fields.
    """


# --- The HTTP API ------------------------------------------------------------------


@hookspec
def crmkit_api_operations(crm: CRM) -> list[Operation] | None:
    """Return the ``crmkit.web.Operation`` routes your plugin adds to the HTTP API (paths under ``/<plugin>/``).

    Called once when the app is built (``crmkit serve``, ``crmkit.web.create_app``), no transaction open.
    Each operation's schemas document it in ``/openapi.json`` under your plugin's tag; its handler
    runs as the caller and calls your service, which checks permissions and scope. A path outside
    your prefix, or one declared twice, fails the app naming your plugin.
    """


# --- The web console ---------------------------------------------------------------


@hookspec
def crmkit_translations(crm: CRM) -> list[tuple[str, str]] | None:
    """Return ``(package, domain)`` of the gettext catalogs your plugin ships:
    ``<package>/locale/<lang>/LC_MESSAGES/<domain>.po``.

    Called once when the CRM opens. Your catalogs translate your own pages, menu entries, panels and tiles
    (before the core's catalog), never the core's or another plugin's; without a ``.po`` the msgid shows.
    """


@hookspec
def crmkit_console_pages(crm: CRM) -> list[ConsolePage] | None:
    """Return the ``crmkit.console.ConsolePage`` routes your plugin adds to the web console (under ``/console/<plugin>/``).

    Called once when the app is built, no transaction open. Each page's handler runs as the signed-in
    user and returns ``request.render(template, **values)`` (or a Werkzeug response); a page with a
    ``permission`` answers 403 to a user without it. A path outside your prefix fails the app naming your plugin.
    """


@hookspec
def crmkit_console_menu(crm: CRM) -> list[MenuEntry] | None:
    """Return ``crmkit.console.MenuEntry(label, url, permission)`` items for the console's menu.

    ``label`` is a msgid (translated per user); an entry whose ``permission`` the user lacks is not shown,
    and its URL answers 403 to that user. Called once when the app is built.
    """


@hookspec
def crmkit_customer_panels(crm: CRM) -> list[Panel] | None:
    """Return ``crmkit.console.Panel`` items for the customer-360 page: a template and a data function.

    ``data(crm, customer)`` runs as the signed-in user for each shown customer (keep it to a few queries);
    the panel is skipped when the user lacks its ``permission``. A panel named like a
    ``crmkit_customer_profile`` section replaces that section's generic rendering.
    """


@hookspec
def crmkit_home_tiles(crm: CRM) -> list[Tile] | None:
    """Return ``crmkit.console.Tile`` items for the console's home page: a title, a template, a data function.

    ``data(crm)`` runs as the signed-in user on each home page view; a tile whose ``permission`` the user
    lacks is not shown.
    """


# --- The demo ---------------------------------------------------------------------


@hookspec
def crmkit_demo_populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    """Called by ``crmkit demo`` after the core made its customers: add your demo data (deterministic from ``seed``).

    No transaction is open: write through your service (one transaction per batch).
    """


@hookspec
def crmkit_demo_overview(crm: CRM) -> dict[str, list[str]] | None:
    """Return ``{section title: lines}`` for the overview ``crmkit demo`` prints after populating (read only)."""
