"""``crmkit qci …``: thin commands over ``crm.qci`` (no SQL, no business rule here).

Amounts are typed in major units (``45000000`` đồng); periods are ``YYYY-MM``, ``YYYY-Qn`` or ``YYYY``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crmkit.errors import ValidationError
from crmkit.plugin_api import (
    Coded,
    amount_minor,
    current_format,
    current_translator,
    emit,
    emit_object,
    format_option,
    pass_crm,
)

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_qci.assessment import Assessment
    from crmkit_qci.bank import Question
    from crmkit_qci.plan import Action

PERIOD_HELP = "Period: YYYY-MM (2026-10), YYYY-Qn (2026-Q4) or YYYY [default: the last complete month]."


@click.group()
def qci() -> None:
    """QCI: assess customer management, measure it from the CRM's data, plan the fixes, report.

    \b
    crmkit qci assess                      answer the question bank in the terminal
    crmkit qci areas --compare             area scores over time
    crmkit qci scorecard --period 2026-10  KPIs against targets, lights and trends
    crmkit qci plan --generate             actions for the weakest areas
    crmkit qci report --out qci.html       the printable report
    """


# -- assess ---------------------------------------------------------------------------------------------------


class AnswerType(click.ParamType):
    """One answer typed at the prompt: a whole number on the question's scale, or n for not applicable."""

    name = "answer"

    def __init__(self, question: Question) -> None:
        self.question = question

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        from crmkit_qci.assessment import parse_answer

        try:
            return parse_answer(self.question, value)
        except ValidationError as exc:
            self.fail("; ".join(m for messages in exc.errors.values() for m in messages), param, ctx)


@qci.command("assess")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the answers from a JSON or YAML file instead of asking.",
)
@click.option("--date", "assessed_on", metavar="YYYY-MM-DD", help="The date the assessment describes [default: today].")
@click.option("--label", help="A name for this assessment (e.g. 'Q4 review').")
@click.option(
    "--area", "areas", multiple=True, metavar="AREA", help="Ask only these areas (repeatable) [default: all]."
)
@format_option
@pass_crm
def assess(crm: CRM, path: Path | None, assessed_on: str | None, label: str | None, areas: Sequence[str]) -> None:
    """Answer the question bank (interactively, or from --file) and store the scored assessment.

    \b
    crmkit qci assess --label "Đánh giá quý 4"
    crmkit qci assess --file answers.yaml
    """
    if path is not None:
        result = crm.qci.assess_file(path)
    else:
        crm.qci.assessments.day(assessed_on)  # a bad date is refused before any question is asked
        bank = crm.qci.bank()
        _ = (
            current_translator().gettext
        )  # the question bank in the reader's words (the default bank's are in the catalog)
        chosen = [bank.area(a) for a in areas] if areas else list(bank.areas)
        click.echo(
            _("%(bank)s: %(count)s questions. Answer with a number on the scale shown, or n for not applicable.")
            % {"bank": bank.label, "count": sum(len(a.questions) for a in chosen)},
            err=True,
        )
        answers: dict[str, int | None] = {}
        for area in chosen:
            click.secho(f"\n{_(area.title)}", bold=True, err=True)
            for question in area.questions:
                click.echo(f"\n{question.id}. {_(question.text)}", err=True)
                if question.help:
                    click.echo(f"   {_(question.help)}", err=True)
                for point in range(question.scale_min, question.scale_max + 1):
                    if point in question.labels:
                        click.echo(f"   {point} = {_(question.labels[point])}", err=True)
                answers[question.id] = click.prompt(
                    "   "
                    + _("answer %(low)s–%(high)s (n = not applicable)")
                    % {"low": question.scale_min, "high": question.scale_max},
                    type=AnswerType(question),
                    err=True,
                )
        result = crm.qci.assessments.record(answers, assessed_on=assessed_on, label=label)
    _show_assessment(result)


def _area(key: str) -> Coded:
    """An area: its key in JSON and CSV, its title in the reader's words in a table."""
    from crmkit_qci.areas import BY_KEY

    return Coded(key, current_translator().gettext(BY_KEY[key].title) if key in BY_KEY else key)


