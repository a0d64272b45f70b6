"""What analysts see: one linked table per source, and the catalogue the gate validates against.

A *linked table* is a source's rows joined to the person index once per link run: the source's
attributes and ``event_date``, plus ``person_id`` and the internal ``person_num``. The engine
builds them (see :mod:`candour.gate.engines`); this module decides when they are stale and keeps
their catalogue (columns and types) in the store, so that a query can be validated without the
engine being touched at all.

Staleness is decided from the store alone: the *link key* names the latest finished link run,
the hash of its person index, and the ingest batches present. When it changes, the engine
rebuilds every linked table (and checks that the warehouse's person index is the one the link
run recorded, so a query never runs over an index the store does not vouch for).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from candour.config import Settings
from candour.errors import CandourError
from candour.gate.validate import PERSON_ID, GrantedTable
from candour.store import IngestBatch, transaction
from candour.store.gate import GateTable
from candour.store.linkage import LinkRun

EVENT_DATE = "event_date"
PERSON_NUM = "person_num"
# Columns of a warehouse source table that analysts never see, and names an attribute may not
# take in a linked table (they would collide with the gate's own columns).
HIDDEN = frozenset({"record_key", "batch_id"})
RESERVED = frozenset({PERSON_ID, PERSON_NUM, EVENT_DATE, "record_key", "batch_id", "_optout"})


class GateError(CandourError):
    """The gate cannot answer: nothing linked yet, the warehouse disagrees with the store, ..."""


@dataclass(frozen=True)
class LinkState:
    """What the linked tables must be built from, as the store records it."""

    run_id: str
    index_hash: str
    sources: tuple[str, ...]
    key: str


@dataclass(frozen=True)
class TableInfo:
    """One linked table: its attribute columns (name -> SQL type) and size."""

    source: str
    columns: Mapping[str, str]
    has_event_date: bool
    rows: int
    persons: int
    link_key: str

    def visible(self) -> dict[str, str]:
        """Every column an analyst may be granted, with its type: person_id first."""
        out = {PERSON_ID: "VARCHAR"}
        out.update(self.columns)
        if self.has_event_date:
            out[EVENT_DATE] = "DATE"
        return out


def link_state(settings: Settings) -> LinkState:
    """The current link key, read from the store; raises :class:`GateError` if nothing is linked."""
    with transaction(settings) as session:
        run = session.execute(
            select(LinkRun.run_id, LinkRun.index_hash)
            .where(LinkRun.finished_at.is_not(None))
            .order_by(LinkRun.id.desc())
            .limit(1)
        ).first()
        if run is None:
            raise GateError("nothing has been linked yet; run `candour link` before querying")
        batches = session.execute(
            select(IngestBatch.source, IngestBatch.id)
            .where(IngestBatch.status == "done")
            .order_by(IngestBatch.source, IngestBatch.id)
        ).all()
    by_source: dict[str, list[int]] = {}
    for source, batch in batches:
        by_source.setdefault(source, []).append(int(batch))
    digest = hashlib.sha256(
        json.dumps([run[1], sorted(by_source.items())], separators=(",", ":")).encode()
    ).hexdigest()
    return LinkState(
        run_id=str(run[0]),
        index_hash=str(run[1]),
        sources=tuple(sorted(by_source)),
        key=f"{run[0]}:{digest[:40]}",
    )


def catalogue(settings: Settings) -> dict[str, TableInfo]:
    """The linked tables the gate last built, from the store (empty before the first build)."""
    with transaction(settings) as session:
        rows = session.scalars(select(GateTable).order_by(GateTable.source)).all()
        return {
            r.source: TableInfo(
                source=r.source,
                columns=json.loads(r.columns_json),
                has_event_date=r.has_event_date,
                rows=int(r.rows),
                persons=int(r.persons),
                link_key=r.link_key,
            )
            for r in rows
        }


def save_catalogue(settings: Settings, tables: Sequence[TableInfo]) -> None:
    """Replace the catalogue with ``tables`` in one transaction."""
    with transaction(settings) as session:
        session.execute(delete(GateTable))
        session.add_all(
            GateTable(
                source=t.source,
                link_key=t.link_key,
                columns_json=json.dumps(dict(t.columns)),
                has_event_date=t.has_event_date,
                rows=t.rows,
                persons=t.persons,
            )
            for t in tables
        )


def is_fresh(tables: Mapping[str, TableInfo], state: LinkState) -> bool:
    """Whether the catalogue describes linked tables built from ``state``."""
    return bool(tables) and all(t.link_key == state.key for t in tables.values())


def granted_tables(
    grants: Mapping[str, Sequence[str] | str], tables: Mapping[str, TableInfo]
) -> list[GrantedTable]:
    """The tables a use may read, as the validator needs them.

    A grant of ``"*"`` is every attribute; a list grants those attributes. ``person_id`` and
    ``event_date`` come with every granted table (the person is how tables join; the date is
    how events are placed in time). A granted source that has not been linked is absent.
    """
    out: list[GrantedTable] = []
    for source, columns in sorted(grants.items()):
        info = tables.get(source)
        if info is None:
            continue
        visible = info.visible()
        if columns == "*":
            granted = dict(visible)
        else:
            allowed = {PERSON_ID, EVENT_DATE, *columns}
            granted = {c: t for c, t in visible.items() if c in allowed}
        out.append(GrantedTable(source, granted, frozenset(visible)))
    return out
