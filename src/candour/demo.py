"""``candour demo``: the whole pipeline on a synthetic county, in a fresh data home.

Each stage is timed and its peak memory noted, so the same run doubles as the county-scale
benchmark. The stages, each built from the domain packages' own functions:

1. ``init``, ``synth``, ``ingest``, ``link`` (carrying choices), ``evaluate`` (against truth);
2. ``register``: staff users (an analyst, a different IG lead, a checker), and a planning use
   and a research use applied, submitted and approved (issue 5);
3. ``choices``: 5% of residents opt out of research and service planning (the national data
   opt-out's scope), at rates between 1% and 10% per GP practice: some through the national
   opt-out list import (matched by NHS number through the vault), the rest as portal choices;
4. ``queries``: gated aggregate queries under both uses, each with a receipt verified against
   the log's checkpoint and a summary of what disclosure control did; one output is released by
   the checker and published;
5. ``studies``: the three built-in studies, each publishing its released outputs (issue 7);
6. ``open data``: the synthetic road-surface temperature sensor feed, published on an IG
   lead's declaration that it holds no personal data.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from candour import catalogue, choices, disclosure, gate, ledger, register
from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home
from candour.initialise import initialise_home
from candour.linkage.outputs import evaluate_index
from candour.progress import ProgressCallback, silent
from candour.sources.ingest import ingest
from candour.sources.spec import load_sources
from candour.sources.standardise import standardise_values
from candour.store import dispose, transaction
from candour.store.linkage import PersonIndexEntry, PersonNumber
from candour.studies import StudyError, StudyResult, run_study
from candour.synth import SynthConfig, write_county
from candour.vault import dispose_vault
from candour.warehouse import open_warehouse
from candour.workflows.carry_choices import link_carrying_choices
from candour.workflows.optout_import import OptOutImportReport, import_optouts

DEMO_MARKER = ".candour-demo"
DEFAULT_DEMO_HOME = Path("candour-demo")
MIN_PEOPLE = 500

# The demo's staff: the analyst applies for and queries under both uses; a different IG lead
# approves them and declares the sensor feed non-personal; the checker releases an output.
ANALYST = "demo-analyst"
IG_LEAD = "demo-ig"
CHECKER = "demo-checker"
ORGANISATION = "Wealdshire County Council"

# England's national data opt-out stands at about 5% of patients, varying by GP practice from
# about 1% to 10% or more; the demo plants that pattern, per GP practice.
OPT_OUT_SHARE = 0.05
AREA_RATE_BOUNDS = (0.01, 0.10)
# Rates are drawn inside a narrower band, so that rounding to whole people and the odd extra
# match (an NHS number that linkage left on two people) cannot push a practice out of bounds.
_RATE_DRAW = (0.015, 0.09)
# A practice smaller than this cannot hold a rate between 1% and 10% in whole people; such
# practices are pooled into one area.
MIN_AREA_PEOPLE = 20
SMALL_PRACTICES = "other practices"
# The national data opt-out covers research and planning; it is what these residents chose.
OPT_OUT_PURPOSES = ("research", "service-planning")
# Of those opting out with a valid NHS number, this share did so through the NHS national list
# (imported by NHS number); the rest through the resident portal.
NATIONAL_LIST_SHARE = 0.6
NATIONAL_LIST_ACTOR = "nhs-national-data-opt-out"
STUDY_NAMES = ("home-safety-visits", "family-needs", "hmo-risk")
SENSOR_FEED = Path("open") / "road_surface_temperatures.csv"
SENSOR_DATASET = "road-surface-temperatures"
RELEASED_DATASET = "ae-attendances-by-diagnosis"


@dataclass
class StageTiming:
    """How long one stage took and the process's peak memory after it."""

    name: str
    seconds: float
    peak_rss_mb: float


@dataclass
class DemoReport:
    """What the demo built, where, and how long each stage took."""

    home: Path
    people: int
    seed: int
    stages: list[StageTiming] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AreaOptOuts:
    """One area's (GP practice's) people and how many of them opted out."""

    area: str
    people: int
    opted_out: int

    @property
    def rate(self) -> float:
        """The share of the area's people who opted out."""
        return self.opted_out / self.people if self.people else 0.0


