"""Pipelines with ordered stages (``crm.sales.pipelines``) and the deals moving through them (``crm.sales.deals``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit.plugin_api import to_jsonable
from crmkit_sales import hookspecs
from crmkit_sales import models as m
from crmkit_sales.base import Part, by_ref, is_id, one
from crmkit_sales.objects import Deal, Pipeline, Stage, StageChange, StageValue, from_row
from crmkit_sales.permissions import DEALS_READ, DEALS_UPDATE, PRODUCTS_MANAGE, PRODUCTS_READ
from crmkit_sales.schemas import DealSchema, DealUpdateSchema, PipelineSchema, StageSchema, load

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DEFAULT_TERMINALS = (
    {"name": "Won", "probability": 1, "outcome": "won"},
    {"name": "Lost", "probability": 0, "outcome": "lost"},
)


class Pipelines(Part):
    """Configurable pipelines: open stages in order with win probabilities, then won and lost stages."""

    _schema = PipelineSchema()
    _stage_schema = StageSchema()

    def add(self, name: str, stages: list[Mapping[str, Any]]) -> Pipeline:
        """Create a pipeline; ``stages`` are ``{"name", "probability", "outcome"?}`` in order.

        Open stages keep the given order; the won stage follows them and lost stages come last.
        Without a won or a lost stage, ``Won`` (1) / ``Lost`` (0) are added. Needs ``sales.products.manage``.
        """
        self.require(PRODUCTS_MANAGE)
        values = load(self._schema, {"name": name, "stages": list(stages)})
        given = values["stages"]
        outcomes = {s["outcome"] for s in given}
        extra = [
            load(self._stage_schema, t)
            for t in DEFAULT_TERMINALS
            if t["outcome"] not in outcomes and t["name"].casefold() not in {s["name"].casefold() for s in given}
        ]
        ordered = (
            [s for s in given if s["outcome"] is None]
            + [s for s in given + extra if s["outcome"] == "won"]
            + [s for s in given + extra if s["outcome"] == "lost"]
        )
        if not any(s["outcome"] == "won" for s in ordered) or not any(s["outcome"] == "lost" for s in ordered):
            raise ValidationError("a pipeline needs a won and a lost stage", field="stages")
        now = self.crm.now()
        with self.crm.transaction() as session:
            conn = session.connection()
            if conn.execute(sa.select(m.pipelines.c.id).where(m.pipelines.c.name == values["name"])).first():
                raise Conflict(f"pipeline {values['name']!r} already exists")
            pipeline_id = conn.execute(
                m.pipelines.insert()
                .values(name=values["name"], created_at=now, updated_at=now)
                .returning(m.pipelines.c.id)
            ).scalar_one()
            conn.execute(
                m.stages.insert(), [{**s, "pipeline_id": pipeline_id, "position": n + 1} for n, s in enumerate(ordered)]
            )
            self.audit(session, "create", "pipeline", pipeline_id, changes=values)
            return self.fetch(conn, pipeline_id)

    def update_stage(self, stage_id: int, *, name: str | None = None, probability: Any = None) -> Stage:
        """Rename a stage or change its win probability (terminal stages keep 1 and 0)."""
        self.require(PRODUCTS_MANAGE)
        with self.crm.transaction() as session:
            conn = session.connection()
            row = one(conn, m.stages, stage_id, "stage")
            if probability is not None and row["outcome"] is not None:
                raise ValidationError(f"the {row['outcome']} stage's probability is fixed", field="probability")
            values = load(
                self._stage_schema,
                {
                    "name": name or row["name"],
                    "outcome": row["outcome"],
                    "probability": row["probability"] if probability is None else probability,
                },
            )
            others = self.fetch(conn, row["pipeline_id"]).stages
            if any(s.id != stage_id and s.name.casefold() == values["name"].casefold() for s in others):
                raise ValidationError(f"the pipeline already has a stage {values['name']!r}", field="name")
            conn.execute(
                m.stages.update()
                .where(m.stages.c.id == stage_id)
                .values(name=values["name"], probability=values["probability"])
            )
            self.audit(session, "update", "stage", stage_id, changes=values)
            return from_row(Stage, one(conn, m.stages, stage_id, "stage"))

    def get(self, ref: int | str) -> Pipeline:
        """A pipeline (by id or name) with its stages in order."""
        self.require(PRODUCTS_READ)
        with self.crm.reading() as conn:
            return self.fetch(conn, ref)

    def list(self) -> list[Pipeline]:
        """Every pipeline with its stages."""
        self.require(PRODUCTS_READ)
        with self.crm.reading() as conn:
            rows = conn.execute(sa.select(m.pipelines).order_by(m.pipelines.c.name)).mappings().all()
            stages: dict[int, list[Stage]] = {row["id"]: [] for row in rows}
            for stage in conn.execute(sa.select(m.stages).order_by(m.stages.c.position)).mappings():
                stages.setdefault(stage["pipeline_id"], []).append(
                    from_row(Stage, stage)
                )  # one added since: not listed
        return [Pipeline(row["id"], row["name"], tuple(stages[row["id"]])) for row in rows]

    def fetch(self, conn: sa.Connection, ref: int | str) -> Pipeline:
        """A pipeline by id or name, read on the caller's connection."""
        row = by_ref(conn, m.pipelines, ref, "name")
        if row is None:
            raise NotFound("pipeline", ref)
        stage_rows = (
            conn.execute(sa.select(m.stages).where(m.stages.c.pipeline_id == row["id"]).order_by(m.stages.c.position))
            .mappings()
            .all()
        )
        return Pipeline(row["id"], row["name"], tuple(from_row(Stage, s) for s in stage_rows))


