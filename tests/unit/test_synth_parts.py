"""Unit tests for the synthetic county's building blocks."""

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from candour.errors import CandourError
from candour.synth.config import SynthConfig, load_config
from candour.synth.corruption import swap_day_month
from candour.synth.extracts import format_dates
from candour.synth.names import NICKNAMES, name_tables
from candour.synth.places import postcode_for
from candour.synth.population import (
    day_number,
    is_valid_nhs_number,
    nhs_check_digit,
    nhs_numbers,
)


def test_known_nhs_numbers():
    # 943 476 5919 is the NHS's own published example of a valid number.
    assert is_valid_nhs_number("943 476 5919")
    assert not is_valid_nhs_number("943 476 5918")
    assert not is_valid_nhs_number("94347659")
    assert nhs_check_digit(np.array([943476591]))[0] == 9


def test_nhs_numbers_are_valid_and_distinct():
    ids = np.arange(0, 200_000, dtype=np.int64) * 7
    numbers = nhs_numbers(ids, seed=3)
    assert len(np.unique(numbers)) == len(ids)
    assert all(is_valid_nhs_number(str(n)) for n in numbers[:20_000])
    first = numbers // 10**9
    assert set(np.unique(first)) <= {4, 6, 7}
    assert not np.array_equal(numbers, nhs_numbers(ids, seed=4))


def test_name_tables_have_realistic_frequencies():
    tables = name_tables()
    rng = np.random.default_rng(0)
    surnames = tables.surnames[tables.sample_surnames(rng, 50_000)]
    values, counts = np.unique(surnames, return_counts=True)
    top = values[np.argsort(-counts)[:3]]
    assert "Smith" in top  # the commonest British surname must come out on top
    female = np.ones(10_000, bool)
    given = tables.given[tables.sample_given(rng, female)]
    assert set(given) <= set(tables.given[tables.n_male :])
    assert tables.has_nickname.sum() >= 30
    for name, options in NICKNAMES.items():
        assert name not in options


def test_postcodes_are_uk_format_and_unique():
    import re

    codes = postcode_for(np.arange(0, 200_000))
    pattern = re.compile(r"^[A-Z]{1,2}[0-9]{1,2} [0-9][ABD-HJLNP-UW-Z]{2}$")
    assert all(pattern.match(c) for c in codes[::97])
    assert len(set(codes)) == len(codes)


def test_swap_day_month_and_dates():
    day = day_number(date(1980, 3, 7))
    swapped = swap_day_month(np.array([day]))
    assert format_dates(swapped, "%Y-%m-%d")[0] == "1980-07-03"
    assert format_dates(np.array([day, -(10**8)]), "%d-%b-%Y").tolist() == ["07-Mar-1980", ""]


def test_config_defaults_and_overrides(tmp_path: Path):
    default = SynthConfig()
    assert default.clusters == 4
    assert default.home_safety_visit_falls_effect == -0.3
    path = tmp_path / "c.yaml"
    path.write_text("typo_rate: 0.1\nduplicates: {police_incidents: 0.2}\n")
    loaded = load_config(path)
    assert loaded.typo_rate == 0.1
    assert loaded.duplicates.police_incidents == 0.2
    assert loaded.duplicates.gp_registrations == default.duplicates.gp_registrations


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("typo_rat: 0.1\n", "typo_rat: unknown setting"),
        ("typo_rate: 2\n", "typo_rate"),
        ("family_cluster_shares: [0.5, 0.4]\n", "sum to 1"),
        ("- 1\n", "expected a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, needle: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CandourError) as caught:
        load_config(path)
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unreadable_config(tmp_path: Path):
    with pytest.raises(CandourError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