@dataclass
class OptOutSummary:
    """What the choices stage recorded, measured from the store afterwards (not the plan)."""

    people: int
    """Current people in the person index."""
    opted_out: int
    """People opted out of at least one of :data:`OPT_OUT_PURPOSES`, for every source."""
    areas: list[AreaOptOuts]
    national: list[OptOutImportReport]
    """One national opt-out list import per purpose."""
    portal_people: int
    portal_recorded: int
    ledger_entries: int
    """Choice changes logged in this stage (one log entry each)."""

    @property
    def share(self) -> float:
        """The share of people opted out."""
        return self.opted_out / self.people if self.people else 0.0


@dataclass(frozen=True)
class QueryFact:
    """One gated query the demo ran: under which use, its receipt, and what SDC did."""

    use_id: str
    purpose: str
    question: str
    query_id: str
    rows: int
    ledger_index: int
    checkpoint_size: int
    receipt_verified: bool
    cells: int
    suppressed: int
    rounded: int


@dataclass(frozen=True)
class StudyFact:
    """A study's headline figure beside what the synthetic county planted."""

    name: str
    use_id: str
    headline: str
    planted: str
    datasets: list[str]
    not_run: str = ""
    """Why the study could not run (empty when it ran)."""


@dataclass(frozen=True)
class DemoQuery:
    """A question the demo asks through the gate, and its SQL."""

    question: str
    sql: str


def prepare_fresh_home(home: Path) -> None:
    """Make ``home`` an empty directory for the demo, without ever deleting someone's data.

    A previous demo home (it carries a marker file) is replaced; any other non-empty directory
    is refused.
    """
    if home.exists():
        if not home.is_dir():
            raise CandourError(f"{home} exists and is not a directory; choose another --home")
        if any(home.iterdir()):
            if not (home / DEMO_MARKER).exists():
                raise CandourError(
                    f"{home} already holds data that the demo did not create; the demo needs a "
                    "fresh home, so choose an empty or new directory with --home"
                )
            shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / DEMO_MARKER).write_text(
        "This data home was made by `candour demo` and may be replaced by the next demo run.\n"
    )


def describe_store(settings: Settings) -> str:
    """Where the store is, for the demo's summary (never with a password)."""
    if settings.database_url is None:
        return "SQLite in the home"
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite: {url.database}"
    where = f"{url.host}:{url.port}" if url.port else (url.host or "local socket")
    return f"{url.get_backend_name()}: {url.database} on {where}"


