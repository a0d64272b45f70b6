"""Preparing identities and building the automatic model from whatever fields exist."""

from pathlib import Path

import pyarrow as pa
import pytest

from candour.linkage.fields import (
    GIVEN_GROUPS,
    IdentityTableError,
    name_groups,
    prepare,
    present_fields,
)
from candour.linkage.model import ModelError, build_model, comparison_name, load_overrides


def test_prepare_normalises_foreign_and_messy_values():
    table = pa.table(
        {
            "record_key": ["a:1", "a:2"],
            "source": ["a", "a"],
            "given_name": ["  Zoë ", "BILL"],
            "family_name": ["O'Brien-Smith", None],
            "date_of_birth": ["1980-02-03T00:00:00", "03/02/1980"],
            "sex": ["Female", "9"],
            "postcode": ["sw1a1aa", "75001"],
            "id_passport": ["ab 12-34", ""],
        }
    )
    out = prepare(table).to_pydict()
    assert out["given_name"] == ["zoe", "bill"]
    assert out["family_name"] == ["obriensmith", None]
    assert out["date_of_birth"] == ["1980-02-03", "03/02/1980"]  # unparsed text is kept
    assert out["birth_year"] == ["1980", None]
    assert out["sex"] == ["f", None]
    assert out["postcode"] == ["SW1A 1AA", "75001"]
    assert out["id_passport"] == ["AB1234", None]
    assert "william" in out[GIVEN_GROUPS][1]
    assert out["middle_name"] == [None, None]  # absent columns appear as nulls


def test_nickname_groups_intersect_for_nicknames_only():
    assert set(name_groups("bill")) & set(name_groups("william"))
    assert set(name_groups("bill")) & set(name_groups("will"))
    assert not set(name_groups("bill")) & set(name_groups("robert"))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pa.table({"record_key": ["a:1"]}), "lacks column"),
        (pa.table({"record_key": ["a:1", "a:1"], "source": ["a", "a"]}), "duplicate"),
        (pa.table({"record_key": ["a:1"], "source": ["a"], "shoe": ["9"]}), "unexpected"),
        (pa.table({"record_key": pa.array([], pa.string()),
                   "source": pa.array([], pa.string())}), "no ingested records"),
    ],
)
def test_bad_identity_tables_are_refused(table: pa.Table, message: str):
    with pytest.raises(IdentityTableError, match=message):
        prepare(table)


def test_present_fields_ignores_fields_almost_nobody_has():
    n = 1000
    table = pa.table(
        {
            "record_key": [f"s:{i}" for i in range(n)],
            "source": ["s"] * n,
            "given_name": ["ann"] * n,
            "nhs_number": ["1"] + [None] * (n - 1),
        }
    )
    assert present_fields(prepare(table)) == ["given_name"]


def test_model_follows_the_fields_present():
    full = build_model(
        ["given_name", "middle_name", "family_name", "date_of_birth", "sex", "postcode",
         "address", "nhs_number", "id_passport"]
    )
    names = [comparison_name(c) for c in full.comparisons]
    assert names == ["given_name", "middle_name", "family_name", "date_of_birth", "sex",
                     "location", "nhs_number", "id_passport"]
    # Without names or dates (e.g. a register of identifiers and addresses) it still builds.
    sparse = build_model(["postcode", "id_passport"])
    assert [comparison_name(c) for c in sparse.comparisons] == ["postcode", "id_passport"]
    assert [r.columns for r in sparse.candidate_rules] == [("id_passport",)]
    assert sparse.training_rules


def test_overrides_drop_replace_and_tune(tmp_path: Path):
    path = tmp_path / "link.yaml"
    path.write_text(
        "threshold: 0.995\nreview_band: [0.6, 0.995]\n"
        "comparisons:\n  sex: null\n  family_name:\n    comparison_levels:\n"
        "      - {sql_condition: 'family_name_l IS NULL OR family_name_r IS NULL',"
        " is_null_level: true}\n"
        "      - {sql_condition: 'family_name_l = family_name_r'}\n"
        "      - {sql_condition: 'ELSE'}\n"
        "splink: {max_iterations: 5}\n"
    )
    spec = build_model(["given_name", "family_name", "sex"], load_overrides(path))
    names = [comparison_name(c) for c in spec.comparisons]
    assert "sex" not in names and "family_name" in names
    assert isinstance(spec.comparisons[names.index("family_name")], dict)
    assert (spec.threshold, spec.review_low) == (0.995, 0.6)
    assert spec.splink_extra == {"max_iterations": 5}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("thresold: 0.9\n", "thresold"),
        ("threshold: 1.5\n", "threshold"),
        ("splink: {link_type: link_only}\n", "fixed by Candour"),
        ("- a\n", "mapping"),
    ],
)
def test_bad_settings_files(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ModelError, match=message):
        load_overrides(path)


def test_dropping_an_unknown_comparison_is_an_error(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text("comparisons: {shoe_size: null}\n")
    with pytest.raises(ModelError, match="shoe_size"):
        build_model(["given_name"], load_overrides(path))
