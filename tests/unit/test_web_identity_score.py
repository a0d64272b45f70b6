"""Scoring a verified identity against a record with a linkage model's m and u probabilities."""

from __future__ import annotations

import math

import pytest

from candour.workflows.identity_match import Candidate, score, standardise_claims

MODEL = {
    "probability_two_random_records_match": 0.001,
    "comparisons": [
        {
            "output_column_name": "given_name",
            "comparison_levels": [
                {"is_null_level": True, "label_for_charts": "given_name is NULL"},
                {"label_for_charts": "Exact match on given_name", "m_probability": 0.9,
                 "u_probability": 0.01},
                {"label_for_charts": "Nickname or formal name of each other",
                 "m_probability": 0.05, "u_probability": 0.001},
                {"label_for_charts": "Jaro-Winkler distance of given_name >= 0.92",
                 "m_probability": 0.03, "u_probability": 0.002},
                {"label_for_charts": "All other comparisons", "m_probability": 0.02,
                 "u_probability": 0.987},
            ],
        },
        {
            "output_column_name": "family_name",
            "comparison_levels": [
                {"is_null_level": True, "label_for_charts": "family_name is NULL"},
                {"label_for_charts": "Exact match on family_name", "m_probability": 0.9,
                 "u_probability": 0.01},
                {"label_for_charts": "All other comparisons", "m_probability": 0.1,
                 "u_probability": 0.99},
            ],
        },
        {
            "output_column_name": "date_of_birth",
            "comparison_levels": [
                {"is_null_level": True, "label_for_charts": "date_of_birth is NULL"},
                {"label_for_charts": "Exact match on date_of_birth", "m_probability": 0.98,
                 "u_probability": 0.003},
                {"label_for_charts": "All other comparisons", "m_probability": 0.02,
                 "u_probability": 0.997},
            ],
        },
        {
            "output_column_name": "location",
            "comparison_levels": [
                {"is_null_level": True, "label_for_charts": "No address or postcode"},
                {"label_for_charts": "Same address", "m_probability": 0.4,
                 "u_probability": 0.001},
                {"label_for_charts": "Same postcode", "m_probability": 0.5,
                 "u_probability": 0.01},
                {"label_for_charts": "Same postcode sector", "m_probability": 0.08,
                 "u_probability": 0.2},
                {"label_for_charts": "All other comparisons", "m_probability": 0.0,
                 "u_probability": 0.7},
            ],
        },
        {
            "output_column_name": "nhs_number",
            "comparison_levels": [
                {"is_null_level": True, "label_for_charts": "nhs_number is NULL"},
                {"label_for_charts": "Exact match on nhs_number", "m_probability": 1.0,
                 "u_probability": 0.001},
                {"label_for_charts": "All other comparisons", "m_probability": 0.0,
                 "u_probability": 0.999},
            ],
        },
    ],
}
CLAIMS = Candidate("william", None, "obrien", "1970-03-04", "TN1 2AB")


def weight(m: float, u: float) -> float:
    return math.log2(m / u)


def test_exact_agreement_sums_the_models_weights_from_its_prior() -> None:
    w, p = score(MODEL, CLAIMS, CLAIMS)
    expected = (math.log2(0.001 / 0.999) + weight(0.9, 0.01) + weight(0.9, 0.01)
                + weight(0.98, 0.003) + weight(0.5, 0.01))
    assert w == pytest.approx(expected)
    assert p == pytest.approx(1 / (1 + 2 ** -expected)) and p > 0.999


def test_a_nickname_counts_less_than_the_same_name() -> None:
    bill = Candidate("bill", None, "obrien", "1970-03-04", "TN1 2AB")
    exact, _ = score(MODEL, CLAIMS, CLAIMS)
    nickname, _ = score(MODEL, CLAIMS, bill)
    assert exact - nickname == pytest.approx(weight(0.9, 0.01) - weight(0.05, 0.001))


def test_a_different_postcode_weighs_against_and_far_away_strongly() -> None:
    moved = Candidate("william", None, "obrien", "1970-03-04", "TN1 2ZZ")
    far = Candidate("william", None, "obrien", "1970-03-04", "ME4 6QQ")
    w_sector, _ = score(MODEL, CLAIMS, moved)
    w_far, p_far = score(MODEL, CLAIMS, far)
    exact, _ = score(MODEL, CLAIMS, CLAIMS)
    assert exact - w_sector == pytest.approx(weight(0.5, 0.01) - weight(0.08, 0.2))
    # m = 0 for "all other" (never seen in training) is floored: strongly against, not -inf.
    assert math.isfinite(w_far) and p_far < 0.01 and w_far < exact - 20


def test_missing_values_add_no_evidence_and_unscored_comparisons_are_ignored() -> None:
    no_postcode = Candidate("william", None, "obrien", "1970-03-04", None)
    full, _ = score(MODEL, CLAIMS, CLAIMS)
    partial, _ = score(MODEL, CLAIMS, no_postcode)
    assert full - partial == pytest.approx(weight(0.5, 0.01))


def test_claims_are_standardised_like_the_vault() -> None:
    claims = standardise_claims("Mary-Jane  Ann", "O'BRIEN", "1970-03-04", "tn12ab")
    assert claims.given_name == "mary"
    assert claims.middle_name == "jane ann"
    assert claims.family_name == "obrien"
    assert claims.postcode == "TN1 2AB"
