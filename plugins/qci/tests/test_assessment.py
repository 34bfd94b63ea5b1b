"""Assessments: the scoring formula, not-applicable answers, dates, comparison over time, and bad answers."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest

from crmkit import NotFound, ValidationError
from crmkit_qci.areas import AREA_KEYS
from crmkit_qci.assessment import parse_answer
from crmkit_qci.bank import default_bank

from .conftest import ok, run

RETENTION = {"RE1": 4, "RE2": 2, "RE3": 3, "RE4": 5, "RE5": 1}  # weights 2, 1.5, 1.5, 1, 1


def test_scores_follow_the_documented_formula(qci_crm: Any) -> None:
    result = qci_crm.qci.assessments.record({**RETENTION, "AQ1": 5, "AQ2": 5, "AQ3": None, "AQ4": 1}, label="Q1")
    # retention: 100 × (2×0.75 + 1.5×0.25 + 1.5×0.5 + 1×1 + 1×0) / 7 = 100 × 3.625 / 7 = 51.79 → 51.8
    assert result.score("retention") == 51.8
    # acquisition, AQ3 not applicable: 100 × (2×1 + 1.5×1 + 1×0) / 4.5 = 77.78 → 77.8
    assert result.score("acquisition") == 77.8
    assert (result.areas["acquisition"].answered, result.areas["acquisition"].questions) == (3, 4)
    assert result.score("penetration") is None  # not assessed, never 0
    # overall: areas weigh 1 each → (51.8 + 77.8) / 2 = 64.8
    assert result.overall == 64.8
    assert (result.assessor, result.bank, result.label) == ("system", "crmkit QCI default bank v1", "Q1")
    again = qci_crm.qci.assessments.get(result.id)
    assert again.areas == result.areas and again.overall == 64.8
    stored = qci_crm.qci.assessments.answers(result.id)
    assert [(a["question_id"], a["value"], a["weight"]) for a in stored][:2] == [("AQ1", 5, 2.0), ("AQ2", 5, 1.5)]


def test_an_area_answered_not_applicable_throughout_is_not_assessed(qci_crm: Any) -> None:
    result = qci_crm.qci.assessments.record(
        {"RE1": None, "RE2": "n", "RE3": "n/a", "RE4": "-", "RE5": None, "ME1": 1, "ME2": 1, "ME3": 1, "ME4": 1}
    )
    assert result.score("retention") is None and result.score("measuring_effect") == 0.0
    assert result.overall == 0.0


def test_an_answer_out_of_range_is_refused_naming_the_question_and_scale(qci_crm: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        qci_crm.qci.assessments.record({**RETENTION, "RE2": 7, "RE4": "abc", "RE5": 2.5})
    assert caught.value.errors == {
        "answers.RE2": [
            "7 is outside the scale 1–5 (1 = Not done, 5 = Optimized: continuously improved, a model for others)"
        ],
        "answers.RE4": [
            "'abc' is not a whole number on the scale 1–5 (1 = Not done, 5 = Optimized: continuously "
            "improved, a model for others) (or n for not applicable)"
        ],
        "answers.RE5": ["2.5 is not a whole number on the scale 1–5 (1 = None, 5 = All)"],
    }
    assert qci_crm.qci.assessments.latest() is None  # nothing written


def test_missing_and_unknown_answers_and_bad_dates(qci_crm: Any) -> None:
    assessments = qci_crm.qci.assessments
    with pytest.raises(ValidationError) as caught:
        assessments.record({"RE1": 3, "XX9": 2})
    assert caught.value.errors["answers.XX9"] == ["no question 'XX9' in the bank crmkit QCI default bank v1"]
    assert caught.value.errors["answers.RE2"] == ["not answered (area retention; give null or n for not applicable)"]
    with pytest.raises(ValidationError, match="answers: no answer given"):
        assessments.record({})
    future = qci_crm.qci.today() + timedelta(days=1)
    with pytest.raises(ValidationError, match=f"assessed_on: {future} is in the future"):
        assessments.record(RETENTION, assessed_on=future)
    with pytest.raises(ValidationError, match="assessed_on: '31/12/2025' is not a date"):
        assessments.record(RETENTION, assessed_on="31/12/2025")
    with pytest.raises(NotFound):
        assessments.get(999)


def test_old_scores_never_change_when_the_bank_does(qci_crm: Any) -> None:
    first = qci_crm.qci.assessments.record(RETENTION, assessed_on="2025-06-30")
    document = default_bank().document
    for area in document["areas"]:
        for question in area["questions"]:
            question["weight"] = 1  # every question equal now
    qci_crm.qci.import_bank(document)
    second = qci_crm.qci.assessments.record(RETENTION, assessed_on="2025-12-31")
    assert qci_crm.qci.assessments.get(first.id).score("retention") == 51.8
    assert second.score("retention") == 50.0  # (0.75 + 0.25 + 0.5 + 1 + 0) / 5
    assert second.bank == "crmkit QCI default bank v1 (#1)"
    history = qci_crm.qci.assessments.list()
    assert [a.id for a in history] == [first.id, second.id]  # oldest first, ready to compare


def test_parse_answer_accepts_what_people_type() -> None:
    question = next(default_bank().questions())
    assert [parse_answer(question, raw) for raw in ("3", " 5 ", 1, 4.0, "N", None)] == [3, 5, 1, 4, None, None]
    with pytest.raises(ValidationError, match="0 is outside the scale 1–5"):
        parse_answer(question, "0")
    with pytest.raises(ValidationError, match="True is not a whole number"):
        parse_answer(question, True)


def test_assess_interactively_re_asks_an_answer_out_of_range(qci_crm: Any) -> None:
    # RE1 first typed 9 (refused, asked again), then 4; RE4 not applicable
    result = ok(
        qci_crm, "qci", "assess", "--area", "retention", "--label", "Đánh giá quý 4", input="9\n4\n2\n3\nn\n1\n"
    )
    assert "Error: 9 is outside the scale 1–5" in result.stderr
    assert result.stderr.count("answer 1–5 (n = not applicable)") == 6
    saved = qci_crm.qci.assessments.latest()
    assert saved.label == "Đánh giá quý 4" and saved.assessor == "lan.nguyen"
    assert [a["value"] for a in qci_crm.qci.assessments.answers(saved.id)] == [4, 2, 3, None, 1]
    # 100 × (2×0.75 + 1.5×0.25 + 1.5×0.5 + 1×0) / 6 = 43.75 → 43.8
    assert saved.score("retention") == 43.8
    assert "overall 43.8 / 100" in result.stdout


def test_assess_from_files_and_compare(qci_crm: Any, tmp_path: Any) -> None:
    spring = tmp_path / "xuan.json"
    spring.write_text(
        '{"assessed_on": "2025-03-31", "label": "Xuân", "answers": '
        '{"RE1": 1, "RE2": 1, "RE3": 2, "RE4": 1, "RE5": null}}',
        encoding="utf-8",
    )
    autumn = tmp_path / "thu.yaml"
    autumn.write_text(
        "assessed_on: 2025-09-30\nlabel: Thu\nanswers:\n" + "".join(f"  {qid}: {v}\n" for qid, v in RETENTION.items()),
        encoding="utf-8",
    )
    ok(qci_crm, "qci", "assess", "--file", str(spring))
    ok(qci_crm, "qci", "assess", "--file", str(autumn))
    table = ok(qci_crm, "qci", "areas", "--compare").stdout
    line = next(row for row in table.splitlines() if row.startswith("retention"))
    # spring: 100 × (1.5 × 0.25) / 6 = 6.25 → 6.3; autumn 51.8; change 45.5
    assert line.split()[1:] == ["6.3", "51.8", "45.5"]
    assert "2025-03-31 #1" in table and "2025-09-30 #2" in table

    bad = tmp_path / "sai.json"
    bad.write_text('{"answers": {"RE1": 6, "RE2": 1, "RE3": 1, "RE4": 1, "RE5": 1}}', encoding="utf-8")
    refused = run(qci_crm, "qci", "assess", "--file", str(bad))
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: answers.RE1: 6 is outside the scale 1–5")
    assert len(qci_crm.qci.assessments.list()) == 2


def test_compare_needs_two_assessments(qci_crm: Any) -> None:
    refused = run(qci_crm, "qci", "areas", "--compare")
    assert refused.exit_code == 1 and "comparing needs two assessments; there are none" in refused.stderr
    rows = list(csv.DictReader(io.StringIO(ok(qci_crm, "--format", "csv", "qci", "areas").stdout)))
    assert [r["area"] for r in rows] == list(AREA_KEYS)
    assert all(r["assessment"] == r["combined"] == "" for r in rows)  # nothing assessed: empty, never 0
