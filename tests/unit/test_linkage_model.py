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


def _levels(spec, name: str, dialect: str = "duckdb") -> list[dict]:
    settings = spec.settings([]).create_settings_dict(dialect)
    comparison = next(c for c in settings["comparisons"] if c["output_column_name"] == name)
    return comparison["comparison_levels"]


def test_short_name_typos_have_their_own_level_before_the_else_level():
    spec = build_model(["given_name", "family_name", "date_of_birth"])
    for name in ("given_name", "family_name"):
        conditions = [lv["sql_condition"] for lv in _levels(spec, name)]
        edit = next(i for i, c in enumerate(conditions) if "damerau_levenshtein" in c)
        assert edit < len(conditions) - 1 and conditions[-1] == "ELSE"


def test_the_same_model_is_valid_sql_for_duckdb_and_spark():
    spec = build_model(["given_name", "family_name", "date_of_birth"])
    duck = " ".join(lv["sql_condition"] for lv in _levels(spec, "date_of_birth"))
    spark = " ".join(lv["sql_condition"] for lv in _levels(spec, "date_of_birth", "spark"))
    # Each engine parses ISO dates with its own pattern language.
    assert "%Y-%m-%d" in duck and "yyyy-MM-dd" not in duck
    assert "yyyy-MM-dd" in spark and "%Y" not in spark


def test_guards_hold_back_outright_disagreements_unless_an_identifier_agrees():
    import duckdb

    from candour.linkage.predict import GUARD_REASONS, _guard_sql

    spec = build_model(["given_name", "family_name", "date_of_birth", "nhs_number"])
    model = spec.settings([]).create_settings_dict("duckdb")
    columns = {"gamma_given_name", "gamma_date_of_birth", "gamma_nhs_number"}
    guard = _guard_sql(model, columns)
    nhs_exact = len([lv for lv in _levels(spec, "nhs_number") if not lv.get("is_null_level")]) - 1
    rows = [  # given, dob, nhs -> guard reason
        (5, 4, -1, "band"),  # nothing disagrees outright
        (0, 4, -1, "names-disagree"),  # twins: same birthday, different given names
        (8, 0, -1, "dates-disagree"),  # father and son of the same name
        (8, 0, 0, "dates-disagree"),
        (0, 0, nhs_exact, "band"),  # an agreeing NHS number outranks both
    ]
    with duckdb.connect() as con:
        for given, dob, nhs, reason in rows:
            code = con.execute(
                f"select {guard} from (select {given} as gamma_given_name, "
                f"{dob} as gamma_date_of_birth, {nhs} as gamma_nhs_number)"
            ).fetchone()[0]
            assert GUARD_REASONS.get(code, "band") == reason, (given, dob, nhs)