def _tables_in(url: str, variable: str) -> list[str]:
    """The tables in the default schema of the database at ``url`` (named by ``variable``)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise CandourError(f"{variable} is not a database URL: {exc}") from None
    safe = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        # Inspecting a missing SQLite file would create it: a missing file holds no tables.
        if not database or database == ":memory:" or not Path(database).exists():
            return []
    # A throwaway engine: the store's shared one would keep a pool open on a database the
    # demo may refuse, and NullPool leaves nothing behind.
    try:
        engine = create_engine(parsed, poolclass=NullPool)
    except (SQLAlchemyError, ImportError) as exc:  # an unknown dialect or a missing driver
        raise CandourError(f"{variable} names a database Candour cannot use: {exc}") from None
    try:
        with engine.connect() as connection:
            return sorted(inspect(connection).get_table_names())
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise CandourError(
            f"cannot reach the database at {safe} ({variable}): {reason[0] if reason else exc}"
        ) from None
    finally:
        engine.dispose()


def _tables_text(tables: list[str]) -> str:
    if len(tables) == 1:
        return f"1 table ({tables[0]})"
    return f"{len(tables)} tables (e.g. {', '.join(tables[:3])})"


def check_external_databases(settings: Settings) -> None:
    """Refuse to run over an external store or vault database that already holds tables.

    The demo replaces only what it can prove it made: a home directory carrying its marker.
    A database named by ``CANDOUR_DATABASE_URL`` or ``CANDOUR_VAULT_URL`` carries no such
    proof, and it may be a real deployment's, so the demo never empties or drops one, and it
    will not mix a synthetic county into one that holds anything: it must start empty.
    """
    for variable, url in (
        ("CANDOUR_DATABASE_URL", settings.database_url),
        ("CANDOUR_VAULT_URL", settings.vault_url),
    ):
        if url is None:
            continue
        tables = _tables_in(url, variable)
        if tables:
            safe = make_url(url).render_as_string(hide_password=True)
            raise CandourError(
                f"the database at {safe} ({variable}) already holds {_tables_text(tables)}; "
                "the demo never empties a database, so "
                f"create a new, empty one for it (e.g. `createdb candour_demo`) and set "
                f"{variable} to that, or drop this one yourself if nothing in it is needed"
            )


def run_demo(
    settings: Settings,
    people: int,
    seed: int,
    progress: ProgressCallback = silent,
    on_stage: Callable[[StageTiming], None] | None = None,
    config: SynthConfig | None = None,
) -> DemoReport:
    """Run every stage of the demo in a fresh home and report what was built.

    ``config`` overrides the synthetic county's settings (error rates, effect sizes), as
    ``candour synth --config`` does. With an external store or vault (``database_url``,
    ``vault_url``) that database must be empty (:func:`check_external_databases`); the engine
    (``settings.engine``, DuckDB or Spark) runs linkage, the gate's queries and the studies.
    """
    if people < MIN_PEOPLE:
        # Smaller counties leave some services with no records at all, which ingest refuses.
        raise CandourError(f"--people must be at least {MIN_PEOPLE} for the demo")
    # Before anything in the home is replaced: a refusal must leave everything as it was.
    check_external_databases(settings)
    home = Home(settings.home)
    # A previous demo in this process may still hold connections to the home it replaces.
    dispose(settings)
    dispose_vault(settings)
    ledger.close_log(settings)
    prepare_fresh_home(home.root)
    report = DemoReport(home=home.root, people=people, seed=seed)

    def stage(name: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = work()
        timing = StageTiming(
            name=name,
            seconds=time.perf_counter() - started,
            peak_rss_mb=_peak_rss_mb(),
        )
        report.stages.append(timing)
        if on_stage is not None:
            on_stage(timing)
        return result

    init = stage("init", lambda: initialise_home(settings))
    report.facts["home_id"] = init.home_id
    county = stage(
        "synth",
        lambda: write_county(
            home.synth, people=people, seed=seed, config=config, progress=progress
        ),
    )
    report.facts["county"] = county

    def ingest_county() -> Any:
        with open_warehouse(settings) as warehouse:
            return ingest(home.synth / "sources.yaml", settings, warehouse, progress=progress)

    ingested = stage("ingest", ingest_county)
    report.facts["ingest"] = ingested
    report.facts["link"] = stage(
        "link", lambda: link_carrying_choices(settings, progress=progress)[0]
    )
    report.facts["quality"] = stage(
        "evaluate", lambda: evaluate_index(settings, home.synth / "truth" / "records.csv")
    )
    report.facts["uses"] = stage("register", lambda: register_demo_uses(settings))
    report.facts["optouts"] = stage(
        "choices", lambda: plant_opt_outs(settings, seed=seed, progress=progress)
    )
    planning, research = report.facts["uses"]
    queries, released = stage(
        "queries", lambda: run_demo_queries(settings, planning, research, progress=progress)
    )
    report.facts["queries"] = queries
    report.facts["released_dataset"] = released
    studies, not_run = stage("studies", lambda: run_demo_studies(settings, progress=progress))
    report.facts["studies"] = studies
    report.facts["studies_not_run"] = not_run
    report.facts["study_facts"] = study_facts(
        studies, not_run, home.synth / "truth" / "effects.json"
    )
    report.facts["sensor_dataset"] = stage("open data", lambda: publish_sensor_feed(settings))
    return report


# --- Issue 5: staff, data uses, residents' choices and gated queries -----------------------


def _use_spec(kind: str) -> register.UseSpec:
    """The demo's planning (``"planning"``) or research (``"research"``) use, valid a year."""
    today = register.uk_today()
    common: dict[str, Any] = {
        "organisation": ORGANISATION,
        "applicant": ANALYST,
        "analysts": [ANALYST],
        "output": "aggregate",
        "disclosure": {"threshold": 10, "rounding": 5},
        "starts": today.isoformat(),
        "ends": (today + timedelta(days=365)).isoformat(),
    }
    if kind == "planning":
        spec = {
            "title": "Demo: urgent care demand by diagnosis and GP practice",
            "summary": "How many people attend A&E, for what, and from which GP practices, so "
            "that urgent care and falls services are planned where they are needed.",
            "public_benefit": "Urgent care planned for the demand residents actually have.",
            "team": "Public Health Intelligence",
            "senior_responsible_owner": "Director of Public Health",
            "purpose": "service-planning",
            "legal_basis": {
                "article_6": "6(1)(e) public task",
                "article_9": "9(2)(h) health or social care",
                "dpa_schedule_1": "Part 1 paragraph 2 (health or social care purposes)",
                "common_law": "Pseudonymised data and aggregate outputs only; residents who "
                "opt out of planning are excluded (national data opt-out honoured)",
            },
            "grants": {
                "ae_attendances": ["diagnosis_category", "arrival_mode"],
                "gp_registrations": ["practice_code"],
            },
        }
    else:
        spec = {
            "title": "Demo: police incidents and A&E attendances",
            "summary": "Which kinds of police incident involve people who also attend A&E, and "
            "for what, to inform joint work between the police and the NHS.",
            "public_benefit": "Earlier help for people in contact with both services.",
            "team": "Community Safety Research",
            "senior_responsible_owner": "Head of Community Safety",
            "purpose": "research",
            "legal_basis": {
                "article_6": "6(1)(e) public task",
                "article_9": "9(2)(j) archiving, research or statistics",
                "dpa_schedule_1": "Part 1 paragraph 4 (research)",
                "common_law": "Pseudonymised data and aggregate outputs only; residents who "
                "opt out of research are excluded (national data opt-out honoured)",
            },
            "grants": {
                "police_incidents": ["incident_type"],
                "ae_attendances": ["diagnosis_category"],
            },
        }
    return register.UseSpec.model_validate({**common, **spec})


