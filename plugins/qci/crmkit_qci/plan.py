"""The plan: the weakest QCI areas turned into actions from a rule bank, each with an owner and a due date.

An area's *combined* score is the mean of its latest assessment score and its data score (the
scorecard's lights), whichever exist. ``generate`` picks the ``areas`` lowest areas scoring below
``threshold`` and adds every action the rule bank (``crmkit_qci/data/actions.json``) proposes for
them — skipping a rule whose action is still open. Actions for acquisition, penetration and
retention carry a campaign: when crmkit-campaigns is installed, generating the plan also creates
the matching segment and a draft campaign there (inside the same transaction, behind a savepoint:
if campaigns refuses, the action records why and the plan is still made).

An action goes ``open → in_progress → done`` (``open → done`` is allowed; a done action is final).

Owners are users: an action's owner is the ``owner`` given, else the area's owner (``crm.qci.set_owner``),
else whoever generates the plan when that is an active user (a system job's actions stay unassigned
until ``assign``). An unknown or disabled user is refused, naming the field, and nothing is written.
Changing the plan needs ``qci.plan``; reading it ``qci.read``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import attrs
import marshmallow
import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit import Conflict, NotFound, PermissionDenied, ValidationError
from crmkit.plugin_api import CleanSchema
from crmkit_qci import campaign_data
from crmkit_qci.areas import AREA_KEYS, title
from crmkit_qci.bank import named_errors
from crmkit_qci.models import actions
from crmkit_qci.permissions import PLAN, READ

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_qci.kpis import Coverage

OPEN, IN_PROGRESS, DONE = "open", "in_progress", "done"
STATUSES = (OPEN, IN_PROGRESS, DONE)
OWNERS_SETTING = "qci.owners"
CAMPAIGN_AREAS = ("acquisition", "penetration", "retention")


class SegmentChoiceSchema(CleanSchema):
    """A segment expression (in crmkit-campaigns' filter language) and the segment fields it needs."""

    MULTILINE = frozenset({"expression"})

    expression = fields.String(required=True, validate=validate.Length(min=1))
    fields_ = fields.List(fields.String(), data_key="fields", load_default=list)


class CampaignSchema(CleanSchema):
    """The draft campaign an action hands to crmkit-campaigns."""

    MULTILINE = frozenset({"template", "segment"})  # a nested schema checks its own fields' lines

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    objective = fields.String(required=True, validate=validate.OneOf(CAMPAIGN_AREAS))
    channel = fields.String(required=True)
    segment = fields.List(fields.Nested(SegmentChoiceSchema), required=True, validate=validate.Length(min=1))
    subject = fields.String(load_default=None)
    template = fields.String(required=True, validate=validate.Length(min=1))


class RuleSchema(CleanSchema):
    """One proposed action of the rule bank."""

    MULTILINE = frozenset({"description", "campaign"})

    id = fields.String(required=True, validate=validate.Length(min=1, max=60))
    area = fields.String(required=True, validate=validate.OneOf(AREA_KEYS))
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    description = fields.String(required=True, validate=validate.Length(min=1))
    due_days = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=730))
    campaign = fields.Nested(CampaignSchema, load_default=None)


class RuleBankSchema(CleanSchema):
    """The rule bank: its version and actions."""

    MULTILINE = frozenset({"actions"})

    version = fields.String(required=True)
    actions = fields.List(fields.Nested(RuleSchema), required=True)


@attrs.frozen
class Action:
    """One action of the plan."""

    id: int
    area: str
    rule_id: str
    title: str
    description: str
    owner: str | None  # a username; None: unassigned
    due_on: date
    status: str
    reason: str
    segment_ref: str | None
    campaign_ref: str | None
    handoff: str | None
    created_at: datetime
    created_by: str
    started_at: datetime | None
    done_at: datetime | None

    def overdue(self, today: date) -> bool:
        """True when not done and past its due date."""
        return self.status != DONE and self.due_on < today


@attrs.frozen
class AreaStanding:
    """Why an area was (or was not) chosen: its assessment, data and combined scores."""

    area: str
    assessment: float | None
    data: float | None

    @property
    def combined(self) -> float | None:
        """The mean of the scores that exist; None when the area has neither."""
        known = [s for s in (self.assessment, self.data) if s is not None]
        return round(sum(known) / len(known), 1) if known else None

    def describe(self) -> str:
        """``assessment 35.0, data 25.0 → 30.0``."""
        parts = [
            f"{name} {score:.1f}"
            for name, score in (("assessment", self.assessment), ("data", self.data))
            if score is not None
        ]
        return ", ".join(parts) + f" → {self.combined:.1f}"


