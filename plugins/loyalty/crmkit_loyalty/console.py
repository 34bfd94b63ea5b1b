"""Loyalty in the web console: the "Loyalty card" panel of the customer 360 (with a Redeem form), the programs
and rewards pages (rewards managed by ``loyalty.programs.manage``), a member's statement, and the home tile
"Points liability".

Every handler calls ``crm.loyalty`` as the signed-in user — the same calls as ``crmkit loyalty`` and the API — so
scopes hold: another team's member is the 404 page, a missing permission the 403 page. Templates are
``crmkit_loyalty:templates/console/…``; texts are msgids translated by ``crmkit_loyalty/locale/vi``.
Werkzeug and the core's pages are imported inside the handlers: loading the plugin stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmkit import hookimpl
from crmkit.console import ConsolePage, MenuEntry, Panel, Tile, static_files
from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit.money import Money
from crmkit_loyalty.catalog import REWARD_KINDS
from crmkit_loyalty.permissions import MEMBERS_READ, POINTS_REDEEM, PROGRAMS_MANAGE, REPORTS_READ

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from crmkit.crm import CRM
    from crmkit.plugin_api import ConsoleRequest, Customer
    from crmkit_loyalty.records import LedgerEntry, Member, Program, Redemption, Reward, Tier

PROGRAMS = "/console/loyalty/programs"
REWARDS = "/console/loyalty/rewards"
NEW_REWARD = "/console/loyalty/rewards/new"
TEMPLATES = "crmkit_loyalty:templates/console/"
STYLESHEET = "/console/loyalty/static/loyalty.css"
PANEL = "loyalty"  # replaces the profile's plain "loyalty" section on the 360
PANEL_LINES = 5
PANEL_REDEMPTIONS = 3
REWARD_FIELDS = ("code", "name", "kind", "points_cost", "stock", "value", "description")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

#: Ledger entry kind → its msgid.
KINDS = {"earn": "Earned", "reverse": "Reversed", "redeem": "Redeemed", "expire": "Expired", "adjust": "Adjusted"}
#: Ledger reason (or its prefix before ``:``) → its msgid; other reasons are shown as written.
REASONS = {
    "purchase": "Purchase",
    "signup": "Sign-up bonus",
    "referral": "Referral bonus",
    "grant": "Given by hand",
    "deduct": "Taken by hand",
    "redeem": "Reward redeemed",
    "redeem_cancel": "Redemption cancelled",
    "erasure": "Forfeited on erasure",
    "expire": "Points expired",
    "birthday": "Birthday bonus",
    "occasion": "Occasion bonus",
    "refund": "Refund",
    "cancel": "Order cancelled",
}
#: Reasons whose note a person wrote (or names the reward): shown beside the line.
_NOTED = ("grant", "deduct", "redeem", "redeem_cancel")
RULE_KINDS = {
    "product": "Product multiplier",
    "category": "Category multiplier",
    "min_order": "Minimum order",
    "birthday": "Birthday",
    "occasion": "Occasion",
    "signup": "Sign-up bonus",
    "referral": "Referral bonus",
}
REWARD_KIND_LABELS = {"product": "Product", "service": "Service", "discount": "Discount"}
ROUNDINGS = {"floor": "Down to a whole point", "round": "To the nearest point", "ceil": "Up to a whole point"}
TIER_BASES = {"points": "On qualifying points", "spend": "On spend"}
#: The service's refusal by field → the msgid shown before its own message.
REDEEM_ERRORS = {
    "points": "Not enough points for this reward.",
    "reward": "This reward cannot be redeemed.",
    "customer_id": "This customer is not a member of the program.",
    "quantity": "This reward cannot be redeemed.",
}


@attrs.frozen
class Line:
    """A ledger entry as a person reads it: what happened (msgid), a detail, and the balance after it."""

    at: Any  # aware UTC
    points: Any
    kind: str  # msgid
    reason: str  # msgid, or the reason as written
    detail: str
    balance: Any = None


@attrs.frozen
class Card:
    """One program's loyalty card of a customer: membership, tier, value, expiring points, latest lines, rewards."""

    program: Program
    member: Member
    tier: str | None  # the tier's name (a msgid for the default tiers)
    value: Money | None
    expiring: Sequence[dict[str, Any]]
    lines: Sequence[Line]
    affordable: Sequence[Reward]
    names: dict[str, str]  # every offered reward's name by code (a refused choice is named, not coded)
    redemptions: Sequence[Redemption]


