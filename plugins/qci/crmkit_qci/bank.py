"""Question banks: the questions an assessment asks per QCI area, validated with marshmallow.

A bank is a document (JSON always, YAML when PyYAML is installed) with a name, a version, a
default answer scale and one entry per QCI area, each holding its questions::

    {"name": "…", "version": "1", "scale": {"min": 1, "max": 5, "labels": {"1": "Not done", …}},
     "areas": [{"id": "retention", "weight": 1,
                "questions": [{"id": "RE1", "text": "…", "weight": 2, "scale": {…optional…}}]}, …]}

Every QCI area must be present with at least one question; question ids are unique across the
bank; a scale runs over whole numbers ``min`` < ``max`` (at most 11 points) and its labels name
points inside it; weights are positive. A bad bank is refused with every problem named by its
path, e.g. ``areas.retention.questions.RE2.scale.max: max (1) must be above min (1)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import marshmallow
from marshmallow import fields, validate, validates_schema

from crmkit import ValidationError
from crmkit.plugin_api import CleanSchema
from crmkit_qci.areas import AREA_KEYS, BY_KEY

MAX_POINTS = 11


class ScaleSchema(CleanSchema):
    """An answer scale: whole numbers from ``min`` to ``max`` with optional labels per point."""

    min = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=100))
    max = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100))
    labels = fields.Dict(keys=fields.String(), values=fields.String(validate=validate.Length(min=1)), load_default=dict)

    @validates_schema
    def _check_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = data["min"], data["max"]
        if high <= low:
            raise marshmallow.ValidationError(f"max ({high}) must be above min ({low})", "max")
        if high - low + 1 > MAX_POINTS:
            raise marshmallow.ValidationError(
                f"a scale has at most {MAX_POINTS} points ({low}–{high} has {high - low + 1})", "max"
            )
        for key in data["labels"]:
            if not key.strip().lstrip("-").isdigit() or not low <= int(key) <= high:
                raise marshmallow.ValidationError(f"label {key!r} is not a point of the scale {low}–{high}", "labels")


class QuestionSchema(CleanSchema):
    """One question: a unique id, the text, an optional help line, a weight and an optional own scale."""

    id = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$", error="use letters, digits, '_', '.' or '-' (at most 40)"
        ),
    )
    text = fields.String(required=True, validate=validate.Length(min=1, max=500))
    help = fields.String(load_default=None, validate=validate.Length(max=500))
    weight = fields.Float(load_default=1.0, validate=validate.Range(min=0, max=100, min_inclusive=False))
    scale = fields.Nested(ScaleSchema, load_default=None)


class AreaSchema(CleanSchema):
    """The questions of one QCI area and the area's weight in the overall score."""

    id = fields.String(required=True)
    title = fields.String(load_default=None)
    weight = fields.Float(load_default=1.0, validate=validate.Range(min=0, max=100, min_inclusive=False))
    questions = fields.List(fields.Nested(QuestionSchema), required=True, validate=validate.Length(min=1))


