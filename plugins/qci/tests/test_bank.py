"""Question banks: the default one, importing a business's own (JSON, YAML), and every way a bank is refused."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from crmkit import ValidationError
from crmkit_qci import bank as banks
from crmkit_qci.areas import AREA_KEYS

from .conftest import ok, run


def test_default_bank_covers_every_area_with_real_questions() -> None:
    default = banks.default_bank()
    assert [a.key for a in default.areas] == list(AREA_KEYS)
    for area in default.areas:
        assert 3 <= len(area.questions) <= 6, area.key
        for q in area.questions:
            assert (q.scale_min, q.scale_max) == (1, 5) and q.weight > 0 and len(q.text) > 30
            assert set(q.labels) == {1, 2, 3, 4, 5}
    ids = [q.id for q in default.questions()]
    assert len(ids) == len(set(ids))


def _small_bank() -> dict[str, Any]:
    """A two-question-per-area bank in Vietnamese, the shape a business writes."""
    return {
        "name": "Bộ câu hỏi QCI của Công ty Mekong",
        "version": "2026.1",
        "scale": {"min": 1, "max": 5, "labels": {"1": "Chưa làm", "5": "Xuất sắc"}},
        "areas": [
            {
                "id": key,
                "questions": [
                    {"id": f"{key[:3].upper()}{n}", "text": f"Câu hỏi {n} về {key}", "weight": n} for n in (1, 2)
                ],
            }
            for key in AREA_KEYS
        ],
    }


def _refused(document: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        banks.parse(document)
    return caught.value.errors


def test_a_bank_missing_an_area_is_refused_naming_it() -> None:
    document = _small_bank()
    document["areas"] = [a for a in document["areas"] if a["id"] not in ("retention", "efficiency")]
    assert _refused(document) == {
        "areas": ["missing areas retention, efficiency: every QCI area needs at least one question"]
    }


def test_duplicate_question_ids_and_unknown_areas_are_named() -> None:
    document = _small_bank()
    document["areas"][7]["questions"][1]["id"] = "ACQ1"  # retention reuses an acquisition id
    document["areas"].append({"id": "loyalty", "questions": [{"id": "L1", "text": "?"}]})
    errors = _refused(document)
    assert errors["areas.retention.questions.ACQ1.id"] == ["duplicate question id 'ACQ1' (already used in acquisition)"]
    assert errors["areas.loyalty.id"][0].startswith("unknown QCI area 'loyalty' (one of analysis_planning,")


@pytest.mark.parametrize(
    ("scale", "field", "message"),
    [
        ({"min": 3, "max": 3}, "scale.max", "max (3) must be above min (3)"),
        ({"min": 0, "max": 20}, "scale.max", "a scale has at most 11 points (0–20 has 21)"),
        (
            {"min": 1, "max": 5, "labels": {"7": "Tuyệt vời"}},
            "scale.labels",
            "label '7' is not a point of the scale 1–5",
        ),
        ({"min": 1.5, "max": 5}, "scale.min", "Not a valid integer."),
        ({"max": 5}, "scale.min", "Missing data for required field."),
    ],
)
def test_a_bad_scale_is_refused_naming_the_question(scale: dict[str, Any], field: str, message: str) -> None:
    document = _small_bank()
    document["areas"][1]["questions"][0]["scale"] = scale
    assert _refused(document) == {f"areas.value_proposition.questions.VAL1.{field}": [message]}


def test_bad_weights_text_and_shapes_are_named() -> None:
    document = _small_bank()
    document["areas"][0]["questions"][0]["weight"] = 0
    document["areas"][0]["questions"][1]["text"] = ""
    document["areas"][2]["questions"] = []
    document["colour"] = "blue"
    errors = _refused(document)
    assert errors["areas.analysis_planning.questions.ANA1.weight"] == [
        "Must be greater than 0 and less than or equal to 100."
    ]
    assert errors["areas.analysis_planning.questions.ANA2.text"] == ["Length must be between 1 and 500."]
    assert errors["areas.people_organization.questions"] == ["Shorter than minimum length 1."]
    assert errors["colour"] == ["Unknown field."]
    assert _refused(["not", "a", "mapping"]) == {
        "bank": ["a question bank is a mapping with name, scale and areas, not list"]
    }


def test_import_json_then_yaml_and_reset(qci_crm: Any, tmp_path: Path) -> None:
    crm = qci_crm
    assert crm.qci.bank().id is None  # the default bank until one is imported
    path = tmp_path / "mekong.json"
    path.write_text(json.dumps(_small_bank(), ensure_ascii=False), encoding="utf-8")
    imported = crm.qci.import_bank(path)
    assert (imported.name, imported.version, len(list(imported.questions()))) == (
        "Bộ câu hỏi QCI của Công ty Mekong",
        "2026.1",
        22,
    )
    assert crm.qci.bank().id == imported.id

    yaml_text = "\n".join(
        [
            "name: Bộ câu hỏi rút gọn",
            "version: '3'",
            "scale: {min: 0, max: 4}",
            "areas:",
            *[
                f"  - id: {key}\n    weight: {2 if key == 'retention' else 1}\n    questions:\n"
                f"      - {{id: Y{i}, text: 'Câu hỏi {i}'}}"
                for i, key in enumerate(AREA_KEYS)
            ],
        ]
    )
    yaml_path = tmp_path / "rut-gon.yaml"
    yaml_path.write_text(yaml_text, encoding="utf-8")
    second = crm.qci.import_bank(yaml_path)
    assert crm.qci.bank().id == second.id and second.area("retention").weight == 2
    assert [q.scale_max for q in second.questions()] == [4] * len(AREA_KEYS)

    assert crm.qci.reset_bank().id is None and crm.qci.bank().id is None


def test_a_refused_import_changes_nothing(qci_crm: Any, tmp_path: Path) -> None:
    crm = qci_crm
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_small_bank()), encoding="utf-8")
    active = crm.qci.import_bank(good)
    broken = copy.deepcopy(_small_bank())
    del broken["areas"][0]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ValidationError, match="missing area analysis_planning"):
        crm.qci.import_bank(bad)
    assert crm.qci.bank().id == active.id


def test_unparsable_files_say_where(qci_crm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x",\n  "areas": [,]}', encoding="utf-8")
    with pytest.raises(ValidationError, match=r"broken.json: not valid JSON at line 2, column 13"):
        qci_crm.qci.import_bank(broken)
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("name: x\nareas: [\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"broken.yaml: not valid YAML at line 3"):
        qci_crm.qci.import_bank(bad_yaml)
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with pytest.raises(
        ValidationError, match=r"reading YAML needs PyYAML \(pip install PyYAML\); JSON files always work"
    ):
        qci_crm.qci.import_bank(bad_yaml)


def test_bank_commands(qci_crm: Any, tmp_path: Path) -> None:
    crm = qci_crm
    shown = ok(crm, "qci", "bank", "show").stdout
    assert "crmkit QCI default bank v1" in shown and "RE2" in shown
    exported = tmp_path / "bank.json"
    ok(crm, "qci", "bank", "export", str(exported))
    document = json.loads(exported.read_text(encoding="utf-8"))
    document["areas"] = [a for a in document["areas"] if a["id"] != "measuring_effect"]
    exported.write_text(json.dumps(document), encoding="utf-8")
    refused = run(crm, "qci", "bank", "import", str(exported))
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "error: areas: missing area measuring_effect: every QCI area needs at least one question"
    )
    document["areas"] = banks.default_document()["areas"]
    document["name"] = "Bộ câu hỏi đã sửa"
    exported.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    assert (
        "imported Bộ câu hỏi đã sửa v1 (#1): 49 questions in 11 areas"
        in ok(crm, "qci", "bank", "import", str(exported)).stdout
    )
    assert "active bank: crmkit QCI default bank v1" in ok(crm, "qci", "bank", "reset").stdout
