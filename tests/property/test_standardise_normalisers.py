"""Properties of the name, postcode and NHS-number normalisers (run through DuckDB, as ingest)."""

from __future__ import annotations

import string
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from candour.sources.standardise import nhs_number_is_valid, standardise_values

FAST = settings(max_examples=60, deadline=None)
names = st.text(
    alphabet=st.characters(
        categories=("Lu", "Ll", "Nd", "Zs", "Pd", "Po"), exclude_characters="\x00"
    ),
    max_size=30,
)


def _std(field: str, values: list[str]) -> list[tuple[str | None, bool | None]]:
    return standardise_values(field, values)


@FAST
@given(st.lists(names, min_size=1, max_size=20))
def test_names_fold_to_lower_case_words_and_are_idempotent(values: list[str]):
    once = [s for s, _ in _std("given_name", values)]
    for value in once:
        if value is None:
            continue
        assert value == value.strip() and "  " not in value
        assert value == value.lower() or not value.isascii()
        assert not any(unicodedata.category(c).startswith("P") for c in value)
        assert not any(unicodedata.combining(c) for c in unicodedata.normalize("NFD", value)
                       if c.isascii())
    again = [s for s, _ in _std("given_name", [v for v in once if v is not None])]
    assert again == [v for v in once if v is not None]


@FAST
@given(st.lists(st.text(alphabet=string.ascii_letters + " -'.", max_size=20), min_size=1))
def test_ascii_names_ignore_case_and_punctuation_spacing(values: list[str]):
    lower = [s for s, _ in _std("family_name", [v.lower() for v in values])]
    upper = [s for s, _ in _std("family_name", [v.upper() for v in values])]
    assert lower == upper


OUTWARD = st.one_of(
    st.tuples(st.sampled_from(string.ascii_uppercase), st.integers(0, 99)).map(
        lambda t: f"{t[0]}{t[1]}"
    ),
    st.tuples(
        st.sampled_from(string.ascii_uppercase),
        st.sampled_from("ABCDEFGHJKLMNOPQRSTUVWXY"),
        st.integers(0, 99),
    ).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
)
INWARD = st.tuples(st.integers(0, 9), st.text(alphabet="ABDEFGHJLNPQRSTUWXYZ", min_size=2,
                                              max_size=2)).map(lambda t: f"{t[0]}{t[1]}")


@FAST
@given(st.lists(st.tuples(OUTWARD, INWARD, st.sampled_from(["", " ", "  ", "-"]),
                          st.booleans()), min_size=1, max_size=20))
def test_valid_postcodes_take_one_canonical_form(parts: list[tuple[str, str, str, bool]]):
    raw = [f"{o}{sep}{i}".lower() if low else f"{o}{sep}{i}" for o, i, sep, low in parts]
    result = _std("postcode", raw)
    for (outward, inward, _, _), (value, valid) in zip(parts, result, strict=True):
        assert valid is True
        assert value == f"{outward} {inward}"
    assert _std("postcode", [v for v, _ in result]) == result


@FAST
@given(st.lists(st.text(max_size=12), min_size=1, max_size=20))
def test_postcode_output_is_upper_case_letters_digits_and_single_spaces(values: list[str]):
    for value, _ in _std("postcode", values):
        if value is not None:
            assert value == value.upper() and value == value.strip() and "  " not in value


def _with_check_digit(stem: str) -> str | None:
    total = sum(int(d) * (10 - i) for i, d in enumerate(stem))
    check = (11 - total % 11) % 11
    return None if check == 10 else stem + str(check)


@FAST
@given(st.lists(st.text(alphabet="0123456789", min_size=9, max_size=9), min_size=1))
def test_nhs_numbers_with_the_right_check_digit_are_valid(stems: list[str]):
    numbers = [n for n in map(_with_check_digit, stems) if n and len(set(n)) > 1]
    result = _std("nhs_number", [f"{n[:3]} {n[3:6]} {n[6:]}" for n in numbers])
    assert result == [(n, True) for n in numbers]


@FAST
@given(st.lists(st.text(alphabet="0123456789 -", max_size=14), min_size=1, max_size=30))
def test_the_sql_nhs_check_agrees_with_an_independent_python_one(values: list[str]):
    result = _std("nhs_number", values)
    assert [bool(v) for _, v in result] == [nhs_number_is_valid(v) for v in values]


@FAST
@given(st.text(alphabet="0123456789", min_size=10, max_size=10), st.integers(0, 9),
       st.integers(1, 9))
def test_changing_one_digit_breaks_a_valid_number(number: str, position: int, delta: int):
    if not nhs_number_is_valid(number):
        return
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[
        position + 1:
    ]
    assert _std("nhs_number", [changed])[0][1] is False
