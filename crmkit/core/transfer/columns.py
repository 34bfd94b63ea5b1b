"""The columns of an import or export file, a row's cells as customer-schema input, and errors as ``column: message``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


#: The columns an import reads and an export writes, in export order; then ``consent_<channel>``
#: (yes/no) for every channel and ``attr_<name>`` for customer attributes. ``organizations`` (a person's
#: memberships) and attributes naming customers are links: an import sets them once every row is written
#: (``crmkit.core.transfer.links``).
COLUMNS: tuple[str, ...] = (
    "external_id",
    "kind",
    "name",
    "given_name",
    "family_name",
    "email",
    "emails",
    "phone",
    "phones",
    "birth_date",
    "gender",
    "lifecycle_stage",
    "owner",
    "country",
    "city",
    "province",
    "tags",
    "address_line1",
    "address_line2",
    "ward",
    "district",
    "postal_code",
    "created_at",
    "organizations",
)
CONSENT_PREFIX = "consent_"
ATTRIBUTE_PREFIX = "attr_"
#: Columns of a reject file in front of the original ones; an import skips them, so a
#: corrected reject file can be imported as it is.
REJECT_COLUMNS = ("reject_row", "reject_line", "reject_reason")
LIST_SEPARATOR = ";"

_LISTS = frozenset({"emails", "phones", "tags"})
#: Columns that are one schema field each (blank: None, which clears the value).
_PLAIN = frozenset(
    {
        "external_id",
        "given_name",
        "family_name",
        "email",
        "phone",
        "birth_date",
        "gender",
        "owner",
        "country",
        "city",
        "province",
    }
)
#: Blank cells in these columns say nothing (a new customer gets the default, an existing one keeps its value).
_KEEP_WHEN_BLANK = frozenset({"kind", "name", "lifecycle_stage", "created_at"})
_ADDRESS = {
    "address_line1": "line1",
    "address_line2": "line2",
    "ward": "ward",
    "district": "district",
    "postal_code": "postal_code",
}


def schema_input(cells: Mapping[str, Any], *, with_address: bool) -> dict[str, Any]:
    """The customer-schema input for one row of cells keyed by crmkit column.

    Blank cells clear a value (``kind``, ``name`` and ``lifecycle_stage`` excepted: blank
    keeps the default or current one); ``;`` separates list items; ``consent_*`` and
    ``attr_*`` cells become ``consents`` and ``attributes`` (blank: not mentioned); the
    address columns (``with_address``) make one postal address in the row's city and province.
    """
    data: dict[str, Any] = {}
    address: dict[str, Any] = {}
    for column, value in cells.items():
        blank = value is None or (type(value) is str and (not value or value.isspace()))
        if column in _PLAIN:
            data[column] = None if blank else value
        elif column in _ADDRESS:
            if not blank:
                address[_ADDRESS[column]] = value
        elif column in _LISTS:
            data[column] = [] if blank else _split(value)
        elif column in _KEEP_WHEN_BLANK:
            if not blank:
                data[column] = value
        elif column.startswith(CONSENT_PREFIX):
            if not blank:
                data.setdefault("consents", {})[column[len(CONSENT_PREFIX) :]] = value
        elif column.startswith(ATTRIBUTE_PREFIX):
            if not blank:
                data.setdefault("attributes", {})[column[len(ATTRIBUTE_PREFIX) :]] = value
        else:
            data[column] = None if blank else value
    if with_address:
        if address:
            for part in ("city", "province"):
                value = cells.get(part)
                if value is not None and not (type(value) is str and (not value or value.isspace())):
                    address[part] = value
        data["addresses"] = [address] if address else []
    return data


def _split(value: Any) -> Any:
    if type(value) is str:
        return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
    return value  # a JSON list as it is (anything else: the schema says what is wrong)


def reason_text(errors: Mapping[str, Any]) -> str:
    """``column: message`` for each error of the schema, named by the import's columns."""
    parts: list[str] = []
    for field, messages in errors.items():
        if field == "addresses" and isinstance(messages, Mapping):
            for part_errors in messages.values():
                if isinstance(part_errors, Mapping):
                    columns = {v: k for k, v in _ADDRESS.items()}
                    parts.extend(f"{columns.get(p, p)}: {_flat(m)}" for p, m in part_errors.items())
                else:
                    parts.append(f"address: {_flat(part_errors)}")
        elif field in ("consents", "attributes") and isinstance(messages, Mapping):
            prefix = CONSENT_PREFIX if field == "consents" else ATTRIBUTE_PREFIX
            parts.extend(f"{prefix}{key}: {_flat(m)}" for key, m in messages.items())
        else:
            parts.append(f"{field}: {_flat(messages)}" if field != "_" else _flat(messages))
    return "; ".join(parts)


def _flat(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    if isinstance(messages, Mapping):
        return "; ".join(_flat(m) for m in messages.values())
    return "; ".join(_flat(m) for m in messages)
