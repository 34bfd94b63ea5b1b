"""``crmkit loyalty …``: thin callers of ``crm.loyalty`` (no SQL, no rules here)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import click

from crmkit.plugin_api import N_, amount_minor, current_format, current_translator, emit, emit_object, pass_crm
from crmkit.vncalendar import local_midnight

if TYPE_CHECKING:
    from crmkit.crm import CRM

DATE = click.DateTime(formats=["%Y-%m-%d"])


def _program_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--program", metavar="CODE", default=None, help="Program code [default: the first program created]."
    )(function)


def _period_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--to", "end", type=DATE, default=None, help="Last local date (YYYY-MM-DD), included.")(
        function
    )
    return click.option("--from", "start", type=DATE, default=None, help="First local date (YYYY-MM-DD).")(function)


def _day(value: datetime | None) -> date | None:
    return None if value is None else value.date()


def _plain(obj: Any) -> dict[str, Any]:
    """A value object as a dict for output, its values typed (money, times): the output shows them per locale."""
    return dict(obj) if isinstance(obj, dict) else attrs.asdict(obj, recurse=False)


def _rows(objects: Any) -> list[dict[str, Any]]:
    return [_plain(obj) for obj in objects]


@click.group("loyalty")
def loyalty() -> None:
    """Loyalty points: balances, history, grants, rewards, tiers, expiry, statements and reports.

    \b
    crmkit loyalty balance 42
    crmkit loyalty redeem 42 voucher-100k
    crmkit loyalty statement 42 --month 2025-03
    """


# -- a customer's points -----------------------------------------------------------------------------


@loyalty.command()
@click.argument("customer_id", type=int)
@_program_option
@pass_crm
def balance(crm: CRM, customer_id: int, program: str | None) -> None:
    """A customer's points balance, tier and what the points are worth."""
    target = crm.loyalty.programs.get(program)
    member = crm.loyalty.member(customer_id, program=target.code)
    points = crm.loyalty.balance(customer_id, program=target.code)
    emit_object(
        _plain(
            {
                "customer_id": customer_id,
                "program": target.code,
                "member": member is not None,
                "points": points,
                "tier": member.tier if member else None,
                "value": target.value_of(target.to_units(points)) if points > 0 else None,
            }
        )
    )


@loyalty.command()
@click.argument("customer_id", type=int)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--before", type=int, default=None, help="Only entries older than this entry id (next page).")
@_program_option
@pass_crm
def history(crm: CRM, customer_id: int, limit: int, before: int | None, program: str | None) -> None:
    """A customer's ledger entries, newest first."""
    entries = crm.loyalty.history(customer_id, program=program, limit=limit, before=before)
    emit(
        _rows(entries),
        [
            N_("id"),
            N_("created_at"),
            N_("points"),
            N_("kind"),
            N_("reason"),
            N_("order_id"),
            N_("expires_at"),
            N_("note"),
        ],
    )


@loyalty.command()
@click.argument("customer_id", type=int)
@_period_options
@click.option("--month", metavar="YYYY-MM", default=None, help="A whole local month instead of --from/--to.")
@click.option("--entries", is_flag=True, help="List the period's entries instead of the summary.")
@_program_option
@pass_crm
def statement(
    crm: CRM,
    customer_id: int,
    start: datetime | None,
    end: datetime | None,
    month: str | None,
    entries: bool,
    program: str | None,
) -> None:
    """Points earned, reversed, spent, expired and adjusted over a period, with opening and closing balances."""
    first, last = _statement_period(_day(start), _day(end), month, crm.today())
    result = crm.loyalty.statement(customer_id, first, last, program=program)
    if entries:
        emit(
            _rows(result.entries),
            [N_("id"), N_("created_at"), N_("points"), N_("kind"), N_("reason"), N_("order_id"), N_("note")],
        )
        return
    t = current_translator()
    said = t.gettext if current_format() == "table" else str  # JSON and CSV keep the English line names
    lines = [
        (N_("opening balance"), result.opening),
        (N_("earned"), result.earned),
        (N_("reversed"), result.reversed),
        (N_("spent"), result.spent),
        (N_("expired"), result.expired),
        (N_("adjusted"), result.adjusted),
        (N_("closing balance"), result.closing),
    ]
    emit(
        [{"line": said(name), "points": value} for name, value in lines],
        [N_("line"), N_("points")],
        title=t.gettext("customer %(customer)s, program %(program)s, %(first)s – %(last)s")
        % {
            "customer": result.customer_id,
            "program": result.program,
            "first": t.format_date(first),
            "last": t.format_date(last),
        },
    )


