"""The gate's validator: hostile SQL is refused with a named rule and a place; good SQL passes."""

from __future__ import annotations

import pytest

from candour.gate.validate import GrantedTable, QueryRefused, validate
from corpora.hostile_queries import CORPUS

TABLES = [
    GrantedTable(
        "ae_attendances",
        {"person_id": "TEXT", "diagnosis": "TEXT", "event_date": "DATE", "age_band": "TEXT"},
        frozenset({"person_id", "diagnosis", "event_date", "age_band", "arrival_mode"}),
    ),
    GrantedTable(
        "fire_home_safety_visits",
        {"person_id": "TEXT", "visit_date": "DATE"},
        frozenset({"person_id", "visit_date", "risk_score"}),
    ),
]


def test_the_corpus_is_large_and_covers_every_category():
    categories = {category for category, _ in CORPUS}
    assert len(CORPUS) >= 100
    assert categories == {
        "file-read",
        "state-change",
        "system-catalogue",
        "vault-or-ungranted",
        "recursion-or-bomb",
        "person-id-output",
        "multiple-statements",
        "obfuscated",
    }


@pytest.mark.parametrize(
    ("category", "sql"), CORPUS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CORPUS)]
)
def test_hostile_query_is_refused(category: str, sql: str):
    with pytest.raises(QueryRefused) as refused:
        validate(sql, TABLES, aggregate=True)
    assert refused.value.rule
    assert str(refused.value).startswith(f"query refused ({refused.value.rule})")


@pytest.mark.parametrize(
    ("sql", "rule", "line", "col"),
    [
        ("SELECT * FROM read_csv('x')", "function", 1, 15),
        ("SELECT count(*)\nFROM vault", "table-not-granted", 2, 6),
        ("SELECT count(*) FROM information_schema.tables", "system-catalogue", None, None),
        ("SELECT 1; SELECT 2", "one-statement", None, None),
        ("ATTACH 'v.db'", "read-only", None, None),
        (
            "WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT 1 FROM r) SELECT count(*) FROM r",
            "recursive",
            None,
            None,
        ),
        ("SELECT person_id FROM ae_attendances", "person-id-in-output", 1, 8),
        ("SELECT diagnosis FROM ae_attendances", "row-level-output", None, None),
        (
            "SELECT arrival_mode, count(*) FROM ae_attendances GROUP BY 1",
            "column-not-granted",
            1,
            8,
        ),
        ("SELECT count(*) FROM ae_attendances WHERE nonsense > 1", "column", None, None),
        ("SELECT count(* FROM ae_attendances", "syntax", None, None),
        ("", "empty", None, None),
    ],
)
def test_refusal_names_the_rule_and_place(sql: str, rule: str, line: int | None, col: int | None):
    with pytest.raises(QueryRefused) as refused:
        validate(sql, TABLES, aggregate=True)
    assert refused.value.rule == rule
    if line is not None:
        assert (refused.value.line, refused.value.col) == (line, col)
        assert f"at line {line}, column {col}" in str(refused.value)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT diagnosis, count(*) AS n FROM ae_attendances GROUP BY diagnosis",
        "SELECT count(DISTINCT person_id) FROM ae_attendances",
        "select DIAGNOSIS, COUNT(*) from AE_ATTENDANCES group by 1 order by 2 desc limit 5",
        "SELECT date_trunc('month', event_date) AS m, count(*) FROM ae_attendances GROUP BY m",
        "WITH v AS (SELECT person_id, min(visit_date) AS first_visit FROM fire_home_safety_visits "
        "GROUP BY person_id) SELECT a.diagnosis, count(*) FROM ae_attendances a "
        "JOIN v ON a.person_id = v.person_id WHERE a.event_date > v.first_visit GROUP BY 1",
        "SELECT age_band, count(*) FILTER (WHERE diagnosis = 'fall') FROM ae_attendances "
        "GROUP BY age_band",
        "SELECT diagnosis, count(*) FROM ae_attendances GROUP BY diagnosis HAVING count(*) > 10",
        "SELECT year(event_date), count(*) FROM ae_attendances GROUP BY 1 "
        "UNION ALL SELECT year(visit_date), count(*) FROM fire_home_safety_visits GROUP BY 1",
    ],
)
def test_reasonable_aggregate_queries_pass(sql: str):
    query = validate(sql, TABLES, aggregate=True)
    assert query.tables
    assert set(query.tables) <= {"ae_attendances", "fire_home_safety_visits"}
    assert len(query.sql_sha256) == 64


def test_record_level_uses_may_return_rows_but_not_ungranted_data():
    query = validate("SELECT person_id, diagnosis FROM ae_attendances", TABLES, aggregate=False)
    assert query.single_block
    with pytest.raises(QueryRefused, match="not granted"):
        validate("SELECT person_id, arrival_mode FROM ae_attendances", TABLES, aggregate=False)
    with pytest.raises(QueryRefused, match="read-only"):
        validate("DELETE FROM ae_attendances", TABLES, aggregate=False)


def test_star_expands_to_granted_columns_only():
    query = validate("SELECT * FROM ae_attendances", TABLES, aggregate=False)
    output = [e.alias_or_name for e in query.expression.selects]
    assert sorted(output) == ["age_band", "diagnosis", "event_date", "person_id"]


def test_single_block_detection():
    assert validate("SELECT count(*) FROM ae_attendances", TABLES, aggregate=True).single_block
    nested = (
        "SELECT count(*) FROM ae_attendances WHERE person_id IN "
        "(SELECT person_id FROM fire_home_safety_visits)"
    )
    assert not validate(nested, TABLES, aggregate=True).single_block


def test_dangerous_words_inside_strings_and_comments_are_just_text():
    # A parser sees a literal where a pattern-matcher would see an attack (or miss one).
    sql = (
        "SELECT diagnosis, count(*) FROM ae_attendances -- ATTACH 'vault.db'\n"
        "WHERE diagnosis <> '; ATTACH ''v''; read_csv(''x'')' GROUP BY diagnosis"
    )
    assert validate(sql, TABLES, aggregate=True).tables == ("ae_attendances",)
