"""Pipelines and deals: ``crmkit sales pipelines|deals …``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from crmkit.errors import ValidationError
from crmkit.plugin_api import N_, amount_minor, emit, emit_object, pass_crm
from crmkit_sales.commands.display import DATE, _day, _deal, _move, _rows
from crmkit_sales.commands.group import sales

# --- pipelines and deals -------------------------------------------------------------------------------------


@sales.group()
def pipelines() -> None:
    """Pipelines and their stages."""


STAGE_COLUMNS = [N_("pipeline"), N_("stage_id"), N_("position"), N_("stage"), N_("probability"), N_("outcome")]


def _stages(pipeline: Any) -> list[dict[str, Any]]:
    return [
        {
            "pipeline": pipeline.name,
            "stage_id": s.id,
            "position": s.position,
            "stage": s.name,
            "probability": s.probability,
            "outcome": s.outcome,
        }
        for s in pipeline.stages
    ]


@pipelines.command("list")
@pass_crm
def pipelines_list(crm: Any) -> None:
    """Every pipeline with its stages."""
    emit([row for p in crm.sales.pipelines.list() for row in _stages(p)], STAGE_COLUMNS)


@pipelines.command("show")
@click.argument("pipeline")
@pass_crm
def pipelines_show(crm: Any, pipeline: str) -> None:
    """One pipeline's stages."""
    emit(_stages(crm.sales.pipelines.get(pipeline)))


@pipelines.command("add")
@click.argument("name")
@click.option(
    "--stage", "stages", multiple=True, required=True, help="NAME:PROBABILITY, in order (e.g. 'Báo giá:0.5')."
)
@click.option("--won", default="Won", show_default=True, help="Name of the won stage.")
@click.option("--lost", default="Lost", show_default=True, help="Name of the lost stage.")
@pass_crm
def pipelines_add(crm: Any, name: str, stages: tuple[str, ...], won: str, lost: str) -> None:
    """Create a pipeline: open stages in order, then the won and lost stages."""
    given = []
    for n, spec in enumerate(stages):
        stage_name, _, probability = spec.rpartition(":")
        if not stage_name:
            raise ValidationError({"stages": {n: [f"{spec!r}: use NAME:PROBABILITY"]}})
        given.append({"name": stage_name, "probability": probability})
    given += [
        {"name": won, "probability": "1", "outcome": "won"},
        {"name": lost, "probability": "0", "outcome": "lost"},
    ]
    emit(_stages(crm.sales.pipelines.add(name, given)))


@sales.group()
def deals() -> None:
    """Deals (opportunities) and their stage history."""


DEAL_COLUMNS = [
    N_("id"),
    N_("customer_id"),
    N_("title"),
    N_("pipeline_id"),
    N_("stage_id"),
    N_("status"),
    N_("owner"),
    N_("amount"),
    N_("expected_close"),
    N_("source"),
]


@deals.command("list")
@click.option("--customer", type=int)
@click.option("--owner")
@click.option("--status", type=click.Choice(["open", "won", "lost"]))
@click.option("--pipeline")
@click.option("--limit", default=100, show_default=True)
@pass_crm
def deals_list(
    crm: Any, customer: int | None, owner: str | None, status: str | None, pipeline: str | None, limit: int
) -> None:
    """List deals, newest first."""
    found = crm.sales.deals.list(customer_id=customer, owner=owner, status=status, pipeline=pipeline, limit=limit)
    emit(_rows(found, lambda d: _deal(crm, d)), DEAL_COLUMNS)


@deals.command("add")
@click.argument("customer_id", type=int)
@click.option("--pipeline", required=True)
@click.option("--title", required=True)
@click.option("--amount", default="0", help="Expected value in major units.")
@click.option("--currency")
@click.option("--owner")
@click.option("--close", "expected_close", type=DATE, help="Expected close date.")
@click.option("--source")
@click.option("--stage", help="Starting stage (the first by default).")
@pass_crm
def deals_add(
    crm: Any,
    customer_id: int,
    pipeline: str,
    title: str,
    amount: str,
    currency: str | None,
    owner: str | None,
    expected_close: datetime | None,
    source: str | None,
    stage: str | None,
) -> None:
    """Open a deal."""
    currency = (currency or crm.sales.deals.currency).upper()
    deal = crm.sales.deals.add(
        customer_id=customer_id,
        pipeline=pipeline,
        title=title,
        stage=stage,
        amount_minor=amount_minor(amount, currency, "amount"),
        currency=currency,
        owner=owner,
        expected_close=_day(expected_close),
        source=source,
    )
    emit_object(_deal(crm, deal))


@deals.command("show")
@click.argument("deal_id", type=int)
@pass_crm
def deals_show(crm: Any, deal_id: int) -> None:
    """Show a deal and its stage history."""
    emit_object(_deal(crm, crm.sales.deals.get(deal_id)))
    emit(_rows(crm.sales.deals.history(deal_id), lambda h: _move(crm, h)))


@deals.command("history")
@click.argument("deal_id", type=int)
@pass_crm
def deals_history(crm: Any, deal_id: int) -> None:
    """A deal's moves between stages: who, when, why."""
    emit(_rows(crm.sales.deals.history(deal_id), lambda h: _move(crm, h)))


@deals.command("move")
@click.argument("deal_id", type=int)
@click.argument("stage")
@click.option("--reason")
@pass_crm
def deals_move(crm: Any, deal_id: int, stage: str, reason: str | None) -> None:
    """Move a deal to another stage of its pipeline (by name or id)."""
    emit_object(_deal(crm, crm.sales.deals.move(deal_id, stage, reason=reason)))


@deals.command("win")
@click.argument("deal_id", type=int)
@click.option("--reason")
@pass_crm
def deals_win(crm: Any, deal_id: int, reason: str | None) -> None:
    """Close a deal as won."""
    emit_object(_deal(crm, crm.sales.deals.win(deal_id, reason=reason)))


@deals.command("lose")
@click.argument("deal_id", type=int)
@click.option("--reason", required=True)
@pass_crm
def deals_lose(crm: Any, deal_id: int, reason: str) -> None:
    """Close a deal as lost, with the reason."""
    emit_object(_deal(crm, crm.sales.deals.lose(deal_id, reason=reason)))
