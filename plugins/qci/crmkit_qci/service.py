"""``crm.qci``: the plugin's Python API. Commands, hooks and the report are thin callers of this.

``crm.qci.assessments`` (record, compare), ``crm.qci.plan`` (actions), ``crm.qci.costs`` (recorded
costs); and here: the question bank, KPIs, targets, the scorecard, area standings, plan
generation and the report.

Every call checks its permission (``crmkit_qci.permissions``) for the acting user: ``qci.assess`` to
record assessments and costs or change the bank, ``qci.plan`` to change the plan, its owners and the
targets, ``qci.read`` for everything read — and KPIs count only the customers its scope reaches.
``period``, ``currency`` and ``today`` read no record and check nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import marshmallow
import sqlalchemy as sa
from marshmallow import fields

from crmkit import ValidationError
from crmkit.plugin_api import CleanSchema
from crmkit.plugin_api import core_tables as core
from crmkit_qci import bank as banks
from crmkit_qci import kpis, periods, scorecard, sources
from crmkit_qci.areas import AREA_KEYS
from crmkit_qci.assessment import Assessment, Assessments
from crmkit_qci.costs import Costs
from crmkit_qci.models import banks as banks_table
from crmkit_qci.permissions import ASSESS, PLAN, READ
from crmkit_qci.plan import OWNERS_SETTING, AreaStanding, Generated, Plan

if TYPE_CHECKING:
    from crmkit import CRM


class AnswerFileSchema(CleanSchema):
    """An answer file: ``{"assessed_on": "2026-10-15", "label": "…", "answers": {"AP1": 3, "AP2": null, …}}``."""

    assessed_on = fields.Date(load_default=None)
    label = fields.String(load_default=None)
    answers = fields.Dict(keys=fields.String(), required=True)


@attrs.frozen
class Counted:
    """The customers a period's KPIs count, by population (ids, ascending), and whose customers those are.

    ``active``: active customers (owners, completeness, freshness, duplicates); ``new``: created in the
    period; ``contacted``: with an interaction in the period (activity, satisfaction, replies); ``buyers``:
    with a purchase in the period (empty without a purchase source).
    """

    period: str
    active: tuple[int, ...]
    new: tuple[int, ...]
    contacted: tuple[int, ...]
    buyers: tuple[int, ...]
    coverage: kpis.Coverage


class QCIService:
    """The QCI workflow of one CRM (``crm.qci``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self.assessments = Assessments(crm, self.bank)
        self.plan = Plan(crm)
        self.costs = Costs(crm)

    # -- the question bank -----------------------------------------------------------------------------------

    def bank(self) -> banks.Bank:
        """The active question bank: the newest imported one still active, else the default bank.

        Shown to whoever may answer it (``qci.assess``) or read assessments (``qci.read``)."""
        if not self._crm.access.allowed(ASSESS):
            self._crm.access.require(READ)
        b = banks_table.c
        with self._crm.reading() as conn:
            row = conn.execute(
                sa.select(b.id, b.document).where(b.active.is_(True)).order_by(b.id.desc()).limit(1)
            ).first()
        if row is None:
            return banks.default_bank()
        return banks.parse(row.document, bank_id=row.id)

    def import_bank(self, source: str | Path | Mapping[str, Any]) -> banks.Bank:
        """Validate a bank (a JSON/YAML file or a parsed document) and make it the active one; nothing is
        stored when it is refused."""
        self._crm.access.require(ASSESS)
        document = source if isinstance(source, Mapping) else banks.read_document(source)
        checked = banks.parse(document)
        with self._crm.transaction() as session:
            conn = session.connection()
            conn.execute(banks_table.update().where(banks_table.c.active.is_(True)).values(active=False))
            new_id = conn.execute(
                banks_table.insert()
                .values(
                    name=checked.name,
                    version=checked.version,
                    document=dict(document),
                    active=True,
                    imported_at=self._crm.now(),
                    imported_by=self._crm.actor,
                )
                .returning(banks_table.c.id)
            ).scalar_one()
            self._crm.audit.record(
                session,
                "import",
                "qci_bank",
                new_id,
                changes={
                    "name": checked.name,
                    "version": checked.version,
                    "questions": sum(1 for _ in checked.questions()),
                },
            )
        return banks.parse(document, bank_id=new_id)

    def reset_bank(self) -> banks.Bank:
        """Go back to the default bank (imported banks are kept, inactive, for the record)."""
        self._crm.access.require(ASSESS)
        with self._crm.transaction() as session:
            session.connection().execute(
                banks_table.update().where(banks_table.c.active.is_(True)).values(active=False)
            )
            self._crm.audit.record(session, "reset", "qci_bank", "default")
        return banks.default_bank()

    # -- assessments from a file ------------------------------------------------------------------------------

    def assess_file(self, path: str | Path) -> Assessment:
        """Record an assessment from a JSON/YAML answer file (see ``AnswerFileSchema``)."""
        self._crm.access.require(ASSESS)
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
        """Every KPI (or those named) measured over the period, counting the customers in the reader's
        ``qci.read`` scope (each ``Measure.coverage`` says whose)."""
        return kpis.measure_all(self._crm, self.period(period), self.currency(), keys)

    def scorecard(self, period: str | periods.Period | None = None) -> scorecard.Scorecard:
        """Every KPI of the period against its target, with its light and the trend on the previous period.

        Read by a user whose ``qci.read`` scope is not ``all``, its KPIs count only their own or their
        teams' customers, and it says so (``scoped``, ``coverage``, the headline)."""
        covered = kpis.coverage(self._crm)
        chosen = self.period(period)
        currency = self.currency()
        current = kpis.measure_all(self._crm, chosen, currency)
        previous = kpis.measure_all(self._crm, chosen.previous(), currency, snapshots=False)
        return scorecard.build(chosen, currency, current, previous, scorecard.targets(self._crm, currency), covered)

    def counted(self, period: str | periods.Period | None = None) -> Counted:
        """Which customers the period's KPIs count (see ``Counted``): the drill-down behind a scorecard's
        figures, restricted in SQL to the reader's ``qci.read`` scope like the KPIs themselves."""
        covered = kpis.coverage(self._crm)
        chosen = self.period(period)
        c, i = core.customers.c, core.interactions.c
        scope, owned = self._crm.access.customers, self._crm.access.owner_filter(c.owner, READ)
        queries = {
            "active": sa.select(c.id).where(c.status == "active", owned),
            "new": sa.select(c.id).where(
                c.created_at >= chosen.start, c.created_at < chosen.end, c.status != "merged", owned
            ),
            "contacted": sa.select(i.customer_id).where(
                i.occurred_at >= chosen.start, i.occurred_at < chosen.end, scope(i.customer_id, READ)
            ),
        }
        bought = sources.purchases(self._crm)
        if bought is not None:
            queries["buyers"] = sa.select(bought.c.customer_id).where(
                bought.c.amount_minor > 0,
                bought.c.occurred_at >= chosen.start,
                bought.c.occurred_at < chosen.end,
                scope(bought.c.customer_id, READ),
            )
        with self._crm.reading() as conn:
            found = {
                name: tuple(conn.execute(query.distinct().order_by(*query.selected_columns)).scalars())
                for name, query in queries.items()
            }
        return Counted(
            chosen.label, found["active"], found["new"], found["contacted"], found.get("buyers", ()), covered
        )

    def targets(self) -> dict[str, scorecard.Target | None]:
        """The target of every KPI (stored, else the default; None when it has none)."""
        self._crm.access.require(READ)
        return scorecard.targets(self._crm, self.currency())

    def set_target(self, key: str, target: str | None, *, tolerance: str | None = None) -> scorecard.Target | None:
        """Set a KPI's target (``"90%"``, ``"24"``, ``"+5%"``) and tolerance, or remove it with ``None``; audited."""
        self._crm.access.require(PLAN)
        checked = (
            None
            if target is None
            else scorecard.parse_target(key, target, currency=self.currency(), tolerance=tolerance)
        )
        if target is None:
            kpis.kpi(key)
        stored = dict(self._crm.settings.get(scorecard.TARGETS_SETTING) or {})
        stored[key] = {
            "target": None if checked is None else checked.text,
            "tolerance": None if tolerance is None else str(tolerance),
        }
        self._crm.set_setting(scorecard.TARGETS_SETTING, stored, permission=PLAN)
        return checked

    def reset_target(self, key: str) -> scorecard.Target | None:
        """Go back to the KPI's default target."""
        self._crm.access.require(PLAN)
        kpis.kpi(key)
        stored = dict(self._crm.settings.get(scorecard.TARGETS_SETTING) or {})
        stored.pop(key, None)
        self._crm.set_setting(scorecard.TARGETS_SETTING, stored, permission=PLAN)
        return scorecard.targets(self._crm, self.currency())[key]

    # -- areas and the plan --------------------------------------------------------------------------------------

    def standings(
        self, period: str | periods.Period | None = None, card: scorecard.Scorecard | None = None
    ) -> list[AreaStanding]:
        """Per area: the latest assessment's score and the data score of the period's scorecard."""
        self._crm.access.require(READ)
        card = card or self.scorecard(period)
        latest = self.assessments.latest()
        data = card.area_scores()
        return [AreaStanding(area, None if latest is None else latest.score(area), data[area]) for area in AREA_KEYS]

    def set_owner(self, area: str, employee: str | None) -> dict[str, str]:
        """The default owner (an active user's username) of new actions in ``area``; None removes it.
        Returns all owners; an unknown or disabled user is refused naming ``owner``."""
        self._crm.access.require(PLAN)
        if area not in AREA_KEYS:
            raise ValidationError(f"unknown QCI area {area!r} (one of {', '.join(AREA_KEYS)})", field="area")
        owners = dict(self._crm.settings.get(OWNERS_SETTING) or {})
        with self._crm.transaction() as session:
            if employee is None:
                owners.pop(area, None)
            else:
                self._crm.users.require_assignable(session.connection(), [employee.strip()], field="owner")
                owners[area] = employee.strip()
            self._crm.set_setting(OWNERS_SETTING, owners, permission=PLAN)
        return owners

    def owners(self) -> dict[str, str]:
        """The default owner of each area's new actions (areas without one are left out)."""
        self._crm.access.require(READ)
        return dict(self._crm.settings.get(OWNERS_SETTING) or {})

    def generate_plan(
        self,
        period: str | periods.Period | None = None,
        *,
        areas: int = 3,
        threshold: float = 60.0,
        owner: str | None = None,
    ) -> Generated:
        """Turn the weakest areas (assessment and data) into actions (see ``crmkit_qci.plan``).

        The data scores are those of the reader's scorecard (scoped when their ``qci.read`` scope is)."""
        self._crm.access.require(PLAN)
        card = self.scorecard(period)
        return self.plan.generate(
            self.standings(card=card), areas=areas, threshold=threshold, owner=owner, coverage=card.coverage
        )

    # -- the report and the demo -----------------------------------------------------------------------------------

    def report(
        self, path: str | Path, period: str | periods.Period | None = None, *, locale: str | None = None
    ) -> Path:
        """Write the self-contained, printable HTML report for the period; returns its path (scoped like the
        reader's scorecard, and saying so). It is written in ``locale`` (vi or en), else the business setting
        ``locale``, else Vietnamese."""
        from crmkit.plugin_api import plugin_translator
        from crmkit_qci import report

        self._crm.access.require(READ)
        card = self.scorecard(period)
        return report.write(
            Path(path),
            plugin_translator(self._crm, "qci", locale),
            card=card,
            standings=self.standings(card=card),
            assessments=self.assessments.list(limit=4),
            actions=self.plan.list(),
            progress=self.plan.progress(),
            today=self.plan.today(),
            now=self._crm.now(),
            zone=self._crm.timezone,
        )

    def overview(self) -> dict[str, list[str]]:
        """The scorecard headline for ``crmkit demo``: lights, the latest assessment, the weakest areas, the plan."""
        self._crm.access.require(READ)
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
            lines.append(
                f"plan: {progress['done']} done, {progress['in_progress']} in progress, {progress['open']} open, "
                f"{progress['overdue']} overdue (crmkit qci plan)"
            )
        return {"QCI scorecard (crmkit qci scorecard)": lines}

    def today(self) -> date:
        """Today in the business's time zone."""
        return self.plan.today()
