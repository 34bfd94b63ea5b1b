"""Assessments: answers to the question bank, scored 0–100 per QCI area and overall, dated and kept.

Scoring (documented in the README):

* an answer ``v`` on a scale ``min``–``max`` counts ``(v − min) / (max − min)`` (0 at the bottom, 1 at the top);
* an area's score is ``100 × Σ(weight × that) / Σ weight`` over its answered questions (a question
  answered "not applicable" is left out; an area with no answer is "not assessed", not 0);
* the overall score is the mean of the assessed areas' scores, each weighted by its area weight;
* scores are rounded half-up to one decimal.

Each answer keeps the question's area, weight and scale as they were asked, so editing the bank
later never changes an old assessment's scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit import NotFound, ValidationError
from crmkit_qci.areas import AREA_KEYS
from crmkit_qci.bank import Bank, Question
from crmkit_qci.models import answers as answers_table
from crmkit_qci.models import area_scores, assessments
from crmkit_qci.permissions import ASSESS, READ

if TYPE_CHECKING:
    from crmkit import CRM

#: What a person types (or a file holds) for "not applicable".
NOT_APPLICABLE = ("n", "na", "n/a", "-", "skip")


@attrs.frozen
class AreaScore:
    """One area's result in an assessment: the score (None when not assessed) and how much was answered."""

    area: str
    score: float | None
    weight: float
    answered: int
    questions: int


@attrs.frozen
class Assessment:
    """A dated assessment: who answered, with which bank, the overall score and each area's."""

    id: int
    assessed_on: date
    label: str | None
    assessor: str
    bank: str
    overall: float | None
    areas: Mapping[str, AreaScore]
    created_at: datetime

    def score(self, area: str) -> float | None:
        """The area's score, or None when this assessment did not assess it."""
        found = self.areas.get(area)
        return None if found is None else found.score


def parse_answer(question: Question, raw: Any) -> int | None:
    """An answer as typed or read from a file: a whole number on the question's scale, or None (not applicable).

    Refuses with a message naming the question and its scale, e.g. ``answers.RE1: 7 is outside the scale 1–5 …``.
    """
    field = f"answers.{question.id}"
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in NOT_APPLICABLE):
        return None
    if isinstance(raw, bool) or isinstance(raw, float) and not raw.is_integer():
        raise ValidationError(f"{raw!r} is not a whole number on the scale {question.describe_scale()}", field=field)
    if isinstance(raw, str):
        text = raw.strip()
        if not text.lstrip("-").isdigit():
            raise ValidationError(
                f"{raw!r} is not a whole number on the scale {question.describe_scale()} (or n for not applicable)",
                field=field,
            )
        raw = int(text)
    if not isinstance(raw, (int, float)):
        raise ValidationError(f"{raw!r} is not a whole number on the scale {question.describe_scale()}", field=field)
    value = int(raw)
    if not question.scale_min <= value <= question.scale_max:
        raise ValidationError(f"{value} is outside the scale {question.describe_scale()}", field=field)
    return value


def check_answers(bank: Bank, given: Mapping[str, Any]) -> dict[str, int | None]:
    """Validate a whole set of answers against the bank; every problem is reported at once, by question.

    The areas assessed are those with at least one answer; within them every question must be
    answered (``null`` / ``n`` for not applicable). Unknown question ids are refused.
    """
    errors: dict[str, list[str]] = {}
    known = {q.id: q for q in bank.questions()}
    for qid in given:
        if qid not in known:
            errors.setdefault(f"answers.{qid}", []).append(f"no question {qid!r} in the bank {bank.label}")
    chosen_areas = {known[qid].area for qid in given if qid in known}
    result: dict[str, int | None] = {}
    for question in bank.questions():
        if question.area not in chosen_areas:
            continue
        if question.id not in given:
            errors.setdefault(f"answers.{question.id}", []).append(
                f"not answered (area {question.area}; give null or n for not applicable)"
            )
            continue
        try:
            result[question.id] = parse_answer(question, given[question.id])
        except ValidationError as exc:
            for field, messages in exc.errors.items():
                errors.setdefault(field, []).extend(messages)
    if not given:
        errors["answers"] = ["no answer given: answer at least one area's questions"]
    if errors:
        raise ValidationError(errors)
    return result


def score(bank: Bank, answers: Mapping[str, int | None]) -> tuple[dict[str, AreaScore], float | None]:
    """Area scores and the overall score of a set of checked answers (the formula in the module docstring)."""
    areas: dict[str, AreaScore] = {}
    for area in bank.areas:
        asked = [q for q in area.questions if q.id in answers]
        answered = [q for q in asked if answers[q.id] is not None]
        value = None
        if answered:
            total = sum(Decimal(str(q.weight)) for q in answered)
            points = sum(
                Decimal(str(q.weight)) * Decimal(answers[q.id] - q.scale_min) / Decimal(q.scale_max - q.scale_min)
                for q in answered
            )
            value = _one_decimal(100 * points / total)
        areas[area.key] = AreaScore(area.key, value, area.weight, len(answered), len(area.questions))
    return areas, overall_of(areas.values())


def overall_of(areas: Sequence[AreaScore] | Any) -> float | None:
    """The area-weighted mean of the assessed areas' scores, one decimal; None when none was assessed."""
    scored = [a for a in areas if a.score is not None]
    if not scored:
        return None
    total = sum(Decimal(str(a.weight)) for a in scored)
    return _one_decimal(sum(Decimal(str(a.weight)) * Decimal(str(a.score)) for a in scored) / total)


