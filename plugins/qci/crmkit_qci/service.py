"""``crm.qci``: the plugin's Python API. Commands, hooks and the report are thin callers of this.

``crm.qci.assessments`` (record, compare), ``crm.qci.plan`` (actions), ``crm.qci.costs`` (recorded
costs); and here: the question bank, KPIs, targets, the scorecard, area standings, plan
generation and the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import marshmallow
import sqlalchemy as sa
from marshmallow import Schema, fields

from crmkit import ValidationError
from crmkit.core.types import utcnow
from crmkit_qci import bank as banks
from crmkit_qci import kpis, periods, scorecard, sources
from crmkit_qci.areas import AREA_KEYS
from crmkit_qci.assessment import Assessment, Assessments
from crmkit_qci.costs import Costs
from crmkit_qci.models import banks as banks_table
from crmkit_qci.plan import OWNERS_SETTING, AreaStanding, Generated, Plan

if TYPE_CHECKING:
    from crmkit import CRM


class AnswerFileSchema(Schema):
    """An answer file: ``{"assessed_on": "2026-10-15", "label": "…", "answers": {"AP1": 3, "AP2": null, …}}``."""

    assessed_on = fields.Date(load_default=None)
    label = fields.String(load_default=None)
    answers = fields.Dict(keys=fields.String(), required=True)


class QCIService:
    """The QCI workflow of one CRM (``crm.qci``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self.assessments = Assessments(crm, self.bank)
        self.plan = Plan(crm)
        self.costs = Costs(crm)

    # -- the question bank -----------------------------------------------------------------------------------

    def bank(self) -> banks.Bank:
        """The active question bank: the newest imported one still active, else the default bank."""
        b = banks_table.c
        with self._crm.reading() as conn:
            row = conn.execute(sa.select(b.id, b.document).where(b.active.is_(True)).order_by(b.id.desc()).limit(1)).first()
        if row is None:
            return banks.default_bank()
        return banks.parse(row.document, bank_id=row.id)

    def import_bank(self, source: str | Path | Mapping[str, Any]) -> banks.Bank:
        """Validate a bank (a JSON/YAML file or a parsed document) and make it the active one; nothing is
        stored when it is refused."""
        document = source if isinstance(source, Mapping) else banks.read_document(source)
        checked = banks.parse(document)
        with self._crm.transaction() as session:
            conn = session.connection()
            conn.execute(banks_table.update().where(banks_table.c.active.is_(True)).values(active=False))
            new_id = conn.execute(banks_table.insert().values(
                name=checked.name, version=checked.version, document=dict(document), active=True,
                imported_at=utcnow(), imported_by=self._crm.actor).returning(banks_table.c.id)).scalar_one()
            self._crm.audit.record(session, "import", "qci_bank", new_id,
                                   changes={"name": checked.name, "version": checked.version,
                                            "questions": sum(1 for _ in checked.questions())})
        return banks.parse(document, bank_id=new_id)

    def reset_bank(self) -> banks.Bank:
        """Go back to the default bank (imported banks are kept, inactive, for the record)."""
        with self._crm.transaction() as session:
            session.connection().execute(banks_table.update().where(banks_table.c.active.is_(True)).values(active=False))
            self._crm.audit.record(session, "reset", "qci_bank", "default")
        return banks.default_bank()

    # -- assessments from a file ------------------------------------------------------------------------------

    def assess_file(self, path: str | Path) -> Assessment:
        """Record an assessment from a JSON/YAML answer file (see ``AnswerFileSchema``)."""
        document = banks.read_document(path)
        if isinstance(document, Mapping) and "answers" not in document:
            document = {"answers": document}  # a bare {question: answer} mapping
        try:
            data = AnswerFileSchema().load(document if isinstance(document, Mapping) else {"answers": document})
        except marshmallow.ValidationError as exc:
            raise ValidationError(exc.messages_dict) from None
        return self.assessments.record(data["answers"], assessed_on=data["assessed_on"], label=data["label"])

    # -- KPIs, targets, scorecard -------------------------------------------------------------------------------

    def period(self, period: str | periods.Period | None = None) -> periods.Period:
        """The period asked for (``2026-10``, ``2026-Q4``, ``2026``), or the last complete month."""
        return periods.resolve(self._crm, period)

    def currency(self) -> str:
        """The currency of money KPIs (see ``sources.currency``)."""
        return sources.currency(self._crm)

    def kpis(self, period: str | periods.Period | None = None, keys: list[str] | None = None) -> list[kpis.Measure]:
        """Every KPI (or those named) measured over the period."""
        return kpis.measure_all(self._crm, self.period(period), self.currency(), keys)

    def scorecard(self, period: str | periods.Period | None = None) -> scorecard.Scorecard:
        """Every KPI of the period against its target, with its light and the trend on the previous period."""
        chosen = self.period(period)
        currency = self.currency()
        current = kpis.measure_all(self._crm, chosen, currency)
        previous = kpis.measure_all(self._crm, chosen.previous(), currency, snapshots=False)
        return scorecard.build(chosen, currency, current, previous, scorecard.targets(self._crm, currency))

    def targets(self) -> dict[str, scorecard.Target | None]:
        """The target of every KPI (stored, else the default; None when it has none)."""
        return scorecard.targets(self._crm, self.currency())

    def set_target(self, key: str, target: str | None, *, tolerance: str | None = None) -> scorecard.Target | None:
        """Set a KPI's target (``"90%"``, ``"24"``, ``"+5%"``) and tolerance, or remove it with ``None``; audited."""
        checked = None if target is None else scorecard.parse_target(key, target, currency=self.currency(),
                                                                      tolerance=tolerance)
        if target is None:
            kpis.kpi(key)
        stored = dict(self._crm.settings.get(scorecard.TARGETS_SETTING) or {})
        stored[key] = {"target": None if checked is None else checked.text,
                       "tolerance": None if tolerance is None else str(tolerance)}
        self._crm.set_setting(scorecard.TARGETS_SETTING, stored)
        return checked

    def reset_target(self, key: str) -> scorecard.Target | None:
        """Go back to the KPI's default target."""
        kpis.kpi(key)
        stored = dict(self._crm.settings.get(scorecard.TARGETS_SETTING) or {})
        stored.pop(key, None)
        self._crm.set_setting(scorecard.TARGETS_SETTING, stored)
        return self.targets()[key]

    # -- areas and the plan --------------------------------------------------------------------------------------

    def standings(self, period: str | periods.Period | None = None,
                  card: scorecard.Scorecard | None = None) -> list[AreaStanding]:
        """Per area: the latest assessment's score and the data score of the period's scorecard."""
        card = card or self.scorecard(period)
        latest = self.assessments.latest()
        data = card.area_scores()
        return [AreaStanding(area, None if latest is None else latest.score(area), data[area]) for area in AREA_KEYS]

    def set_owner(self, area: str, employee: str | None) -> dict[str, str]:
        """The default owner (an employee id) of new actions in ``area``; None removes it. Returns all owners."""
        if area not in AREA_KEYS:
            raise ValidationError(f"unknown QCI area {area!r} (one of {', '.join(AREA_KEYS)})", field="area")
        owners = dict(self._crm.settings.get(OWNERS_SETTING) or {})
        if employee is None:
            owners.pop(area, None)
        else:
            if not employee.strip() or len(employee) > 100:
                raise ValidationError("an employee id of 1 to 100 characters", field="owner")
            owners[area] = employee.strip()
        self._crm.set_setting(OWNERS_SETTING, owners)
        return owners

    def generate_plan(self, period: str | periods.Period | None = None, *, areas: int = 3, threshold: float = 60.0,
                      owner: str | None = None) -> Generated:
        """Turn the weakest areas (assessment and data) into actions (see ``crmkit_qci.plan``)."""
        return self.plan.generate(self.standings(period), areas=areas, threshold=threshold, owner=owner)

    # -- the report and the demo -----------------------------------------------------------------------------------

    def report(self, path: str | Path, period: str | periods.Period | None = None) -> Path:
        """Write the self-contained, printable HTML report for the period; returns its path."""
        from crmkit_qci import report

        card = self.scorecard(period)
        return report.write(Path(path), card=card, standings=self.standings(card=card),
                            assessments=self.assessments.list(limit=4), actions=self.plan.list(),
                            progress=self.plan.progress(), today=self.plan.today())

    def overview(self) -> dict[str, list[str]]:
        """The scorecard headline for ``crmkit demo``: lights, the latest assessment, the weakest areas, the plan."""
        card = self.scorecard()
        latest = self.assessments.latest()
        lines = [card.headline()]
        if latest is not None and latest.overall is not None:
            lines.append(f"assessment {latest.assessed_on}: overall {latest.overall:.1f} / 100 ({latest.bank})")
        from crmkit_qci.plan import weakest

        low = weakest(self.standings(card=card), count=3, threshold=101)
        if low:
            lines.append("weakest areas: " + "; ".join(f"{s.area} {s.combined:.1f}" for s in low))
        progress = self.plan.progress()
        if any(progress.values()):
            lines.append(f"plan: {progress['done']} done, {progress['in_progress']} in progress, {progress['open']} open, "
                         f"{progress['overdue']} overdue (crmkit qci plan)")
        return {"QCI scorecard (crmkit qci scorecard)": lines}

    def today(self) -> date:
        """Today in the business's time zone."""
        return self.plan.today()