def _statement_period(start: date | None, end: date | None, month: str | None, today: date) -> tuple[date, date]:
    if month is not None:
        try:
            first = datetime.strptime(month, "%Y-%m").date()  # noqa: DTZ007 - a month: no zone applies
        except ValueError:
            raise click.BadParameter(f"{month!r} is not YYYY-MM", param_hint="--month") from None
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        return first, following - timedelta(days=1)
    return start or today.replace(day=1), end or today


@loyalty.command()
@click.argument("customer_id", type=int)
@click.argument("points")
@click.option("--note", required=True, help="Why the points are given (kept in the ledger and the audit log).")
@click.option("--expires", type=DATE, default=None, help="Expiry date [default: the program's period].")
@click.option("--key", default=None, help="An idempotency key: repeating the command with it grants once.")
@_program_option
@pass_crm
def grant(
    crm: CRM, customer_id: int, points: str, note: str, expires: datetime | None, key: str | None, program: str | None
) -> None:
    """Give points by hand, with a reason (audit-logged)."""
    expires_at = None if expires is None else local_midnight(expires.date(), crm.timezone)
    entry = crm.loyalty.grant(customer_id, points, note, program=program, expires_at=expires_at, key=key)
    emit_object(_plain(entry))


@loyalty.command()
@click.argument("customer_id", type=int)
@click.argument("points")
@click.option("--note", required=True, help="Why the points are taken (kept in the ledger and the audit log).")
@click.option("--key", default=None, help="An idempotency key: repeating the command with it deducts once.")
@_program_option
@pass_crm
def deduct(crm: CRM, customer_id: int, points: str, note: str, key: str | None, program: str | None) -> None:
    """Take points away by hand, with a reason (audit-logged); never below zero."""
    entry = crm.loyalty.deduct(customer_id, points, note, program=program, key=key)
    emit_object(_plain(entry))


@loyalty.command()
@click.argument("customer_id", type=int)
@_program_option
@pass_crm
def enroll(crm: CRM, customer_id: int, program: str | None) -> None:
    """Make a customer a member of a program (pays the sign-up bonus, if any)."""
    emit_object(_plain(crm.loyalty.enroll(customer_id, program=program)))


# -- rewards and redemptions ------------------------------------------------------------------------------


@loyalty.command()
@click.argument("customer_id", type=int)
@click.argument("reward")
@click.option("--quantity", type=int, default=1, show_default=True)
@click.option("--note", default=None)
@_program_option
@pass_crm
def redeem(crm: CRM, customer_id: int, reward: str, quantity: int, note: str | None, program: str | None) -> None:
    """Exchange a customer's points for a reward (by its code)."""
    emit_object(_plain(crm.loyalty.redeem(customer_id, reward, quantity=quantity, program=program, note=note)))


@loyalty.command("cancel-redemption")
@click.argument("redemption_id", type=int)
@click.option("--note", default=None)
@pass_crm
def cancel_redemption(crm: CRM, redemption_id: int, note: str | None) -> None:
    """Cancel a redemption: points and stock come back."""
    emit_object(_plain(crm.loyalty.cancel_redemption(redemption_id, note=note)))


@loyalty.command()
@click.argument("customer_id", type=int)
@_program_option
@pass_crm
def redemptions(crm: CRM, customer_id: int, program: str | None) -> None:
    """A customer's redemptions, newest first."""
    emit(
        _rows(crm.loyalty.redemptions(customer_id, program=program)),
        ["id", "created_at", "reward", "reward_name", "quantity", "points", "status", "code"],
    )