def _one_decimal(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


class Assessments:
    """Record (``qci.assess``) and read (``qci.read``) assessments (``crm.qci.assessments``)."""

    def __init__(self, crm: CRM, bank: Any) -> None:
        self._crm = crm
        self._bank = bank  # a callable giving the active bank

    def record(
        self, answers: Mapping[str, Any], *, assessed_on: date | str | None = None, label: str | None = None
    ) -> Assessment:
        """Validate and score ``{question id: answer}`` with the active bank and store it, in one transaction."""
        self._crm.access.require(ASSESS)
        bank: Bank = self._bank()
        checked = check_answers(bank, answers)
        day = self.day(assessed_on)
        if label is not None and len(label) > 200:
            raise ValidationError("at most 200 characters", field="label")
        areas, overall = score(bank, checked)
        questions = {q.id: q for q in bank.questions()}
        now = self._crm.now()
        with self._crm.transaction() as session:
            conn = session.connection()
            new_id = conn.execute(
                assessments.insert()
                .values(
                    assessed_on=day,
                    label=label,
                    assessor=self._crm.actor,
                    bank=bank.label,
                    overall=overall,
                    created_at=now,
                )
                .returning(assessments.c.id)
            ).scalar_one()
            conn.execute(
                answers_table.insert(),
                [
                    {
                        "assessment_id": new_id,
                        "question_id": qid,
                        "area": questions[qid].area,
                        "value": value,
                        "scale_min": questions[qid].scale_min,
                        "scale_max": questions[qid].scale_max,
                        "weight": questions[qid].weight,
                    }
                    for qid, value in checked.items()
                ],
            )
            conn.execute(area_scores.insert(), [{"assessment_id": new_id, **attrs.asdict(a)} for a in areas.values()])
            self._crm.audit.record(
                session,
                "create",
                "qci_assessment",
                new_id,
                changes={
                    "assessed_on": day,
                    "overall": overall,
                    "bank": bank.label,
                    "areas": {k: a.score for k, a in areas.items() if a.score is not None},
                },
            )
        return Assessment(new_id, day, label, self._crm.actor, bank.label, overall, areas, now)

    def get(self, assessment_id: int) -> Assessment:
        """One assessment with its area scores; ``NotFound`` when there is none with that id."""
        self._crm.access.require(READ)
        with self._crm.reading() as conn:
            found = self._load(conn, [assessment_id])
        if not found:
            raise NotFound("assessment", assessment_id)
        return found[0]

    def latest(self, *, on_or_before: date | None = None) -> Assessment | None:
        """The most recent assessment (by date, then id), optionally up to a date; None when there is none."""
        self._crm.access.require(READ)
        a = assessments.c
        query = sa.select(a.id).order_by(a.assessed_on.desc(), a.id.desc()).limit(1)
        if on_or_before is not None:
            query = query.where(a.assessed_on <= on_or_before)
        with self._crm.reading() as conn:
            ids = list(conn.execute(query).scalars())
            found = self._load(conn, ids)
        return found[0] if found else None

    def list(self, *, limit: int = 20) -> list[Assessment]:
        """The most recent assessments, oldest first (ready to compare left to right)."""
        self._crm.access.require(READ)
        if not 1 <= limit <= 1000:
            raise ValidationError("must be between 1 and 1000", field="limit")
        a = assessments.c
        with self._crm.reading() as conn:
            ids = list(conn.execute(sa.select(a.id).order_by(a.assessed_on.desc(), a.id.desc()).limit(limit)).scalars())
            return list(reversed(self._load(conn, ids)))

    def answers(self, assessment_id: int) -> list[dict[str, Any]]:
        """The stored answers of an assessment (question, area, value, scale, weight), in bank order."""
        self.get(assessment_id)
        c = answers_table.c
        with self._crm.reading() as conn:
            rows = [
                dict(r)
                for r in conn.execute(sa.select(answers_table).where(c.assessment_id == assessment_id)).mappings()
            ]
        order = {key: i for i, key in enumerate(AREA_KEYS)}
        return sorted(rows, key=lambda r: (order.get(r["area"], 99), r["question_id"]))

    def day(self, value: date | str | None) -> date:
        """The date an assessment describes: today by default; refuses a malformed or future date naming ``assessed_on``."""
        today = self._crm.today()
        if value is None:
            return today
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value.strip())
            except ValueError:
                raise ValidationError(f"{value!r} is not a date (YYYY-MM-DD)", field="assessed_on") from None
        if isinstance(value, datetime):
            value = value.date()
        if value > today:
            raise ValidationError(f"{value} is in the future", field="assessed_on")
        return value

    def _load(self, conn: sa.Connection, ids: Sequence[int]) -> list[Assessment]:
        if not ids:
            return []
        rows = conn.execute(sa.select(assessments).where(assessments.c.id.in_(ids))).mappings().all()
        scores: dict[int, dict[str, AreaScore]] = {}
        for row in conn.execute(sa.select(area_scores).where(area_scores.c.assessment_id.in_(ids))).mappings():
            scores.setdefault(row["assessment_id"], {})[row["area"]] = AreaScore(
                row["area"], row["score"], row["weight"], row["answered"], row["questions"]
            )
        by_id = {row["id"]: row for row in rows}
        order = {key: i for i, key in enumerate(AREA_KEYS)}
        return [
            Assessment(
                id=i,
                assessed_on=by_id[i]["assessed_on"],
                label=by_id[i]["label"],
                assessor=by_id[i]["assessor"],
                bank=by_id[i]["bank"],
                overall=by_id[i]["overall"],
                created_at=by_id[i]["created_at"],
                areas=dict(sorted(scores.get(i, {}).items(), key=lambda kv: order.get(kv[0], 99))),
            )
            for i in ids
            if i in by_id
        ]
