"""Text folding, e-mail and phone normalisation: what search, sorting and imports rely on."""

from __future__ import annotations

import random
import unicodedata

import phonenumbers
import pytest

from crmkit.core.phones import PhoneError, normalize_phone
from crmkit.core.text import fold, normalize_email


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Nguyễn Văn An", "nguyen van an"),
        ("ĐẶNG thị HỒNG", "dang thi hong"),
        ("Đỗ Đức Đạt", "do duc dat"),
        ("đường", "duong"),
        ("  Trần\tThị \n Bích  ", "tran thi bich"),
        ("Lê\u00a0Văn\u2003Tám", "le van tam"),  # no-break and em spaces separate words too
        (unicodedata.normalize("NFD", "Phạm Thị Ngọc Ánh"), "pham thi ngoc anh"),  # decomposed input
        ("John SMITH", "john smith"),
        ("MÜLLER Straße", "muller strasse"),
        ("", ""),
        (None, ""),
    ],
)
def test_fold_removes_case_accents_and_extra_spaces(text: str | None, folded: str) -> None:
    assert fold(text) == folded


def test_fold_gives_the_same_key_for_every_spelling_of_a_vietnamese_name() -> None:
    spellings = [
        "Nguyễn Văn An",
        "NGUYỄN VĂN AN",
        "nguyen van an",
        " Nguyen  Van An ",
        unicodedata.normalize("NFD", "Nguyễn Văn An"),
    ]
    assert {fold(s) for s in spellings} == {"nguyen van an"}


def test_normalize_email_trims_and_lower_cases() -> None:
    assert normalize_email("  An.Nguyen@Example.VN ") == "an.nguyen@example.vn"


@pytest.mark.parametrize(
    "bad",
    [
        "an",
        "an@",
        "@example.vn",
        "an@example",
        "an nguyen@example.vn",
        "an@@example.vn",
        "an..b@example.vn",
        "an@example.v",
    ],
)
def test_normalize_email_refuses_what_is_not_an_address(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid e-mail"):
        normalize_email(bad)


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("0912 345 678", "VN", "+84912345678"),
        ("0912.345.678", "VN", "+84912345678"),
        ("+84 912 345 678", "VN", "+84912345678"),
        ("(+84) 912-345-678", "VN", "+84912345678"),
        ("0912 345 678", "vn", "+84912345678"),
        ("+84 912 345 678", "GB", "+84912345678"),  # an international number ignores the default
        ("024 3825 1234", "VN", "+842438251234"),  # Hà Nội landline
        ("020 7946 0123", "GB", "+442079460123"),
        ("(201) 555-0123", "US", "+12015550123"),
    ],
)
def test_normalize_phone_gives_e164(raw: str, country: str, e164: str) -> None:
    assert normalize_phone(raw, country) == e164


@pytest.mark.parametrize("bad", ["", "   ", "12", "091234", "abc", "0912 345 678 999 999"])
def test_normalize_phone_refuses_what_is_not_a_number(bad: str) -> None:
    with pytest.raises(PhoneError):
        normalize_phone(bad, "VN")


def _libphonenumber(raw: str, country: str) -> str | None:
    """The reference answer: libphonenumber's parse, validity check and E.164 format."""
    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _crmkit(raw: str, country: str) -> str | None:
    try:
        return normalize_phone(raw, country)
    except PhoneError:
        return None


_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_TYPES = [
    getattr(phonenumbers.PhoneNumberType, name)
    for name in ("FIXED_LINE", "MOBILE", "TOLL_FREE", "PREMIUM_RATE", "VOIP", "UAN")
]


def _generated_numbers(country: str, rng: random.Random) -> list[str]:
    """Numbers written every usual way: examples of each type with random digits, valid or not."""
    code = str(phonenumbers.country_code_for_region(country))
    trunk = phonenumbers.PhoneMetadata.metadata_for_region(country).national_prefix or ""
    written = []
    for number_type in _TYPES:
        example = phonenumbers.example_number_for_type(country, number_type)
        if example is None:
            continue
        nsn = str(example.national_number)
        for _ in range(25):
            keep = rng.randint(2, len(nsn))
            digits = nsn[:keep] + "".join(rng.choice("0123456789") for _ in range(len(nsn) - keep))
            digits = digits[: rng.choice([len(digits), len(digits), len(digits) - 1])] + rng.choice(["", "", "7"])
            number = phonenumbers.parse("+" + code + digits)
            written += [
                trunk + digits,
                digits,
                "+" + code + digits,
                code + digits,
                "00" + code + digits,
                f"+{code} {digits[:3]} {digits[3:]}",
                f"{trunk}{digits[:3]}.{digits[3:6]}-{digits[6:]}",
                phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
                phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
                (trunk + digits).translate(_FULLWIDTH),
                trunk + digits[:4] + digits[4:].translate(_FULLWIDTH),
            ]
    return written


@pytest.mark.parametrize("country", ["VN", "GB", "US"])
def test_fast_path_and_libphonenumber_agree_on_generated_numbers(country: str) -> None:
    rng = random.Random(f"crmkit-{country}")
    numbers = _generated_numbers(country, rng)
    disagreements = [
        (raw, _crmkit(raw, country), _libphonenumber(raw, country))
        for raw in numbers
        if _crmkit(raw, country) != _libphonenumber(raw, country)
    ]
    assert not disagreements, disagreements[:10]
    accepted = sum(_libphonenumber(raw, country) is not None for raw in numbers)
    assert accepted > len(numbers) // 4, "the generator should produce plenty of valid numbers"
    assert accepted < len(numbers), "and some invalid ones"


def test_results_are_plain_ascii_e164() -> None:
    result = normalize_phone("０９１２ ３４５ ６７８", "VN")
    assert result == "+84912345678"
    assert result.isascii()