def _show_assessment(result: Assessment) -> None:
    from crmkit_qci.areas import title

    table = current_format() == "table"
    if table:
        t = current_translator()
        overall = "—" if result.overall is None else t.format_number(Decimal(str(result.overall)), 1)
        click.secho(
            t.gettext("assessment %(id)s of %(date)s by %(user)s (%(bank)s): overall %(score)s / 100")
            % {
                "id": result.id,
                "date": t.format_date(result.assessed_on),
                "user": result.assessor,
                "bank": result.bank,
                "score": overall,
            },
            bold=True,
        )
    emit(
        [
            {
                "area": _area(a.area),
                "title": current_translator().gettext(title(a.area)) if table else title(a.area),
                "score": a.score,
                "answered": a.answered,
                "questions": a.questions,
            }
            for a in result.areas.values()
        ],
        ["area", "title", "score", "answered", "questions"],
    )


# -- areas ------------------------------------------------------------------------------------------------------


@qci.command("areas")
@click.option("--period", help=PERIOD_HELP)
@click.option("--compare", is_flag=True, help="Compare the assessments over time (one column per assessment).")
@click.option(
    "--last",
    type=click.IntRange(2, 20),
    default=4,
    show_default=True,
    help="With --compare: how many of the latest assessments.",
)
@format_option
@pass_crm
def areas(crm: CRM, period: str | None, compare: bool, last: int) -> None:
    """Area scores: the latest assessment, the period's data score and the combined score (or --compare)."""
    from crmkit_qci.areas import AREAS

    if compare:
        history = crm.qci.assessments.list(limit=last)
        if len(history) < 2:
            raise ValidationError(
                f"comparing needs two assessments; there {'is' if history else 'are'} "
                f"{len(history) or 'none'} (crmkit qci assess)",
                field="compare",
            )
        columns = [f"{a.assessed_on} #{a.id}" for a in history]
        rows = []
        for area in [*AREAS, None]:
            scores = [a.overall if area is None else a.score(area.key) for a in history]
            before, after = scores[-2], scores[-1]
            rows.append(
                {
                    "area": "overall" if area is None else area.key,
                    **dict(zip(columns, scores, strict=True)),
                    "change": None if before is None or after is None else round(after - before, 1),
                }
            )
        emit(
            rows,
            ["area", *columns, "change"],
            title=current_translator().gettext("Assessments compared (scores 0–100)"),
        )
        return
    card = crm.qci.scorecard(period)
    latest = crm.qci.assessments.latest()
    standings = crm.qci.standings(card=card)
    t = current_translator()
    heading = t.gettext("assessment: %(assessment)s · data: %(period)s") % {
        "assessment": t.gettext("none yet") if latest is None else f"{t.format_date(latest.assessed_on)} #{latest.id}",
        "period": card.period.label,
    }
    emit(
        [{"area": s.area, "assessment": s.assessment, "data": s.data, "combined": s.combined} for s in standings],
        ["area", "assessment", "data", "combined"],
        title=heading,
    )


# -- scorecard and targets ---------------------------------------------------------------------------------------


