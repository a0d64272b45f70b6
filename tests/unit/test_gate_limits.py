"""Gate limits come from the CANDOUR_GATE_* settings and refuse values the engine must not see;
cohort bitmaps built from masks and from packed words are the sets they describe."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from pyroaring import BitMap

from candour.config import Settings
from candour.gate import Limits
from candour.gate import cohort as cohorts


def test_limits_default_to_the_settings_defaults_and_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch,
):
    assert Limits() == Limits.from_settings(Settings())
    monkeypatch.setenv("CANDOUR_GATE_TIMEOUT_SECONDS", "7.5")
    monkeypatch.setenv("CANDOUR_GATE_MEMORY_LIMIT", "512MB")
    monkeypatch.setenv("CANDOUR_GATE_MAX_ROWS", "42")
    limits = Limits.from_settings(Settings())
    assert limits == Limits(seconds=7.5, memory="512MB", max_rows=42)
    assert Limits.from_settings(Settings(), max_rows=3).max_rows == 3


@pytest.mark.parametrize("memory", ["4GB'; SET threads=1; --", "lots", "4 G", ""])
def test_a_memory_limit_that_is_not_a_plain_size_is_refused(memory: str):
    with pytest.raises(ValueError):
        Limits(memory=memory)
    with pytest.raises(ValidationError):
        Settings(gate_memory_limit=memory)


@pytest.mark.parametrize("field", [{"seconds": 0}, {"max_rows": 0}])
def test_limits_must_be_positive(field: dict[str, float]):
    with pytest.raises(ValueError):
        Limits(**field)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size", "share"), [(1, 1.0), (70_000, 0.5), (200_000, 0.01), (300_000, 0.9), (65_536, 0.2)]
)
def test_bitmaps_from_masks_and_words_are_the_same_set(size: int, share: float):
    rng = np.random.default_rng(size)
    mask = rng.random(size) < share
    nums = np.flatnonzero(mask)
    expected = BitMap(nums.tolist())
    assert cohorts.from_mask(mask) == expected
    words = np.zeros(size // 64 + 1, dtype=np.uint64)
    np.bitwise_or.at(words, nums // 64, np.left_shift(np.uint64(1), (nums % 64).astype(np.uint64)))
    index = np.flatnonzero(words)
    shuffled = rng.permutation(len(index))
    assert cohorts.from_words(index[shuffled], words[index][shuffled]) == expected
    assert cohorts.sha256(cohorts.from_words(index, words[index])) == cohorts.sha256(expected)


def test_words_beyond_32_bit_person_numbers_are_refused():
    with pytest.raises(ValueError):
        cohorts.from_words(np.array([1 << 26]), np.array([1], dtype=np.uint64))
    assert cohorts.from_words(np.array([], dtype=np.int64), np.array([], np.uint64)) == BitMap()
