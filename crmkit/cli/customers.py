"""``crmkit customers …``: thin callers of ``crm.customers`` (and ``crmkit.core.transfer`` for files)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import click

from crmkit.cli.context import pass_crm
from crmkit.cli.importing import import_options, run_import
from crmkit.cli.interactions import INTERACTION_COLUMNS, interaction_row
from crmkit.cli.output import (
    N_,
    Coded,
    Human,
    Percent,
    Phone,
    current_format,
    current_human,
    current_translator,
    display_width,
    emit,
    emit_object,
    emit_sections,
    format_option,
    pad,
    print_next_page,
    table,
)
from crmkit.cli.params import AWARE_DATETIME, KEY_VALUE, LazyChoice
from crmkit.core.jsonable import to_jsonable

if TYPE_CHECKING:
    from crmkit.core.models import Customer
    from crmkit.crm import CRM

F = TypeVar("F", bound=Callable[..., Any])

KINDS = LazyChoice("crmkit.core.models:KINDS")
STAGES = LazyChoice("crmkit.core.models:LIFECYCLE_STAGES")
LIST_COLUMNS = (
    N_("id"),
    N_("name"),
    N_("kind"),
    N_("stage"),
    N_("phone"),
    N_("email"),
    N_("province"),
    N_("owner"),
    N_("tags"),
)
ADDRESS_PARTS = ("line1", "ward", "district", "province")


# -- turning customers into what a person reads --------------------------------------------------


def list_row(customer: Customer) -> dict[str, Any]:
    """One line of a customer listing: a table shows the stage in the reader's language and the phone the local way,
    JSON and CSV the stored code and E.164."""
    return {
        "id": customer.id,
        "name": customer.name,
        "kind": customer.kind,
        "stage": _stage(customer.lifecycle_stage),
        "phone": Phone(customer.phone) if customer.phone else None,
        "email": customer.email,
        "province": customer.province or customer.city,
        "owner": customer.owner,
        "tags": list(customer.tags),
    }


def _stage(stage: str) -> Coded:
    """A lifecycle stage as the console names it (``customer`` is vi ``Khách hàng``)."""
    from crmkit.console.display import stage_label

    return Coded(stage, stage_label(current_translator(), stage))


def customer_view(customer: Customer) -> dict[str, Any]:
    """The customer as ``crmkit customers show`` prints it: readable fields, empty ones left out (table format).

    Values stay typed (dates, times) for the output to show in the command's locale; the consents line is
    worded here, in that locale (``email đã đồng ý 06/12/2026 (web form)``; en ``email consent given Dec 6, 2026
    (web form)``).
    """
    t = current_translator()
    consents = [
        f"{c.channel} {t.gettext('consent given') if c.granted else t.gettext('consent withdrawn')} "
        f"{t.format_date(c.at.date())} ({c.source})"
        for c in sorted(customer.consents.values(), key=lambda c: c.channel)
    ]
    addresses = [
        ", ".join(p for p in (a.line1, a.line2, a.ward, a.district, a.city, a.province, a.postal_code, a.country) if p)
        for a in customer.addresses
    ]
    view: dict[str, Any] = {
        "id": customer.id,
        "name": customer.name,
        "kind": customer.kind,
        "external_id": customer.external_id,
        "status": customer.status
        if customer.status == "active" or not customer.merged_into_id
        else t.gettext("%(status)s into %(id)s") % {"status": customer.status, "id": customer.merged_into_id},
        "stage": _stage(customer.lifecycle_stage),
        "emails": list(customer.emails),
        "phones": [Phone(p) for p in customer.phones],
        "addresses": "; ".join(addresses),
        "birth_date": customer.birth_date,
        "gender": customer.gender,
        "owner": customer.owner,
        "city": customer.city,
        "province": customer.province,
        "country": customer.country,
        "tags": list(customer.tags),
        "consents": "; ".join(consents),
        "organizations": [f"{m.organization_id}" + (f" ({m.role})" if m.role else "") for m in customer.organizations],
        "attributes": dict(customer.attributes) or None,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
    }
    return {k: v for k, v in view.items() if v not in (None, "", [], {})}


def show_customer(customer: Customer) -> None:
    """Print one customer: the readable view as a table, every field in JSON/CSV."""
    emit_object(customer_view(customer) if current_format() == "table" else to_jsonable(customer))


# -- options shared by add and update --------------------------------------------------------------------


class AddressParam(click.ParamType):
    """``"12 Lê Lợi, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh"`` (line1, ward, district, province) or a JSON object."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        text = str(value).strip()
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                self.fail(f"not a JSON object: {exc}", param, ctx)
            if not isinstance(parsed, dict):
                self.fail("not a JSON object", param, ctx)
            return parsed
        parts = [p.strip() for p in text.split(",")]
        if len(parts) > len(ADDRESS_PARTS):
            self.fail(
                f"{value!r} has more than {len(ADDRESS_PARTS)} comma-separated parts "
                f"({', '.join(ADDRESS_PARTS)}); give a JSON object instead",
                param,
                ctx,
            )
        return {key: part for key, part in zip(ADDRESS_PARTS, parts) if part}