@attrs.frozen
class Generated:
    """What ``generate`` did: the areas chosen, the actions created, and the rules skipped as already open."""

    chosen: tuple[AreaStanding, ...]
    created: tuple[Action, ...]
    skipped: tuple[str, ...]


@lru_cache(maxsize=1)
def rules() -> tuple[dict[str, Any], ...]:
    """The rule bank shipped with the plugin, validated (a broken file is a bug: it names the path)."""
    document = json.loads((resources.files("crmkit_qci") / "data" / "actions.json").read_text(encoding="utf-8"))
    try:
        data = RuleBankSchema().load(document)
    except marshmallow.ValidationError as exc:
        raise ValidationError(named_errors(exc.messages_dict, document)) from None
    return tuple(data["actions"])


def weakest(standings: Sequence[AreaStanding], *, count: int, threshold: float) -> list[AreaStanding]:
    """The ``count`` areas with the lowest combined score below ``threshold`` (ties by the QCI order)."""
    order = {key: i for i, key in enumerate(AREA_KEYS)}
    scored = [s for s in standings if s.combined is not None and s.combined < threshold]
    return sorted(scored, key=lambda s: (s.combined, order[s.area]))[:count]


class Plan:
    """The action plan (``crm.qci.plan``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def today(self) -> date:
        """Today in the business's time zone (due dates and overdue checks use it)."""
        return self._crm.today()

    def generate(
        self,
        standings: Sequence[AreaStanding],
        *,
        areas: int = 3,
        threshold: float = 60.0,
        owner: str | None = None,
        coverage: Coverage | None = None,
    ) -> Generated:
        """Add the rule bank's actions for the weakest areas, in one transaction (see the module docstring).

        ``coverage``: whose customers the standings' data scores counted (a scoped one is named in each reason)."""
        self._crm.access.require(PLAN)
        if not 1 <= areas <= len(AREA_KEYS):
            raise ValidationError(f"between 1 and {len(AREA_KEYS)}", field="areas")
        if not 0 < threshold <= 100:
            raise ValidationError("a score between 0 and 100", field="threshold")
        if all(s.combined is None for s in standings):
            raise ValidationError(
                "nothing to plan from: no area has an assessment score or a lit KPI "
                "(record an assessment with `crmkit qci assess`, set KPI targets)",
                field="scores",
            )
        chosen = weakest(standings, count=areas, threshold=threshold)
        owners: Mapping[str, str] = self._crm.settings.get(OWNERS_SETTING) or {}
        today = self.today()
        scope = f" (data: {coverage.describe()})" if coverage is not None and coverage.scoped else ""
        created: list[Action] = []
        skipped: list[str] = []
        with self._crm.transaction() as session:
            conn = session.connection()
            users = self._crm.users
            if owner is not None:
                users.require_assignable(conn, [owner], field="owner")
            for standing in chosen:
                if owner is None and owners.get(standing.area):
                    users.require_assignable(conn, [owners[standing.area]], field=f"owners.{standing.area}")
            fallback = self._generator(conn) if owner is None else None
            busy = set(conn.execute(sa.select(actions.c.rule_id).where(actions.c.status != DONE)).scalars())
            for standing in chosen:
                for rule in (r for r in rules() if r["area"] == standing.area):
                    if rule["id"] in busy:
                        skipped.append(rule["id"])
                        continue
                    values = {
                        "area": rule["area"],
                        "rule_id": rule["id"],
                        "title": rule["title"],
                        "description": rule["description"],
                        "due_on": today + timedelta(days=rule["due_days"]),
                        "owner": owner or owners.get(rule["area"]) or fallback,
                        "status": OPEN,
                        "reason": f"{title(standing.area)}: {standing.describe()}{scope}"[:300],
                        "created_at": self._crm.now(),
                        "created_by": self._crm.actor,
                    }
                    new_id = conn.execute(actions.insert().values(**values).returning(actions.c.id)).scalar_one()
                    if rule["campaign"] is not None:
                        handed = self._hand_off(session, rule, values["owner"], new_id)
                        conn.execute(actions.update().where(actions.c.id == new_id).values(**handed))
                        values.update(handed)
                    self._crm.audit.record(
                        session,
                        "create",
                        "qci_action",
                        new_id,
                        changes={
                            "rule_id": rule["id"],
                            "owner": values["owner"],
                            "due_on": values["due_on"],
                            "campaign_ref": values.get("campaign_ref"),
                        },
                    )
                    created.append(self._get(conn, new_id))
        return Generated(tuple(chosen), tuple(created), tuple(skipped))

    def _generator(self, conn: sa.Connection) -> str | None:
        """Whoever generates the plan, when that is an active user (owns actions of areas without an owner)."""
        try:
            self._crm.users.require_assignable(conn, [self._crm.actor])
        except ValidationError:
            return None  # the system, or a name that is no user: the actions stay unassigned
        return self._crm.actor

    def _hand_off(self, session: Any, rule: Mapping[str, Any], owner: str | None, action_id: int) -> dict[str, Any]:
        """Create the rule's segment and draft campaign in crmkit-campaigns (a savepoint guards the plan)."""
        if not self._crm.has_service("campaigns"):
            return {"handoff": "not handed off: install crmkit-campaigns to create the segment and draft campaign"}
        savepoint = session.begin_nested()
        try:
            segment_ref, campaign_ref, note = campaign_data.hand_off(self._crm, rule, owner, action_id)
        except (ValidationError, Conflict, PermissionDenied) as exc:
            savepoint.rollback()
            return {"handoff": f"not handed off: crmkit-campaigns refused it: {exc}"[:500]}
        savepoint.commit()
        return {"segment_ref": segment_ref, "campaign_ref": campaign_ref, "handoff": note[:500]}

    def list(self, *, status: str | None = None, area: str | None = None) -> list[Action]:
        """Actions, open ones first, by due date."""
        self._crm.access.require(READ)
        query = sa.select(actions)
        if status is not None:
            if status not in STATUSES:
                raise ValidationError(f"one of {', '.join(STATUSES)}", field="status")
            query = query.where(actions.c.status == status)
        if area is not None:
            if area not in AREA_KEYS:
                raise ValidationError(f"unknown QCI area {area!r} (one of {', '.join(AREA_KEYS)})", field="area")
            query = query.where(actions.c.area == area)
        rank = sa.case((actions.c.status == DONE, 1), else_=0)
        with self._crm.reading() as conn:
            rows = conn.execute(query.order_by(rank, actions.c.due_on, actions.c.id)).mappings().all()
        return [Action(**row) for row in rows]

    def get(self, action_id: int) -> Action:
        """One action; ``NotFound`` when there is none with that id."""
        self._crm.access.require(READ)
        with self._crm.reading() as conn:
            return self._get(conn, action_id)

    def start(self, action_id: int) -> Action:
        """Mark an open action as in progress."""
        return self._move(action_id, IN_PROGRESS)

    def done(self, action_id: int) -> Action:
        """Mark an action done (from open or in progress); a done action cannot be done again."""
        return self._move(action_id, DONE)

    def assign(self, action_id: int, owner: str | None) -> Action:
        """Give an action to an active user (``None``: unassigned); audited. A done action keeps its owner."""
        self._crm.access.require(PLAN)
        with self._crm.transaction() as session:
            conn = session.connection()
            current = self._get(conn, action_id)
            if current.status == DONE:
                raise Conflict(f"action {action_id} is already done")
            if owner is not None:
                owner = owner.strip()
                self._crm.users.require_assignable(conn, [owner], field="owner")
            conn.execute(actions.update().where(actions.c.id == action_id).values(owner=owner))
            self._crm.audit.record(
                session, "assign", "qci_action", action_id, changes={"owner": owner, "was": current.owner}
            )
            return self._get(conn, action_id)

    def progress(self) -> dict[str, int]:
        """Counts per status, and how many unfinished actions are overdue."""
        self._crm.access.require(READ)
        a = actions.c
        with self._crm.reading() as conn:
            counts = dict(conn.execute(sa.select(a.status, sa.func.count()).group_by(a.status)).all())
            overdue = conn.execute(
                sa.select(sa.func.count()).select_from(actions).where(a.status != DONE, a.due_on < self.today())
            ).scalar_one()
        return {**{s: int(counts.get(s, 0)) for s in STATUSES}, "overdue": int(overdue)}

    def _move(self, action_id: int, status: str) -> Action:
        self._crm.access.require(PLAN)
        with self._crm.transaction() as session:
            conn = session.connection()
            current = self._get(conn, action_id)
            if current.status == DONE:
                raise Conflict(f"action {action_id} is already done")
            if current.status == status:
                raise Conflict(f"action {action_id} is already {status.replace('_', ' ')}")
            now = self._crm.now()
            values: dict[str, Any] = {"status": status}
            values["started_at" if status == IN_PROGRESS else "done_at"] = now
            conn.execute(actions.update().where(actions.c.id == action_id).values(**values))
            self._crm.audit.record(
                session, status if status == DONE else "start", "qci_action", action_id, changes={"status": status}
            )
            return self._get(conn, action_id)

    @staticmethod
    def _get(conn: sa.Connection, action_id: int) -> Action:
        row = conn.execute(sa.select(actions).where(actions.c.id == action_id)).mappings().first()
        if row is None:
            raise NotFound("action", action_id)
        return Action(**row)
