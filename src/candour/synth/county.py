"""Write a whole synthetic county: extracts, ``sources.yaml``, ground truth and open data.

The county is generated in chunks of about 25,000 residents. Each chunk is an independent
neighbourhood with its own random stream, derived from (seed, chunk index), so chunks can be
built by worker processes in any order and still be written in order: the same seed always
gives byte-identical files, whatever the number of workers.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import yaml

from candour.errors import CandourError
from candour.sources.spec import SourcesFile, parse_sources
from candour.synth.config import SynthConfig
from candour.synth.corruption import ERRORS
from candour.synth.effects import simulate_events
from candour.synth.extracts import SOURCES, format_dates, record_ids
from candour.synth.names import name_tables
from candour.synth.opendata import write_road_surface_temperatures
from candour.synth.population import (
    LICENSED_HMO,
    NEVER,
    UNLICENSED_HMO,
    VACANT,
    Population,
    build_population,
)

CHUNK_PEOPLE = 25_000
MAX_PEOPLE = 5_000_000

# Matches candour.progress.ProgressCallback: (task, completed, total).
Progress = Callable[[str, int, int | None], None]

TRUTH_FILES: dict[str, list[str]] = {
    "truth/records.csv": ["source", "record_id", "person_key"],
    "truth/people.csv": [
        "person_key",
        "given_name",
        "middle_name",
        "family_name",
        "previous_family_name",
        "family_name_changed_on",
        "sex",
        "date_of_birth",
        "nhs_number",
        "household_id",
        "property_id",
        "moved_on",
        "new_property_id",
        "died_on",
        "arrived_on",
        "left_on",
    ],
    "truth/record_errors.csv": ["source", "record_id", "error"],
    "truth/family_clusters.csv": ["household_id", "cluster"],
    "truth/hmos.csv": ["property_id", "is_unlicensed_hmo"],
}


@dataclass
class CountySummary:
    """What ``write_county`` built."""

    out: Path
    people: int  # residents at the window start (the --people asked for)
    people_total: int  # everyone who appears: residents, babies born, people moving in
    households: int
    properties: int
    records: int  # across all six sources
    records_by_source: dict[str, int]
    seconds: float
    chunks: int
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Task:
    seed: int
    chunk: int
    residents: int
    config: SynthConfig


@dataclass
class _ChunkOutput:
    chunk: int
    residents: int
    blobs: dict[str, bytes]
    records: dict[str, int]
    stats: dict[str, float]


def _csv_bytes(rows: Iterable[Any], delimiter: str = ",", line_end: str = "\n") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=line_end).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _person_keys(pop: Population) -> np.ndarray:
    return np.array([f"P{g:09d}" for g in pop.global_id], dtype=object)


def _iso(days: np.ndarray) -> list[str]:
    return format_dates(np.where(np.abs(days) >= NEVER, -(10**8), days), "%Y-%m-%d").tolist()


def _people_rows(pop: Population, keys: np.ndarray) -> bytes:
    names = name_tables()
    places = pop.places
    hh_ids = [f"H{pop.chunk * 100_000 + h:09d}" for h in pop.household]
    moved = pop.prop1 >= 0
    prev = np.where(pop.prev_surname >= 0, names.surnames[np.maximum(pop.prev_surname, 0)], "")
    middle = np.where(pop.middle >= 0, names.given[np.maximum(pop.middle, 0)], "")
    cols = [
        keys.tolist(),
        names.given[pop.given].tolist(),
        middle.tolist(),
        names.surnames[pop.surname].tolist(),
        prev.tolist(),
        _iso(pop.surname_change),
        np.where(pop.female, "F", "M").tolist(),
        _iso(pop.dob),
        pop.nhs.astype(str).tolist(),
        hh_ids,
        places.property_id[pop.prop0].astype(str).tolist(),
        _iso(np.where(moved, pop.move_day, NEVER)),
        np.where(moved, places.property_id[np.maximum(pop.prop1, 0)].astype(str), "").tolist(),
        _iso(pop.death),
        _iso(pop.arrival),
        _iso(pop.departure),
    ]
    return _csv_bytes(zip(*cols, strict=True))


def _make_chunk(task: _Task) -> _ChunkOutput:
    """Build one chunk entirely in memory and return its encoded file fragments."""
    rng = np.random.default_rng([task.seed, task.chunk])
    pop = build_population(rng, task.chunk, task.residents, task.seed, task.config)
    events = simulate_events(rng, pop, task.config)
    keys = _person_keys(pop)
    blobs: dict[str, bytes] = {}
    records: dict[str, int] = {}
    stats = {k: v for k, v in events.stats.items()}
    truth_records: list[bytes] = []
    truth_errors: list[bytes] = []
    for source in SOURCES:
        name = source.spec.name
        rows = source.build(rng, pop, events, task.config)
        n = len(rows.person)
        order = rng.permutation(n)
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        ids = np.array(record_ids(source, task.chunk, n), dtype=object)
        columns = [ids.tolist()] + [rows.columns[c][order].tolist() for c in source.columns]
        blobs[source.file] = _csv_bytes(
            zip(*columns, strict=True), source.spec.csv.delimiter, source.line_end
        )
        records[name] = n
        truth_records.append(
            _csv_bytes(
                zip([name] * n, ids.tolist(), keys[rows.person[order]].tolist(), strict=True)
            )
        )
        found = [*rows.written.errors, (np.flatnonzero(rows.duplicate), "duplicate")]
        error_rows: list[tuple[int, str]] = []
        for hit, code in found:
            stats[f"applied:{name}:{code}"] = stats.get(f"applied:{name}:{code}", 0) + len(hit)
            error_rows.extend((int(p), code) for p in position[hit])
        for code, count in rows.written.eligible.items():
            stats[f"eligible:{name}:{code}"] = float(count)
        stats[f"eligible:{name}:duplicate"] = float(n - rows.duplicate.sum())
        error_rows.sort()
        truth_errors.append(_csv_bytes((name, ids[p], code) for p, code in error_rows))
    blobs["truth/records.csv"] = b"".join(truth_records)
    blobs["truth/record_errors.csv"] = b"".join(truth_errors)
    blobs["truth/people.csv"] = _people_rows(pop, keys)
    families = np.flatnonzero(pop.hh_cluster >= 0)
    blobs["truth/family_clusters.csv"] = _csv_bytes(
        (f"H{task.chunk * 100_000 + h:09d}", int(pop.hh_cluster[h])) for h in families
    )
    kind = pop.property_kind
    blobs["truth/hmos.csv"] = _csv_bytes(
        zip(
            pop.places.property_id.astype(str).tolist(),
            (kind == UNLICENSED_HMO).astype(int).tolist(),
            strict=True,
        )
    )
    stats["people_total"] = float(pop.n)
    stats["households"] = float(len(np.unique(pop.household)))
    stats["properties"] = float(
        int((kind != VACANT).sum())
        + int(((kind == VACANT) & np.isin(np.arange(len(kind)), pop.prop1)).sum())
    )
    stats["unlicensed_hmos"] = float((kind == UNLICENSED_HMO).sum())
    stats["licensed_hmos"] = float((kind == LICENSED_HMO).sum())
    stats["family_households"] = float(len(families))
    for c in range(task.config.clusters):
        stats[f"cluster_{c}"] = float((pop.hh_cluster == c).sum())
    return _ChunkOutput(task.chunk, task.residents, blobs, records, stats)


def sources_file() -> SourcesFile:
    """The ``sources.yaml`` model describing the six extracts."""
    return SourcesFile(version=1, sources=[s.spec for s in SOURCES])


def sources_yaml() -> str:
    """``sources.yaml`` text, dumped from the shared pydantic model and checked by its parser."""
    data = sources_file().model_dump(mode="json", exclude_none=True)
    text = "# Written by `candour synth`: the six extracts of the synthetic county.\n"
    text += yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    parse_sources(text)
    return text


def _validate(out: Path, people: int, seed: int) -> None:
    if people < 1:
        raise CandourError(f"--people must be at least 1 (got {people})")
    if people > MAX_PEOPLE:
        raise CandourError(f"--people must be at most {MAX_PEOPLE:,} (got {people:,})")
    if seed < 0 or seed >= 2**63:
        raise CandourError(f"--seed must be a non-negative 63-bit integer (got {seed})")
    if out.exists() and not out.is_dir():
        raise CandourError(f"--out {out} exists and is not a directory")
    try:
        (out / "truth").mkdir(parents=True, exist_ok=True)
        (out / "open").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CandourError(f"cannot create output directory {out}: {exc.strerror}") from exc


def _tasks(people: int, seed: int, config: SynthConfig) -> list[_Task]:
    chunks = (people + CHUNK_PEOPLE - 1) // CHUNK_PEOPLE
    return [
        _Task(seed, c, min(CHUNK_PEOPLE, people - c * CHUNK_PEOPLE), config) for c in range(chunks)
    ]


def _outputs(tasks: list[_Task], workers: int) -> Iterator[_ChunkOutput]:
    if workers <= 1 or len(tasks) == 1:
        for task in tasks:
            yield _make_chunk(task)
        return
    # spawn, not fork: the caller may be running threads (rich's progress refresher).
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap(_make_chunk, tasks)


def write_county(
    out: Path,
    people: int,
    seed: int,
    config: SynthConfig | None = None,
    progress: Progress | None = None,
    *,
    workers: int | None = None,
) -> CountySummary:
    """Write a synthetic county of ``people`` residents to ``out``; same seed, same bytes.

    ``progress("synth", done, total)`` is called as residents are written. ``workers``
    defaults to the number of CPUs (at most 4).
    """
    config = config or SynthConfig()
    out = Path(out)
    _validate(out, people, seed)
    began = time.perf_counter()
    tasks = _tasks(people, seed, config)
    if workers is None:
        workers = min(multiprocessing.cpu_count(), 4)
    handles: dict[str, BinaryIO] = {}
    totals: dict[str, float] = {}
    records = {s.spec.name: 0 for s in SOURCES}
    done = 0
    try:
        for source in SOURCES:
            handle: BinaryIO = (out / source.file).open("wb")
            handles[source.file] = handle
            if source.bom:
                handle.write(b"\xef\xbb\xbf")
            handle.write(_csv_bytes([source.header], source.spec.csv.delimiter, source.line_end))
        for name, header in TRUTH_FILES.items():
            handle = (out / name).open("wb")
            handles[name] = handle
            handle.write(_csv_bytes([header]))
        if progress:
            progress("synth", 0, people)
        for result in _outputs(tasks, workers):
            for name, blob in result.blobs.items():
                handles[name].write(blob)
            for name, count in result.records.items():
                records[name] += count
            for key, value in result.stats.items():
                totals[key] = totals.get(key, 0.0) + value
            done += result.residents
            if progress:
                progress("synth", done, people)
    finally:
        for handle in handles.values():
            handle.close()

    (out / "sources.yaml").write_text(sources_yaml(), encoding="utf-8")
    _write_truth_json(out, people, seed, config, totals, records)
    write_road_surface_temperatures(out / "open" / "road_surface_temperatures.csv", seed)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return CountySummary(
        out=out,
        people=people,
        people_total=int(totals.get("people_total", 0)),
        households=int(totals.get("households", 0)),
        properties=int(totals.get("properties", 0)),
        records=sum(records.values()),
        records_by_source=records,
        seconds=time.perf_counter() - began,
        chunks=len(tasks),
        files=files,
    )


def _write_truth_json(
    out: Path,
    people: int,
    seed: int,
    config: SynthConfig,
    totals: dict[str, float],
    records: dict[str, int],
) -> None:
    start = config.window_start
    end = date(start.year + config.window_years, start.month, start.day)
    visited = totals.get("visited_65_plus", 0.0)
    properties = totals.get("properties", 0.0)
    effects = {
        "home_safety_visit_falls_effect": config.home_safety_visit_falls_effect,
        "family_need_clusters": config.clusters,
        "unlicensed_hmo_share": config.unlicensed_hmo_share,
        "seed": seed,
        "people": people,
        "window": {"start": start.isoformat(), "end_exclusive": end.isoformat()},
        "home_safety_visits": {
            "source": "fire_home_safety_visits",
            "visit_date_column": "visit_date",
            "outcome": "ae_attendances rows with diagnosis_category = 'fall'",
            "post_period_months": 12,
            "visit_window": "visits fall 12-24 months into the window, so every visited person "
            "has at least 12 months before and 12 months after",
            "eligible": "people aged 65+ at the window start; visits target frailty, which is "
            "constant over time (no referral after a recent fall)",
            "people_65_plus": int(totals.get("people_65_plus", 0)),
            "visited": int(visited),
            "falls_visited_pre": int(totals.get("falls_visited_pre", 0)),
            "falls_visited_post": int(totals.get("falls_visited_post", 0)),
            "falls_visited_after": int(totals.get("falls_visited_after", 0)),
            "falls_unvisited": int(totals.get("falls_unvisited_pre", 0)),
            "falls_base_rate_per_year_at_65": config.falls_base_rate,
            "falls_age_slope": config.falls_age_slope,
            "visit_share": config.visit_share,
            "visit_targeting": config.visit_targeting,
        },
        "family_clusters": {
            "households_with_children": int(totals.get("family_households", 0)),
            "households_per_cluster": [
                int(totals.get(f"cluster_{c}", 0)) for c in range(config.clusters)
            ],
            "shares": config.family_cluster_shares,
            "profiles_per_household_per_year": config.family_cluster_profiles,
            "household_key": "truth/people.csv household_id; in the extracts, "
            "gp_registrations.PROPERTY_REF and council_tax_housing.property_ref",
        },
        "hmos": {
            "properties": int(properties),
            "unlicensed_hmos": int(totals.get("unlicensed_hmos", 0)),
            "licensed_hmos": int(totals.get("licensed_hmos", 0)),
            "unlicensed_hmo_share_realised": (
                totals.get("unlicensed_hmos", 0) / properties if properties else 0.0
            ),
            "signals": [
                "council_tax_housing: single_person_discount claimed with several adults",
                "council_tax_housing: many occupants with different surnames, high turnover",
                "council_tax_housing: complaints_12m, no hmo_licence_no",
                "police_incidents: asb_noise incidents involving occupants",
            ],
        },
        "records": records,
    }
    (out / "truth" / "effects.json").write_text(
        json.dumps(effects, indent=2) + "\n", encoding="utf-8"
    )
    rates: dict[str, Any] = {}
    configured = {
        "typo_given_name": config.typo_rate,
        "typo_family_name": config.typo_rate,
        "nickname": config.nickname_rate,
        "dob_day_month_swap": config.dob_swap_rate,
        "missing_field": config.missing_field_rate,
        "old_address": config.old_address_rate,
        "nhs_number_missing": config.ae_nhs_number_missing_rate,
    }
    for source in SOURCES:
        name = source.spec.name
        per: dict[str, Any] = {}
        for code in (*configured, "duplicate"):
            eligible = totals.get(f"eligible:{name}:{code}")
            if eligible is None:
                continue
            if code == "missing_field":
                applied = sum(
                    totals.get(f"applied:{name}:{e}", 0.0)
                    for e in ERRORS
                    if e.startswith("missing_")
                )
            else:
                applied = totals.get(f"applied:{name}:{code}", 0.0)
            rate = getattr(config.duplicates, name) if code == "duplicate" else configured[code]
            per[code] = {
                "configured": rate,
                "eligible": int(eligible),
                "applied": int(applied),
                "measured": applied / eligible if eligible else None,
            }
        rates[name] = per
    (out / "truth" / "error_rates.json").write_text(
        json.dumps(rates, indent=2) + "\n", encoding="utf-8"
    )