def register_demo_uses(settings: Settings) -> tuple[register.UseView, register.UseView]:
    """Add the demo's staff and register a planning use and a research use: each applied and
    submitted by the analyst and approved by the IG lead (a different person). Returns both."""
    for name, role in ((ANALYST, "analyst"), (IG_LEAD, "ig"), (CHECKER, "checker")):
        register.add_user(name, role, settings=settings)
    purposes = choices.load_purposes(settings)
    views = []
    for kind in ("planning", "research"):
        draft = register.apply_use(_use_spec(kind), purposes=purposes, settings=settings)
        register.submit(draft.use_id, ANALYST, settings=settings)
        views.append(register.approve(draft.use_id, IG_LEAD, purposes=purposes, settings=settings))
    return views[0], views[1]


def person_areas(settings: Settings, synth_dir: Path) -> tuple[pd.DataFrame, int]:
    """Each linked person's area (their GP practice) and NHS number, and how many people there
    are.

    The practice comes from the synthetic county's GP registration extract in the synth
    directory (the residents' own registrations, which the demo wrote), joined to the person
    index by record key; a person with several registrations takes the first. People with no GP
    registration have no area and are left out of the frame. Practices too small to hold a
    rate between 1% and 10% in whole people are pooled as :data:`SMALL_PRACTICES`.
    """
    spec = load_sources(synth_dir / "sources.yaml").source("gp_registrations")
    if spec.record_id is None:
        raise CandourError("the synthetic GP extract has no record id column")
    practice = spec.attributes["practice_code"].column
    nhs = spec.identity.nhs_number
    columns = [spec.record_id, practice] + ([nhs] if nhs else [])
    extract = pd.read_csv(
        synth_dir / spec.files[0],
        sep=spec.csv.delimiter,
        usecols=columns,
        dtype=str,
        keep_default_na=False,
        encoding="utf-8-sig",
    )
    extract = pd.DataFrame(
        {
            "record_key": "gp_registrations:" + extract[spec.record_id],
            "area": extract[practice],
            "nhs_number": extract[nhs] if nhs else "",
        }
    )
    with transaction(settings) as session:
        index = pd.DataFrame(
            session.execute(
                select(PersonIndexEntry.record_key, PersonIndexEntry.person_id).where(
                    PersonIndexEntry.record_key.like("gp_registrations:%")
                )
            ).all(),
            columns=["record_key", "person_id"],
        )
        people = int(
            session.scalar(
                select(func.count())
                .select_from(PersonNumber)
                .where(PersonNumber.retired_run.is_(None))
            )
            or 0
        )
    frame = (
        extract.merge(index, on="record_key")
        .sort_values("record_key", kind="stable")
        .drop_duplicates("person_id")
        .reset_index(drop=True)
    )
    sizes = frame["area"].map(frame["area"].value_counts())
    frame.loc[sizes < MIN_AREA_PEOPLE, "area"] = SMALL_PRACTICES
    pooled = int((frame["area"] == SMALL_PRACTICES).sum())
    if 0 < pooled < MIN_AREA_PEOPLE:
        # Too few even pooled: they join the largest practice rather than form a tiny area.
        largest = frame.loc[frame["area"] != SMALL_PRACTICES, "area"].value_counts().idxmax()
        frame.loc[frame["area"] == SMALL_PRACTICES, "area"] = largest
    return frame[["person_id", "area", "nhs_number"]], people