@qci.command("scorecard")
@click.option("--period", help=PERIOD_HELP)
@format_option
@pass_crm
def scorecard(crm: CRM, period: str | None) -> None:
    """Every KPI of the period against its target: traffic light and trend on the previous period.

    \b
    crmkit qci scorecard --period 2026-10
    crmkit --format csv qci scorecard --period 2026-Q3 > qci-q3.csv
    """
    card = crm.qci.scorecard(period)
    if current_format() != "table":
        emit([row.as_dict() for row in card.rows], list(card.rows[0].as_dict()))
        return
    t = current_translator()
    notes: list[str] = []
    rows = []
    for r in card.rows:
        m = r.measure
        value = m.display()
        if m.status != "ok":
            notes.append(f"[{len(notes) + 1}] {m.key}: {m.status}: {m.reason}")
            value = f"{m.status} [{len(notes)}]"
        previous = (
            "—" if r.previous is None else r.previous.display() if r.previous.status == "ok" else r.previous.status
        )
        change = r.change_display() + (f" {r.trend}" if r.trend in ("better", "worse") else "")
        rows.append(
            {
                "area": m.area,
                "kpi": m.key,
                "value": value,
                "target": r.target_display(),
                "light": Coded(r.light, t.gettext(r.light)),
                "previous": previous,
                "change": change,
            }
        )
    scope = " · " + t.gettext("scoped to %(whom)s") % {"whom": card.coverage.describe()} if card.scoped else ""
    emit(
        rows,
        ["area", "kpi", "value", "target", "light", "previous", "change"],
        title=t.gettext("QCI scorecard %(period)s (vs %(previous)s; money in %(currency)s)")
        % {"period": card.period.label, "previous": card.period.previous().label, "currency": card.currency}
        + scope,
    )
    lights = {key: t.format_number(n) for key, n in card.lights().items()}
    click.echo(
        "\n"
        + t.gettext(
            "%(period)s: %(green)s green, %(amber)s amber, %(red)s red, %(none)s without a light "
            "(no data, not available or no target)"
        )
        % {"period": card.period.label, **lights}
        + scope
    )
    for note in notes:
        click.echo(note)


@qci.command("targets")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KPI=TARGET",
    help="Set a target: an absolute value (90%, 0.9, 24, 150000) or a change on the previous period (+5%).",
)
@click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    metavar="KPI=PCT",
    help="The amber band of a KPI set with --set (default 10%).",
)
@click.option("--clear", "clears", multiple=True, metavar="KPI", help="Remove a KPI's target (its light turns off).")
@click.option("--reset", "resets", multiple=True, metavar="KPI", help="Back to the KPI's default target.")
@format_option
@pass_crm
def targets(
    crm: CRM, settings: Sequence[str], tolerances: Sequence[str], clears: Sequence[str], resets: Sequence[str]
) -> None:
    """Show the KPI targets, or change them.

    \b
    crmkit qci targets --set satisfaction=4.3 --set new_customers=+5% --tolerance satisfaction=5%
    crmkit qci targets --set cost_per_order=120000
    """
    from crmkit_qci.kpis import BY_KEY

    tolerance = dict(_pair(t, "tolerance") for t in tolerances)
    for key, value in (_pair(s, "set") for s in settings):
        crm.qci.set_target(key, value, tolerance=tolerance.pop(key, None))
    if tolerance:
        raise ValidationError(
            f"--tolerance for {', '.join(tolerance)} needs a --set of the same KPI", field="tolerance"
        )
    for key in clears:
        crm.qci.set_target(key, None)
    for key in resets:
        crm.qci.reset_target(key)
    current = crm.qci.targets()
    emit(
        [
            {
                "kpi": key,
                "area": k.area,
                "unit": k.unit,
                "better": k.direction,
                "target": None if current[key] is None else current[key].text,
                "tolerance": None if current[key] is None else f"{current[key].tolerance * 100:.0f}%",
                "definition": k.definition,
            }
            for key, k in BY_KEY.items()
        ],
        ["kpi", "area", "unit", "better", "target", "tolerance", "definition"],
    )


def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValidationError(f"{text!r} is not KPI=VALUE", field=option)
    return key.strip(), value.strip()


# -- plan -------------------------------------------------------------------------------------------------------


