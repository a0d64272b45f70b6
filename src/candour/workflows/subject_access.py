"""Subject access: everything the services hold about one person, for that person only.

:func:`records_for` gathers a person's records across sources: the identity fields each service
sent (decrypted from the vault for this person's records only, in an audited read with a stated
reason), and the attributes the warehouse keeps for those records, found through the person
index. Each source is described by its ``sources.yaml`` entry: title, controller and retention.

:func:`subject_access_export` turns the same into a JSON document and a CSV file, and writes a
``subject-access`` entry to the public log (with the person's commitment, so only they can
recognise it) *before* returning them: an answer that cannot be logged is not given
(invariant 4).

The web portal calls these; it never reads the vault or the warehouse itself.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import select

from candour import ledger
from candour.config import Settings
from candour.csvsafe import neutralise_cell
from candour.errors import CandourError
from candour.home import Home
from candour.store import IngestBatch, transaction
from candour.store.linkage import PersonIndexEntry
from candour.store.web import ServicePreference

EXPORT_SCHEMA = "candour/subject-access/v1"
PORTAL_ACTOR = "resident-portal"
_CHUNK = 500

IDENTITY_LABELS: dict[str, str] = {
    "given_name": "Given name",
    "middle_name": "Middle names",
    "family_name": "Family name",
    "date_of_birth": "Date of birth",
    "sex": "Sex",
    "postcode": "Postcode",
    "address": "Address",
    "nhs_number": "NHS number",
}


class SubjectAccessError(CandourError):
    """A person's records cannot be gathered (unknown person, no index yet)."""


@dataclass(frozen=True)
class SourceInfo:
    """What ``sources.yaml`` says about a source, for residents."""

    name: str
    title: str
    controller: str | None
    retention: str | None
    event_date: str | None = None


@dataclass(frozen=True)
class HeldValue:
    """One value a service holds: the field's name and label, and the value as held."""

    field: str
    label: str
    value: str
    standardised: str | None = None
    """The form Candour compares it in, when it differs from the value as received."""


@dataclass(frozen=True)
class HeldRecord:
    """One record a service sent about the person."""

    record_id: str
    identity: tuple[HeldValue, ...]
    attributes: tuple[HeldValue, ...]
    event_date: str | None
    received_on: str | None


@dataclass(frozen=True)
class SourceRecords:
    """Everything one service holds about the person."""

    source: str
    title: str
    controller: str | None
    retention: str | None
    records: tuple[HeldRecord, ...]
    first_received: str | None
    last_received: str | None


@dataclass(frozen=True)
class PersonRecords:
    """A person's records across every source that holds any."""

    person_id: str
    generated_at: str
    sources: tuple[SourceRecords, ...] = field(default=())

    @property
    def record_count(self) -> int:
        """How many records, across all sources."""
        return sum(len(s.records) for s in self.sources)


class SubjectAccessExport(NamedTuple):
    """A subject access answer: the JSON document, the CSV file and the log entry's index."""

    json: bytes
    csv: bytes
    ledger_index: int


# -- sources ---------------------------------------------------------------------------------


def sources_file(settings: Settings) -> Path | None:
    """The ``sources.yaml`` describing the sources: the setting, the home's, or a demo's."""
    if settings.sources_file is not None:
        return settings.sources_file
    home = Home(settings.home)
    for candidate in (home.root / "sources.yaml", home.synth / "sources.yaml"):
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=8)
def _load_catalogue(path: str, mtime_ns: int) -> dict[str, SourceInfo]:
    from candour.sources.spec import load_sources

    spec = load_sources(Path(path))
    return {
        s.name: SourceInfo(s.name, s.title, s.controller, s.retention, s.event_date)
        for s in spec.sources
    }


def source_catalogue(settings: Settings) -> dict[str, SourceInfo]:
    """Source name -> its description, from :func:`sources_file` (empty if there is none)."""
    path = sources_file(settings)
    if path is None:
        return {}
    try:
        stat = path.stat()
    except OSError:
        return {}
    return _load_catalogue(str(path), stat.st_mtime_ns)


def describe_source(name: str, catalogue: dict[str, SourceInfo]) -> SourceInfo:
    """The description of ``name``, or a plain one built from its name when none is known."""
    return catalogue.get(name) or SourceInfo(name, name.replace("_", " ").capitalize(), None, None)