class MembershipParam(click.ParamType):
    """``ORG_ID`` or ``ORG_ID:ROLE`` — an organization the person belongs to."""

    name = "org_id[:role]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        ident, _, role = str(value).partition(":")
        if not ident.strip().isdigit():
            self.fail(f"{value!r}: the organization id must be a number", param, ctx)
        return {"organization_id": int(ident), "role": role.strip() or None}


SINGLE_FIELDS = (
    "name",
    "given_name",
    "family_name",
    "kind",
    "external_id",
    "birth_date",
    "gender",
    "lifecycle_stage",
    "owner",
    "country",
    "city",
    "province",
)
LIST_FIELDS = ("emails", "phones", "addresses", "tags", "organizations")


def customer_options(function: F) -> F:
    """The customer fields as options, shared by ``add`` and ``update``."""
    options = [
        click.option("--name", help='Full name as written (e.g. "Nguyễn Văn An", "Công ty TNHH Minh Phát").'),
        click.option("--given-name", help="Given name (An); with --family-name builds the name."),
        click.option("--family-name", help="Family name (Nguyễn)."),
        click.option("--kind", type=KINDS, help="person (default) or organization."),
        click.option("--external-id", help="Your system's id for this customer (imports match on it)."),
        click.option("--email", "emails", multiple=True, help="E-mail address; repeat for several (first is primary)."),
        click.option(
            "--phone",
            "phones",
            multiple=True,
            help="Phone number; national numbers take the default country (0912 345 678 → +84912345678).",
        ),
        click.option(
            "--address",
            "addresses",
            type=AddressParam(),
            multiple=True,
            help='"line1, ward, district, province" or a JSON object with line1, ward, district, city, '
            "province, postal_code, country; repeat for several.",
        ),
        click.option("--birth-date", help="YYYY-MM-DD or DD/MM/YYYY."),
        click.option("--gender", help="female / male / other (nữ / nam / khác accepted)."),
        click.option("--stage", "lifecycle_stage", type=STAGES, help="Lifecycle stage."),
        click.option("--owner", help="The employee responsible for this customer."),
        click.option("--country", help="Two-letter country code (VN)."),
        click.option("--city", help="City."),
        click.option("--province", help="Province or centrally-run city (Hà Nội, TP. Hồ Chí Minh)."),
        click.option("--tag", "tags", multiple=True, help="Tag; repeat for several."),
        click.option(
            "--org",
            "organizations",
            type=MembershipParam(),
            multiple=True,
            help="ORG_ID[:ROLE] of an organization this person belongs to; repeat for several.",
        ),
        click.option(
            "--consent",
            "consents",
            multiple=True,
            help="Channel the customer agreed to be contacted on (email, sms, …); repeat for several.",
        ),
        click.option(
            "--attr",
            "attributes",
            type=KEY_VALUE,
            multiple=True,
            help="Custom attribute KEY=VALUE (VALUE read as JSON when it is JSON); repeat for several.",
        ),
        click.option(
            "--source", default="cli", show_default=True, help="Where this data came from (kept with consents)."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def given_values(options: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the user actually gave, shaped for ``crm.customers.add/update``."""
    values: dict[str, Any] = {k: options[k] for k in SINGLE_FIELDS if options.get(k) is not None}
    values.update({k: list(options[k]) for k in LIST_FIELDS if options.get(k)})
    for single, many in (("email", "emails"), ("phone", "phones")):
        if many in values:  # the first is the primary one: errors then name `email`, not `emails: 0`
            values[single], *rest = values.pop(many)
            if rest:
                values[many] = rest
    if options.get("consents"):
        values["consents"] = dict.fromkeys(options["consents"], True)
    if options.get("attributes"):
        values["attributes"] = dict(options["attributes"])
    return values


# -- the group -------------------------------------------------------------------------------------------------


@click.group("customers")
def customers() -> None:
    """People and organizations: add, find, show, update, merge, import, export, erase."""


@customers.command("add")
@customer_options
@format_option
@pass_crm
def add(crm: CRM, source: str, **options: Any) -> None:
    """Create a customer.

    \b
    crmkit customers add --name "Nguyễn Văn An" --phone "0912 345 678" \\
        --email an.nguyen@example.com --address "12 Lê Lợi, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh" \\
        --province "TP. Hồ Chí Minh" --stage customer --tag vip --consent email
    """
    show_customer(crm.customers.add(given_values(options), source=source))


@customers.command("show")
@click.argument("customer_id", type=int)
@format_option
@pass_crm
def show(crm: CRM, customer_id: int) -> None:
    """Show customer CUSTOMER_ID (a merged-away id shows the customer it was merged into)."""
    show_customer(crm.customers.get(customer_id))


@customers.command("update")
@click.argument("customer_id", type=int)
@customer_options
@format_option
@pass_crm
def update(crm: CRM, customer_id: int, source: str, **options: Any) -> None:
    """Change the given fields of CUSTOMER_ID (list options replace the list; an empty value clears a field)."""
    values = given_values(options)
    if not values:
        raise click.UsageError("nothing to update: give at least one field option (see --help)")
    show_customer(crm.customers.update(customer_id, values, source=source))


@customers.command("find")
@click.argument("query", required=False)
@click.option("--tag", help="Only customers with this tag.")
@click.option("--owner", help="Only customers of this employee.")
@click.option("--kind", type=KINDS, help="Only people or only organizations.")
@click.option("--stage", type=STAGES, help="Only customers at this lifecycle stage.")
@click.option("--after", metavar="CURSOR", help="Continue after the page that printed this cursor.")
@click.option("--limit", type=int, default=20, show_default=True, help="How many to show (1–1000).")
@format_option
@pass_crm
def find(
    crm: CRM,
    query: str | None,
    tag: str | None,
    owner: str | None,
    kind: str | None,
    stage: str | None,
    after: str | None,
    limit: int,
) -> None:
    """Search by name, e-mail or phone, accent-insensitively ("nguyen van an" finds Nguyễn Văn An), or list by name."""
    page = crm.customers.find(query, tag=tag, owner=owner, kind=kind, lifecycle_stage=stage, after=after, limit=limit)
    emit([list_row(c) for c in page], LIST_COLUMNS)
    print_next_page(page.next_cursor, "--after")


@customers.command("merge")
@click.argument("kept_id", type=int)
@click.argument("merged_id", type=int)
@format_option
@pass_crm
def merge(crm: CRM, kept_id: int, merged_id: int) -> None:
    """Merge MERGED_ID into KEPT_ID: interactions, contacts, tags and every plugin's rows move to KEPT_ID."""
    kept = crm.customers.merge(kept_id, merged_id)
    message = current_translator().gettext("merged customer %(merged)s into %(kept)s")
    click.echo(message % {"merged": merged_id, "kept": kept_id}, err=True)
    show_customer(kept)


@customers.command("merges")
@click.option("--customer", "customer_id", type=int, help="Only the merges that kept or merged this customer.")
@click.option("--limit", type=int, default=50, show_default=True, help="How many merges to show, newest first.")
@format_option
@pass_crm
def merges(crm: CRM, customer_id: int | None, limit: int) -> None:
    """Merges newest first: who merged what when, the rows each moved, and whether it was undone (`unmerge`)."""
    rows = [
        {
            "merge": m.id,
            "kept": m.kept_id,
            "merged": m.merged_id,
            "at": m.at,
            "by": m.actor,
            "rows moved": m.rows_moved,
            "undone": m.undone_at,
        }
        for m in crm.customers.merges(customer_id=customer_id, limit=limit)
    ]
    emit(rows, (N_("merge"), N_("kept"), N_("merged"), N_("at"), N_("by"), N_("rows moved"), N_("undone")))


@customers.command("unmerge")
@click.argument("merge_id", type=int)
@format_option
@pass_crm
def unmerge(crm: CRM, merge_id: int) -> None:
    """Undo merge MERGE_ID (see `merges`): the merged customer is back with exactly the rows that came from it."""
    done = crm.customers.unmerge(merge_id)
    message = current_translator().gettext("merge %(merge)s undone: customer %(restored)s is separate from %(kept)s")
    click.echo(message % {"merge": merge_id, "restored": done.restored_id, "kept": done.kept_id}, err=True)
    emit_object({"merge": merge_id, "kept": done.kept_id, "restored": done.restored_id, **done.rows_moved_back})


@customers.command("duplicates")
@click.argument("customer_id", type=int)
@click.option("--limit", type=int, default=20, show_default=True, help="How many candidates to show.")
@format_option
@pass_crm
def duplicates(crm: CRM, customer_id: int, limit: int) -> None:
    """Customers that may be the same as CUSTOMER_ID (same e-mail or phone, near-identical name)."""
    candidates = crm.customers.duplicates(customer_id, limit=limit)
    rows = []
    for candidate in candidates:
        other = crm.customers.get(candidate.other_id)
        rows.append(
            {
                "id": other.id,
                "name": other.name,
                "phone": Phone(other.phone) if other.phone else None,
                "email": other.email,
                "reason": candidate.reason,
                "score": round(candidate.score, 2),
            }
        )
    emit(
        rows,
        (N_("id"), N_("name"), N_("phone"), N_("email"), N_("reason"), N_("score")),
        title=current_translator().gettext("Possible duplicates of customer %(id)s") % {"id": customer_id},
    )


@customers.command("consent")
@click.argument("customer_id", type=int)
@click.argument("channel")
@click.option("--grant/--withdraw", "granted", required=True, help="Whether consent is given or withdrawn.")
@click.option("--source", required=True, help='Where it came from: "web form", "hợp đồng 2024-117", "hotline"…')
@click.option("--at", type=AWARE_DATETIME, help="When (ISO date-time with a time zone; default now).")
@format_option
@pass_crm
def consent(crm: CRM, customer_id: int, channel: str, granted: bool, source: str, at: Any) -> None:
    """Record that CUSTOMER_ID gave or withdrew consent to be contacted on CHANNEL."""
    result = crm.customers.set_consent(customer_id, channel, granted, source=source, at=at)
    emit_object(
        {
            "customer_id": customer_id,
            "channel": result.channel,
            "granted": result.granted,
            "at": result.at,
            "source": result.source,
        }
    )


@customers.command("tag")
@click.argument("customer_id", type=int)
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove these tags instead of adding them.")
@format_option
@pass_crm
def tag(crm: CRM, customer_id: int, tags: tuple[str, ...], remove: bool) -> None:
    """Add TAGS to CUSTOMER_ID (or remove them with --remove)."""
    change = crm.customers.remove_tags if remove else crm.customers.add_tags
    customer = change(customer_id, *tags)
    emit_object({"id": customer.id, "name": customer.name, "tags": list(customer.tags)})


@customers.command("erase")
@click.argument("customer_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--reason", default="erasure request", show_default=True, help="Recorded in the audit log.")
@click.option(
    "--vacuum",
    is_flag=True,
    help="PostgreSQL: VACUUM FULL the CRM's tables afterwards (each locked while rewritten), so no "
    "erased value stays in the table files.",
)
@pass_crm
def erase(crm: CRM, customer_id: int, yes: bool, reason: str, vacuum: bool) -> None:
    """Right to erasure: remove or anonymize CUSTOMER_ID in the core and every plugin (cannot be undone)."""
    customer = crm.customers.get(customer_id, follow_merges=False)
    if not yes:
        question = current_translator().gettext(
            "Erase customer %(id)s (%(name)s) from the core and every plugin? This cannot be undone"
        )
        click.confirm(question % {"id": customer.id, "name": customer.name}, abort=True)
    crm.customers.erase(customer_id, reason=reason, vacuum=vacuum)
    click.echo(current_translator().gettext("customer %(id)s erased (recorded in the audit log)") % {"id": customer_id})


@customers.command("export-data")
@click.argument("customer_id", type=int)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of standard output.",
)
@pass_crm
def export_data(crm: CRM, customer_id: int, out: Path | None) -> None:
    """Right of access: everything the core and every enabled plugin holds about CUSTOMER_ID, as JSON."""
    text = json.dumps(crm.customers.export_data(customer_id), ensure_ascii=False, indent=2)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(current_translator().gettext("wrote %(file)s") % {"file": out}, err=True)


@customers.command("profile")
@click.argument("customer_id", type=int)
@click.option(
    "--interactions", "shown", type=int, default=10, show_default=True, help="How many recent interactions to list."
)
@format_option
@pass_crm
def profile(crm: CRM, customer_id: int, shown: int) -> None:
    """Customer 360 of CUSTOMER_ID: the customer, recent interactions, counts per channel, and every plugin's section."""
    result = crm.customers.profile(customer_id)
    if current_format() != "table":
        emit_object(to_jsonable(result))
        return
    emit_object(customer_view(result.customer))
    human = current_human()
    counts = ", ".join(
        f"{channel} {human.cell(n)}" for channel, n in sorted(result.interaction_counts.items(), key=lambda x: -x[1])
    )
    total = sum(result.interaction_counts.values())
    click.echo()
    title = human.translator.gettext("Interactions: %(total)s") % {"total": human.cell(total)}
    emit(
        [interaction_row(i) for i in result.interactions[:shown]],
        INTERACTION_COLUMNS,
        title=title + (f" ({counts})" if counts else ""),
    )
    if result.sections:
        emit_sections({title: section_lines(data, human) for title, data in result.sections.items()})


def section_lines(data: Any, human: Human) -> list[str]:
    """A plugin's profile section as lines: ``key  value`` for a mapping (empty values left out), a table for a
    list of mappings; amounts, numbers, dates and times as ``human`` shows them (its locale, the business's zone)."""
    data = readable(data, human)
    if isinstance(data, Mapping):
        shown = {str(k): v for k, v in data.items() if v not in (None, "", [], {})}
        width = max((display_width(k) for k in shown if not _is_rows(shown[k])), default=0)
        lines: list[str] = []
        for key, value in shown.items():
            if _is_rows(value):  # a list of records: the key, then its rows as an indented table
                lines.append(key)
                lines.extend(f"  {line}" for line in _rows_table(value))
            else:
                lines.append(f"{pad(key, width)}  {_scalar(value)}")
        return lines or [human.translator.gettext("(nothing yet)")]
    if _is_rows(data):
        return _rows_table(data)
    if isinstance(data, list):
        return [_scalar(item) for item in data]
    return [_scalar(data)]


def readable(value: Any, human: Human, key: str = "") -> Any:
    """``value`` as a person reads it, in ``human``'s locale: ``Money`` (or a ``{"currency", "minor"}`` mapping) as
    ``25.000 ₫``, aware times (or ISO strings of them) in the business's zone, dates and numbers the local way;
    records and mappings value by value (``key`` tells an identifier, ``order_id 1234``, from a count)."""
    from crmkit.money import Money

    if value is None:
        return None
    if isinstance(value, str):
        if len(value) >= 19 and value[10:11] == "T":
            try:
                return human.cell(datetime.fromisoformat(value))
            except ValueError:
                pass
        return value
    if attrs.has(type(value)) and not isinstance(value, (Money, Percent)):
        return readable({f.name: getattr(value, f.name) for f in attrs.fields(type(value))}, human)
    if isinstance(value, Mapping):
        if (
            set(value) == {"currency", "minor"}
            and isinstance(value["minor"], int)
            and isinstance(value["currency"], str)
        ):
            try:
                return human.cell(Money(value["currency"], value["minor"]))
            except (TypeError, ValueError):
                pass
        return {str(k): readable(v, human, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [readable(v, human, key) for v in value]
    return human.cell(value, key)


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(row, Mapping) for row in value)


def _rows_table(rows: list[Mapping[str, Any]]) -> list[str]:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return table([{k: _scalar(v) for k, v in row.items()} for row in rows], columns).splitlines()


def _scalar(value: Any) -> str:
    """One cell: a nested record as ``key value, …`` (empty values left out), a list joined with ``; ``."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_scalar(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, list):
        return "; ".join(_scalar(v) for v in value)
    return "" if value is None else str(value)


# -- files ---------------------------------------------------------------------------------------------------------


@customers.command("import")
@import_options('--map "Họ tên=name" --map mobile=phone', batch_size=5000)
@click.option(
    "--country",
    help="Country of phone numbers written without +code (default: $CRMKIT_DEFAULT_COUNTRY, "
    "else the CRM's setting, else VN).",
)
@click.option(
    "--invalid-phone",
    type=click.Choice(("drop", "keep", "reject")),
    default="drop",
    show_default=True,
    help="A phone of the right length that is not a valid number (0123 456 789): import the row without it, "
    "keep it, or reject the row; the reject file lists the row in each case.",
)
@click.option(
    "--jobs",
    type=click.IntRange(0, 32),
    help="Processes that read and validate while one writes (default: for files of 4 MiB and more, one per "
    "core but the writer's; 0: none).",
)
@pass_crm
def import_(
    crm: CRM,
    file: Path,
    mapping: tuple[tuple[str, str], ...],
    rejects: Path | None,
    batch_size: int,
    country: str | None,
    file_format: str | None,
    no_bom: bool,
    invalid_phone: str,
    jobs: int | None,
) -> None:
    """Import customers from a CSV or JSON Lines FILE (UTF-8, with or without BOM), idempotent by external_id.

    A re-run updates the customers it already imported and never duplicates them; rows that
    fail validation go to the reject file with their row number and reason.
    """
    from crmkit.core.transfer import import_customers

    run_import(
        file,
        lambda progress: import_customers(
            crm,
            file,
            format=file_format,
            mapping=dict(mapping) or None,
            reject_path=rejects,
            batch_size=batch_size,
            default_country=country,
            progress=progress,
            reject_bom=not no_bom,
            jobs=jobs,
            invalid_phone=invalid_phone,
        ),
        invalid_phones=True,
    )


@customers.command("export")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(("csv", "jsonl")),
    help="File format (default: from --out's extension, else CSV).",
)
@click.option(
    "--bom/--no-bom",
    default=None,
    help="Start the CSV with a UTF-8 BOM, so Excel shows Vietnamese [default: with --out, yes; on "
    "standard output, no].",
)
@pass_crm
def export(crm: CRM, out: Path | None, file_format: str | None, bom: bool | None) -> None:
    """Export every active customer to CSV or JSON Lines, in the columns `customers import` reads back unchanged.

    A CSV file written with --out starts with a UTF-8 BOM (Excel needs it for Vietnamese; `customers
    import` reads files with or without one); --no-bom leaves it out for other programs.
    """
    from crmkit.core.transfer import export_customers

    fmt = file_format or ("jsonl" if out is not None and out.suffix in (".jsonl", ".ndjson") else "csv")
    count = export_customers(crm, sys.stdout if out is None else out, format=fmt, bom=bom)
    t = current_translator()
    said = t.ngettext("exported %(count)s customer", "exported %(count)s customers", count) % {
        "count": t.format_number(count)
    }
    click.echo(said + (" " + t.gettext("to %(file)s") % {"file": out} if out else ""), err=True)
