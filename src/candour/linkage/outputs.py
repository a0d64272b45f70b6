"""Reading what link runs produced: history, person-id changes, the export and evaluation."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from candour.config import Settings
from candour.csvsafe import neutralise_cell
from candour.errors import CandourError
from candour.linkage.evaluate import Quality, read_truth, score
from candour.store import transaction
from candour.store.linkage import LinkRun, PersonChange, PersonIndexEntry

EXPORT_HEADER = ("source", "record_id", "person_id")


class NoLinkRunError(CandourError):
    """Nothing has been linked in this home yet."""


@dataclass(frozen=True)
class RunSummary:
    """One row of ``candour link history``."""

    run_id: str
    engine: str
    finished_at: str
    records: int
    persons: int
    kept_ids: int
    new_ids: int
    merges: int
    splits: int
    retired: int
    review_pairs: int


@dataclass(frozen=True)
class ChangeRow:
    """One recorded person-id change."""

    run_id: str
    kind: str
    old_ids: list[str]
    new_ids: list[str]
    reason: str


def history(settings: Settings, *, limit: int = 20) -> list[RunSummary]:
    """The latest link runs, newest first."""
    with transaction(settings) as session:
        runs = session.scalars(select(LinkRun).order_by(LinkRun.id.desc()).limit(limit)).all()
        return [
            RunSummary(
                run_id=r.run_id,
                engine=r.engine,
                finished_at=r.finished_at.isoformat(timespec="seconds") if r.finished_at else "",
                records=r.records,
                persons=r.persons,
                kept_ids=r.kept_ids,
                new_ids=r.new_ids,
                merges=r.merges,
                splits=r.splits,
                retired=r.retired,
                review_pairs=r.review_pairs,
            )
            for r in runs
        ]


def changes(settings: Settings, *, run_id: str | None = None, limit: int = 200) -> list[ChangeRow]:
    """Recorded merges, splits and retirements (of one run, or the latest ones)."""
    with transaction(settings) as session:
        query = select(PersonChange).order_by(PersonChange.id.desc()).limit(limit)
        if run_id is not None:
            query = query.where(PersonChange.run_id == run_id)
        return [
            ChangeRow(
                run_id=c.run_id,
                kind=c.kind,
                old_ids=json.loads(c.old_ids),
                new_ids=json.loads(c.new_ids),
                reason=c.reason,
            )
            for c in session.scalars(query)
        ]


def latest_run(settings: Settings) -> LinkRun:
    """The most recent link run; raises :class:`NoLinkRunError` when there is none."""
    with transaction(settings) as session:
        run = session.scalars(select(LinkRun).order_by(LinkRun.id.desc()).limit(1)).first()
        if run is None:
            raise NoLinkRunError("nothing has been linked yet; run `candour link` first")
        session.expunge(run)
        return run


def current_index(settings: Settings) -> dict[str, str]:
    """The current person index: record_key -> person_id."""
    latest_run(settings)
    with transaction(settings) as session:
        return {
            k: p
            for k, p in session.execute(
                select(PersonIndexEntry.record_key, PersonIndexEntry.person_id)
            )
        }


def export_index(settings: Settings, out: Path) -> int:
    """Write ``source,record_id,person_id`` for every indexed record; return the row count.

    Record ids come from our own ingest, but they are still neutralised against CSV formula
    injection (a leading ``= + - @``), because the file is meant to be opened in spreadsheets.
    """
    index = current_index(settings)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(EXPORT_HEADER)
            for record_key in sorted(index):
                source, record_id = record_key.split(":", 1)
                writer.writerow([source, neutralise_cell(record_id), index[record_key]])
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CandourError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return len(index)



def evaluate_index(settings: Settings, truth: Path) -> Quality:
    """Score the current person index against a truth CSV (source,record_id,person_key)."""
    return score(current_index(settings), read_truth(truth))


def run_stats(run: LinkRun) -> dict[str, Any]:
    """A run's stored statistics (timings, histogram, cluster sizes, examples)."""
    stats: dict[str, Any] = json.loads(run.stats_json or "{}")
    return stats