def line_of(entry: LedgerEntry, balance: Any = None) -> Line:
    """A ledger entry as a line of the card or the statement (the note only when a person wrote it)."""
    head = entry.reason.split(":", 1)[0]
    detail = (entry.note or "") if head in _NOTED else (f"#{entry.order_id}" if entry.order_id else "")
    return Line(
        entry.created_at,
        entry.points,
        KINDS.get(entry.kind, entry.kind),
        REASONS.get(entry.reason, REASONS.get(head, entry.reason)),
        detail,
        balance,
    )


def tier_names(tiers: Sequence[Tier]) -> dict[str, str]:
    """Tier code → its name (translated in the template: the default names are msgids of the catalog)."""
    return {tier.code: tier.name for tier in tiers}


def loyalty_cards(crm: CRM, customer: Customer) -> list[Card]:
    """The customer's card per program they belong to (the 360 panel), read as the signed-in user."""
    service = crm.loyalty
    with crm.transaction() as session:  # the profile read the core's 360 makes, one short transaction
        sections = service.profile(customer.id, session)
    cards = []
    for section in sections:
        program = service.programs.get(section["program"])
        member = service.member(customer.id, program=program.code)
        if member is None:
            continue
        offered = service.programs.rewards(program.code)
        affordable = [reward for reward in offered if reward.points_cost <= member.points and reward.stock != 0]
        lines = [line_of(entry) for entry in service.history(customer.id, program=program.code, limit=PANEL_LINES)]
        latest = service.redemptions(customer.id, program=program.code)[:PANEL_REDEMPTIONS]
        cards.append(
            Card(
                program,
                member,
                section["tier"],
                section["value"],
                section["expiring_soon"],
                lines,
                affordable,
                {reward.code: reward.name for reward in offered},
                latest,
            )
        )
    return cards


def redeem(request: ConsoleRequest) -> Response:
    """Exchange points for the chosen reward (``crm.loyalty.redeem``, as ``crmkit loyalty redeem`` and the API do),
    then back to the 360 saying so; a refusal (balance, stock, unknown reward) is shown next to the form."""
    from werkzeug.utils import redirect

    from crmkit.plugin_api import customer_360

    form, customer_id = request.http.form, request.params["customer_id"]
    program, reward = form.get("program", "").strip() or None, form.get("reward", "").strip()
    try:
        if not reward:
            raise ValidationError("choose a reward", field="reward")
        done = request.crm.loyalty.redeem(customer_id, reward, program=program)
    except NotFound as exc:
        if exc.kind != "reward":  # the customer (out of scope: the 404 page) or the program
            raise
        errors = {"reward": [str(exc)]}
    except ValidationError as exc:
        errors = {
            field: messages if isinstance(messages, list) else [str(messages)] for field, messages in exc.errors.items()
        }
    except Conflict as exc:  # an erased customer
        errors = {"_": [str(exc)]}
    else:
        target = request.url(f"/console/customers/{done.customer_id}", redeemed=done.id) + f"#panel-{PANEL}"
        return redirect(target, 303)
    field = next(iter(errors))
    state = {
        "program": program,
        "reward": reward,
        "lead": REDEEM_ERRORS.get(field, "The reward could not be redeemed."),
        "errors": [str(message) for messages in errors.values() for message in messages],
    }
    return customer_360(request, panel_state={PANEL: state}, status=422)


def _month(request: ConsoleRequest) -> date:
    """The first day of the statement's month (``?month=2026-12``; default: this month of the business)."""
    found = _MONTH.match(request.http.args.get("month", ""))
    if found and 1 <= int(found.group(2)) <= 12:
        return date(int(found.group(1)), int(found.group(2)), 1)
    return request.crm.today().replace(day=1)


def _next_month(first: date) -> date:
    return (first + timedelta(days=32)).replace(day=1)


def member_statement(request: ConsoleRequest) -> Response:
    """A member's ledger one month a page, oldest first with the balance after each line, and their tier history."""
    crm, customer_id = request.crm, request.params["customer_id"]
    customer = crm.customers.get(customer_id)
    program = crm.loyalty.programs.get(request.http.args.get("program") or None)
    if customer.id != customer_id:  # merged away: the statement of the customer it became
        return request.redirect(f"/console/loyalty/members/{customer.id}", program=program.code)
    member = crm.loyalty.member(customer.id, program=program.code)
    values: dict[str, Any] = {
        "customer": customer,
        "program": program,
        "member": member,
        "programs": crm.loyalty.programs.list(),
    }
    if member is not None:
        first = _month(request)
        following = _next_month(first)
        statement = crm.loyalty.statement(customer.id, first, following - timedelta(days=1), program=program.code)
        running, lines = statement.opening, []
        for entry in statement.entries:
            running += entry.points
            lines.append(line_of(entry, running))
        this_month = crm.today().replace(day=1)
        since = member.enrolled_at.astimezone(crm.timezone).date().replace(day=1)
        values.update(
            statement=statement,
            lines=lines,
            tiers=tier_names(crm.loyalty.programs.tiers(program.code)),
            history=crm.loyalty.tier_history(customer.id, program=program.code),
            redemptions=crm.loyalty.redemptions(customer.id, program=program.code),
            older=f"{(first - timedelta(days=1)):%Y-%m}" if first > since else None,
            newer=f"{following:%Y-%m}" if following <= this_month else None,
        )
    return request.render(TEMPLATES + "member.html", **values)