@loyalty.group(invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Include rewards no longer offered.")
@_program_option
@click.pass_context
def rewards(ctx: click.Context, show_all: bool, program: str | None) -> None:
    """The rewards catalogue (add and change rewards with the subcommands)."""
    if ctx.invoked_subcommand is None:
        _list_rewards(show_all, program)


@pass_crm
def _list_rewards(crm: CRM, show_all: bool, program: str | None) -> None:
    emit(
        _rows(crm.loyalty.programs.rewards(program, include_inactive=show_all)),
        ["code", "name", "kind", "points_cost", "stock", "value", "active"],
    )


@rewards.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--points", "points_cost", required=True, help="What it costs, in points.")
@click.option("--kind", type=click.Choice(["product", "service", "discount"]), default="product", show_default=True)
@click.option("--stock", type=int, default=None, help="How many there are [default: unlimited].")
@click.option("--value", default=None, help="What it is worth in the program's currency (e.g. 100000).")
@click.option("--description", default=None)
@_program_option
@pass_crm
def rewards_add(
    crm: CRM,
    code: str,
    name: str,
    points_cost: str,
    kind: str,
    stock: int | None,
    value: str | None,
    description: str | None,
    program: str | None,
) -> None:
    """Add a reward to the catalogue."""
    currency = crm.loyalty.programs.get(program).currency
    reward = crm.loyalty.programs.add_reward(
        code,
        name,
        points_cost,
        kind=kind,
        stock=stock,
        description=description,
        value_minor=amount_minor(value, currency, "--value"),
        program=program,
    )
    emit_object(_plain(reward))


@rewards.command("update")
@click.argument("code")
@click.option("--name", default=None)
@click.option("--points", "points_cost", default=None)
@click.option("--stock", type=int, default=None)
@click.option("--unlimited", is_flag=True, help="No stock limit from now on.")
@click.option("--value", default=None)
@click.option("--active/--inactive", default=None, help="Offer it, or stop offering it.")
@_program_option
@pass_crm
def rewards_update(
    crm: CRM,
    code: str,
    name: str | None,
    points_cost: str | None,
    stock: int | None,
    unlimited: bool,
    value: str | None,
    active: bool | None,
    program: str | None,
) -> None:
    """Change a reward: name, points, stock, value, or whether it is offered."""
    currency = crm.loyalty.programs.get(program).currency
    changes = {
        "name": name,
        "points_cost": points_cost,
        "stock": stock,
        "active": active,
        "value_minor": amount_minor(value, currency, "--value"),
    }
    changes = {key: val for key, val in changes.items() if val is not None}
    if unlimited:
        changes["stock"] = None
    emit_object(_plain(crm.loyalty.programs.update_reward(code, program=program, **changes)))


# -- tiers, programs and rules ------------------------------------------------------------------------------


@loyalty.group(invoke_without_command=True)
@_program_option
@click.pass_context
def tiers(ctx: click.Context, program: str | None) -> None:
    """The tiers of a program and how many members each has (`tiers set` to change them)."""
    if ctx.invoked_subcommand is None:
        _list_tiers(program)


@pass_crm
def _list_tiers(crm: CRM, program: str | None) -> None:
    counts = {row.tier: row.members for row in crm.loyalty.reports.tier_counts(program=program)}
    emit(
        [{**_tier(tier), "members": counts.get(tier.code, 0)} for tier in crm.loyalty.programs.tiers(program)],
        [*TIER_COLUMNS, N_("members")],
    )


#: What ``loyalty tiers`` shows of a tier.
TIER_COLUMNS = [N_("rank"), N_("code"), N_("name"), N_("threshold"), N_("multiplier")]


def _tier(tier: Any) -> dict[str, Any]:
    """A tier for output: in a table its name in the reader's language when it is a default one (``Silver`` is vi
    ``Bạc``), a name the business chose as written; JSON and CSV keep the stored name."""
    named = current_translator().gettext(tier.name) if current_format() == "table" else tier.name
    return {**_plain(tier), "name": named}


@tiers.command("set")
@click.argument("definitions", nargs=-1, required=True, metavar="CODE:NAME:THRESHOLD[:MULTIPLIER]...")
@_program_option
@pass_crm
def tiers_set(crm: CRM, definitions: tuple[str, ...], program: str | None) -> None:
    """Replace the tiers, e.g. `member:Member:0 silver:Silver:500:1.1 gold:Gold:2000:1.25`; members are re-evaluated."""
    parsed = []
    for text in definitions:
        parts = text.split(":")
        if len(parts) not in (3, 4):
            raise click.BadParameter(f"{text!r} is not CODE:NAME:THRESHOLD[:MULTIPLIER]", param_hint="DEFINITIONS")
        parsed.append(
            {
                "code": parts[0],
                "name": parts[1],
                "threshold": parts[2],
                "multiplier": parts[3] if len(parts) == 4 else "1",
            }
        )
    emit([_tier(tier) for tier in crm.loyalty.programs.set_tiers(parsed, program=program)], TIER_COLUMNS)


@loyalty.group(invoke_without_command=True)
@click.pass_context
def programs(ctx: click.Context) -> None:
    """Loyalty programs (add and change them with the subcommands)."""
    if ctx.invoked_subcommand is None:
        _list_programs()


@pass_crm
def _list_programs(crm: CRM) -> None:
    emit(
        _rows(crm.loyalty.programs.list()),
        [
            "code",
            "name",
            "currency",
            "earn_points",
            "earn_amount_minor",
            "rounding",
            "point_decimals",
            "include_tax",
            "expiry_days",
            "tier_basis",
            "active",
        ],
    )


def _program_settings(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--earn-points", default=None, help="Points earned per --per-amount spent [default: 1]."),
        click.option("--per-amount", default=None, help="Amount spent per --earn-points, e.g. 10000 [default: 10000]."),
        click.option(
            "--rounding",
            type=click.Choice(["floor", "round", "ceil"]),
            default=None,
            help="How each order's points are rounded [default: floor].",
        ),
        click.option(
            "--tax/--no-tax", "include_tax", default=None, help="Earn on the total with or without tax [default: with]."
        ),
        click.option(
            "--expiry-days", type=click.IntRange(min=1), default=None, help="Points expire after [default: 365]."
        ),
        click.option("--no-expiry", is_flag=True, help="Points never expire."),
        click.option("--tier-basis", type=click.Choice(["points", "spend"]), default=None),
        click.option(
            "--tier-window-days", type=click.IntRange(min=1), default=None, help="Rolling window [default: 365]."
        ),
        click.option(
            "--point-value", default=None, help="Money value of one point, e.g. 500 (for the liability report)."
        ),
        click.option(
            "--auto-enroll/--no-auto-enroll", default=None, help="New customers join automatically [default: yes]."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _settings(
    currency: str,
    earn_points: str | None,
    per_amount: str | None,
    rounding: str | None,
    include_tax: bool | None,
    expiry_days: int | None,
    no_expiry: bool,
    tier_basis: str | None,
    tier_window_days: int | None,
    point_value: str | None,
    auto_enroll: bool | None,
) -> dict[str, Any]:
    given = {
        "earn_points": earn_points,
        "earn_amount_minor": amount_minor(per_amount, currency, "--per-amount"),
        "rounding": rounding,
        "include_tax": include_tax,
        "expiry_days": expiry_days,
        "tier_basis": tier_basis,
        "tier_window_days": tier_window_days,
        "point_value_minor": amount_minor(point_value, currency, "--point-value"),
        "auto_enroll": auto_enroll,
    }
    result = {key: value for key, value in given.items() if value is not None}
    if no_expiry:
        result["expiry_days"] = None
    return result


@programs.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--currency", default="VND", show_default=True)
@click.option(
    "--decimals",
    "point_decimals",
    type=click.IntRange(0, 3),
    default=0,
    show_default=True,
    help="Decimal places points may have (0: whole points only).",
)
@click.option("--no-default-tiers", is_flag=True, help="Create only a single Member tier.")
@_program_settings
@pass_crm
def programs_add(
    crm: CRM, code: str, name: str, currency: str, point_decimals: int, no_default_tiers: bool, **options: Any
) -> None:
    """Create a program (with Member, Silver, Gold and Diamond tiers unless --no-default-tiers)."""
    tiers_given = [{"code": "member", "name": "Member", "threshold": 0}] if no_default_tiers else None
    program = crm.loyalty.programs.create(
        code,
        name,
        currency=currency.upper(),
        point_decimals=point_decimals,
        tiers=tiers_given,
        **_settings(currency.upper(), **options),
    )
    emit_object(_plain(program))


@programs.command("update")
@click.argument("code")
@click.option("--name", default=None)
@click.option("--active/--inactive", default=None)
@_program_settings
@pass_crm
def programs_update(crm: CRM, code: str, name: str | None, active: bool | None, **options: Any) -> None:
    """Change a program's settings (the currency and decimals are fixed)."""
    changes = _settings(crm.loyalty.programs.get(code).currency, **options)
    changes.update({key: value for key, value in (("name", name), ("active", active)) if value is not None})
    emit_object(_plain(crm.loyalty.programs.update(code, **changes)))


@loyalty.group(invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Include deactivated rules.")
@_program_option
@click.pass_context
def rules(ctx: click.Context, show_all: bool, program: str | None) -> None:
    """Earn rules of a program, in the order they were added (see the README for the order they apply in)."""
    if ctx.invoked_subcommand is None:
        _list_rules(show_all, program)


@pass_crm
def _list_rules(crm: CRM, show_all: bool, program: str | None) -> None:
    emit(
        _rows(crm.loyalty.programs.rules(program, include_inactive=show_all)),
        ["id", "kind", "target", "multiplier", "bonus_points", "amount_minor", "starts_on", "ends_on", "active"],
    )


@rules.command("add")
@click.argument(
    "kind", type=click.Choice(["product", "category", "min_order", "birthday", "occasion", "signup", "referral"])
)
@click.option(
    "--target",
    default=None,
    help="SKU or product id, category, or occasion as crmkit.vncalendar spells it: "
    "tet, trung_thu, gio_to, vu_lan, ram_thang_gieng, womens_day, "
    "vietnamese_womens_day, teachers_day, national_day, founding_day…, "
    "a solar day 30/4 or 04-30, or a lunar day '15/8 âm lịch'.",
)
@click.option("--multiplier", default=None, help="e.g. 2 (double points).")
@click.option("--bonus", "bonus_points", default=None, help="Fixed bonus points.")
@click.option("--min-amount", default=None, help="Minimum order amount (min_order rules), e.g. 50000.")
@click.option("--from", "starts_on", type=DATE, default=None, help="First local date the rule applies.")
@click.option("--to", "ends_on", type=DATE, default=None, help="Last local date the rule applies.")
@_program_option
@pass_crm
def rules_add(
    crm: CRM,
    kind: str,
    target: str | None,
    multiplier: str | None,
    bonus_points: str | None,
    min_amount: str | None,
    starts_on: datetime | None,
    ends_on: datetime | None,
    program: str | None,
) -> None:
    """Add an earn rule."""
    currency = crm.loyalty.programs.get(program).currency
    rule = crm.loyalty.programs.add_rule(
        kind,
        program=program,
        target=target,
        multiplier=multiplier,
        bonus_points=bonus_points,
        amount_minor=amount_minor(min_amount, currency, "--min-amount"),
        starts_on=_day(starts_on),
        ends_on=_day(ends_on),
    )
    emit_object(_plain(rule))


@rules.command("deactivate")
@click.argument("rule_id", type=int)
@pass_crm
def rules_deactivate(crm: CRM, rule_id: int) -> None:
    """Stop applying a rule."""
    emit_object(_plain(crm.loyalty.programs.deactivate_rule(rule_id)))


# -- batch jobs -------------------------------------------------------------------------------------------------


@loyalty.command()
@_program_option
@pass_crm
def expire(crm: CRM, program: str | None) -> None:
    """Expire points past their expiry date, oldest first (running it twice expires nothing more)."""
    emit(
        [
            {"program": run.program, "lots_expired": run.changed, "points": run.points}
            for run in crm.loyalty.jobs.expire(program=program)
        ],
        ["program", "lots_expired", "points"],
    )


@loyalty.command("evaluate-tiers")
@_program_option
@pass_crm
def evaluate_tiers(crm: CRM, program: str | None) -> None:
    """Move every member to the tier their qualifying points (or spend) over the window reach."""
    emit(
        [
            {"program": run.program, "members_moved": run.changed}
            for run in crm.loyalty.jobs.evaluate_tiers(program=program)
        ],
        ["program", "members_moved"],
    )


@loyalty.command()
@_program_option
@pass_crm
def verify(crm: CRM, program: str | None) -> None:
    """Check that every balance equals the sum of its ledger entries (exit code 1 when one does not)."""
    mismatches = crm.loyalty.jobs.verify(program=program)
    if mismatches:
        emit(_rows(mismatches), ["customer_id", "program", "balance", "ledger_sum", "open_lots"])
        raise click.ClickException(f"{len(mismatches)} balance(s) disagree with the ledger")
    click.echo(current_translator().gettext("ok: every balance equals the sum of its ledger entries"), err=True)


@loyalty.command()
@click.option("--since", type=DATE, default=None, help="Only orders placed from this local date.")
@pass_crm
def backfill(crm: CRM, since: datetime | None) -> None:
    """Earn points for orders the sales plugin already holds (idempotent: safe to run again)."""
    count = crm.loyalty.jobs.backfill(since=None if since is None else local_midnight(since.date(), crm.timezone))
    emit_object({"orders_read": count})


# -- reports ---------------------------------------------------------------------------------------------------------


def _report(rows: Any, columns: list[str]) -> None:
    """Print a report's rows; when they are limited to the acting user's scope, a ``scoped_to`` column says whose."""
    data = _rows(rows)
    scoped = any(row.get("scoped_to") for row in data)
    emit(data, [*columns, "scoped_to"] if scoped else columns)


@loyalty.group()
def report() -> None:
    """Loyalty reports: liability, earn-burn, tiers, redemption, repeat."""


@report.command("liability")
@_program_option
@pass_crm
def report_liability(crm: CRM, program: str | None) -> None:
    """Outstanding points and their money value, per program."""
    _report(
        crm.loyalty.reports.liability(program=program),
        ["program", "members", "outstanding", "value", "expiring_30_days"],
    )


@report.command("earn-burn")
@_period_options
@_program_option
@pass_crm
def report_earn_burn(crm: CRM, start: datetime | None, end: datetime | None, program: str | None) -> None:
    """Points earned and burned per local month."""
    _report(
        crm.loyalty.reports.earn_burn(program=program, start=_day(start), end=_day(end)),
        ["program", "month", "earned", "reversed", "redeemed", "expired", "adjusted", "net"],
    )


@report.command("tiers")
@_program_option
@pass_crm
def report_tiers(crm: CRM, program: str | None) -> None:
    """Members per tier."""
    _report(crm.loyalty.reports.tier_counts(program=program), ["program", "tier", "name", "members"])


@report.command("redemption")
@_period_options
@_program_option
@pass_crm
def report_redemption(crm: CRM, start: datetime | None, end: datetime | None, program: str | None) -> None:
    """Share of earned points redeemed, and of members who redeemed."""
    _report(
        crm.loyalty.reports.redemption_rate(program=program, start=_day(start), end=_day(end)),
        ["program", "earned", "redeemed", "rate", "members", "redeeming_members", "member_rate"],
    )


@report.command("repeat")
@_period_options
@_program_option
@pass_crm
def report_repeat(crm: CRM, start: datetime | None, end: datetime | None, program: str | None) -> None:
    """Repeat-purchase rate of members vs non-members."""
    _report(
        crm.loyalty.reports.repeat_purchase(program=program, start=_day(start), end=_day(end)),
        ["group", "buyers", "repeat_buyers", "rate"],
    )
