"""IDIC runs: the four steps in order, each in its own transaction with its stored result, resumable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit_idic import hookspecs
from crmkit_idic import models as m
from crmkit_idic import steps as s
from crmkit_idic.access import run_scope
from crmkit_idic.config import STEPS, check_step
from crmkit_idic.identify import run_identify

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM


@attrs.frozen
class StepResult:
    """What one step of a run did: its status, counts and report (JSON), and when."""

    run_id: int
    step: str
    status: str
    counts: dict[str, Any]
    report: dict[str, Any]
    error: str | None
    started_at: datetime
    finished_at: datetime | None


@attrs.frozen
class IdicRun:
    """One IDIC run: its steps, scope, status and the result of each step done so far."""

    id: int
    steps: tuple[str, ...]
    segment: str | None
    segment_id: int | None
    status: str
    error: str | None
    actor: str
    started_at: datetime
    finished_at: datetime | None
    results: tuple[StepResult, ...] = ()
    #: The user whose scope the results were counted again over (None: as the run stored them).
    scoped: str | None = None

    def result(self, step: str) -> StepResult | None:
        """The stored result of ``step`` in this run, if it started."""
        return next((r for r in self.results if r.step == step), None)

    @property
    def next_step(self) -> str | None:
        """The first step not done yet (where a resume starts), or None when the run is complete."""
        return next((step for step in self.steps if (r := self.result(step)) is None or r.status != "done"), None)


def _identify(crm: CRM, session: Session, run_id: int, scope: s.Scope) -> tuple[dict[str, Any], dict[str, Any]]:
    counts = run_identify(crm, session, run_id, scope)
    by_kind = counts.pop("identifiers_by_kind")
    return counts, {"identifiers_by_kind": by_kind}


STEP_FUNCTIONS: dict[str, Callable[[CRM, Session, int, s.Scope], tuple[dict[str, Any], dict[str, Any]]]] = {
    "identify": _identify,
    "differentiate": s.run_differentiate,
    "interact": s.run_interact,
    "customize": s.run_customize,
}


def start(crm: CRM, *, steps: Sequence[str] | None, segment: str | None, segment_id: int | None) -> IdicRun:
    """Record a new run (checking its scope first) and return it."""
    chosen = [check_step(step) for step in steps] if steps else list(STEPS)
    ordered = [step for step in STEPS if step in chosen]
    if segment is not None and segment_id is not None:
        raise ValidationError("give --segment or --segment-id, not both", field="segment")
    scope_of(crm, segment, segment_id)
    with crm.transaction() as session:
        run_id = (
            session.connection()
            .execute(
                m.runs.insert()
                .values(
                    steps=ordered,
                    segment=segment,
                    segment_id=segment_id,
                    status="running",
                    actor=crm.actor,
                    started_at=crm.now(),
                )
                .returning(m.runs.c.id)
            )
            .scalar_one()
        )
    return get(crm, run_id)


def scope_of(crm: CRM, segment: str | None, segment_id: int | None) -> s.Scope:
    """The condition over customers a run covers: a campaigns segment (saved or an expression), or everyone —
    narrowed to the acting user's customers when their ``idic.run`` scope is not all."""
    user = run_scope(crm)
    if segment is None and segment_id is None:
        return user
    if not crm.has_service("campaigns"):
        raise ValidationError("running on a segment needs the campaigns plugin (crmkit-campaigns)", field="segment")
    if segment_id is not None:
        chosen = crm.campaigns.segments.audience(segment_id)
    else:
        chosen = crm.campaigns.segments.condition(segment, field="segment")
    return chosen if user is None else sa.and_(chosen, user)


def execute(crm: CRM, run: IdicRun) -> IdicRun:
    """Run every step of ``run`` not done yet, in order. A failing step is recorded (run ``failed``, with the
    error) and the exception re-raised: its writes are rolled back, so resuming runs it again from scratch."""
    scope = scope_of(crm, run.segment, run.segment_id)
    for step in run.steps:
        done = run.result(step)
        if done is not None and done.status == "done":
            continue
        _mark_started(crm, run, step)
        try:
            with crm.transaction() as session:
                counts, report = STEP_FUNCTIONS[step](crm, session, run.id, scope)
                finished = crm.now()
                sr = m.step_results.c
                session.connection().execute(
                    m.step_results.update()
                    .where(sr.run_id == run.id, sr.step == step)
                    .values(status="done", counts=counts, report=report, error=None, finished_at=finished)
                )
                result = _results(session.connection(), run.id, step)[0]
                crm.hooks.call(hookspecs.crmkit_idic_step_finished, run=run, step=step, result=result, session=session)
        except BaseException as exc:
            _mark_failed(crm, run.id, step, f"{type(exc).__name__}: {exc}")
            raise
        run = get(crm, run.id)
    with crm.transaction() as session:
        session.connection().execute(
            m.runs.update().where(m.runs.c.id == run.id).values(status="done", error=None, finished_at=crm.now())
        )
    return get(crm, run.id)


def resume(crm: CRM, run_id: int) -> IdicRun:
    """Continue a failed or interrupted run from the step it stopped at."""
    run = get(crm, run_id)
    if run.status == "done":
        raise Conflict(f"IDIC run {run_id} is already complete: start a new run instead")
    with crm.transaction() as session:
        session.connection().execute(m.runs.update().where(m.runs.c.id == run_id).values(status="running", error=None))
    return execute(crm, get(crm, run_id))


def _mark_started(crm: CRM, run: IdicRun, step: str) -> None:
    sr = m.step_results.c
    with crm.transaction() as session:
        conn = session.connection()
        conn.execute(m.step_results.delete().where(sr.run_id == run.id, sr.step == step))
        conn.execute(
            m.step_results.insert().values(
                run_id=run.id, step=step, status="running", counts={}, report={}, started_at=crm.now()
            )
        )
        crm.hooks.call(hookspecs.crmkit_idic_step_started, run=run, step=step, session=session)


def _mark_failed(crm: CRM, run_id: int, step: str, error: str) -> None:
    sr = m.step_results.c
    with crm.transaction() as session:
        conn = session.connection()
        conn.execute(
            m.step_results.update()
            .where(sr.run_id == run_id, sr.step == step)
            .values(status="failed", error=error[:2000], finished_at=crm.now())
        )
        conn.execute(
            m.runs.update().where(m.runs.c.id == run_id).values(status="failed", error=f"{step}: {error}"[:2000])
        )


def _results(conn: sa.Connection, run_id: int, step: str | None = None) -> list[StepResult]:
    sr = m.step_results.c
    query = sa.select(m.step_results).where(sr.run_id == run_id)
    if step is not None:
        query = query.where(sr.step == step)
    rows = conn.execute(query).mappings().all()
    results = [StepResult(**dict(row)) for row in rows]
    return sorted(results, key=lambda r: STEPS.index(r.step))


def get(crm: CRM, run_id: int) -> IdicRun:
    """One run with its step results."""
    with crm.reading() as conn:
        row = conn.execute(sa.select(m.runs).where(m.runs.c.id == run_id)).mappings().first()
        if row is None:
            raise NotFound("IDIC run", run_id)
        results = _results(conn, run_id)
    values = dict(row)
    return IdicRun(**{**values, "steps": tuple(values["steps"])}, results=tuple(results))


def history(crm: CRM, limit: int = 20) -> list[IdicRun]:
    """Recent runs, newest first."""
    with crm.reading() as conn:
        ids = conn.execute(sa.select(m.runs.c.id).order_by(m.runs.c.id.desc()).limit(limit)).scalars().all()
    return [get(crm, run_id) for run_id in ids]