def programs_page(request: ConsoleRequest) -> Response:
    """Every program: how points are earned and worth, its earn rules and its tiers."""
    catalog = request.crm.loyalty.programs
    programs = [
        (program, catalog.rules(program.code, include_inactive=True), catalog.tiers(program.code))
        for program in catalog.list()
    ]
    return request.render(
        TEMPLATES + "programs.html",
        programs=programs,
        rule_kinds=RULE_KINDS,
        roundings=ROUNDINGS,
        bases=TIER_BASES,
        money_of=lambda minor, currency: Money(currency, minor),
    )


def rewards_page(request: ConsoleRequest) -> Response:
    """A program's rewards catalogue, cheapest first; managers also see retired rewards and may change them."""
    catalog, can_manage = request.crm.loyalty.programs, request.allowed(PROGRAMS_MANAGE)
    programs = catalog.list()
    program = catalog.get(request.http.args.get("program") or None) if programs else None
    rewards = catalog.rewards(program.code, include_inactive=can_manage) if program else []
    return request.render(
        TEMPLATES + "rewards.html",
        programs=programs,
        program=program,
        rewards=rewards,
        can_manage=can_manage,
        kinds=REWARD_KIND_LABELS,
        saved=request.http.args.get("saved"),
    )


def _reward_values(reward: Reward | None) -> dict[str, str]:
    """A reward as its form shows it (a new one: a product with unlimited stock)."""
    if reward is None:
        return {**dict.fromkeys(REWARD_FIELDS, ""), "kind": "product"}
    return {
        "code": reward.code,
        "name": reward.name,
        "kind": reward.kind,
        "points_cost": str(reward.points_cost),
        "stock": "" if reward.stock is None else str(reward.stock),
        "value": "" if reward.value is None else str(reward.value.amount),
        "description": reward.description or "",
    }


def _reward_changes(values: dict[str, str], fields: Sequence[str], currency: str) -> dict[str, Any]:
    """The service's input for the given form fields; a value that is not an amount is the ``value`` field's error."""
    data: dict[str, Any] = {}
    for name in fields:
        given = values[name]
        if name == "value":
            try:
                data["value_minor"] = Money.parse(given, currency).minor if given else None
            except ValueError as exc:
                raise ValidationError(str(exc), field="value") from None
        else:
            data[name] = given or None
    return data


def _reward_form(
    request: ConsoleRequest,
    program: Program,
    reward: Reward | None,
    values: dict[str, str],
    errors: dict[str, list[str]],
    status: int = 200,
) -> Response:
    action = NEW_REWARD if reward is None else f"{REWARDS}/{program.code}/{reward.code}/edit"
    return request.render(
        TEMPLATES + "reward_form.html",
        status=status,
        program=program,
        reward=reward,
        values=values,
        errors=errors,
        action=action,
        kinds=[(kind, request.i18n.gettext(REWARD_KIND_LABELS[kind])) for kind in REWARD_KINDS],
    )


def _errors_of(exc: ValidationError) -> dict[str, list[str]]:
    """The service's errors by form field (``value_minor`` is the form's ``value``); others under ``_``."""
    shown: dict[str, list[str]] = {}
    for field, messages in exc.errors.items():
        name = "value" if field == "value_minor" else field
        listed = messages if isinstance(messages, list) else [messages]
        shown.setdefault(name if name in REWARD_FIELDS else "_", []).extend(str(m) for m in listed)
    return shown


def _submitted(request: ConsoleRequest) -> dict[str, str]:
    return {name: request.http.form.get(name, "").strip() for name in REWARD_FIELDS}


