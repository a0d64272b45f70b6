"""`candour demo` builds a fresh home end to end, and never deletes data it did not create.

One demo run (at MIN_PEOPLE, with denser planted effects so that every study survives
disclosure control at that size) is shared by the tests of what it built; each fact the demo
reports is checked again against the home itself (the register, the store's choices, the log,
the catalogue), not taken from the report.
"""

import csv
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import candour.cli.demo as cli_demo
from candour import catalogue, choices, gate, register
from candour.cli.main import app
from candour.config import Settings
from candour.demo import (
    AREA_RATE_BOUNDS,
    CHECKER,
    DEMO_MARKER,
    IG_LEAD,
    MIN_AREA_PEOPLE,
    MIN_PEOPLE,
    OPT_OUT_PURPOSES,
    RELEASED_DATASET,
    SENSOR_DATASET,
    SENSOR_FEED,
    STUDY_NAMES,
    DemoReport,
    choose_opt_outs,
    person_areas,
    run_demo,
)
from candour.home import Home
from candour.store import transaction
from candour.store.choices import ChoiceEvent
from candour.store.linkage import PersonNumber

runner = CliRunner()

# The studies benchmark's small-county settings: at a few hundred people the default county
# has too few falls, HMOs and families for any study output to pass disclosure control.
DENSE_EFFECTS = "visit_share: 0.4\nfalls_base_rate: 0.3\nunlicensed_hmo_share: 0.02\n"


@dataclass
class Built:
    home: Path
    output: str
    report: DemoReport

    @property
    def settings(self) -> Settings:
        return Settings(home=self.home)


