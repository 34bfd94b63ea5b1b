"""``crmkit demo``: build a demo CRM and print the overview a newcomer reads first."""

from __future__ import annotations

import click

from crmkit.cli.context import CLIContext
from crmkit.cli.output import current_format, emit_sections, format_option, progress_bar


@click.command("demo")
@click.option(
    "--customers",
    type=click.IntRange(1, 100_000),
    default=3000,
    show_default=True,
    help="How many customers to make (people and organizations).",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same customers.")
@click.option("--reset", is_flag=True, help="Delete the SQLite database file first, if it exists.")
@format_option
@click.pass_obj
def demo(state: CLIContext, customers: int, seed: int, reset: bool) -> None:
    """Fill the database with a demo business (Sao Mai: branches, teams, users with roles) and realistic
    Vietnamese and English customers, then print an overview.

    \b
    crmkit --db sqlite:///demo.db demo --reset
    """
    from crmkit.core.redact import mask_database_url
    from crmkit.demo import build_demo, delete_sqlite_database, overview
    from crmkit.storage import DEFAULT_URL

    url = state.db or DEFAULT_URL
    if reset and delete_sqlite_database(url):
        click.echo(f"deleted the previous {url}", err=True)
    state.create = True  # the demo may make a new database, even the default ./crmkit.db
    crm = state.crm
    with progress_bar(2 * customers, "Building the demo CRM") as bar:  # imported, then given a history
        stats = build_demo(crm, customers=customers, seed=seed, progress=bar.update)
    sections = overview(crm)
    shown = mask_database_url(crm.engine.url)
    if current_format() != "table":
        emit_sections(sections)
        return
    click.secho(
        f"crmkit demo: {stats.customers:,} customers ({stats.people:,} people, {stats.organizations:,} "
        f"organizations) and {stats.interactions:,} interactions in {stats.seconds:.1f} s",
        bold=True,
    )
    click.echo(f"database: {shown}")
    emit_sections(sections)
    db = "" if state.db is None else f" --db {shown}"
    click.echo()
    click.secho("Try next (ID: any customer id above)", bold=True)
    for command in (
        'customers find "tran thi"',
        "customers find --stage distributor --limit 5",
        "customers profile ID",
        "interactions timeline ID --channel phone",
        "customers duplicates ID",
        "audit --limit 5",
        "plugins list",
    ):
        click.echo(f"  crmkit{db} {command}")
    click.secho(
        "As one of the team (their role's permissions; customers outside their scope do not exist for them)", bold=True
    )
    for user, what in (
        ("lan.nguyen", "sales: her own customers"),
        ("minh.tran", "the Hà Nội manager: his branch's"),
        ("hanh.ngo", "the accountant (read-only): everyone's, contact details masked"),
    ):
        click.echo(f"  crmkit{db} --user {user} customers find --limit 5    # {what}")
    click.secho("In a browser: the web console (Vietnamese or English) and the API's docs", bold=True)
    click.echo(f"  crmkit{db} users passwd lan.nguyen    # give her a password (the demo's users have none)")
    click.echo(f"  crmkit{db} serve    # then open http://127.0.0.1:8000/console/ and sign in; the API at /docs")