@qci.command("plan")
@click.option("--generate", is_flag=True, help="Add actions for the weakest areas (assessment and data).")
@click.option("--period", help=PERIOD_HELP + " (the data scores --generate uses)")
@click.option("--areas", "area_count", type=int, default=3, show_default=True, help="With --generate: how many areas.")
@click.option(
    "--threshold", type=float, default=60.0, show_default=True, help="With --generate: only areas scoring below this."
)
@click.option(
    "--owner", help="With --generate: the owner (a user) of every new action [default: the area's owner, else you]."
)
@click.option(
    "--assign",
    "assignments",
    multiple=True,
    metavar="ID=USER",
    help="Give action ID to USER (repeatable; USER '-' leaves it unassigned).",
)
@click.option("--start", "start_id", type=int, metavar="ID", help="Mark action ID in progress.")
@click.option("--done", "done_id", type=int, metavar="ID", help="Mark action ID done.")
@click.option("--status", type=click.Choice(["open", "in_progress", "done"]), help="List only actions in this status.")
@format_option
@pass_crm
def plan(
    crm: CRM,
    generate: bool,
    period: str | None,
    area_count: int,
    threshold: float,
    owner: str | None,
    assignments: Sequence[str],
    start_id: int | None,
    done_id: int | None,
    status: str | None,
) -> None:
    """The action plan: list it, --generate it, --assign actions and track them to --done.

    \b
    crmkit qci plan --generate --areas 2
    crmkit qci plan --assign 3=huong.le
    crmkit qci plan --start 3 && crmkit qci plan --done 3
    """
    if generate:
        result = crm.qci.generate_plan(period, areas=area_count, threshold=threshold, owner=owner)
        chosen = ", ".join(f"{s.area} ({s.describe()})" for s in result.chosen) or f"none below {threshold:g}"
        click.echo(f"weakest areas: {chosen}", err=True)
        if result.skipped:
            click.echo(f"already in the plan (still open): {', '.join(result.skipped)}", err=True)
    for action_id, username in (_pair(a, "assign") for a in assignments):
        if not action_id.isdigit():
            raise ValidationError(f"{action_id!r} is not an action id", field="assign")
        crm.qci.plan.assign(int(action_id), None if username == "-" else username)
    if start_id is not None:
        crm.qci.plan.start(start_id)
    if done_id is not None:
        crm.qci.plan.done(done_id)
    _show_actions(crm.qci.plan.list(status=status), crm.qci.plan.progress(), crm.qci.today())


def _show_actions(actions: Sequence[Action], progress: dict[str, int], today: Any) -> None:
    if current_format() != "table":
        import attrs

        emit(
            [attrs.asdict(a) for a in actions],
            [
                "id",
                "area",
                "rule_id",
                "title",
                "owner",
                "due_on",
                "status",
                "segment_ref",
                "campaign_ref",
                "handoff",
                "reason",
                "done_at",
            ],
        )
        return
    from crmkit_qci.report import STATUS_NAMES

    t = current_translator()
    overdue = t.gettext("Overdue")
    emit(
        [
            {
                "id": a.id,
                "area": _area(a.area),
                "action": t.gettext(a.title),
                "owner": a.owner or "—",
                "due": f"{t.format_date(a.due_on)}{f' ({overdue})' if a.overdue(today) else ''}",
                "status": Coded(a.status, t.gettext(STATUS_NAMES.get(a.status, a.status))),
                "campaign": a.campaign_ref or ("" if a.handoff is None else "—"),
            }
            for a in actions
        ],
        ["id", "area", "action", "owner", "due", "status", "campaign"],
        title=t.gettext("QCI plan: %(done)s done, %(in_progress)s in progress, %(open)s open, %(overdue)s overdue")
        % {key: t.format_number(progress.get(key, 0)) for key in ("done", "in_progress", "open", "overdue")},
    )


@qci.command("owners")
@click.option("--set", "settings", multiple=True, metavar="AREA=USER", help="The default owner of an area's actions.")
@format_option
@pass_crm
def owners(crm: CRM, settings: Sequence[str]) -> None:
    """Show or set who owns each area's new actions (usernames of active users)."""
    from crmkit_qci.areas import AREAS

    for area, employee in (_pair(s, "set") for s in settings):
        crm.qci.set_owner(area, employee)
    current = crm.qci.owners()
    emit([{"area": a.key, "owner": current.get(a.key)} for a in AREAS], ["area", "owner"])


# -- report -----------------------------------------------------------------------------------------------------