def reward_new(request: ConsoleRequest) -> Response:
    """The new-reward form of a program; saved through ``crm.loyalty.programs.add_reward``."""
    catalog = request.crm.loyalty.programs
    program = catalog.get(request.http.values.get("program") or None)
    if request.http.method == "GET":
        return _reward_form(request, program, None, _reward_values(None), {})
    values = _submitted(request)
    try:
        data = _reward_changes(values, ("kind", "stock", "value", "description"), program.currency)
        catalog.add_reward(
            values["code"],
            values["name"],
            values["points_cost"] or None,
            program=program.code,
            **{k: v for k, v in data.items() if v is not None},
        )
    except (ValidationError, Conflict) as exc:
        errors = _errors_of(exc) if isinstance(exc, ValidationError) else {"code": [str(exc)]}
        return _reward_form(request, program, None, values, errors, status=422)
    return request.redirect(REWARDS, program=program.code, saved=1)


def reward_edit(request: ConsoleRequest) -> Response:
    """The edit form of a reward; only the fields the manager changed go to ``crm.loyalty.programs.update_reward``."""
    catalog, code = request.crm.loyalty.programs, request.params["code"]
    program = catalog.get(request.params["program"])
    reward = _reward(request, program, code)
    current = _reward_values(reward)
    if request.http.method == "GET":
        return _reward_form(request, program, reward, current, {})
    values = {**_submitted(request), "code": reward.code}
    changed = [name for name in REWARD_FIELDS if values[name] != current[name]]
    try:
        if changed:
            catalog.update_reward(code, program=program.code, **_reward_changes(values, changed, program.currency))
    except ValidationError as exc:
        return _reward_form(request, program, reward, values, _errors_of(exc), status=422)
    return request.redirect(REWARDS, program=program.code, saved=1)


def reward_status(request: ConsoleRequest) -> Response:
    """Retire a reward (no longer offered; past redemptions keep it) or offer it again."""
    catalog = request.crm.loyalty.programs
    program = catalog.get(request.params["program"])
    reward = _reward(request, program, request.params["code"])
    catalog.update_reward(reward.code, program=program.code, active=request.http.form.get("active") == "1")
    return request.redirect(REWARDS, program=program.code, saved=1)


def _reward(request: ConsoleRequest, program: Program, code: str) -> Reward:
    """The program's reward ``code``, retired ones included (``NotFound``: the 404 page)."""
    found = [r for r in request.crm.loyalty.programs.rewards(program.code, include_inactive=True) if r.code == code]
    if not found:
        raise NotFound("reward", code)
    return found[0]


@hookimpl
def crmkit_console_pages() -> list[ConsolePage]:
    """The plugin's pages, each requiring the permission of the service calls it makes."""
    reward = REWARDS + "/<program>/<code>"
    return [
        static_files("loyalty", "crmkit_loyalty"),
        ConsolePage(PROGRAMS, programs_page, permission=MEMBERS_READ),
        ConsolePage(REWARDS, rewards_page, permission=MEMBERS_READ),
        ConsolePage(NEW_REWARD, reward_new, methods=("GET", "POST"), permission=PROGRAMS_MANAGE),
        ConsolePage(reward + "/edit", reward_edit, methods=("GET", "POST"), permission=PROGRAMS_MANAGE),
        ConsolePage(reward + "/status", reward_status, methods=("POST",), permission=PROGRAMS_MANAGE),
        ConsolePage("/console/loyalty/members/<int:customer_id>", member_statement, permission=MEMBERS_READ),
        ConsolePage(
            "/console/loyalty/members/<int:customer_id>/redeem", redeem, methods=("POST",), permission=POINTS_REDEEM
        ),
    ]


@hookimpl
def crmkit_console_menu() -> list[MenuEntry]:
    """Programs and rewards, for the people who look after members."""
    return [
        MenuEntry("Loyalty", PROGRAMS, permission=MEMBERS_READ),
        MenuEntry("Rewards", REWARDS, permission=MEMBERS_READ),
    ]


@hookimpl
def crmkit_customer_panels() -> list[Panel]:
    """The "Loyalty card" of the 360, in place of the profile's plain loyalty section."""
    return [Panel(PANEL, "Loyalty card", TEMPLATES + "card_panel.html", loyalty_cards, permission=MEMBERS_READ)]


@hookimpl
def crmkit_home_tiles() -> list[Tile]:
    """Outstanding points and their money value, over the customers in the user's report scope."""
    return [
        Tile(
            "loyalty-liability",
            "Points liability",
            TEMPLATES + "liability_tile.html",
            lambda crm: crm.loyalty.reports.liability(),
            permission=REPORTS_READ,
        )
    ]


@hookimpl
def crmkit_translations() -> list[tuple[str, str]]:
    """The Vietnamese texts: ``crmkit_loyalty/locale/vi/LC_MESSAGES/crmkit_loyalty.po``."""
    return [("crmkit_loyalty", "crmkit_loyalty")]
