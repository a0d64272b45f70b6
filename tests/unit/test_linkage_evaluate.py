"""Evaluation metrics against naive definitions, and the truth-file reader."""

from itertools import combinations
from pathlib import Path

import pytest

from candour.linkage.evaluate import TruthFileError, read_truth, score


def naive_pairwise(predicted: dict[str, str], truth: dict[str, str]) -> tuple[float, float]:
    keys = sorted(predicted)
    pred = {(a, b) for a, b in combinations(keys, 2) if predicted[a] == predicted[b]}
    true = {(a, b) for a, b in combinations(keys, 2) if truth[a] == truth[b]}
    precision = len(pred & true) / len(pred) if pred else 1.0
    recall = len(pred & true) / len(true) if true else 1.0
    return precision, recall


def test_pairwise_and_bcubed_on_a_worked_example():
    truth = {"a": "1", "b": "1", "c": "1", "d": "2", "e": "2"}
    predicted = {"a": "x", "b": "x", "c": "y", "d": "y", "e": "z"}
    q = score(predicted, truth)
    assert (q.predicted_pairs, q.true_pairs, q.true_positive_pairs) == (2, 4, 1)
    assert q.pairwise_precision == pytest.approx(0.5)
    assert q.pairwise_recall == pytest.approx(0.25)
    # B-cubed precision: a,b 1; c,d 1/2; e 1 -> 4/5. Recall: a,b 2/3; c 1/3; d,e 1/2.
    assert q.bcubed_precision == pytest.approx(4 / 5)
    assert q.bcubed_recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 2 + 1 / 2) / 5)
    assert (q.predicted_persons, q.true_persons) == (3, 2)


def test_matches_naive_enumeration_on_a_random_case():
    import random

    rng = random.Random(3)
    keys = [f"s:{i}" for i in range(60)]
    truth = {k: str(rng.randrange(15)) for k in keys}
    predicted = {k: str(rng.randrange(12)) for k in keys}
    q = score(predicted, truth)
    p, r = naive_pairwise(predicted, truth)
    assert q.pairwise_precision == pytest.approx(p)
    assert q.pairwise_recall == pytest.approx(r)


def test_records_missing_on_either_side_are_counted_and_left_out():
    q = score({"a": "x", "b": "x", "z": "q"}, {"a": "1", "b": "1", "c": "2"})
    assert q.records == 2
    assert (q.missing_from_index, q.missing_from_truth) == (1, 1)
    assert q.pairwise_f1 == pytest.approx(1.0)


def test_read_truth(tmp_path: Path):
    path = tmp_path / "truth.csv"
    path.write_text("source,record_id,person_key\ngp,1,p1\nae,9,p1\n")
    assert read_truth(path) == {"gp:1": "p1", "ae:9": "p1"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source,record_id\ngp,1\n", "missing column"),
        ("source,record_id,person_key\ngp,1,p\ngp,1,q\n", "appears twice"),
        ("source,record_id,person_key\n", "no records"),
    ],
)
def test_bad_truth_files(tmp_path: Path, text: str, message: str):
    path = tmp_path / "truth.csv"
    path.write_text(text)
    with pytest.raises(TruthFileError, match=message):
        read_truth(path)
