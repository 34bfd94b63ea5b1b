"""What a crmkit plugin may use beyond ``crmkit`` itself: one import place, kept stable across releases.

``from crmkit.plugin_api import customer_fk, repoint, Money, pass_crm, emit`` — everything here is promised to
plugins; every other ``crmkit.*`` module is private (as ``_pytest`` is to ``pytest``) and may change without
notice. The bundled plugins are held to it by an import-linter contract (pyproject.toml). The public modules a
plugin may import whole are ``crmkit``, ``crmkit.plugin_api``, ``crmkit.testing``, ``crmkit.errors``,
``crmkit.money``, ``crmkit.privacy``, ``crmkit.vncalendar``, ``crmkit.web`` and ``crmkit.console``.

Names load on first use, so importing this module stays as cheap as importing ``crmkit``.

* Tables: ``new_metadata``, ``customer_fk``, the column types ``Id``, ``UTCDateTime``, ``JSONType``; ``utcnow``
  (the system clock: read ``crm.now()`` wherever a CRM is at hand, so tests can freeze time).
* Set-based helpers (a merge hook re-points rows with ``repoint``): ``chunks``, ``in_ids``, ``ids_value``,
  ``select_in``, ``delete_in``, ``repoint``, ``executemany``, ``upsert``, ``insert_ignore``, ``lock_keys``;
  ``journal_moved`` names rows a merge hook moved without ``repoint`` (so an unmerge gives them back).
* Purchases from every source: ``purchases``, ``has_purchases``. Money: ``Money``, ``minor_units``,
  ``is_currency``, ``MAX_MINOR``. The calendar: the ``vncalendar`` module. SQL date helpers: ``day_of``,
  ``month_index``, ``local_clock``, …
* Core tables, **read only** (write through ``crm.customers`` / ``crm.interactions``), each also an attribute
  of ``core_tables``: ``customers`` (stable columns ``id``, ``kind``, ``name``, ``birth_date``, ``gender``,
  ``lifecycle_stage``, ``owner``, ``country``, ``city``, ``province``, ``attributes``, ``status``,
  ``merged_into_id``, ``created_at``, ``updated_at``), ``interactions`` (``id``, ``customer_id``, ``channel``,
  ``direction``, ``occurred_at``, ``subject``, ``summary``, ``outcome``, ``rating``, ``employee``),
  ``contact_points`` (``customer_id``, ``kind``, ``value``, ``position``), ``tags`` (``customer_id``, ``tag``),
  ``consents`` (``customer_id``, ``channel``, ``granted``, ``at``) and ``memberships`` (``person_id``,
  ``organization_id``, ``role``).
* Models and input: ``Customer``, ``Interaction``, ``Address``, ``KINDS``, ``GENDERS``, ``LIFECYCLE_STAGES``;
  ``CleanSchema``, ``AwareDateTime``, ``CustomerReference`` (an attribute naming another customer: exports
  and imports carry it by external id), ``aware_utc``, ``control_character_errors``, ``check_limit``,
  ``beyond_columns``, ``read_cursor``, ``to_jsonable``, ``encode_cursor``; text: ``fold``, ``normalize_email``,
  ``normalize_phone``; masking: ``mask_email``, ``mask_phone``, ``mask_customer``, ``mask_sender``, ``MASK``;
  access: ``SYSTEM``; segments: ``SegmentField``, ``Choices``, ``as_segment_field``, ``match_choice``;
  translations: ``plugin_translator``, ``Translator``, ``translate_message``; ``prefix_upper_bound`` (a prefix
  search as an indexed range).
* Secrets by reference (``env:NAME``, ``file:/path``; docs/security.md): ``refuse_inline`` (refuse a secret given
  inline), ``resolve``, ``resolve_all``, ``SecretUnavailable``, ``is_reference``; shown: ``redact_options``,
  ``redact_url``; keys kept with the data, wrapped with the CRM secret key: ``wrap``, ``unwrap``.
* Files: ``SafeWriter`` (CSV cells a spreadsheet will not run as formulas); a plugin's own import on the core's
  engine (streamed, batches of one transaction, a reject file): ``import_records`` with a ``RecordReader``
  subclass, a writer returning ``ImportOutcome`` per batch of ``AcceptedRow``, an ``ImportSummary`` back;
  ``resolve_customers`` (ids or external ids to customers).
* The command line: ``pass_crm``, ``CLIContext``, ``emit``, ``emit_object``, ``format_option``,
  ``current_format``, ``current_human``, ``current_translator``, ``N_``, ``Percent``, ``Coded``, the click
  params ``AWARE_DATETIME``, ``KEY_VALUE``, ``LazyChoice``, ``amount_minor``, and an import command's
  ``import_options`` and ``run_import`` (the options, progress bar and summary of ``crmkit customers import``).
* The console, beside ``crmkit.console``'s page types: ``ConsoleRequest``, ``customer_360``, ``form_errors``,
  ``messages_of``, ``channel_label``, ``svg_data_uri``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

    from crmkit import vncalendar as vncalendar
    from crmkit.cli.context import CLIContext as CLIContext
    from crmkit.cli.context import pass_crm as pass_crm
    from crmkit.cli.importing import import_options as import_options
    from crmkit.cli.importing import run_import as run_import
    from crmkit.cli.output import N_ as N_
    from crmkit.cli.output import Coded as Coded
    from crmkit.cli.output import Percent as Percent
    from crmkit.cli.output import current_format as current_format
    from crmkit.cli.output import current_human as current_human
    from crmkit.cli.output import current_translator as current_translator
    from crmkit.cli.output import emit as emit
    from crmkit.cli.output import emit_object as emit_object
    from crmkit.cli.output import format_option as format_option
    from crmkit.cli.params import AWARE_DATETIME as AWARE_DATETIME
    from crmkit.cli.params import KEY_VALUE as KEY_VALUE
    from crmkit.cli.params import LazyChoice as LazyChoice
    from crmkit.cli.params import amount_minor as amount_minor
    from crmkit.console.app import ConsoleRequest as ConsoleRequest
    from crmkit.console.display import channel_label as channel_label
    from crmkit.console.forms import form_errors as form_errors
    from crmkit.console.forms import messages_of as messages_of
    from crmkit.console.images import svg_data_uri as svg_data_uri
    from crmkit.console.pages import customer_360 as customer_360
    from crmkit.core.access import SYSTEM as SYSTEM
    from crmkit.core.bulk_sql import chunks as chunks
    from crmkit.core.bulk_sql import delete_in as delete_in
    from crmkit.core.bulk_sql import executemany as executemany
    from crmkit.core.bulk_sql import ids_value as ids_value
    from crmkit.core.bulk_sql import in_ids as in_ids
    from crmkit.core.bulk_sql import repoint as repoint
    from crmkit.core.bulk_sql import select_in as select_in
    from crmkit.core.jsonable import encode_cursor as encode_cursor
    from crmkit.core.jsonable import to_jsonable as to_jsonable
    from crmkit.core.masking import MASK as MASK
    from crmkit.core.masking import mask_customer as mask_customer
    from crmkit.core.masking import mask_email as mask_email
    from crmkit.core.masking import mask_phone as mask_phone
    from crmkit.core.masking import mask_sender as mask_sender
    from crmkit.core.merge_journal import journal_moved as journal_moved
    from crmkit.core.models import GENDERS as GENDERS
    from crmkit.core.models import KINDS as KINDS
    from crmkit.core.models import LIFECYCLE_STAGES as LIFECYCLE_STAGES
    from crmkit.core.models import Address as Address
    from crmkit.core.models import Customer as Customer
    from crmkit.core.models import Interaction as Interaction
    from crmkit.core.phones import normalize_phone as normalize_phone
    from crmkit.core.redact import is_reference as is_reference
    from crmkit.core.redact import redact_options as redact_options
    from crmkit.core.redact import redact_url as redact_url
    from crmkit.core.safe_csv import SafeWriter as SafeWriter
    from crmkit.core.schemas import AwareDateTime as AwareDateTime
    from crmkit.core.schemas import CleanSchema as CleanSchema
    from crmkit.core.schemas import CustomerReference as CustomerReference
    from crmkit.core.schemas import aware_utc as aware_utc
    from crmkit.core.schemas import beyond_columns as beyond_columns
    from crmkit.core.schemas import check_limit as check_limit
    from crmkit.core.schemas import control_character_errors as control_character_errors
    from crmkit.core.schemas import read_cursor as read_cursor
    from crmkit.core.search import prefix_upper_bound as prefix_upper_bound
    from crmkit.core.secrets import SecretUnavailable as SecretUnavailable
    from crmkit.core.secrets import refuse_inline as refuse_inline
    from crmkit.core.secrets import resolve_secret as resolve_secret
    from crmkit.core.secrets import resolve_secrets as resolve_secrets
    from crmkit.core.secrets import unwrap_secret as unwrap_secret
    from crmkit.core.secrets import wrap_secret as wrap_secret
    from crmkit.core.segments import Choices as Choices
    from crmkit.core.segments import SegmentField as SegmentField
    from crmkit.core.segments import as_segment_field as as_segment_field
    from crmkit.core.segments import match_choice as match_choice
    from crmkit.core.tables import consents as consents
    from crmkit.core.tables import contact_points as contact_points
    from crmkit.core.tables import customers as customers
    from crmkit.core.tables import interactions as interactions
    from crmkit.core.tables import memberships as memberships
    from crmkit.core.tables import tags as tags
    from crmkit.core.text import fold as fold
    from crmkit.core.text import normalize_email as normalize_email
    from crmkit.core.transfer import AcceptedRow as AcceptedRow
    from crmkit.core.transfer import ImportOutcome as ImportOutcome
    from crmkit.core.transfer import ImportSummary as ImportSummary
    from crmkit.core.transfer import RecordReader as RecordReader
    from crmkit.core.transfer import import_records as import_records
    from crmkit.core.transfer import resolve_customers as resolve_customers
    from crmkit.core.types import Id as Id
    from crmkit.core.types import JSONType as JSONType
    from crmkit.core.types import UTCDateTime as UTCDateTime
    from crmkit.core.types import customer_fk as customer_fk
    from crmkit.core.types import new_metadata as new_metadata
    from crmkit.core.types import utcnow as utcnow
    from crmkit.core.upsert import insert_ignore as insert_ignore
    from crmkit.core.upsert import lock_keys as lock_keys
    from crmkit.core.upsert import upsert as upsert
    from crmkit.i18n import Translator as Translator
    from crmkit.i18n import plugin_translator as plugin_translator
    from crmkit.i18n import translate_message as translate_message
    from crmkit.money import MAX_MINOR as MAX_MINOR
    from crmkit.money import Money as Money
    from crmkit.money import is_currency as is_currency
    from crmkit.money import minor_units as minor_units
    from crmkit.purchases import has_purchases as has_purchases
    from crmkit.purchases import purchases as purchases
    from crmkit.sqlfunctions import day_of as day_of
    from crmkit.sqlfunctions import epoch_seconds as epoch_seconds
    from crmkit.sqlfunctions import local_clock as local_clock
    from crmkit.sqlfunctions import month_index as month_index
    from crmkit.sqlfunctions import month_label as month_label
    from crmkit.sqlfunctions import seconds_between as seconds_between
    from crmkit.sqlfunctions import whole_days_since as whole_days_since
    from crmkit.sqlfunctions import year_month as year_month

#: Each public name by the module it lives in (under ``"crmkit"``: a module of the package).
_HOMES: dict[str, tuple[str, ...]] = {
    "crmkit": ("vncalendar",),
    "crmkit.cli.context": ("CLIContext", "pass_crm"),
    "crmkit.cli.importing": ("import_options", "run_import"),
    "crmkit.cli.output": (
        "N_",
        "Coded",
        "Percent",
        "current_format",
        "current_human",
        "current_translator",
        "emit",
        "emit_object",
        "format_option",
    ),
    "crmkit.cli.params": ("AWARE_DATETIME", "KEY_VALUE", "LazyChoice", "amount_minor"),
    "crmkit.console.app": ("ConsoleRequest",),
    "crmkit.console.display": ("channel_label",),
    "crmkit.console.forms": ("form_errors", "messages_of"),
    "crmkit.console.images": ("svg_data_uri",),
    "crmkit.console.pages": ("customer_360",),
    "crmkit.core.access": ("SYSTEM",),
    "crmkit.core.jsonable": ("encode_cursor", "to_jsonable"),
    "crmkit.core.masking": ("MASK", "mask_customer", "mask_email", "mask_phone", "mask_sender"),
    "crmkit.core.merge_journal": ("journal_moved",),
    "crmkit.core.bulk_sql": ("chunks", "delete_in", "executemany", "ids_value", "in_ids", "repoint", "select_in"),
    "crmkit.core.models": ("GENDERS", "KINDS", "LIFECYCLE_STAGES", "Address", "Customer", "Interaction"),
    "crmkit.core.phones": ("normalize_phone",),
    "crmkit.core.redact": ("is_reference", "redact_options", "redact_url"),
    "crmkit.core.safe_csv": ("SafeWriter",),
    "crmkit.core.schemas": (
        "AwareDateTime",
        "CleanSchema",
        "CustomerReference",
        "aware_utc",
        "beyond_columns",
        "check_limit",
        "control_character_errors",
        "read_cursor",
    ),
    "crmkit.core.search": ("prefix_upper_bound",),
    "crmkit.core.secrets": (
        "SecretUnavailable",
        "refuse_inline",
        "resolve_secret",
        "resolve_secrets",
        "unwrap_secret",
        "wrap_secret",
    ),
    "crmkit.core.segments": ("Choices", "SegmentField", "as_segment_field", "match_choice"),
    "crmkit.core.tables": ("consents", "contact_points", "customers", "interactions", "memberships", "tags"),
    "crmkit.core.text": ("fold", "normalize_email"),
    "crmkit.core.transfer": (
        "AcceptedRow",
        "ImportOutcome",
        "ImportSummary",
        "RecordReader",
        "import_records",
        "resolve_customers",
    ),
    "crmkit.core.types": ("Id", "JSONType", "UTCDateTime", "customer_fk", "new_metadata", "utcnow"),
    "crmkit.core.upsert": ("insert_ignore", "lock_keys", "upsert"),
    "crmkit.i18n": ("Translator", "plugin_translator", "translate_message"),
    "crmkit.money": ("MAX_MINOR", "Money", "is_currency", "minor_units"),
    "crmkit.purchases": ("has_purchases", "purchases"),
    "crmkit.sqlfunctions": (
        "day_of",
        "epoch_seconds",
        "local_clock",
        "month_index",
        "month_label",
        "seconds_between",
        "whole_days_since",
        "year_month",
    ),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AWARE_DATETIME",
    "AcceptedRow",
    "Address",
    "AwareDateTime",
    "CLIContext",
    "Choices",
    "CleanSchema",
    "Coded",
    "ConsoleRequest",
    "CoreTables",
    "Customer",
    "CustomerReference",
    "GENDERS",
    "Id",
    "ImportOutcome",
    "ImportSummary",
    "Interaction",
    "JSONType",
    "KEY_VALUE",
    "KINDS",
    "LIFECYCLE_STAGES",
    "LazyChoice",
    "MASK",
    "MAX_MINOR",
    "Money",
    "N_",
    "Percent",
    "RecordReader",
    "SYSTEM",
    "SafeWriter",
    "SecretUnavailable",
    "SegmentField",
    "Translator",
    "UTCDateTime",
    "amount_minor",
    "as_segment_field",
    "aware_utc",
    "beyond_columns",
    "channel_label",
    "check_limit",
    "chunks",
    "consents",
    "contact_points",
    "control_character_errors",
    "core_tables",
    "current_format",
    "current_human",
    "current_translator",
    "customer_360",
    "customer_fk",
    "customers",
    "day_of",
    "delete_in",
    "emit",
    "emit_object",
    "encode_cursor",
    "epoch_seconds",
    "executemany",
    "fold",
    "form_errors",
    "format_option",
    "has_purchases",
    "ids_value",
    "import_options",
    "import_records",
    "in_ids",
    "insert_ignore",
    "interactions",
    "is_currency",
    "is_reference",
    "journal_moved",
    "local_clock",
    "lock_keys",
    "mask_customer",
    "mask_email",
    "mask_phone",
    "mask_sender",
    "match_choice",
    "memberships",
    "messages_of",
    "minor_units",
    "month_index",
    "month_label",
    "new_metadata",
    "normalize_email",
    "normalize_phone",
    "pass_crm",
    "plugin_translator",
    "prefix_upper_bound",
    "purchases",
    "read_cursor",
    "redact_options",
    "redact_url",
    "refuse_inline",
    "repoint",
    "resolve_secret",
    "resolve_secrets",
    "resolve_customers",
    "run_import",
    "seconds_between",
    "select_in",
    "svg_data_uri",
    "tags",
    "to_jsonable",
    "translate_message",
    "unwrap_secret",
    "upsert",
    "utcnow",
    "vncalendar",
    "whole_days_since",
    "wrap_secret",
    "year_month",
]  # _HOMES' names, CoreTables and core_tables


class CoreTables:
    """The core's tables a plugin may read (never write), as one object: ``from crmkit.plugin_api import
    core_tables as core``; ``core.customers.c.owner``. Their stable columns are listed in this module's docstring."""

    customers: sa.Table
    interactions: sa.Table
    contact_points: sa.Table
    tags: sa.Table
    consents: sa.Table
    memberships: sa.Table

    def __init__(self) -> None:
        tables = importlib.import_module("crmkit.core.tables")
        for name in _HOMES["crmkit.core.tables"]:
            setattr(self, name, getattr(tables, name))


if TYPE_CHECKING:
    core_tables: CoreTables


def __getattr__(name: str) -> Any:
    if name == "core_tables":
        value: Any = CoreTables()
    elif name in _HOME_OF:
        module = _HOME_OF[name]
        value = (
            importlib.import_module(f"crmkit.{name}")
            if module == "crmkit"
            else getattr(importlib.import_module(module), name)
        )
    else:
        raise AttributeError(f"crmkit.plugin_api has no {name!r}: it is not part of the plugin API")
    globals()[name] = value  # the next access is a plain global
    return value


def __dir__() -> list[str]:
    return __all__
