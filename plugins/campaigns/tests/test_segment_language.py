"""The filter language on its own: what parses, and errors that point at the column of the mistake."""

from __future__ import annotations

from datetime import date

import pytest

from crmkit.core.text import fold
from crmkit_campaigns.folding import glob_pattern, regex_pattern
from crmkit_campaigns.segment_language import And, Compare, HasConsent, Not, Or, SegmentSyntaxError, Tag, parse


def test_the_issue_example_parses_with_the_expected_precedence():
    tree = parse(
        'province = "Hà Nội" and age between 25 and 40 and rfm_segment in ("champions", "loyal") '
        'and not tag "blacklist"'
    )
    assert isinstance(tree, And)
    province, age, rfm, blacklist = tree.items
    assert (province.field, province.op, province.values[0].value) == ("province", "=", "Hà Nội")
    assert (age.op, [v.value for v in age.values]) == ("between", [25, 40])
    assert [v.value for v in rfm.values] == ["champions", "loyal"]
    assert blacklist == Not(Tag("blacklist", blacklist.item.column))


def test_and_binds_tighter_than_or_and_parentheses_override():
    loose = parse('city = "Huế" or city = "Đà Nẵng" and has consent "sms"')
    assert isinstance(loose, Or) and isinstance(loose.items[1], And)
    grouped = parse('(city = "Huế" or city = "Đà Nẵng") and has consent "sms"')
    assert isinstance(grouped, And) and isinstance(grouped.items[0], Or)
    assert isinstance(grouped.items[1], HasConsent) and grouped.items[1].channel == "sms"


def test_negated_operators_become_not_around_the_positive_condition():
    negated = parse('gender != "male"')
    assert isinstance(negated, Not) and isinstance(negated.item, Compare)
    assert (negated.item.field, negated.item.op, negated.item.values[0].value) == ("gender", "=", "male")
    assert isinstance(parse("age not in (1, 2)"), Not)
    assert isinstance(parse("birth_date is not null"), Not)
    assert parse("AGE >= 18 AND Kind = 'person'").items[0].field == "age"  # keywords and fields ignore case


def test_values_dates_relative_dates_and_escaped_quotes():
    assert parse("created_at >= 2025-01-29").values[0].value == date(2025, 1, 29)
    assert parse("created_at < 2025-01-29T08:30").values[0].kind == "datetime"
    assert parse("last_interaction_at >= 30 days ago").values[0].value == (30, "days")
    assert parse("last_interaction_at >= 1 year ago").values[0].value == (1, "years")
    assert parse(r'name = "Nhà hàng \"Phố\""').values[0].value == 'Nhà hàng "Phố"'
    assert parse("score > -1.5").values[0].text == "-1.5"


@pytest.mark.parametrize(
    ("expression", "column", "message"),
    [
        ('province = "Hà Nội" and age = ', 31, "expected a value after '='"),
        ('city = "Huế', 8, "unterminated string"),
        ("age between 20 or 30", 16, "expected 'and' in 'between … and …'"),
        ('(city = "Huế" or age > 3', 25, "expected ')' to close the '(' at column 1"),
        ('city = "Huế" age > 3', 14, "unexpected 'age' (missing 'and' / 'or'?)"),
        ("city = Huế", 8, 'quote text: "Hu'),
        ("age > 3 @ 4", 9, "unexpected character '@'"),
        ("created_at > 2025-13-40", 14, "is not a valid date"),
        ("tag", 4, "expected a quoted name after 'tag'"),
        ("has money", 5, "expected 'consent', 'email' or 'phone' after 'has'"),
        ("age in (1, 2", 13, "expected ',' or ')' in the list"),
        ("and age > 3", 1, "expected a field name, found the keyword 'and'"),
        ("   ", 1, "the expression is empty"),
    ],
)
def test_errors_name_the_column_of_the_mistake(expression, column, message):
    with pytest.raises(SegmentSyntaxError) as caught:
        parse(expression)
    assert caught.value.column == column
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"expression: column {column}: ")


@pytest.mark.parametrize(
    "stored",
    [
        "Hà Nội",
        "HÀ NỘI",
        "Ha Noi",
        "hà nội",
        "Đà Nẵng",
        "ĐÀ NẴNG",
        "Huế",
        "Quy Nhơn",
        "Buôn Ma Thuột",
        "Biên Hòa",
        "Thủ Dầu Một",
    ],
)
def test_patterns_match_exactly_the_spellings_with_the_same_fold(stored):
    import fnmatch
    import re

    typed = fold(stored)  # what a user types: no accents, lower case
    assert fnmatch.fnmatchcase(stored, glob_pattern(typed, "equals"))
    assert re.search(regex_pattern(typed, "equals"), stored)
    assert re.search(regex_pattern(fold(stored.split()[0]), "starts"), stored)
    other = "Hà Nam" if stored != "Hà Nam" else "Hà Nội"
    assert not fnmatch.fnmatchcase(other, glob_pattern(typed, "equals"))
    assert not re.search(regex_pattern(typed, "equals"), other)


def test_pattern_special_characters_are_literal():
    import fnmatch
    import re

    assert fnmatch.fnmatchcase("50% *off*", glob_pattern("50% *off*", "equals"))
    assert not fnmatch.fnmatchcase("50% xoffx", glob_pattern("50% *off*", "equals"))
    assert re.search(regex_pattern("a.b (c)", "equals"), "A.B (C)")
    assert not re.search(regex_pattern("a.b", "equals"), "axb")
