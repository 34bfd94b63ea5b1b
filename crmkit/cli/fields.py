"""``crmkit fields …``: customer fields defined without code (thin callers of ``crm.fields``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from crmkit.cli.context import pass_crm
from crmkit.cli.output import current_translator, emit, format_option

if TYPE_CHECKING:
    from crmkit.core.custom_fields import CustomField
    from crmkit.crm import CRM

FIELD_COLUMNS = ("name", "type", "choices", "label_vi", "label_en", "retired")
TYPES = ("text", "integer", "decimal", "date", "bool", "choice")


def field_row(field: CustomField) -> dict[str, Any]:
    """One field as a row."""
    return {
        "name": field.name,
        "type": field.type,
        "choices": ", ".join(field.choices) or None,
        "label_vi": field.label_vi,
        "label_en": field.label_en,
        "retired": field.retired,
    }


@click.group("fields")
def fields() -> None:
    """Customer fields without code: typed, validated attributes usable in imports, exports and segments."""


@fields.command("add")
@click.argument("name")
@click.option("--type", "type_", type=click.Choice(TYPES), required=True, help="What the field holds.")
@click.option("--choices", help='For --type choice: the values, comma-separated ("cà phê,trà,nước ép").')
@click.option("--label-vi", help='The label shown in Vietnamese ("Sở thích").')
@click.option("--label-en", help='The label shown in English ("Favourite drink").')
@format_option
@pass_crm
def add(crm: CRM, name: str, type_: str, choices: str | None, label_vi: str | None, label_en: str | None) -> None:
    """Define customer field NAME (lower-case letters, digits and _): set it with --attr NAME=…, import it as
    attr_NAME, filter segments on it."""
    field = crm.fields.add(
        name, type_, choices=(choices or "").split(",") if choices else (), label_vi=label_vi, label_en=label_en
    )
    emit([field_row(field)], FIELD_COLUMNS, title=current_translator().gettext("Field added"))


@fields.command("list")
@click.option("--retired", is_flag=True, help="Show retired fields too.")
@format_option
@pass_crm
def list_(crm: CRM, retired: bool) -> None:
    """The customer fields defined without code."""
    emit([field_row(f) for f in crm.fields.list(retired=retired)], FIELD_COLUMNS)


@fields.command("rename")
@click.argument("name")
@click.argument("new_name")
@format_option
@pass_crm
def rename(crm: CRM, name: str, new_name: str) -> None:
    """Rename field NAME to NEW_NAME; every customer's value moves with it."""
    emit(
        [field_row(crm.fields.rename(name, new_name))],
        FIELD_COLUMNS,
        title=current_translator().gettext("Field renamed"),
    )


@fields.command("retire")
@click.argument("name")
@format_option
@pass_crm
def retire(crm: CRM, name: str) -> None:
    """Stop validating and offering field NAME; customers keep their values (`fields restore` brings it back)."""
    emit([field_row(crm.fields.retire(name))], FIELD_COLUMNS, title=current_translator().gettext("Field retired"))


@fields.command("restore")
@click.argument("name")
@format_option
@pass_crm
def restore(crm: CRM, name: str) -> None:
    """Bring retired field NAME back."""
    emit([field_row(crm.fields.restore(name))], FIELD_COLUMNS, title=current_translator().gettext("Field restored"))