# -- gathering -------------------------------------------------------------------------------


def record_keys_of(person_id: str, *, settings: Settings) -> list[str]:
    """The record keys the person index assigns to ``person_id``, sorted."""
    with transaction(settings) as session:
        return sorted(
            session.scalars(
                select(PersonIndexEntry.record_key).where(PersonIndexEntry.person_id == person_id)
            )
        )


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _received(settings: Settings, batch_ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(batch_ids))
    found: dict[int, str] = {}
    with transaction(settings) as session:
        for start in range(0, len(wanted), _CHUNK):
            rows = session.execute(
                select(IngestBatch.id, IngestBatch.created_at).where(
                    IngestBatch.id.in_(wanted[start : start + _CHUNK])
                )
            )
            found.update({int(i): at.date().isoformat() for i, at in rows})
    return found


def _identities(settings: Settings, keys: list[str], person_id: str) -> dict[str, Any]:
    from candour.vault import open_vault

    vault = open_vault(settings)
    reason = f"subject access: person {person_id} sees the records held about them"
    with vault.open_workspace(reason=reason, actor=PORTAL_ACTOR) as workspace:
        return {record.record_key: record for record in workspace.records(keys)}


def _attributes(settings: Settings, keys: list[str]) -> dict[str, dict[str, Any]]:
    """record_key -> its warehouse row (without the key columns), for these keys."""
    from candour.warehouse import KEY_COLUMNS, open_warehouse

    by_source: dict[str, list[str]] = {}
    for key in keys:
        by_source.setdefault(key.split(":", 1)[0], []).append(key)
    found: dict[str, dict[str, Any]] = {}
    with open_warehouse(settings, read_only=True) as warehouse:
        tables = set(warehouse.tables())
        for source, source_keys in by_source.items():
            if source not in tables:
                continue
            for start in range(0, len(source_keys), _CHUNK):
                chunk = source_keys[start : start + _CHUNK]
                marks = ", ".join("?" for _ in chunk)
                # The table name is a validated source name ([a-z0-9_]+), never user input.
                table = warehouse.query(
                    f'SELECT * FROM "{source}" WHERE record_key IN ({marks})', chunk
                )
                for row in table.to_pylist():
                    key = row.pop("record_key")
                    for column in KEY_COLUMNS:
                        row.pop(column, None)
                    found[key] = row
    return found


def _identity_values(record: Any) -> tuple[HeldValue, ...]:
    values: list[HeldValue] = []
    raw: dict[str, str] = dict(record.raw)
    for name, label in IDENTITY_LABELS.items():
        standardised = getattr(record, name)
        if standardised is None:
            continue
        received = raw.get(name, standardised)
        values.append(
            HeldValue(name, label, received, standardised if received != standardised else None)
        )
    for name, standardised in sorted(record.identifiers.items()):
        key = f"identifiers.{name}"
        received = raw.get(key, standardised)
        values.append(
            HeldValue(
                key,
                f"Reference number ({name.replace('_', ' ')})",
                received,
                standardised if received != standardised else None,
            )
        )
    return tuple(values)


def records_for(person_id: str, *, settings: Settings) -> PersonRecords:
    """Everything each service holds about ``person_id``, grouped by source.

    Decrypts only this person's records from the vault (an audited read, actor
    ``resident-portal``) and reads their warehouse rows through the person index. Raises
    :class:`SubjectAccessError` when the person index does not know the person.
    """
    keys = record_keys_of(person_id, settings=settings)
    if not keys:
        raise SubjectAccessError(f"no records are linked to person {person_id}")
    identities = _identities(settings, keys, person_id)
    attributes = _attributes(settings, keys)
    batches = {key: r.batch_id for key, r in identities.items()}
    received = _received(settings, batches.values())
    catalogue = source_catalogue(settings)

    grouped: dict[str, list[HeldRecord]] = {}
    for key in keys:
        source, record_id = key.split(":", 1)
        identity = identities.get(key)
        row = dict(attributes.get(key, {}))
        event = row.pop("event_date", None)
        held_attributes = tuple(
            HeldValue(name, name.replace("_", " ").capitalize(), _text(value))
            for name, value in row.items()
            if value is not None and value != ""
        )
        grouped.setdefault(source, []).append(
            HeldRecord(
                record_id=record_id,
                identity=_identity_values(identity) if identity is not None else (),
                attributes=held_attributes,
                event_date=_text(event) if event is not None else None,
                received_on=received.get(batches[key]) if key in batches else None,
            )
        )
    sources = []
    for source in sorted(grouped, key=lambda s: describe_source(s, catalogue).title):
        info = describe_source(source, catalogue)
        dates = sorted(r.received_on for r in grouped[source] if r.received_on)
        sources.append(
            SourceRecords(
                source=source,
                title=info.title,
                controller=info.controller,
                retention=info.retention,
                records=tuple(grouped[source]),
                first_received=dates[0] if dates else None,
                last_received=dates[-1] if dates else None,
            )
        )
    return PersonRecords(
        person_id=person_id,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        sources=tuple(sources),
    )