class Deals(Part):
    """Opportunities: each move between stages is recorded (who, when) and fires ``crmkit_deal_stage_changed``."""

    _schema = DealSchema()
    _update_schema = DealUpdateSchema()

    def add(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Deal:
        """Open a deal: ``customer_id``, ``pipeline`` (id or name), ``title``, ``amount_minor``, ``currency`` …

        It starts in ``stage`` (the pipeline's first stage by default); the hook fires with ``old_stage=None``.
        ``owner`` (a user) defaults to the acting user. Needs ``sales.deals.update`` on the customer.
        """
        self.require(DEALS_UPDATE)
        values = load(self._schema, {"currency": self.currency, **(data or {}), **fields})
        values["owner"] = values.get("owner") or self.default_owner()
        now = self.crm.now()
        with self.crm.transaction() as session:
            conn = session.connection()
            customer_id = self.require_customer(conn, values["customer_id"], DEALS_UPDATE)
            self.crm.access.check_owner(conn, values["owner"], DEALS_UPDATE)
            pipeline = self.sales.pipelines.fetch(conn, values.pop("pipeline"))
            stage_ref = values.pop("stage", None)
            stage = pipeline.stages[0] if stage_ref is None else self._stage_in(pipeline, stage_ref)
            opened = values.pop("opened_at", None) or now
            status = stage.outcome or "open"
            row = {
                **values,
                "customer_id": customer_id,
                "pipeline_id": pipeline.id,
                "stage_id": stage.id,
                "reached_position": _reached(stage, 0),
                "status": status,
                "opened_at": opened,
                "closed_at": opened if stage.outcome else None,
                "updated_at": now,
            }
            deal_id = conn.execute(m.deals.insert().values(row).returning(m.deals.c.id)).scalar_one()
            conn.execute(
                m.deal_history.insert().values(
                    deal_id=deal_id,
                    from_stage_id=None,
                    to_stage_id=stage.id,
                    changed_at=opened,
                    changed_by=self.crm.actor,
                )
            )
            deal = self._get(conn, deal_id)
            self.audit(session, "create", "deal", deal_id, customer_id=customer_id, changes=values)
            if stage.outcome == "won":
                self.becomes_customer(conn, customer_id)
            self.crm.hooks.call(
                hookspecs.crmkit_deal_stage_changed, deal=deal, old_stage=None, new_stage=stage, session=session
            )
            self._stage_changed(session, deal, None, stage)
            return deal

    def update(self, deal_id: int, data: Mapping[str, Any] | None = None, /, **fields: Any) -> Deal:
        """Change a deal's title, owner (a user), amount, currency, expected close date or source."""
        self.require(DEALS_UPDATE)
        values = load(self._update_schema, {**(data or {}), **fields}, partial=True)
        with self.crm.transaction() as session:
            conn = session.connection()
            current = from_row(Deal, self.load(conn, m.deals, deal_id, "deal", read=DEALS_READ, write=DEALS_UPDATE))
            if "owner" in values:
                self.crm.access.check_owner(conn, values["owner"], DEALS_UPDATE)
            conn.execute(m.deals.update().where(m.deals.c.id == deal_id).values(**values, updated_at=self.crm.now()))
            self.audit(session, "update", "deal", deal_id, customer_id=current.customer_id, changes=values)
            return self._get(conn, deal_id)

    def move(self, deal_id: int, stage: int | str, *, reason: str | None = None, at: datetime | None = None) -> Deal:
        """Move a deal to another stage of *its* pipeline (a stage of another pipeline is refused).

        Moving into the won or lost stage closes the deal (``reason`` is kept); a won deal makes a lead or
        prospect a customer (setting ``sales.lifecycle_on_order``). Moving a closed deal back to an open stage
        reopens it. The move is recorded (``at``: when it happened, default now) and
        ``crmkit_deal_stage_changed`` fires.
        """
        self.require(DEALS_UPDATE)
        with self.crm.transaction() as session:
            conn = session.connection()
            row = self.load(conn, m.deals, deal_id, "deal", read=DEALS_READ, write=DEALS_UPDATE, lock=True)
            current = from_row(Deal, row)
            pipeline = self.sales.pipelines.fetch(conn, current.pipeline_id)
            target = self._stage_in(pipeline, stage)
            old = pipeline.stage(current.stage_id)
            assert old is not None  # noqa: S101 - narrows the type for mypy; nothing relies on it being checked
            if target.id == old.id:
                raise ValidationError(f"deal {deal_id} is already in stage {target.name!r}", field="stage")
            if target.outcome == "lost" and not (reason and reason.strip()):
                raise ValidationError("say why the deal was lost", field="reason")
            when = at or self.crm.now()
            if when.tzinfo is None:
                raise ValidationError("give a timezone-aware time", field="at")
            conn.execute(
                m.deals.update()
                .where(m.deals.c.id == deal_id)
                .values(
                    stage_id=target.id,
                    status=target.outcome or "open",
                    reached_position=_reached(target, row["reached_position"]),
                    closed_at=when if target.outcome else None,
                    close_reason=reason if target.outcome else None,
                    updated_at=self.crm.now(),
                )
            )
            conn.execute(
                m.deal_history.insert().values(
                    deal_id=deal_id,
                    from_stage_id=old.id,
                    to_stage_id=target.id,
                    changed_at=when,
                    changed_by=self.crm.actor,
                    reason=reason,
                )
            )
            deal = self._get(conn, deal_id)
            self.audit(
                session,
                "move",
                "deal",
                deal_id,
                customer_id=deal.customer_id,
                changes={"from": old.name, "to": target.name, "reason": reason},
            )
            if target.outcome == "won":
                self.becomes_customer(conn, deal.customer_id)
            self.crm.hooks.call(
                hookspecs.crmkit_deal_stage_changed, deal=deal, old_stage=old, new_stage=target, session=session
            )
            self._stage_changed(session, deal, old, target)
            return deal

    def win(self, deal_id: int, *, reason: str | None = None, at: datetime | None = None) -> Deal:
        """Close a deal as won (moves it to its pipeline's won stage)."""
        self.require(DEALS_UPDATE)
        return self.move(deal_id, self._terminal(deal_id, "won").id, reason=reason, at=at)

    def lose(self, deal_id: int, *, reason: str, at: datetime | None = None) -> Deal:
        """Close a deal as lost, saying why (moves it to its pipeline's first lost stage)."""
        self.require(DEALS_UPDATE)
        return self.move(deal_id, self._terminal(deal_id, "lost").id, reason=reason, at=at)

    def get(self, deal_id: int) -> Deal:
        """One deal (``NotFound`` when its customer is outside the ``sales.deals.read`` scope)."""
        with self.crm.reading() as conn:
            return from_row(Deal, self.load(conn, m.deals, deal_id, "deal", read=DEALS_READ))

    def list(
        self,
        *,
        customer_id: int | None = None,
        owner: str | None = None,
        status: str | None = None,
        pipeline: int | str | None = None,
        limit: int = 100,
    ) -> list[Deal]:
        """Deals, newest first, filtered by customer, owner, status (open / won / lost) or pipeline: those of the
        customers in the ``sales.deals.read`` scope."""
        d = m.deals.c
        query = self.scoped(
            sa.select(m.deals).order_by(d.opened_at.desc(), d.id.desc()).limit(limit), d.customer_id, DEALS_READ
        )
        with self.crm.reading() as conn:
            if pipeline is not None:
                query = query.where(d.pipeline_id == self.sales.pipelines.fetch(conn, pipeline).id)
            for column, value in ((d.customer_id, customer_id), (d.owner, owner), (d.status, status)):
                if value is not None:
                    query = query.where(column == value)
            return [from_row(Deal, r) for r in conn.execute(query).mappings()]

    def value_by_stage(self, *, pipeline: int | str | None = None) -> list[StageValue]:
        """Per stage and currency, how many deals stand there and their amounts added up (one grouped query over
        the customers in the ``sales.deals.read`` scope), for a pipeline or all; in pipeline and stage order."""
        d, s = m.deals.c, m.stages.c
        query = self.scoped(
            sa.select(
                d.pipeline_id,
                d.stage_id,
                d.currency,
                sa.func.count().label("count"),
                sa.func.sum(d.amount_minor).label("amount_minor"),
            )
            .join(m.stages, s.id == d.stage_id)
            .group_by(d.pipeline_id, d.stage_id, s.position, d.currency)
            .order_by(d.pipeline_id, s.position, d.currency),
            d.customer_id,
            DEALS_READ,
        )
        with self.crm.reading() as conn:
            if pipeline is not None:
                query = query.where(d.pipeline_id == self.sales.pipelines.fetch(conn, pipeline).id)
            return [
                StageValue(r.pipeline_id, r.stage_id, r.currency, r.count, int(r.amount_minor))
                for r in conn.execute(query)
            ]

    def history(self, deal_id: int) -> list[StageChange]:
        """Every stage the deal went through, in the order the moves were recorded."""
        h = m.deal_history.c
        with self.crm.reading() as conn:
            self.load(conn, m.deals, deal_id, "deal", read=DEALS_READ)
            rows = conn.execute(sa.select(m.deal_history).where(h.deal_id == deal_id).order_by(h.id))
            return [from_row(StageChange, r) for r in rows.mappings()]

    # -- internals ----------------------------------------------------------------------------------------

    def _stage_changed(self, session: Session, deal: Deal, old: Stage | None, new: Stage) -> None:
        """Record the ``deal.stage_changed`` webhook event in the move's transaction."""
        self.crm.events.emit(
            session,
            "deal.stage_changed",
            lambda: {"deal": to_jsonable(deal), "old_stage": to_jsonable(old), "new_stage": to_jsonable(new)},
            customer_id=deal.customer_id,
        )

    def _get(self, conn: sa.Connection, deal_id: int) -> Deal:
        return from_row(Deal, one(conn, m.deals, deal_id, "deal"))

    def _terminal(self, deal_id: int, outcome: str) -> Stage:
        with self.crm.reading() as conn:
            deal = self.load(conn, m.deals, deal_id, "deal", read=DEALS_READ)
            pipeline = self.sales.pipelines.fetch(conn, deal["pipeline_id"])
        return next(s for s in pipeline.stages if s.outcome == outcome)

    def _stage_in(self, pipeline: Pipeline, ref: int | str) -> Stage:
        stage = pipeline.stage(int(ref) if isinstance(ref, str) and is_id(ref) else ref)
        if stage is not None:
            return stage
        if isinstance(ref, int):
            with self.crm.reading() as conn:
                row = conn.execute(
                    sa.select(m.stages.c.name, m.pipelines.c.name.label("pipeline"))
                    .join(m.pipelines, m.pipelines.c.id == m.stages.c.pipeline_id)
                    .where(m.stages.c.id == ref)
                ).first()
            if row is not None:
                raise ValidationError(
                    f"stage {row.name!r} belongs to pipeline {row.pipeline!r}, not to {pipeline.name!r}", field="stage"
                )
        names = ", ".join(s.name for s in pipeline.stages)
        raise ValidationError(f"pipeline {pipeline.name!r} has no stage {ref!r} (stages: {names})", field="stage")


def _reached(stage: Stage, before: int) -> int:
    """The furthest stage position a deal has reached (for the funnel): lost keeps it, won reaches all."""
    if stage.outcome == "lost":
        return before
    return max(before, stage.position)
