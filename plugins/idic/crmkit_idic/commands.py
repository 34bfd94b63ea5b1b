"""``crmkit idic …``: thin commands over ``crm.idic`` (no SQL, no business rule here)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crmkit.plugin_api import (
    N_,
    current_format,
    current_human,
    current_translator,
    emit,
    emit_object,
    format_option,
    pass_crm,
)
from crmkit_idic.config import STEPS

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_idic.console import Words
    from crmkit_idic.runs import IdicRun

STEP_CHOICE = click.Choice(list(STEPS))


@click.group()
def idic() -> None:
    """IDIC: Identify, Differentiate, Interact, Customize — run, inspect and resume the workflow.

    \b
    crmkit idic run                         the four steps over every customer
    crmkit idic run --step identify         one step alone
    crmkit idic run --resume 3              continue run 3 where it stopped
    crmkit idic review                      pairs waiting for a decision
    crmkit idic agenda lan --date 2026-11-24
    crmkit --user lan idic agenda           as Lan: the contacts due on her customers
    crmkit idic report --out idic.html
    """


def _words() -> Words:
    """The workflow's fixed English (tiers, steps, statuses, reasons, default actions) in the reader's language."""
    from crmkit_idic.console import Words

    return Words(current_translator())


def _shown(rows: Iterable[Mapping[str, Any]], **words: Callable[[Words], Callable[[Any], str]]) -> list[dict[str, Any]]:
    """``rows`` with the columns named in ``words`` put in the reader's language (``status=lambda w: w.status``) in
    table format; JSON and CSV keep the stored values (``most_valuable``, English reasons)."""
    listed = [dict(row) for row in rows]
    if current_format() != "table":
        return listed
    shown = {column: choose(_words()) for column, choose in words.items()}
    return [{**row, **{c: show(row[c]) for c, show in shown.items() if c in row}} for row in listed]


def _steps(run: IdicRun) -> list[dict[str, Any]]:
    """One row per step of ``run``: its status, what it counted (``Customers matched 1.234`` in a table) and error."""
    words, human = (_words(), current_human()) if current_format() == "table" else (None, None)

    def counts(result: Any) -> str:
        if words is None or human is None:
            return ", ".join(f"{k} {v}" for k, v in result.counts.items())
        return ", ".join(f"{words.count(k)} {human.cell(v)}" for k, v in result.counts.items())

    rows = [
        {
            "step": step,
            "status": (r := run.result(step)) and r.status or "pending",
            "counts": counts(r) if r else "",
            "error": (r.error or "") if r else "",
        }
        for step in run.steps
    ]
    return _shown(rows, step=lambda w: w.step, status=lambda w: w.status)


def _run_title(run: IdicRun) -> str:
    """``IDIC run 3: done`` in the reader's language."""
    title = current_translator().gettext("IDIC run %(id)s: %(status)s")
    return title % {"id": run.id, "status": _words().status(run.status)}


def _next_action(words: Words) -> Callable[[Any], str]:
    """A next-best-action in the reader's language: a tier's default action (IDIC's default treatment) translated."""
    from crmkit_idic.console import action

    return lambda text: action(words.i18n, text)


@idic.command("run")
@click.option(
    "--segment", metavar="EXPR", help="Only customers of this campaigns segment expression (e.g. 'city = \"Hà Nội\"')."
)
@click.option("--segment-id", type=int, metavar="N", help="Only customers of saved campaigns segment N.")
@click.option("--step", "steps", type=STEP_CHOICE, multiple=True, help="Run only this step (repeatable).")
@click.option("--resume", "resume", type=int, metavar="RUN", help="Continue a failed or interrupted run.")
@format_option
@pass_crm
def run_command(
    crm: CRM, segment: str | None, segment_id: int | None, steps: tuple[str, ...], resume: int | None
) -> None:
    """Run the IDIC steps in order (each stored; a failure can be resumed)."""
    if resume is not None:
        if segment or segment_id or steps:
            raise click.UsageError("--resume continues a run as it was started: give no other option")
        run = crm.idic.resume(resume)
    else:
        run = crm.idic.run(steps=steps or None, segment=segment, segment_id=segment_id)
    emit(_steps(run), [N_("step"), N_("status"), N_("counts")], title=_run_title(run))