# -- export ----------------------------------------------------------------------------------


def _choices_document(person_id: str, settings: Settings) -> dict[str, Any]:
    from candour.choices import current, history

    now = current(person_id, settings=settings)
    return {
        "opted_out_everywhere": sorted(now.everywhere),
        "opted_out_by_source": {p: sorted(s) for p, s in now.by_source.items()},
        "history": [
            {
                "purpose": r.purpose,
                "source": r.source,
                "decision": r.decision,
                "channel": r.channel,
                "recorded_at": r.recorded_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ledger_index": r.ledger_index,
            }
            for r in history(person_id, settings=settings)
        ],
    }


def _preferences_document(person_id: str, settings: Settings) -> list[dict[str, Any]]:
    with transaction(settings) as session:
        rows = session.scalars(
            select(ServicePreference)
            .where(ServicePreference.person_id == person_id)
            .order_by(ServicePreference.id)
        ).all()
        return [
            {
                "source": r.source,
                "preference": r.preference,
                "channel": r.channel,
                "recorded_at": r.recorded_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for r in rows
        ]


def export_document(records: PersonRecords, settings: Settings) -> dict[str, Any]:
    """The JSON-ready subject access document for ``records`` (choices and preferences too)."""
    return {
        "schema": EXPORT_SCHEMA,
        "person_id": records.person_id,
        "generated_at": records.generated_at,
        "sources": [asdict(s) for s in records.sources],
        "choices": _choices_document(records.person_id, settings),
        "service_preferences": _preferences_document(records.person_id, settings),
    }


def export_csv(records: PersonRecords) -> bytes:
    """The records as CSV: one row per value held, with its source, controller and dates."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(
        ["source", "service", "controller", "record_id", "kind", "field", "value",
         "event_date", "received_on", "retention"]
    )
    for source in records.sources:
        for record in source.records:
            for kind, values in (("identity", record.identity), ("attribute", record.attributes)):
                for value in values:
                    writer.writerow(
                        [
                            neutralise_cell(cell)
                            for cell in (
                                source.source,
                                source.title,
                                source.controller or "",
                                record.record_id,
                                kind,
                                value.field,
                                value.value,
                                record.event_date or "",
                                record.received_on or "",
                                source.retention or "",
                            )
                        ]
                    )
    return buffer.getvalue().encode("utf-8")


def subject_access_export(person_id: str, *, settings: Settings) -> SubjectAccessExport:
    """The person's subject access answer as JSON and CSV, logged before it is returned.

    The ``subject-access`` entry carries the SHA-256 of the JSON document and the person's
    commitment (``HMAC(person_key, nonce)`` with a fresh nonce), so the person can find it in
    the public log and nobody else can tell whom it is about. If the entry cannot be written,
    this raises and nothing is returned.
    """
    records = records_for(person_id, settings=settings)
    document = export_document(records, settings)
    json_bytes = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    csv_bytes = export_csv(records)
    key = ledger.person_key_for(person_id, settings=settings)
    index = ledger.record(
        "subject-access",
        {"response_hash": hashlib.sha256(json_bytes).hexdigest(), **ledger.person_fields(key)},
        settings=settings,
    )
    return SubjectAccessExport(json_bytes, csv_bytes, index)
