"""``candour demo``: the whole pipeline on a synthetic county, in a fresh data home.

Each stage is timed and its peak memory noted, so the same run doubles as the county-scale
benchmark. Later capabilities (ingest, linkage, choices, queries, studies, publishing, serving)
add stages here.
"""

from __future__ import annotations

import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from candour import ledger
from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home
from candour.initialise import initialise_home
from candour.linkage.outputs import evaluate_index
from candour.progress import ProgressCallback, silent
from candour.sources.ingest import ingest
from candour.store import dispose
from candour.synth import write_county
from candour.vault import dispose_vault
from candour.warehouse import open_warehouse
from candour.workflows.carry_choices import link_carrying_choices

DEMO_MARKER = ".candour-demo"
DEFAULT_DEMO_HOME = Path("candour-demo")
MIN_PEOPLE = 500


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


def run_demo(
    settings: Settings,
    people: int,
    seed: int,
    progress: ProgressCallback = silent,
    on_stage: Callable[[StageTiming], None] | None = None,
) -> DemoReport:
    """Run every stage of the demo in a fresh home and report what was built."""
    if people < MIN_PEOPLE:
        # Smaller counties leave some services with no records at all, which ingest refuses.
        raise CandourError(f"--people must be at least {MIN_PEOPLE} for the demo")
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
        lambda: write_county(home.synth, people=people, seed=seed, progress=progress),
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
    return report


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024
