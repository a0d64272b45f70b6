"""Standardisation rules, value by value (the same SQL macros ingest runs)."""

from __future__ import annotations

import pytest

from candour.sources.standardise import nhs_number_is_valid, standardise_values


def _std(field: str, values: list[str | None], fmt: str = "%Y-%m-%d") -> list[object]:
    return [s for s, _ in standardise_values(field, values, fmt)]


def _valid(field: str, values: list[str | None], fmt: str = "%Y-%m-%d") -> list[object]:
    return [v for _, v in standardise_values(field, values, fmt)]


def test_names_fold_case_accents_and_punctuation():
    assert _std(
        "given_name",
        ["Zoë", "O'Brien", "O’Neil", "Smith-Jones", "  MARY   ann ", "J.R.R.", "Straße",
         "Łukasz", "Øyvind", "Иван", "  ", None],
    ) == [
        "zoe", "obrien", "oneil", "smith jones", "mary ann", "jrr", "strasse", "lukasz",
        "oyvind", "иван", None, None,
    ]


def test_postcodes_normalise_and_fix_o_for_zero():
    values = ["sw1a1aa", "SW1A  1AA", "sw1a-1aa", "SW1A OAA", "m1 1ae", "GIR 0AA", "75001",
              "AB1", "ZZ99 9ZZ"]
    assert _std("postcode", values) == [
        "SW1A 1AA", "SW1A 1AA", "SW1A 1AA", "SW1A 0AA", "M1 1AE", "GIR 0AA", "75001", "AB1",
        "ZZ99 9ZZ",
    ]
    # ZZ99: Z never stands second in a UK outward code, so this one is only cleaned.
    assert _valid("postcode", values) == [True] * 6 + [False, False, False]


def test_nhs_numbers_check_the_modulus_11_digit():
    values = ["943 476 5919", "943-476-5919", "9434765918", "1111111111", "94347659",
              "9434 765 919", "abc", None]
    assert _std("nhs_number", values) == [
        "9434765919", "9434765919", "9434765918", "1111111111", "94347659", "9434765919",
        "ABC", None,
    ]
    assert _valid("nhs_number", values) == [True, True, False, False, False, False, False,
                                            False]
    assert nhs_number_is_valid("943 476 5919") and not nhs_number_is_valid("9434765918")


def test_sex_codes():
    assert _std("sex", ["F", "female", "W", "2", "m", "Male", "1", "unknown", "9", "X", None]) == [
        "F", "F", "F", "F", "M", "M", "M", None, None, "X", None,
    ]


def test_addresses_spell_out_abbreviations_but_not_saint():
    assert _std("address", ["12 Acacia Ave., Little Whinging", "Flat 3, 4 St Mary's Rd",
                            "5 The Gdns", "Avenue Road"]) == [
        "12 acacia avenue little whinging",
        "flat 3 4 st marys road",
        "5 the gardens",
        "avenue road",
    ]


def test_dates_of_birth_parse_or_stay_as_text():
    values = ["03/02/1980", "3/2/1980", "31/02/1980", "3rd March 1980", "01/01/2099", None]
    assert _std("date_of_birth", values, "%d/%m/%Y") == [
        "1980-02-03", "1980-02-03", "31 02 1980", "3rd march 1980", "2099-01-01", None,
    ]
    assert _valid("date_of_birth", values, "%d/%m/%Y") == [True, True, False, False, False,
                                                           False]
    # Two-digit years: a date in the future belongs to the century before.
    assert _std("date_of_birth", ["01/01/45", "01/01/05"], "%d/%m/%y") == [
        "1945-01-01", "2005-01-01",
    ]
    assert _std("date_of_birth", ["03-Feb-1980"], "%d-%b-%Y") == ["1980-02-03"]


def test_other_identifiers_keep_letters_and_digits():
    assert _std("identifiers.pnc", ["99/123456a", " ab-12 ", ""]) == ["99123456A", "AB12", None]


def test_unknown_fields_are_refused():
    with pytest.raises(Exception, match="no standardisation for field 'shoe_size'"):
        standardise_values("shoe_size", ["9"])