def run_demo_cli(root: Path, env: dict[str, str] | None = None) -> Built:
    """One `candour demo --no-serve` run through the CLI at MIN_PEOPLE with DENSE_EFFECTS, in
    ``root/home``, with ``env`` (e.g. CANDOUR_DATABASE_URL) set; keeps the report it printed."""
    config = root / "dense.yaml"
    config.write_text(DENSE_EFFECTS)
    home = root / "home"
    reports: list[DemoReport] = []

    def keep(*args: Any, **kwargs: Any) -> DemoReport:
        report = run_demo(*args, **kwargs)
        reports.append(report)
        return report

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli_demo, "run_demo", keep)
        result = runner.invoke(
            app,
            [
                "demo",
                "--people",
                str(MIN_PEOPLE),
                "--home",
                str(home),
                "--no-serve",
                "--config",
                str(config),
            ],
            env=env,
        )
    assert result.exit_code == 0, result.output
    assert len(reports) == 1
    return Built(home, result.output, reports[0])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One `candour demo --no-serve` run on the embedded default, shared by the tests below."""
    return run_demo_cli(tmp_path_factory.mktemp("demo"))


def test_demo_builds_a_home_with_a_county(built: Built):
    assert f"{MIN_PEOPLE} people, seed 1" in built.output
    layout = Home(built.home)
    assert layout.is_initialised()
    assert (built.home / DEMO_MARKER).exists()
    assert (layout.synth / "sources.yaml").exists()
    truth = (layout.synth / "truth" / "records.csv").read_text().splitlines()
    assert truth[0] == "source,record_id,person_key"
    assert len(truth) > MIN_PEOPLE
    stages = [s.name for s in built.report.stages]
    assert stages == [
        "init",
        "synth",
        "ingest",
        "link",
        "evaluate",
        "register",
        "choices",
        "queries",
        "studies",
        "open data",
    ]


def test_demo_registers_a_planning_and_a_research_use_approved_by_another(built: Built):
    planning, research = built.report.facts["uses"]
    views = [register.get_use(u.use_id, settings=built.settings) for u in (planning, research)]
    assert [v.spec.purpose for v in views] == ["service-planning", "research"]
    for view in views:
        assert view.status == "active"
        assert view.decided_by == IG_LEAD
        assert view.decided_by != view.spec.applicant
        assert view.decided_by not in view.spec.analysts
    roles = {u.name: u.role for u in register.list_users(settings=built.settings)}
    assert roles[IG_LEAD] == "ig" and roles[CHECKER] == "checker"
    assert "Data uses" in built.output and planning.use_id in built.output


def test_demo_opts_five_percent_out_within_bounds_in_every_practice(built: Built):
    settings = built.settings
    out: set[str] = set()
    for purpose in OPT_OUT_PURPOSES:
        out.update(choices.snapshot(purpose, settings=settings).everywhere.person_ids)
    with transaction(settings) as session:
        people = session.scalar(
            select(func.count()).select_from(PersonNumber).where(PersonNumber.retired_run.is_(None))
        )
        channels = Counter(
            session.execute(select(ChoiceEvent.channel, ChoiceEvent.ledger_index)).all()
        )
        unlogged = session.scalar(
            select(func.count()).select_from(ChoiceEvent).where(ChoiceEvent.ledger_index.is_(None))
        )
    assert people
    assert 0.04 <= len(out) / people <= 0.06
    # Both routes were used, and every change is in the public log.
    used = {channel for channel, _ in channels}
    assert used == {"bulk-import", "portal"}
    assert unlogged == 0
    # Per GP practice, measured again from the home (the practice of each person from the
    # county's GP extract; the opt-outs from the store).
    frame, _ = person_areas(settings, Home(built.home).synth)
    rates = frame.assign(out=frame["person_id"].isin(out)).groupby("area")["out"].mean()
    assert len(rates) >= 2
    assert all(AREA_RATE_BOUNDS[0] <= r <= AREA_RATE_BOUNDS[1] for r in rates), rates
    summary = built.report.facts["optouts"]
    assert summary.opted_out == len(out) and summary.people == people
    assert {a.area: a.rate for a in summary.areas} == pytest.approx(rates.to_dict())
    # The national list was matched through the vault by NHS number, for both purposes.
    assert [r.purpose for r in summary.national] == list(OPT_OUT_PURPOSES)
    assert all(r.persons > 0 and r.recorded == r.persons for r in summary.national)
    assert f"{summary.opted_out} of {people} people" in built.output


def test_demo_queries_have_receipts_that_verify_and_disclosure_control(built: Built):
    settings = built.settings
    queries = built.report.facts["queries"]
    planning, research = built.report.facts["uses"]
    assert {q.use_id for q in queries} == {planning.use_id, research.use_id}
    verifier = gate.home_verifier(settings)
    for q in queries:
        assert q.receipt_verified
        receipt = gate.receipt_for(q.query_id, q.ledger_index, settings)
        receipt.verify(verifier)
        assert receipt.fields["use_id"] == q.use_id
        assert receipt.proof.tree_size >= q.checkpoint_size > q.ledger_index
    # A receipt for another entry must not pass as this one's.
    forged = gate.Receipt(
        query_id=receipt.query_id,
        ledger_index=receipt.ledger_index,
        entry=gate.receipt_for(queries[0].query_id, queries[0].ledger_index, settings).entry,
        proof=receipt.proof,
        checkpoint=receipt.checkpoint,
    )
    with pytest.raises(gate.ReceiptError):
        forged.verify(verifier)
    assert sum(q.suppressed for q in queries) > 0
    assert sum(q.rounded for q in queries) > 0
    assert "Gated queries" in built.output and "verified" in built.output
    # The released output went through a checker, and its published counts are rounded.
    dataset = catalogue.get_dataset(settings, RELEASED_DATASET)
    assert dataset.origin == "release" and dataset.release_id
    (csv_file,) = [r.file_name for r in dataset.resources if r.file_name.endswith(".csv")]
    with catalogue.dataset_file(settings, dataset, csv_file).open() as handle:
        rows = list(csv.DictReader(handle))
    counts = [r[k] for r in rows for k in ("attendances", "people") if r[k] != "[c]"]
    assert counts and all(int(c) % 5 == 0 for c in counts)


def test_demo_runs_the_studies_and_publishes_their_outputs_and_the_sensor_feed(built: Built):
    settings = built.settings
    results = built.report.facts["studies"]
    assert built.report.facts["studies_not_run"] == {}
    assert sorted(results) == sorted(STUDY_NAMES)
    for name, result in results.items():
        assert result.datasets, name
        for dataset in result.datasets:
            published = catalogue.get_dataset(settings, dataset)
            assert published.origin == "release" and published.use_id == result.use_id
        assert (result.report_dir / "index.html").exists()
    figures = results["home-safety-visits"].figures
    assert figures["ci_low"] <= figures["estimate"] <= figures["ci_high"]
    assert 0 <= results["family-needs"].figures["adjusted_rand"] <= 1
    feed = catalogue.get_dataset(settings, SENSOR_DATASET)
    assert feed.declaration is not None and feed.declaration.declared_by == IG_LEAD
    lines = (Home(built.home).synth / SENSOR_FEED).read_text().count("\n")
    assert feed.rows == lines - 1
    for name in STUDY_NAMES:
        assert name in built.output
    assert "planted truth" in built.output
    assert f"/data/{SENSOR_DATASET}" in built.output


def test_choose_opt_outs_holds_the_share_and_every_area_bound_at_county_scale():
    # 60 GP practices of very different sizes, about 1.5 million people, as the biggest demo.
    rng = np.random.default_rng(3)
    sizes = np.concatenate(
        [[MIN_AREA_PEOPLE, MIN_AREA_PEOPLE + 7, 95], rng.integers(2_000, 60_000, 57)]
    )
    codes = np.repeat(np.arange(len(sizes)), sizes)
    rng.shuffle(codes)
    people = int(sizes.sum() * 1.02)  # a few people have no GP registration, so no area
    chosen = choose_opt_outs(codes.astype(np.int64), people, np.random.default_rng(1))
    assert len(np.unique(chosen)) == len(chosen)
    assert abs(len(chosen) / people - 0.05) < 0.004
    rates = np.bincount(codes[chosen], minlength=len(sizes)) / sizes
    assert rates.min() >= AREA_RATE_BOUNDS[0] and rates.max() <= AREA_RATE_BOUNDS[1]
    assert rates.max() - rates.min() > 0.03  # areas differ, as they do in England
    again = choose_opt_outs(codes.astype(np.int64), people, np.random.default_rng(1))
    assert np.array_equal(chosen, again)


def test_demo_replaces_its_own_previous_home(built: Built, tmp_path: Path):
    home = tmp_path / "demo"
    shutil.copytree(built.home, home)
    (home / "leftover").write_text("from the last demo")
    again = runner.invoke(app, ["demo", "--people", "600", "--home", str(home), "--no-serve"])
    assert again.exit_code == 0, again.output
    assert "600 people" in again.output
    assert not (home / "leftover").exists()
    # At the default effect sizes a county this small is too small for some studies, which
    # say so rather than publish anything; the rest of the demo still completes.
    assert "not run:" in again.output
    assert "needs a larger population" in again.output


def test_demo_refuses_a_directory_holding_other_data(tmp_path: Path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "report.docx").write_text("do not lose me")
    result = runner.invoke(app, ["demo", "--people", "500", "--home", str(precious), "--no-serve"])
    assert result.exit_code == 2
    assert "did not create" in result.output
    assert (precious / "report.docx").read_text() == "do not lose me"