@qci.command("report")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("qci-report.html"),
    show_default=True,
    help="Where to write the HTML report.",
)
@click.option("--period", help=PERIOD_HELP)
@pass_crm
def report(crm: CRM, out: Path, period: str | None) -> None:
    """Write the printable HTML report: radar chart, KPI scorecard with trends, the plan (in the language of
    `crmkit --locale`, else the user's, else the business's)."""
    t = current_translator()
    path = crm.qci.report(out, period, locale=t.locale)
    click.echo(
        t.gettext("wrote %(file)s (%(size)s bytes)") % {"file": path, "size": t.format_number(path.stat().st_size)}
    )


# -- the question bank -------------------------------------------------------------------------------------------


@qci.group("bank")
def bank() -> None:
    """The question bank: show it, export it to edit, import your own, or reset to the default."""


@bank.command("show")
@format_option
@pass_crm
def bank_show(crm: CRM) -> None:
    """List the active bank's questions."""
    active = crm.qci.bank()
    said = current_translator().gettext if current_format() == "table" else str  # the question in the reader's words
    emit(
        [
            {
                "id": q.id,
                "area": _area(q.area),
                "weight": q.weight,
                "scale": f"{q.scale_min}–{q.scale_max}",
                "question": said(q.text),
            }
            for q in active.questions()
        ],
        ["id", "area", "weight", "scale", "question"],
        title=active.label,
    )


@bank.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), required=False)
@pass_crm
def bank_export(crm: CRM, path: Path | None) -> None:
    """Write the active bank as JSON (to PATH, or stdout) — edit it and import it back."""
    import json

    text = json.dumps(crm.qci.bank().document, ensure_ascii=False, indent=2) + "\n"
    if path is None:
        click.echo(text, nl=False)
    else:
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}", err=True)


@bank.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_crm
def bank_import(crm: CRM, path: Path) -> None:
    """Validate a JSON or YAML bank and make it the active one (nothing changes when it is refused)."""
    imported = crm.qci.import_bank(path)
    click.echo(
        f"imported {imported.label}: {sum(1 for _ in imported.questions())} questions in {len(imported.areas)} areas"
    )


@bank.command("reset")
@pass_crm
def bank_reset(crm: CRM) -> None:
    """Go back to the default bank."""
    click.echo(f"active bank: {crm.qci.reset_bank().label}")


# -- costs -----------------------------------------------------------------------------------------------------


@qci.group("costs")
def costs() -> None:
    """Customer-management costs per month (efficiency KPIs divide by them)."""


@costs.command("add")
@click.argument("month")
@click.argument("amount")
@click.option("--kind", default="other", show_default=True, help="acquisition, retention, service, marketing or other.")
@click.option("--currency", help="ISO code [default: the KPI currency].")
@click.option("--note", help="What the cost is.")
@format_option
@pass_crm
def costs_add(crm: CRM, month: str, amount: str, kind: str, currency: str | None, note: str | None) -> None:
    """Record AMOUNT (major units: 45000000 đồng) spent in MONTH (YYYY-MM).

    \b
    crmkit qci costs add 2026-10 45000000 --kind acquisition --note "Quảng cáo Zalo"
    """
    from crmkit.money import Money

    code = (currency or crm.qci.currency()).upper()
    cost = crm.qci.costs.add(month, amount_minor(amount, code, "AMOUNT"), kind=kind, currency=code, note=note)
    emit_object(
        {
            "id": cost.id,
            "month": cost.month,
            "kind": cost.kind,
            "amount": Money(cost.currency, cost.amount_minor).format(),
            "note": cost.note,
        }
    )


@costs.command("list")
@click.option("--period", help="Only the months of this period.")
@format_option
@pass_crm
def costs_list(crm: CRM, period: str | None) -> None:
    """List the recorded costs."""
    from crmkit.money import Money

    chosen = None if period is None else crm.qci.period(period)
    emit(
        [
            {
                "id": c.id,
                "month": c.month,
                "kind": c.kind,
                "amount": Money(c.currency, c.amount_minor).format(),
                "amount_minor": c.amount_minor,
                "currency": c.currency,
                "note": c.note,
                "by": c.recorded_by,
            }
            for c in crm.qci.costs.list(chosen)
        ],
        ["id", "month", "kind", "amount", "note", "by"],
    )