def choose_opt_outs(
    area_codes: np.ndarray[Any, np.dtype[np.int64]],
    people_total: int,
    rng: np.random.Generator,
    share: float = OPT_OUT_SHARE,
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Positions (into ``area_codes``) of the people who opt out, vectorised.

    ``area_codes`` gives each person with an area a dense area number. Each area gets its own
    rate (a random multiple of ``share``, scaled so the total is ``share`` of ``people_total``,
    kept inside :data:`_RATE_DRAW` and, in whole people, inside :data:`AREA_RATE_BOUNDS`), and
    that many of its people are drawn at random.
    """
    if len(area_codes) == 0:
        return np.zeros(0, dtype=np.int64)
    sizes = np.bincount(area_codes).astype(np.float64)
    weights = rng.uniform(0.3, 1.7, len(sizes))
    rates = weights * (share * people_total) / float((weights * sizes).sum())
    take = np.rint(np.clip(rates, *_RATE_DRAW) * sizes)
    low = np.ceil(AREA_RATE_BOUNDS[0] * sizes)
    high = np.floor(AREA_RATE_BOUNDS[1] * sizes)
    take = np.where(low <= high, np.clip(take, low, high), 0).astype(np.int64)
    # Rank each person within their area in a random order; the first ``take`` opt out.
    order = np.lexsort((rng.random(len(area_codes)), area_codes))
    sorted_codes = area_codes[order]
    starts = np.searchsorted(sorted_codes, np.arange(len(sizes)))
    rank = np.arange(len(order)) - starts[sorted_codes]
    return np.sort(order[rank < take[sorted_codes]])


def plant_opt_outs(
    settings: Settings, *, seed: int, progress: ProgressCallback = silent
) -> OptOutSummary:
    """Opt a realistic share of residents out of research and planning, through the normal
    choices API, and measure the result from the store.

    Who opts out is chosen per GP practice (:func:`choose_opt_outs`). Of those with a valid
    NHS number, :data:`NATIONAL_LIST_SHARE` are written to a national data opt-out list and
    imported with :func:`candour.workflows.optout_import.import_optouts` (matched through the
    vault's NHS number index; channel ``bulk-import``); the rest are recorded as portal choices
    (channel ``portal``, actor ``resident``) in one batch. Every change is logged with its
    per-person commitment, as any choice is.
    """
    home = Home(settings.home)
    frame, people = person_areas(settings, home.synth)
    rng = np.random.default_rng([seed, 5_000_005])
    codes, _ = pd.factorize(frame["area"], sort=True)
    # The target is 5% of all people; those with no GP registration (no area) are not picked,
    # so the practices carry them at a slightly higher rate.
    chosen = frame.iloc[choose_opt_outs(codes.astype(np.int64), people, rng)]
    progress("choices", 0, len(chosen))

    # The national list carries NHS numbers, so only people whose number is valid can be on it.
    numbers = standardise_values("nhs_number", chosen["nhs_number"].tolist())
    valid = np.array([bool(ok) and bool(value) for value, ok in numbers], dtype=bool)
    national = valid & (rng.random(len(chosen)) < NATIONAL_LIST_SHARE)
    list_file = home.root / "demo" / "national-data-opt-out.csv"
    list_file.parent.mkdir(parents=True, exist_ok=True)
    list_file.write_text(
        "".join(f"{value}\n" for (value, _), on in zip(numbers, national, strict=True) if on)
    )
    imports = [
        import_optouts(list_file, purpose, actor=NATIONAL_LIST_ACTOR, settings=settings)
        for purpose in OPT_OUT_PURPOSES
    ]
    progress("choices", int(national.sum()), len(chosen))
    portal = chosen.loc[~national, "person_id"].tolist()
    recorded = choices.record_choices(
        [
            choices.ChoiceRequest(person, purpose, "opt-out")
            for person in portal
            for purpose in OPT_OUT_PURPOSES
        ],
        channel="portal",
        actor="resident",
        settings=settings,
    ).recorded
    progress("choices", len(chosen), len(chosen))

    # Measure what is in force now, as the gate will see it.
    out: set[str] = set()
    for purpose in OPT_OUT_PURPOSES:
        out.update(choices.snapshot(purpose, settings=settings).everywhere.person_ids)
    flags = frame["person_id"].isin(out)
    counts = frame.assign(out=flags).groupby("area")["out"].agg(["size", "sum"])
    areas = [
        AreaOptOuts(str(area), int(row["size"]), int(row["sum"])) for area, row in counts.iterrows()
    ]
    return OptOutSummary(
        people=people,
        opted_out=len(out),
        areas=areas,
        national=imports,
        portal_people=len(portal),
        portal_recorded=len(recorded),
        ledger_entries=len(recorded) + sum(r.recorded for r in imports),
    )


PLANNING_QUERIES = (
    DemoQuery(
        "A&E attendances by diagnosis",
        "SELECT diagnosis_category, count(*) AS attendances, "
        "count(DISTINCT person_id) AS people FROM ae_attendances "
        "GROUP BY diagnosis_category ORDER BY diagnosis_category",
    ),
    DemoQuery(
        "A&E falls by GP practice",
        "SELECT g.practice_code, count(DISTINCT a.person_id) AS people "
        "FROM ae_attendances a JOIN gp_registrations g ON g.person_id = a.person_id "
        "WHERE a.diagnosis_category = 'fall' GROUP BY g.practice_code ORDER BY g.practice_code",
    ),
)
RESEARCH_QUERIES = (
    DemoQuery(
        "Police incidents by type",
        "SELECT incident_type, count(DISTINCT person_id) AS people FROM police_incidents "
        "GROUP BY incident_type ORDER BY incident_type",
    ),
    DemoQuery(
        "Police incident type by A&E diagnosis",
        "SELECT p.incident_type, a.diagnosis_category, count(DISTINCT p.person_id) AS people "
        "FROM police_incidents p JOIN ae_attendances a ON a.person_id = p.person_id "
        "GROUP BY p.incident_type, a.diagnosis_category "
        "ORDER BY p.incident_type, a.diagnosis_category",
    ),
)


def _query_fact(
    use: register.UseView, query: DemoQuery, result: gate.QueryResult, verifier: Any
) -> QueryFact:
    receipt = result.receipt
    try:
        receipt.verify(verifier)
        verified = True
    except gate.ReceiptError:
        verified = False
    summary = result.disclosure_summary()
    return QueryFact(
        use_id=use.use_id,
        purpose=use.spec.purpose,
        question=query.question,
        query_id=result.query_id,
        rows=len(result.table),
        ledger_index=receipt.ledger_index,
        checkpoint_size=receipt.proof.tree_size,
        receipt_verified=verified,
        cells=int(summary.get("cells", 0)),
        suppressed=sum(int(summary.get(k, 0)) for k in ("primary", "dominance", "secondary")),
        rounded=int(summary.get("rounded", 0)),
    )


def run_demo_queries(
    settings: Settings,
    planning: register.UseView,
    research: register.UseView,
    progress: ProgressCallback = silent,
) -> tuple[list[QueryFact], str]:
    """Run a few gated aggregate queries under each use, verify each receipt against the log's
    checkpoint, and have the checker release the first output, which is then published.

    Returns the facts of each query and the published dataset's name.
    """
    verifier = gate.home_verifier(settings)
    plan: list[tuple[register.UseView, DemoQuery]] = [(planning, q) for q in PLANNING_QUERIES]
    plan += [(research, q) for q in RESEARCH_QUERIES]
    facts: list[QueryFact] = []
    first: gate.QueryResult | None = None
    for done, (use, query) in enumerate(plan):
        progress("queries", done, len(plan))
        result = gate.run(use.use_id, ANALYST, query.sql, settings=settings)
        first = first or result
        facts.append(_query_fact(use, query, result, verifier))
    progress("queries", len(plan), len(plan))
    assert first is not None
    # The road out for an output: saved, requested by the analyst, approved by the checker
    # (the two-person rule), then published with the catalogue's own check.
    output = first.save(settings=settings, name="ae-attendances-by-diagnosis")
    release = disclosure.request_release(settings, output.output_id, user=ANALYST)
    disclosure.approve_release(settings, release.release_id, checker=CHECKER)
    dataset = catalogue.publish_release(
        settings,
        release.release_id,
        title="A&E attendances by diagnosis (demo)",
        keywords=["emergency department", "urgent care", "planning"],
        name=RELEASED_DATASET,
        published_by=CHECKER,
    )
    return facts, dataset.name


# --- Issue 7: the studies, and the sensor feed ---------------------------------------------


def run_demo_studies(
    settings: Settings, progress: ProgressCallback = silent
) -> tuple[dict[str, StudyResult], dict[str, str]]:
    """Run the three built-in studies as ``candour study run`` does: each registers its use,
    queries through the gate, releases and publishes its safe outputs, and writes its report.

    Returns the results, and for each study that could not run, why: a small county can have
    too few falls, families or HMOs for a study's outputs to survive disclosure control, which
    the study says (a :class:`~candour.studies.StudyError`) rather than publish anything unsafe.
    """
    purposes = choices.load_purposes(settings)
    results: dict[str, StudyResult] = {}
    not_run: dict[str, str] = {}
    for done, name in enumerate(STUDY_NAMES):
        progress("studies", done, len(STUDY_NAMES))
        try:
            results[name] = run_study(name, settings=settings, purposes=purposes)
        except StudyError as exc:
            not_run[name] = str(exc)
    progress("studies", len(STUDY_NAMES), len(STUDY_NAMES))
    return results, not_run


def _number(value: float | None, fmt: str) -> str:
    return "not available" if value is None else format(value, fmt)


def study_facts(
    results: dict[str, StudyResult], not_run: dict[str, str], effects_file: Path
) -> list[StudyFact]:
    """Each study's headline figure beside the effect the synthetic county planted (or why it
    did not run)."""
    effects: dict[str, Any] = json.loads(effects_file.read_text(encoding="utf-8"))
    facts: list[StudyFact] = []
    for name, reason in not_run.items():
        facts.append(StudyFact(name, "", "", "", [], not_run=reason))
    for name, result in results.items():
        figures = result.figures
        if name == "home-safety-visits":
            headline = (
                f"falls {_number(figures.get('estimate'), '+.1%')} after a visit (95% CI "
                f"{_number(figures.get('ci_low'), '+.1%')} to "
                f"{_number(figures.get('ci_high'), '+.1%')})"
            )
            planted = f"{effects['home_safety_visit_falls_effect']:+.1%}"
        elif name == "family-needs":
            headline = (
                f"{result.details.get('groups', '?')} groups, adjusted Rand "
                f"{_number(figures.get('adjusted_rand'), '.2f')}"
            )
            planted = f"{effects['family_need_clusters']} groups"
        else:
            hmos = effects["hmos"]
            headline = f"precision at 100 {_number(figures.get('precision_at_100'), '.2f')}"
            # With fewer than 100 unlicensed HMOs, precision at 100 cannot reach 1.
            best = min(int(hmos["unlicensed_hmos"]), 100) / 100
            planted = (
                f"{hmos['unlicensed_hmos']:,} unlicensed HMOs in {hmos['properties']:,} "
                f"properties (best possible {best:.2f})"
            )
        facts.append(StudyFact(name, result.use_id, headline, planted, list(result.datasets)))
    return facts


def publish_sensor_feed(settings: Settings) -> str:
    """Publish the synthetic road-surface temperature feed on the IG lead's declaration that it
    holds no personal data (as ``candour catalogue publish-file --declare-non-personal``)."""
    dataset = catalogue.publish_file(
        settings,
        Home(settings.home).synth / SENSOR_FEED,
        title="Road surface temperatures on gritting routes",
        description="Hourly road surface and air temperatures from the county's roadside "
        "sensors over one gritting season (synthetic).",
        publisher=ORGANISATION,
        declared_by=IG_LEAD,
        declare_non_personal=True,
        keywords=["roads", "gritting", "weather", "sensors"],
        spatial="Wealdshire",
        frequency="hourly",
        name=SENSOR_DATASET,
    )
    return dataset.name


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024
