"""The gate end to end on a small linked home: choices honoured, cohorts, disclosure control,
limits, logging before returning, receipts, and who may query."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from tests.integration.test_gate_support import approved_use, build_home
from typer.testing import CliRunner

import candour
from candour import choices, gate, ledger, register
from candour.cli.main import app
from candour.config import Settings
from candour.disclosure import remaining_budget
from candour.gate import cohort as cohorts
from candour.gate import engines
from candour.home import Home
from candour.register import UseError
from candour.store import transaction
from candour.store.gate import GateQuery

COUNT_BY_DIAGNOSIS = "SELECT diagnosis, count(*) AS n FROM ae_attendances GROUP BY diagnosis"


def _opt_out(settings: Settings, person: str, source: str | None = None) -> None:
    choices.set_choice(
        person, "research", "opt-out", source=source, channel="cli", actor="t", settings=settings
    )


def _stored_queries(settings: Settings) -> int:
    with transaction(settings) as session:
        return int(session.scalar(select(func.count()).select_from(GateQuery)) or 0)


def test_counts_honour_opt_outs_and_cohorts_exclude_them(store_settings: Settings):
    home = build_home(store_settings)
    use_id = approved_use(store_settings)
    out = [0, 1, 2, 5]
    for n in out[:3]:
        _opt_out(store_settings, home.people[n])
    _opt_out(store_settings, home.people[5], source="ae_attendances")  # this source only

    result = gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=store_settings)
    expected = Counter(r["diagnosis"] for r in home.ae if r["person_num"] not in out)
    assert dict(zip(result.table["diagnosis"], result.table["n"], strict=True)) == expected
    assert result.method == "sdc" and result.cohort_exact

    cohort = cohorts.CohortStore(Home(store_settings.home)).read(result.query_id)
    assert set(cohort) == {r["person_num"] for r in home.ae} - set(out)
    assert cohorts.sha256(cohort) == result.cohort_sha256 == result.receipt.fields["cohort_hash"]

    # Person 5 opted out of A&E only: their fire visits are still read.
    visits = gate.run(
        use_id,
        "ana",
        "SELECT risk_score, count(*) AS n FROM fire_home_safety_visits GROUP BY risk_score",
        settings=store_settings,
    )
    assert visits.table["n"].sum() == sum(1 for r in home.visits if r["person_num"] not in out[:3])
    seen = gate.queries_including(home.people[4], settings=store_settings)
    assert [q.query_id for q in seen] == [result.query_id, visits.query_id]
    assert gate.queries_including(home.people[5], settings=store_settings) == []
    assert gate.queries_including(home.people[0], settings=store_settings) == []
    assert [q.query_id for q in gate.queries_including(4, settings=store_settings)] == [
        q.query_id for q in seen
    ]


def test_a_filtered_join_has_an_exact_cohort_and_a_cte_a_superset(store_settings: Settings):
    home = build_home(store_settings, people=40)
    use_id = approved_use(store_settings)
    _opt_out(store_settings, home.people[2])
    store = cohorts.CohortStore(Home(store_settings.home))

    joined = gate.run(
        use_id,
        "ana",
        "SELECT a.area, count(*) AS n FROM ae_attendances a JOIN fire_home_safety_visits f "
        "ON a.person_id = f.person_id WHERE a.cost >= 20 GROUP BY a.area",
        settings=store_settings,
    )
    assert joined.cohort_exact
    costly = {r["person_num"] for r in home.ae if r["cost"] >= 20}
    visited = {r["person_num"] for r in home.visits}
    assert set(store.read(joined.query_id)) == (costly & visited) - {2}

    cte = gate.run(
        use_id,
        "ana",
        "WITH v AS (SELECT person_id FROM fire_home_safety_visits WHERE risk_score = 3) "
        "SELECT a.diagnosis, count(*) AS n FROM ae_attendances a "
        "JOIN v ON a.person_id = v.person_id GROUP BY a.diagnosis",
        settings=store_settings,
    )
    assert not cte.cohort_exact and cte.notes
    everyone = {r["person_num"] for r in home.ae} | visited
    superset = set(store.read(cte.query_id))
    assert superset == everyone - {2}
    read = {r["person_num"] for r in home.visits if r["risk_score"] == 3} - {2}
    assert read <= superset


def test_disclosure_control_suppresses_small_and_dominated_cells(sqlite_settings: Settings):
    home = build_home(sqlite_settings, people=30)
    use_id = approved_use(sqlite_settings, threshold=10, rounding=5)
    result = gate.run(
        use_id,
        "ana",
        "SELECT area, count(*) AS n, sum(cost) AS total, avg(cost) AS mean_cost "
        "FROM ae_attendances WHERE area <> 'west' OR cost < 10 GROUP BY area",
        settings=sqlite_settings,
    )
    report = result.disclosure
    assert report is not None
    west = next(c for c in report.cells if c.key == ("west",))
    raw_west = [r for r in home.ae if r["area"] == "west" and r["cost"] < 10]
    assert west.original["n"] == len(raw_west) and west.suppressed == "primary"
    assert result.table.set_index("area").loc["west"].isna().all()
    shown = result.table.dropna()
    assert (shown["n"] % 5 == 0).all()
    assert result.disclosure_summary()["primary"] >= 1

    # One person's cost dwarfs everyone else's: the sum is suppressed for dominance.
    dominated = gate.run(
        use_id,
        "ana",
        f"SELECT diagnosis, sum(CASE WHEN person_id = '{home.people[8]}' THEN cost * 1000 "
        "ELSE cost END) AS total FROM ae_attendances GROUP BY diagnosis",
        settings=sqlite_settings,
    )
    assert dominated.disclosure is not None
    kinds = {c.suppressed for c in dominated.disclosure.cells}
    assert "dominance" in kinds


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT diagnosis, max(cost) AS top FROM ae_attendances GROUP BY diagnosis",
        "SELECT diagnosis, count(*) * 2 AS n FROM ae_attendances GROUP BY diagnosis",
        "SELECT diagnosis, count(*) AS n FROM ae_attendances GROUP BY diagnosis HAVING n > 3",
        "SELECT diagnosis, count(*) AS n FROM ae_attendances GROUP BY diagnosis ORDER BY n",
        "SELECT diagnosis, count(*) AS n FROM ae_attendances GROUP BY 1 "
        "UNION ALL SELECT area, count(*) FROM ae_attendances GROUP BY 1",
        "WITH x AS (SELECT * FROM ae_attendances) SELECT area, sum(cost) AS s FROM x GROUP BY 1",
    ],
)
def test_outputs_disclosure_control_cannot_check_are_refused_before_running(
    sqlite_settings: Settings, sql: str
):
    build_home(sqlite_settings, people=10)
    use_id = approved_use(sqlite_settings)
    with pytest.raises(gate.QueryRefused) as refused:
        gate.run(use_id, "ana", sql, settings=sqlite_settings)
    assert refused.value.rule == "sdc-shape"
    assert _stored_queries(sqlite_settings) == 0


def test_record_level_use_returns_rows_but_never_person_num(store_settings: Settings):
    build_home(store_settings, people=20)
    use_id = approved_use(store_settings, output="record-level", purpose="direct-care")
    result = gate.run(
        use_id, "ana", "SELECT * FROM ae_attendances WHERE cost > 30", settings=store_settings
    )
    assert result.method == "record-level" and result.disclosure is None
    assert list(result.table.columns) == ["person_id", "diagnosis", "area", "cost", "event_date"]
    with pytest.raises(gate.QueryRefused):
        gate.run(use_id, "ana", "SELECT person_num FROM ae_attendances", settings=store_settings)
    with pytest.raises(gate.QueryRefused, match="not granted"):
        gate.run(use_id, "ana", "SELECT secret_note FROM ae_attendances", settings=store_settings)


def test_limits_stop_a_query_and_nothing_is_logged(sqlite_settings: Settings):
    build_home(sqlite_settings, people=60)
    use_id = approved_use(sqlite_settings, output="record-level", purpose="direct-care")
    size = ledger.open_log(sqlite_settings).read_checkpoint()[0].size  # type: ignore[index]
    bomb = (
        "SELECT a.cost + b.cost + c.cost + d.cost AS x FROM ae_attendances a, ae_attendances b, "
        "ae_attendances c, ae_attendances d ORDER BY x"
    )
    with pytest.raises(gate.QueryLimit) as stopped:
        gate.run(use_id, "ana", bomb, settings=sqlite_settings, limits=gate.Limits(seconds=0.5))
    assert stopped.value.rule == "time-limit"
    assert ledger.open_log(sqlite_settings).read_checkpoint()[0].size == size  # type: ignore[index]
    assert _stored_queries(sqlite_settings) == 0

    capped = gate.run(
        use_id,
        "ana",
        "SELECT * FROM ae_attendances",
        settings=sqlite_settings,
        limits=gate.Limits(max_rows=7),
    )
    assert len(capped.table) == 7 and capped.truncated

    aggregate = approved_use(sqlite_settings)
    with pytest.raises(gate.QueryLimit if False else gate.QueryRefused) as refused:
        gate.run(
            aggregate,
            "ana",
            "SELECT cost, count(*) AS n FROM ae_attendances GROUP BY cost",
            settings=sqlite_settings,
            limits=gate.Limits(max_rows=3),
        )
    assert refused.value.rule == "row-limit"


def test_a_failure_to_log_fails_the_query_and_leaves_nothing(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    home = build_home(store_settings, people=20)
    use_id = approved_use(store_settings)

    def broken(*args: object, **kwargs: object) -> int:
        raise ledger.LogError("the disk is full")

    monkeypatch.setattr(ledger, "record", broken)
    with pytest.raises(ledger.LogError):
        gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=store_settings)
    assert _stored_queries(store_settings) == 0
    store = cohorts.CohortStore(Home(store_settings.home))
    assert list(store.cohorts.iterdir()) == []
    assert gate.queries_including(home.people[3], settings=store_settings) == []

    monkeypatch.undo()
    ok = gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=store_settings)
    assert [
        q.query_id for q in gate.queries_including(home.people[3], settings=store_settings)
    ] == [ok.query_id]


def test_receipts_verify_and_tampering_is_caught(store_settings: Settings):
    build_home(store_settings, people=20)
    use_id = approved_use(store_settings)
    first = gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=store_settings)
    second = gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=store_settings)
    verifier = gate.home_verifier(store_settings)
    for result in (first, second):
        receipt = result.receipt
        receipt.verify(verifier)
        again = gate.Receipt.from_json(json.loads(json.dumps(receipt.to_json())))
        again.verify(verifier)
        entry = receipt.fields
        assert entry["kind"] == "query" and entry["use_id"] == use_id
        assert entry["sql_hash"] == result.sql_sha256
        assert entry["choices_hash"] == result.choices_hash
        assert entry["output_hash"] == result.output_sha256
        assert "ana" not in receipt.entry.decode()
        record = gate.get_query(result.query_id, settings=store_settings)
        assert record.ledger_index == receipt.ledger_index
    assert second.receipt.ledger_index == first.receipt.ledger_index + 1
    forged = json.loads(receipt.entry).copy()
    forged["output_hash"] = "0" * 64
    tampered = gate.Receipt(
        receipt.query_id,
        receipt.ledger_index,
        json.dumps(forged).encode(),
        receipt.proof,
        receipt.checkpoint,
    )
    with pytest.raises(gate.ReceiptError):
        tampered.verify(verifier)
    saved = second.save(settings=store_settings, name="by-diagnosis")
    assert saved.file_sha256 == second.output_sha256


def test_only_named_analysts_under_active_uses_may_query(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    build_home(store_settings, people=10)
    use_id = approved_use(store_settings)
    with pytest.raises(UseError, match="not named"):
        gate.run(use_id, "bob", COUNT_BY_DIAGNOSIS, settings=store_settings)
    with pytest.raises(UseError):
        gate.run(use_id, "ian", COUNT_BY_DIAGNOSIS, settings=store_settings)
    later = date.today() + timedelta(days=3 * 366)
    monkeypatch.setattr("candour.register.uses.uk_today", lambda at=None: later)
    with pytest.raises(UseError, match="expired"):
        gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=store_settings)
    monkeypatch.undo()
    register.revoke(use_id, "ian", reason="breach", settings=store_settings)
    with pytest.raises(UseError, match="revoked"):
        gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=store_settings)
    assert _stored_queries(store_settings) == 0


def test_a_new_link_run_rebuilds_the_linked_tables(sqlite_settings: Settings):
    home = build_home(sqlite_settings, people=20)
    use_id = approved_use(sqlite_settings)
    before = gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=sqlite_settings)
    with transaction(sqlite_settings) as session:
        from candour.store.linkage import LinkRun

        run = session.scalars(select(LinkRun)).one()
        run.index_hash = "f" * 64  # the store now vouches for an index the warehouse lacks
    with pytest.raises(gate.GateError, match="person index is not the one"):
        gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=sqlite_settings)
    assert before.table["n"].sum() == len(home.ae)


def test_python_api_and_cli(sqlite_settings: Settings, tmp_path):
    build_home(sqlite_settings, people=30)
    use_id = approved_use(sqlite_settings)
    con = candour.connect(use=use_id, user="ana", settings=sqlite_settings)
    frame = con.query(COUNT_BY_DIAGNOSIS)
    assert frame.attrs["receipt"].ledger_index == con.last.receipt.ledger_index  # type: ignore[union-attr]
    assert frame.attrs["disclosure"]["method"] == "sdc"
    with pytest.raises(UseError):
        candour.connect(use=use_id, user="bob", settings=sqlite_settings)

    sql = tmp_path / "q.sql"
    sql.write_text(COUNT_BY_DIAGNOSIS)
    receipt = tmp_path / "receipt.json"
    result = CliRunner().invoke(
        app,
        [
            "query",
            "--use",
            use_id,
            "--as",
            "ana",
            "--sql",
            str(sql),
            "--format",
            "json",
            "--receipt",
            str(receipt),
            "--home",
            str(sqlite_settings.home),
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["columns"] == ["diagnosis", "n"] and len(body["rows"]) == 3
    gate.Receipt.from_json(json.loads(receipt.read_text())).verify(
        gate.home_verifier(sqlite_settings)
    )
    table = CliRunner().invoke(
        app,
        [
            "query",
            "--use",
            use_id,
            "--as",
            "ana",
            "--sql",
            "-",
            "--home",
            str(sqlite_settings.home),
        ],
        input="SELECT count(*) FROM nowhere",
    )
    assert table.exit_code == 2 and "table-not-granted" in table.output


def test_differential_privacy_mode(sqlite_settings: Settings):
    import pandas as pd

    build_home(sqlite_settings, people=40)
    use_id = approved_use(sqlite_settings, dp_epsilon=1.0)
    sql = (
        "SELECT CAST(risk_score AS VARCHAR) AS band, count(*) AS n "
        "FROM fire_home_safety_visits GROUP BY band"
    )
    with pytest.raises(gate.QueryRefused, match="differential privacy"):
        gate.run(use_id, "ana", sql, settings=sqlite_settings)
    result = gate.run(
        use_id,
        "ana",
        "SELECT CAST(risk_score AS VARCHAR) AS band, count(*) AS n "
        "FROM fire_home_safety_visits GROUP BY band",
        settings=sqlite_settings,
        dp=gate.DpOptions(epsilon=0.5, keys=pd.DataFrame({"band": ["0", "1", "2", "3", "9"]})),
    )
    assert result.method == "dp" and len(result.table) == 5
    assert remaining_budget(sqlite_settings, use_id) == pytest.approx(0.5)
    assert gate.get_query(result.query_id, settings=sqlite_settings).method == "dp"


def test_the_memory_limit_stops_a_query_cleanly_and_nothing_is_logged(sqlite_settings: Settings):
    build_home(sqlite_settings, people=60)
    use_id = approved_use(sqlite_settings, output="record-level", purpose="direct-care")
    size = ledger.open_log(sqlite_settings).read_checkpoint()[0].size  # type: ignore[index]
    lookup = cohorts.CohortStore(Home(sqlite_settings.home)).lookup
    before = sorted(p.name for p in lookup.iterdir())
    # A median holds every value it is given in memory (it cannot spill to disk): ~1.7M
    # values here, far more than 8 MB.
    hungry = (
        "SELECT median(a.cost * 1000000 + b.cost * 1000 + c.cost) AS m "
        "FROM ae_attendances a, ae_attendances b, ae_attendances c"
    )
    with pytest.raises(gate.QueryLimit) as stopped:
        gate.run(use_id, "ana", hungry, settings=sqlite_settings, limits=gate.Limits(memory="8MB"))
    assert stopped.value.rule == "memory-limit"
    assert "8MB" in str(stopped.value)
    assert ledger.open_log(sqlite_settings).read_checkpoint()[0].size == size  # type: ignore[index]
    assert _stored_queries(sqlite_settings) == 0
    assert list(cohorts.CohortStore(Home(sqlite_settings.home)).cohorts.iterdir()) == []
    assert sorted(p.name for p in lookup.iterdir()) == before
    # With its configured limit (CANDOUR_GATE_MEMORY_LIMIT) the same query answers.
    roomy = sqlite_settings.model_copy(update={"gate_memory_limit": "1GB"})
    answered = gate.run(use_id, "ana", hungry, settings=roomy)
    assert len(answered.table) == 1 and _stored_queries(sqlite_settings) == 1


def test_limits_default_to_the_gate_settings(sqlite_settings: Settings):
    build_home(sqlite_settings, people=20)
    use_id = approved_use(sqlite_settings, output="record-level", purpose="direct-care")
    capped = sqlite_settings.model_copy(update={"gate_max_rows": 4})
    result = gate.run(use_id, "ana", "SELECT * FROM ae_attendances", settings=capped)
    assert len(result.table) == 4 and result.truncated
    con = candour.connect(use=use_id, user="ana", settings=capped)
    assert con.limits == gate.Limits(max_rows=4)


def test_queries_including_pages_and_counts(store_settings: Settings):
    home = build_home(store_settings, people=12)
    use_id = approved_use(store_settings)
    ran = [
        gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=store_settings).query_id
        for _ in range(5)
    ]
    person = home.people[2]
    assert gate.count_queries_including(person, settings=store_settings) == 5
    everything = [q.query_id for q in gate.queries_including(person, settings=store_settings)]
    assert everything == ran
    page = gate.queries_including(person, settings=store_settings, limit=2, offset=1)
    assert [q.query_id for q in page] == ran[1:3]
    newest = gate.queries_including(person, settings=store_settings, limit=2, newest_first=True)
    assert [q.query_id for q in newest] == ran[::-1][:2]
    assert gate.queries_including(person, settings=store_settings, offset=9) == []
    with pytest.raises(ValueError):
        gate.queries_including(person, settings=store_settings, limit=-1)
    # A query logged after the first lookup (its slot not cached yet) is found too.
    later = gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=store_settings).query_id
    assert gate.queries_including(person, settings=store_settings)[-1].query_id == later
    assert gate.count_queries_including(2, settings=store_settings) == 6


@pytest.mark.parametrize("compact_share", [0.0, 1.0], ids=["rewrite", "delete"])
def test_masks_follow_changing_choices_and_survive_an_old_stamp_layout(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch, compact_share: float
):
    # People leave the clear part by a rewrite of it (share 0) or by deletes (share 1).
    monkeypatch.setattr(engines, "COMPACT_SHARE", compact_share)
    home = build_home(sqlite_settings, people=30)
    use_id = approved_use(sqlite_settings)
    store = cohorts.CohortStore(Home(sqlite_settings.home))
    filtered = "SELECT area, count(*) AS n FROM ae_attendances WHERE cost >= 20 GROUP BY area"
    costly = {r["person_num"] for r in home.ae if r["cost"] >= 20}

    def check(out: set[int]) -> None:
        result = gate.run(use_id, "ana", filtered, settings=sqlite_settings)
        expected = sum(1 for r in home.ae if r["cost"] >= 20 and r["person_num"] not in out)
        assert result.table["n"].sum() == expected
        assert set(store.read(result.query_id)) == costly - out

    _opt_out(sqlite_settings, home.people[1])
    _opt_out(sqlite_settings, home.people[3])
    check({1, 3})
    # A change of mind: the mask column is updated for just the people whose choice changed.
    choices.set_choice(
        home.people[1], "research", "opt-in", channel="cli", actor="t", settings=sqlite_settings
    )
    _opt_out(sqlite_settings, home.people[4])
    check({3, 4})
    # A warehouse whose stamps table is gone (as one built before the per-purpose columns):
    # the gate recreates it, resets the unvouched column and rebuilds the mask from the snapshot.
    engine = gate.open_engine(sqlite_settings)
    try:
        engine.connection.execute("DROP TABLE gate.mask_stamps")  # type: ignore[attr-defined]
    finally:
        engine.close()
    check({3, 4})

    # Everyone ever excluded has all their rows in the marked part, and nobody else: a
    # person who opted back in (1) stays there, readable because their mask is false.
    def parts() -> tuple[set[int], set[int], int, int, int]:
        engine = gate.open_engine(sqlite_settings)
        try:
            con = engine.connection  # type: ignore[attr-defined]
            clear = {r[0] for r in con.execute(
                "SELECT person_num FROM gate.linked_ae_attendances__clear").fetchall()}
            marked = {r[0] for r in con.execute(
                "SELECT person_num FROM gate.linked_ae_attendances__marked").fetchall()}
            total = con.execute("SELECT count(*) FROM gate.linked_ae_attendances").fetchall()
            # DuckDB's estimate counts deleted rows still in place; a rewrite leaves none.
            stored = con.execute(
                "SELECT estimated_size FROM duckdb_tables() WHERE schema_name = 'gate' "
                "AND table_name = 'linked_ae_attendances__clear'").fetchall()[0][0]
            pending = con.execute(
                "SELECT value FROM gate.state "
                "WHERE name = 'deleted_rows:linked_ae_attendances__clear'").fetchall()
        finally:
            engine.close()
        return clear, marked, int(total[0][0]), int(stored), int(pending[0][0])

    clear, marked, total, stored, pending = parts()
    everyone = {r["person_num"] for r in home.ae}
    assert marked == {1, 3, 4} & everyone
    assert clear == everyone - marked
    assert total == len(home.ae)
    moved_out = sum(1 for r in home.ae if r["person_num"] in marked)
    if compact_share == 0.0:
        assert pending == 0 and stored == len(home.ae) - moved_out
    else:
        assert pending == moved_out and stored == len(home.ae)


def test_linked_tables_of_an_older_layout_are_rebuilt(sqlite_settings: Settings):
    home = build_home(sqlite_settings, people=30)
    use_id = approved_use(sqlite_settings)
    _opt_out(sqlite_settings, home.people[2])
    first = gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=sqlite_settings)
    # As a warehouse built before the two-part layout: its state names the link key alone.
    engine = gate.open_engine(sqlite_settings)
    try:
        con = engine.connection  # type: ignore[attr-defined]
        key = gate.link_state(sqlite_settings).key
        con.execute("UPDATE gate.state SET value = ? WHERE name = 'link_key'", [key])
        assert engine.linked_key() is None
    finally:
        engine.close()
    again = gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=sqlite_settings)
    assert again.table.equals(first.table)
    engine = gate.open_engine(sqlite_settings)
    try:
        assert engine.linked_key() == key
    finally:
        engine.close()


def test_the_engine_cohort_equals_the_rows_read_and_grows_past_its_size_hint(
    sqlite_settings: Settings,
):
    home = build_home(sqlite_settings, people=40)
    use_id = approved_use(sqlite_settings)
    _opt_out(sqlite_settings, home.people[7])
    gate.run(use_id, "ana", COUNT_BY_DIAGNOSIS, settings=sqlite_settings)  # builds, sets masks
    snap = choices.snapshot("research", settings=sqlite_settings)
    engine = gate.open_engine(sqlite_settings)
    try:
        tables = gate.catalogue(sqlite_settings)
        gated = [
            gate.GatedTable(
                "ae_attendances",
                tuple(tables["ae_attendances"].columns),
                "research",
                snap.excluded("ae_attendances").person_nums,
                snap.content_hash,
            )
        ]
        key = gate.link_state(sqlite_settings).key
        with engine.session(gated, gate.Limits(), key) as session:
            view = session.views["ae_attendances"]
            sql = f'SELECT person_num FROM "{view}" WHERE cost < 50'
            read = {r["person_num"] for r in home.ae if r["cost"] < 50} - {7}
            for size in (engine.max_person() + 1, 3, 1):  # 3 and 1: too small, must grow
                assert set(session.cohort(sql, size)) == read
            assert set(np.flatnonzero(session.person_mask(sql, 3))) == read
            assert len(session.cohort(f"{sql} AND cost > 1000", 64)) == 0
    finally:
        engine.close()
