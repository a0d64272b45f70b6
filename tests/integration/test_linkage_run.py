"""A link run end to end on generated identities: quality, stable ids, review, outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from benchmarks.bench_linkage import make_records
from sqlalchemy import func, inspect, select
from typer.testing import CliRunner

from candour.cli.main import app
from candour.config import Settings
from candour.initialise import initialise_home
from candour.linkage.evaluate import score
from candour.linkage.inputs import table_provider
from candour.linkage.outputs import current_index, export_index
from candour.linkage.review import decide, list_pairs
from candour.linkage.runs import link
from candour.store import transaction
from candour.store.linkage import LinkParameter, LinkRun, PersonChange, PersonIndexEntry

FAST = "u_max_pairs: 200000\n"


@pytest.fixture(scope="module")
def records():
    return make_records(500, seed=11, later_share=0.05)


def _identities(table: pa.Table) -> pa.Table:
    return table.drop_columns(["person", "batch"])


@pytest.fixture
def fast_settings(tmp_path: Path) -> Path:
    path = tmp_path / "fast.yaml"
    path.write_text(FAST)
    return path


def test_link_run_end_to_end(store_settings: Settings, records, fast_settings: Path, tmp_path):
    initialise_home(store_settings)
    truth = dict(zip(records.table["record_key"].to_pylist(),
                     records.table["person"].to_pylist(), strict=True))
    first = link(store_settings, settings_file=fast_settings,
                 provider=table_provider(_identities(records.batch(0))))
    assert first.records == records.batch(0).num_rows
    quality = score(current_index(store_settings), truth)
    assert quality.pairwise_precision > 0.95 and quality.pairwise_recall > 0.9
    assert first.blocking and all(b.marginal >= 0 for b in first.blocking)
    assert first.ledger_index is not None

    # The warehouse holds the same index, readable by the query gate.
    with duckdb.connect(str(store_settings.home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select count(*), count(distinct person_id) from person_index"
        ).fetchone()
    assert rows == (first.records, first.persons)

    # A later batch of 5% keeps almost every id, and every change is recorded.
    before = current_index(store_settings)
    second = link(store_settings, settings_file=fast_settings,
                  provider=table_provider(_identities(records.table)))
    after = current_index(store_settings)
    assert second.records == records.table.num_rows
    kept = {p for k, p in before.items() if after.get(k) == p}
    assert len(kept) / len(set(before.values())) > 0.97
    with transaction(store_settings) as session:
        recorded = session.scalar(select(func.count()).select_from(PersonChange))
        assert recorded == second.merges + second.splits + second.retired
        assert session.scalar(select(func.count()).select_from(LinkRun)) == 2
        assert session.scalar(select(func.count()).select_from(LinkParameter)) > 10

    # Export: one row per record, the required header.
    out = tmp_path / "index.csv"
    assert export_index(store_settings, out) == records.table.num_rows
    with out.open() as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["source", "record_id", "person_id"]
        assert sum(1 for _ in reader) == records.table.num_rows


def _person_index_indexes(settings: Settings) -> set[str]:
    with transaction(settings) as session:
        found = inspect(session.connection()).get_indexes("person_index")
    return {str(index["name"]) for index in found}


def test_a_first_run_loads_the_index_in_bulk_and_rebuilds_its_indexes(
    store_settings: Settings, records, fast_settings, monkeypatch
):
    from candour.linkage import runs

    initialise_home(store_settings)
    indexes = _person_index_indexes(store_settings)
    assert {"ix_person_index_person_id", "ix_person_index_person_num"} <= indexes
    monkeypatch.setattr(runs, "BULK_LOAD_ROWS", 1)
    identities = _identities(records.batch(0))

    def fail(session, run_id):
        raise RuntimeError("after the index was written")

    # A run failing after the bulk load leaves the table empty and its indexes in place.
    with pytest.raises(RuntimeError, match="after the index was written"):
        link(store_settings, settings_file=fast_settings, provider=table_provider(identities),
             after_index=fail)
    assert _person_index_indexes(store_settings) == indexes
    with transaction(store_settings) as session:
        assert session.scalar(select(func.count()).select_from(PersonIndexEntry)) == 0

    done = link(store_settings, settings_file=fast_settings,
                provider=table_provider(identities))
    assert _person_index_indexes(store_settings) == indexes
    index = current_index(store_settings)
    assert len(index) == done.records == identities.num_rows
    assert len(set(index.values())) == done.persons


def test_review_decisions_override_the_model(sqlite_settings: Settings, records, fast_settings):
    initialise_home(sqlite_settings)
    identities = _identities(records.batch(0))
    link(sqlite_settings, settings_file=fast_settings, provider=table_provider(identities))
    index = current_index(sqlite_settings)
    # Pick two records the model linked, and two it kept apart, and overrule both.
    by_person: dict[str, list[str]] = {}
    for key, person in sorted(index.items()):
        by_person.setdefault(person, []).append(key)
    together = next(keys for keys in by_person.values() if len(keys) == 2)
    apart = [next(iter(by_person.values()))[0], list(by_person.values())[-1][0]]
    assert index[apart[0]] != index[apart[1]]
    from candour.linkage.predict import pair
    from candour.store.linkage import ReviewPair

    with transaction(sqlite_settings) as session:
        for (left, right) in (pair(*together), pair(*apart)):
            session.add(ReviewPair(record_key_l=left, record_key_r=right, match_weight=0.0,
                                   match_probability=0.5, weights_json="{}", reason="band",
                                   status="pending", first_run_id="t", last_run_id="t"))
    ids = {(p.record_key_l, p.record_key_r): p.pair_id
           for p in list_pairs(sqlite_settings, limit=10_000)}
    decide(sqlite_settings, ids[pair(*together)], "non-match", "alice")
    decide(sqlite_settings, ids[pair(*apart)], "match", "bob")
    link(sqlite_settings, settings_file=fast_settings, provider=table_provider(identities))
    after = current_index(sqlite_settings)
    assert after[together[0]] != after[together[1]]
    assert after[apart[0]] == after[apart[1]]


def test_workspace_removed_and_nothing_written_on_failure(
    sqlite_settings: Settings, tmp_path: Path, records, fast_settings
):
    initialise_home(sqlite_settings)
    parent = tmp_path / "ws"
    bad = _identities(records.batch(0)).append_column("shoe_size", pa.nulls(
        records.batch(0).num_rows, pa.string()))
    with pytest.raises(Exception, match="unexpected column"):
        link(sqlite_settings, settings_file=fast_settings,
             provider=table_provider(bad, parent=parent))
    assert list(parent.iterdir()) == []
    with transaction(sqlite_settings) as session:
        assert session.scalar(select(func.count()).select_from(LinkRun)) == 0


def test_cli_link_commands(sqlite_settings: Settings, records, fast_settings, tmp_path):
    runner = CliRunner()
    home = str(sqlite_settings.home)
    initialise_home(sqlite_settings)
    result = runner.invoke(app, ["link", "export", "--out", str(tmp_path / "x.csv"),
                                 "--home", home])
    assert result.exit_code == 2 and "candour link" in result.output
    link(sqlite_settings, settings_file=fast_settings,
         provider=table_provider(_identities(records.batch(0))))
    truth = tmp_path / "truth.csv"
    with truth.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "record_id", "person_key"])
        for row in records.batch(0).select(["record_key", "person"]).to_pylist():
            source, record_id = row["record_key"].split(":", 1)
            writer.writerow([source, record_id, row["person"]])
    result = runner.invoke(app, ["link", "evaluate", "--truth", str(truth), "--json",
                                 "--home", home])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["pairwise_f1"] > 0.9
    result = runner.invoke(app, ["link", "history", "--home", home])
    assert result.exit_code == 0 and "LR-" in result.output
    result = runner.invoke(app, ["link", "review", "--list", "--home", home])
    assert result.exit_code == 0
    result = runner.invoke(app, ["link", "review", "--decide", "999999", "match", "--as", "x",
                                 "--home", home])
    assert result.exit_code == 2 and "no review pair" in result.output
    result = runner.invoke(app, ["link", "report", "--home", home])
    assert result.exit_code == 0, result.output
    report = next((sqlite_settings.home / "reports").glob("linkage-*.html"))
    text = report.read_text()
    assert "Comparisons per blocking rule" in text
    # One shared copy of the chart libraries, and a small embed per chart (six charts).
    assert text.count("vegaEmbed('#chart-") == 6
    assert report.stat().st_size < 1_500_000
    # No identity value appears in the report.
    sample = records.batch(0).to_pylist()[0]
    assert sample["nhs_number"] is None or sample["nhs_number"] not in text
