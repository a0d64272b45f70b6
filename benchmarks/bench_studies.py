"""The studies benchmark: all three built-in studies on a synthetic county built through the
real pipeline (init, synth, ingest, link), scored against the planted truth (issue 7).

Full run: 100,000 people, the default county (seed 7), judged against the issue's targets:
``home-safety-visits``' 95% CI covers the planted effect and excludes zero, ``family-needs``
reaches an adjusted Rand index >= 0.8, ``hmo-risk`` precision at 100 >= 0.8. Quick run: a few
thousand people with denser effects (:data:`SMALL_CONFIG`), to check the code still works.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import Result, stopwatch
from candour import choices
from candour.config import Settings
from candour.initialise import initialise_home
from candour.linkage.runs import link
from candour.sources.ingest import ingest
from candour.studies import StudyResult, run_study
from candour.synth import write_county
from candour.synth.config import SynthConfig
from candour.warehouse import open_warehouse

FULL_PEOPLE = 100_000
FULL_SEED = 7
SMALL_PEOPLE = 3_000
SMALL_SEED = 11
# At a few thousand people the default county has too few falls, HMOs and families for the
# studies to say anything; these settings make each effect dense enough to test, without
# changing how it is planted.
SMALL_CONFIG: dict[str, Any] = {
    "visit_share": 0.4,
    "falls_base_rate": 0.3,
    "unlicensed_hmo_share": 0.02,
}


def build_home(
    root: Path, people: int, seed: int, config: dict[str, Any] | None = None
) -> tuple[Settings, dict[str, float], dict[str, float]]:
    """A linked home with a synthetic county in it; returns its settings, the planted effects
    (``truth/effects.json``) and each stage's seconds."""
    settings = Settings(home=root)
    timings: dict[str, float] = {}
    with stopwatch() as elapsed:
        initialise_home(settings)
    timings["init"] = elapsed()
    synth_dir = root / "synth"
    with stopwatch() as elapsed:
        write_county(
            synth_dir,
            people=people,
            seed=seed,
            config=SynthConfig.model_validate(config or {}),
        )
    timings["synth"] = elapsed()
    with stopwatch() as elapsed, open_warehouse(settings) as warehouse:
        ingest(synth_dir / "sources.yaml", settings, warehouse)
    timings["ingest"] = elapsed()
    with stopwatch() as elapsed:
        link(settings)
    timings["link"] = elapsed()
    effects = json.loads((synth_dir / "truth" / "effects.json").read_text())
    return settings, effects, timings


def run_all(settings: Settings) -> tuple[dict[str, StudyResult], dict[str, float]]:
    """Run every study once; return the results and each one's seconds."""
    purposes = choices.load_purposes(settings)
    results: dict[str, StudyResult] = {}
    seconds: dict[str, float] = {}
    for name in ("home-safety-visits", "family-needs", "hmo-risk"):
        with stopwatch() as elapsed:
            results[name] = run_study(name, settings=settings, purposes=purposes)
        seconds[name] = elapsed()
    return results, seconds


def _figure(result: StudyResult, key: str) -> float:
    value = result.figures.get(key)
    if value is None:
        raise RuntimeError(f"{result.name} gave no {key}")
    return float(value)


def run(quick: bool) -> list[Result]:
    """Build the county, run the three studies, and judge them against the targets."""
    people, seed = (SMALL_PEOPLE, SMALL_SEED) if quick else (FULL_PEOPLE, FULL_SEED)
    config = SMALL_CONFIG if quick else None
    with tempfile.TemporaryDirectory(prefix="bench-studies-") as tmp:
        settings, effects, build = build_home(Path(tmp) / "home", people, seed, config)
        results, seconds = run_all(settings)
    judge = (lambda ok: None) if quick else (lambda ok: bool(ok))
    scale = f"{people:,} people, seed {seed}"

    planted = float(effects["home_safety_visit_falls_effect"])
    hsv = results["home-safety-visits"]
    estimate, low, high = (_figure(hsv, k) for k in ("estimate", "ci_low", "ci_high"))
    covers = low <= planted <= high
    excludes_zero = high < 0 or low > 0 or planted == 0
    family = _figure(results["family-needs"], "adjusted_rand")
    precision = _figure(results["hmo-risk"], "precision_at_100")
    base_rate = float(effects["hmos"]["unlicensed_hmo_share_realised"])
    build_note = ", ".join(f"{k} {v:.0f} s" for k, v in build.items())
    return [
        Result(
            "home-safety-visits rate ratio after a visit",
            1.0 + estimate,
            "ratio",
            "95% CI covers the planted effect and excludes no change",
            judge(covers and excludes_zero),
            reference="planted ratio (1 + home_safety_visit_falls_effect)",
            reference_figure=1.0 + planted,
            ratio=(1.0 + estimate) / (1.0 + planted) if planted > -1 else None,
            notes=(
                f"{scale}; relative change {estimate:+.3f} (95% CI {low:+.3f} to {high:+.3f}) vs "
                f"planted {planted:+.3f}; stratified on "
                f"{hsv.details['stratification']}; {seconds['home-safety-visits']:.0f} s"
            ),
            extra={"estimate": estimate, "ci_low": low, "ci_high": high, "planted": planted},
        ),
        Result(
            "family-needs adjusted Rand index",
            family,
            "ARI",
            ">= 0.8 at 100,000 people",
            judge(family >= 0.8),
            notes=(
                f"{scale}; {results['family-needs'].details['groups']} groups chosen by "
                f"silhouette; planted {effects['family_need_clusters']}; "
                f"{seconds['family-needs']:.0f} s"
            ),
        ),
        Result(
            "hmo-risk precision at 100",
            precision,
            "share",
            ">= 0.8 at 100,000 people",
            judge(precision >= 0.8),
            # A ranking by chance finds unlicensed HMOs at their share of all properties, so
            # the ratio is the study's lift over chance.
            reference="precision of a random ranking (unlicensed HMOs' share of properties)",
            reference_figure=base_rate,
            ratio=precision / base_rate if base_rate > 0 else None,
            notes=(
                f"{scale}; {effects['hmos']['unlicensed_hmos']:,} unlicensed HMOs planted in "
                f"{effects['hmos']['properties']:,} properties; {seconds['hmo-risk']:.0f} s; "
                f"home built in {build_note}"
            ),
        ),
    ]