@idic.command("status")
@format_option
@pass_crm
def status(crm: CRM) -> None:
    """The last run, the review queue and open plan items."""
    emit_object(crm.idic.status())


@idic.command("runs")
@click.option("--limit", default=20, show_default=True)
@format_option
@pass_crm
def runs_command(crm: CRM, limit: int) -> None:
    """Recent runs, newest first."""
    rows = _shown(
        (
            {
                "id": r.id,
                "status": r.status,
                "steps": ",".join(r.steps),
                "segment": r.segment or r.segment_id or "",
                "started_at": r.started_at,
                "actor": r.actor,
            }
            for r in crm.idic.runs(limit=limit)
        ),
        status=lambda w: w.status,
    )
    emit(rows, [N_("id"), N_("status"), N_("steps"), N_("segment"), N_("started_at"), N_("actor")])


@idic.command("show")
@click.argument("run_id", type=int, metavar="RUN")
@format_option
@pass_crm
def show(crm: CRM, run_id: int) -> None:
    """What each step of a run did (counts and error)."""
    run = crm.idic.get(run_id)
    emit(_steps(run), [N_("step"), N_("status"), N_("counts"), N_("error")], title=_run_title(run))


@idic.command("review")
@click.option("--accept", "accept", type=int, metavar="ID", help="Merge the pair of review item ID.")
@click.option("--reject", "reject", type=int, metavar="ID", help="Keep the pair apart for good.")
@click.option("--interactive", "-i", is_flag=True, help="Decide each pending pair at a prompt.")
@click.option("--limit", default=50, show_default=True)
@format_option
@pass_crm
def review(crm: CRM, accept: int | None, reject: int | None, interactive: bool, limit: int) -> None:
    """List the pairs waiting for a decision, or accept / reject one."""
    if accept is not None:
        emit_object(crm.idic.accept(accept))
    elif reject is not None:
        crm.idic.reject(reject)
        click.echo(
            current_translator().gettext("review item %(id)s rejected: the pair will not be merged") % {"id": reject}
        )
    elif interactive:
        for item in crm.idic.reviews(limit=limit):
            click.echo(
                f"#{item['id']}  {item['name']} ({item['customer_id']})  ~  {item['other_name']} "
                f"({item['other_id']})  {item['score']:.2f}  {item['reason']}"
            )
            answer = click.prompt(
                "merge? [y]es / [n]o / [s]kip / [q]uit",
                type=click.Choice(["y", "n", "s", "q"]),
                default="s",
                show_choices=False,
            )
            if answer == "q":
                break
            if answer == "y":
                crm.idic.accept(item["id"])
            elif answer == "n":
                crm.idic.reject(item["id"])
    else:
        emit(
            _shown(crm.idic.reviews(limit=limit), reason=lambda w: w.explain),
            [N_("id"), N_("customer_id"), N_("name"), N_("other_id"), N_("other_name"), N_("score"), N_("reason")],
        )


@idic.command("merges")
@click.option("--limit", default=50, show_default=True)
@format_option
@pass_crm
def merges(crm: CRM, limit: int) -> None:
    """The merge log (what `unmerge` can undo)."""
    emit(
        _shown(crm.idic.merges(limit=limit), status=lambda w: w.status, reason=lambda w: w.explain),
        [N_("id"), N_("kept_id"), N_("merged_id"), N_("score"), N_("automatic"), N_("status"), N_("reason")],
    )


@idic.command("unmerge")
@click.argument("merge_id", type=int, metavar="MERGE_ID")
@format_option
@pass_crm
def unmerge(crm: CRM, merge_id: int) -> None:
    """Undo a merge of the log: restore the merged customer and move its rows back."""
    emit_object(crm.idic.unmerge(merge_id))


