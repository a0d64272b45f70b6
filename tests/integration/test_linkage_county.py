"""The real path: a synthetic county, ingested into the vault, linked through a vault workspace.

``candour init``, ``synth``, ``ingest``, ``link`` and ``link evaluate`` run as a user runs them;
quality is measured against the county's truth file. Then residents' opt-outs are followed
through a merge and a split (forced by reviewer decisions, so the test is deterministic).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict

import duckdb
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from candour.choices import current, history, set_choice
from candour.cli.main import app
from candour.config import Settings
from candour.linkage.outputs import current_index, latest_run
from candour.linkage.predict import pair
from candour.linkage.review import decide, list_pairs
from candour.store import dispose, transaction
from candour.store.ingest import VaultAccess
from candour.store.linkage import PersonChange, ReviewPair
from candour.vault import dispose_vault
from candour.workflows.carry_choices import carry_choices

PEOPLE = 1500
runner = CliRunner()


def _cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("county") / "home"
    _cli("init", "--home", str(home))
    _cli("synth", "--people", str(PEOPLE), "--seed", "3", "--out", str(home / "synth"))
    _cli("ingest", str(home / "synth" / "sources.yaml"), "--home", str(home))
    settings = Settings(home=home)
    yield settings
    dispose(settings)
    dispose_vault(settings)


@pytest.fixture(scope="module")
def linked(county: Settings) -> Settings:
    output = _cli("link", "--home", str(county.home))
    assert "persons" in output
    return county


def _truth(settings: Settings) -> dict[str, str]:
    path = settings.home / "synth" / "truth" / "records.csv"
    with path.open(newline="") as handle:
        return {f"{r['source']}:{r['record_id']}": r["person_key"] for r in csv.DictReader(handle)}


def test_a_county_links_through_the_vault_with_high_quality(linked: Settings):
    county = linked
    home = str(county.home)
    run = latest_run(county)
    truth = _truth(county)
    assert run.records == len(truth)

    quality = json.loads(
        _cli("link", "evaluate", "--truth", str(county.home / "synth" / "truth" / "records.csv"),
             "--json", "--home", home)
    )
    assert quality["missing_from_index"] == 0 and quality["missing_from_truth"] == 0
    assert quality["pairwise_precision"] >= 0.99, quality
    assert quality["pairwise_recall"] >= 0.98, quality
    assert quality["pairwise_f1"] >= 0.985, quality

    # The identities were read through one audited vault workspace, since removed.
    with transaction(county) as session:
        reads = session.scalars(
            select(VaultAccess).where(VaultAccess.actor == "linkage")
        ).all()
    assert len(reads) == 1 and run.run_id in reads[0].reason
    assert reads[0].records == len(truth)
    assert not any((county.home / "workspaces").iterdir())

    # The warehouse's person index agrees with the store's.
    index = current_index(county)
    with duckdb.connect(str(county.home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select record_key, person_id from person_index").fetchall()
    assert dict(rows) == index

    # Linking again with nothing new keeps every id and records no change.
    _cli("link", "--home", home)
    assert current_index(county) == index
    again = latest_run(county)
    assert (again.merges, again.splits, again.retired) == (0, 0, 0)


def _queue(settings: Settings, left: str, right: str) -> int:
    key = pair(left, right)
    with transaction(settings) as session:
        session.add(ReviewPair(record_key_l=key[0], record_key_r=key[1], match_weight=0.0,
                               match_probability=0.5, weights_json="{}", reason="band",
                               status="pending", first_run_id="test", last_run_id="test"))
    return next(p.pair_id for p in list_pairs(settings, limit=100_000)
                if (p.record_key_l, p.record_key_r) == key)


def test_opt_outs_follow_merges_and_splits(linked: Settings):
    county = linked
    home = str(county.home)
    index = current_index(county)
    members: dict[str, list[str]] = defaultdict(list)
    for key, person in sorted(index.items()):
        members[person].append(key)
    pairs_of = sorted((p for p, keys in members.items() if len(keys) == 2))
    singles = sorted(p for p, keys in members.items() if len(keys) == 1)
    to_split, merge_a, merge_b = pairs_of[0], singles[0], singles[1]

    set_choice(to_split, "research", "opt-out", channel="cli", actor="resident", settings=county)
    set_choice(merge_b, "service-planning", "opt-out", channel="cli", actor="resident",
               settings=county)
    set_choice(merge_a, "research", "opt-out", source="gp_registrations", channel="cli",
               actor="resident", settings=county)

    # A reviewer splits one person and joins two others.
    decide(county, _queue(county, *members[to_split]), "non-match", "reviewer")
    decide(county, _queue(county, members[merge_a][0], members[merge_b][0]), "match", "reviewer")
    _cli("link", "--home", home)
    run = latest_run(county)
    after = current_index(county)

    parts = {after[k] for k in members[to_split]}
    assert len(parts) == 2 and to_split in parts  # the split keeps the id on one part
    for part in parts:
        assert "research" in current(part, settings=county).everywhere
    joined = {after[k] for k in members[merge_a] + members[merge_b]}
    assert len(joined) == 1
    (merged,) = joined
    assert merged in (merge_a, merge_b)  # the merge keeps one of the two ids
    choices = current(merged, settings=county)
    assert "service-planning" in choices.everywhere
    assert choices.by_source.get("research") == frozenset({"gp_registrations"})

    # Every change is recorded, and the carry-over is in the person's history.
    with transaction(county) as session:
        kinds = sorted(session.scalars(
            select(PersonChange.kind).where(PersonChange.run_id == run.run_id)
        ))
    assert kinds == ["merge", "split"]
    new_part = next(p for p in parts if p != to_split)
    carried = [h for h in history(new_part, settings=county) if h.channel == "linkage"]
    assert [(h.purpose, h.decision) for h in carried] == [("research", "opt-out")]
    assert carried[0].actor == f"linkage run {run.run_id}" and carried[0].ledger_index is not None

    # Applying the same run again changes nothing.
    with transaction(county) as session:
        before = session.scalar(select(func.count()).select_from(PersonChange))
    report = carry_choices(county, run.run_id)
    assert report.carried == 0 and report.already >= 3
    with transaction(county) as session:
        assert session.scalar(select(func.count()).select_from(PersonChange)) == before