class BankSchema(CleanSchema):
    """A whole bank: every QCI area exactly once, question ids unique across areas."""

    MULTILINE = frozenset({"description"})

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    version = fields.String(load_default="1", validate=validate.Length(min=1, max=40))
    description = fields.String(load_default=None)
    scale = fields.Nested(ScaleSchema, required=True)
    areas = fields.List(fields.Nested(AreaSchema), required=True)

    @validates_schema
    def _check_areas(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        seen_areas: set[str] = set()
        seen_questions: dict[str, str] = {}
        for area in data["areas"]:
            key = area["id"]
            if key not in BY_KEY:
                errors.setdefault(f"areas.{key}.id", []).append(
                    f"unknown QCI area {key!r} (one of {', '.join(AREA_KEYS)})"
                )
            elif key in seen_areas:
                errors.setdefault(f"areas.{key}.id", []).append(f"area {key!r} appears twice")
            seen_areas.add(key)
            for question in area["questions"]:
                qid = question["id"]
                if qid in seen_questions:
                    errors.setdefault(f"areas.{key}.questions.{qid}.id", []).append(
                        f"duplicate question id {qid!r} (already used in {seen_questions[qid]})"
                    )
                seen_questions.setdefault(qid, key)
        missing = [key for key in AREA_KEYS if key not in seen_areas]
        if missing:
            errors["areas"] = [
                f"missing area{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
                "every QCI area needs at least one question"
            ]
        if errors:
            raise marshmallow.ValidationError(errors)


@attrs.frozen
class Question:
    """A question as asked: its area, text, weight and the scale it is answered on."""

    id: str
    area: str
    text: str
    weight: float
    scale_min: int
    scale_max: int
    labels: Mapping[int, str]
    help: str | None = None

    def describe_scale(self) -> str:
        """``1–5 (1 = Not done, 5 = Optimized)``: the range and its end labels, for messages."""
        ends = [f"{p} = {self.labels[p]}" for p in (self.scale_min, self.scale_max) if p in self.labels]
        return f"{self.scale_min}–{self.scale_max}" + (f" ({', '.join(ends)})" if ends else "")


@attrs.frozen
class AreaQuestions:
    """One area of a bank: its weight in the overall score and its questions."""

    key: str
    title: str
    weight: float
    questions: tuple[Question, ...]


@attrs.frozen
class Bank:
    """A validated question bank; ``id`` is None for the default bank shipped with the plugin."""

    name: str
    version: str
    areas: tuple[AreaQuestions, ...]
    document: Mapping[str, Any] = attrs.field(eq=False, repr=False)
    id: int | None = None

    def questions(self) -> Iterator[Question]:
        """Every question, area by area in the QCI order."""
        for area in self.areas:
            yield from area.questions

    def area(self, key: str) -> AreaQuestions:
        """The area ``key`` (a ``ValidationError`` naming ``area`` when it is not a QCI area)."""
        for area in self.areas:
            if area.key == key:
                return area
        raise ValidationError(f"unknown QCI area {key!r} (one of {', '.join(AREA_KEYS)})", field="area")

    @property
    def label(self) -> str:
        """``name v1`` (and ``#3`` for an imported bank), as assessments record it."""
        return f"{self.name} v{self.version}" + ("" if self.id is None else f" (#{self.id})")


def parse(document: Any, *, source: str = "bank", bank_id: int | None = None) -> Bank:
    """Validate a bank document (already parsed from JSON/YAML); raises ``ValidationError`` naming each bad path."""
    if not isinstance(document, Mapping):
        raise ValidationError(
            f"a question bank is a mapping with name, scale and areas, not {type(document).__name__}", field=source
        )
    try:
        data = BankSchema().load(dict(document))
    except marshmallow.ValidationError as exc:
        raise ValidationError(named_errors(exc.messages_dict, document)) from None
    default_scale = data["scale"]
    areas = []
    by_id = {area["id"]: area for area in data["areas"]}
    for key in AREA_KEYS:
        area = by_id[key]
        questions = []
        for q in area["questions"]:
            scale = q["scale"] or default_scale
            questions.append(
                Question(
                    id=q["id"],
                    area=key,
                    text=q["text"].strip(),
                    weight=q["weight"],
                    scale_min=scale["min"],
                    scale_max=scale["max"],
                    labels={int(k): v for k, v in scale["labels"].items()},
                    help=q["help"],
                )
            )
        areas.append(AreaQuestions(key, area["title"] or BY_KEY[key].title, area["weight"], tuple(questions)))
    return Bank(data["name"], data["version"], tuple(areas), document=dict(document), id=bank_id)


def named_errors(messages: Mapping[Any, Any], document: Any) -> dict[str, Any]:
    """marshmallow's nested errors flattened to dotted paths, list positions replaced by the area or question id."""
    flat: dict[str, Any] = {}

    def walk(errors: Any, raw: Any, path: list[str]) -> None:
        if not isinstance(errors, Mapping):
            flat[".".join(path) or "_"] = errors
            return
        for key, sub in errors.items():
            if isinstance(key, int):
                item = raw[key] if isinstance(raw, list) and key < len(raw) else None
                ident = item.get("id") if isinstance(item, Mapping) else None
                walk(sub, item, [*path, str(ident) if isinstance(ident, (str, int)) and ident != "" else f"#{key + 1}"])
            else:
                child = raw.get(key) if isinstance(raw, Mapping) else None
                walk(sub, child, [*path, str(key)] if key != "_schema" else path)

    walk(messages, document, [])
    return flat


def default_document() -> dict[str, Any]:
    """The default bank shipped with the plugin (``crmkit_qci/data/default_bank.json``), as a document."""
    return json.loads((resources.files("crmkit_qci") / "data" / "default_bank.json").read_text(encoding="utf-8"))


def default_bank() -> Bank:
    """The validated default bank."""
    return parse(default_document(), source="default bank")


def read_document(path: str | Path) -> Any:
    """Read a JSON or YAML document (by suffix: ``.yaml``/``.yml`` is YAML, anything else JSON).

    YAML needs PyYAML; a file that does not parse is refused naming the file and, for JSON, the line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}", field="file") from None
    return parse_text(text, yaml_syntax=path.suffix.lower() in (".yaml", ".yml"), name=str(path))


def parse_text(text: str, *, yaml_syntax: bool, name: str = "document") -> Any:
    """Parse JSON or YAML text; refuses with the file name and the position of the mistake."""
    if yaml_syntax:
        try:
            import yaml
        except ImportError:
            raise ValidationError(
                f"{name}: reading YAML needs PyYAML (pip install PyYAML); JSON files always work", field="file"
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ValidationError(
                f"{name}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}", field="file"
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{name}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", field="file"
        ) from None