@idic.command("agenda")
@click.argument("employee", required=False)
@click.option(
    "--date",
    "day",
    metavar="YYYY-MM-DD",
    help="The day (Asia/Ho_Chi_Minh) [default: today]; overdue items are included.",
)
@format_option
@pass_crm
def agenda(crm: CRM, employee: str | None, day: str | None) -> None:
    """The contacts EMPLOYEE (default: every employee) should make on a day, among the customers you may see."""
    emit(
        _shown(
            crm.idic.agenda(employee, day),
            channel=lambda w: w.channel,
            purpose=lambda w: w.explain,
            next_action=_next_action,
        ),
        [
            N_("id"),
            N_("due_on"),
            N_("hour"),
            N_("customer_id"),
            N_("name"),
            N_("owner"),
            N_("channel"),
            N_("purpose"),
            N_("next_action"),
        ],
    )


@idic.group("treatments", invoke_without_command=True)
@format_option
@click.pass_context
def treatments(ctx: click.Context) -> None:
    """Treatment rules (tier × needs × condition → offer, price list, service level, message)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_treatments)


@treatments.command("list")
@format_option
@pass_crm
def list_treatments(crm: CRM) -> None:
    """Every rule, in the order they are tried."""
    emit(
        _shown(crm.idic.treatments(), tier=lambda w: w.tier, needs=lambda w: w.needs),
        [N_("id"), N_("priority"), N_("name"), N_("tier"), N_("needs"), N_("condition"), N_("offer"), N_("message")],
    )


@treatments.command("add")
@click.argument("name")
@click.option("--tier", help="most_valuable | most_growable | maintain | below_zero | unknown [default: any].")
@click.option("--needs", help="A needs group (e.g. category:Điện thoại, service) [default: any].")
@click.option("--condition", help="A campaigns segment expression the customer must also meet.")
@click.option("--offer")
@click.option("--price-list")
@click.option("--service-level")
@click.option("--message")
@click.option("--priority", type=int, default=100, show_default=True, help="Lower is tried first.")
@format_option
@pass_crm
def add_treatment(
    crm: CRM,
    name: str,
    tier: str | None,
    needs: str | None,
    condition: str | None,
    offer: str | None,
    price_list: str | None,
    service_level: str | None,
    message: str | None,
    priority: int,
) -> None:
    """Add a treatment rule (checked now: an unknown field in --condition is refused)."""
    emit_object(
        crm.idic.add_treatment(
            name,
            tier=tier,
            needs=needs,
            condition_=condition,
            priority=priority,
            offer=offer,
            price_list=price_list,
            service_level=service_level,
            message=message,
        )
    )


@treatments.command("remove")
@click.argument("name")
@pass_crm
def remove_treatment(crm: CRM, name: str) -> None:
    """Delete a treatment rule."""
    crm.idic.remove_treatment(name)
    click.echo(current_translator().gettext("treatment %(name)s removed") % {"name": repr(name)})


@idic.command("handoff")
@click.argument("treatment")
@click.option("--channel", default="email", show_default=True)
@format_option
@pass_crm
def handoff(crm: CRM, treatment: str, channel: str) -> None:
    """Create a campaigns segment and a draft campaign for the customers of TREATMENT."""
    emit_object(crm.idic.handoff(treatment, channel=channel))


@idic.command("report")
@click.option(
    "--out",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("idic-report.html"),
    show_default=True,
)
@click.option("--run", "run_id", type=int, help="Report this run [default: the last one].")
@pass_crm
def report(crm: CRM, path: Path, run_id: int | None) -> None:
    """Write the HTML report of the last run: funnel, tier × needs matrix, plan coverage, treatments (in the
    language of `crmkit --locale`, else the user's, else the business's)."""
    click.echo(str(crm.idic.report(path, run_id, locale=current_translator().locale)))
