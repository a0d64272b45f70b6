"""Publishing: a released output, or a declared non-personal file, becomes an open dataset.

Two doors, one check:

- :func:`publish_release` takes an output that has passed disclosure control and a second
  person's check (``candour release approve``). Its provenance is the data use, the release and
  the ledger entries that logged them; its count columns and threshold come from the output's
  disclosure report and the use.
- :func:`publish_file` takes data that is not about people (such as road-surface temperature
  readings), only with an explicit declaration by an information-governance lead (or admin)
  that it holds no personal data; who declared it, when, and the file's hash are recorded.

Either way :func:`candour.catalogue.safety.check_publishable` runs on the file first, and the
CSV, JSON, Parquet and CSVW files are written to a staging folder that becomes the dataset's
folder only in the same transaction that records it: a failure leaves neither files nor rows.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from candour.catalogue import files
from candour.catalogue.model import (
    DEFAULT_LICENCE,
    FREQUENCIES,
    KEYWORD,
    LICENCES,
    NAME,
    CatalogueError,
    Column,
    Dataset,
    Declaration,
    Organisation,
    PublishRefused,
    Resource,
)
from candour.catalogue.query import catalogue_dir, to_dataset
from candour.catalogue.safety import check_publishable
from candour.config import Settings
from candour.disclosure import get_output, get_release
from candour.disclosure.outputs import sha256_file
from candour.store import transaction
from candour.store.catalogue import (
    CatalogueDataset,
    CatalogueDeclaration,
    CatalogueOrganisation,
    CatalogueResource,
)
from candour.store.models import utcnow
from candour.store.register import DataUse, StaffUser, UseTransition

#: Roles that may declare a file non-personal: a governance decision, not an analyst's.
DECLARER_ROLES = ("ig", "admin")


@dataclass(frozen=True)
class Metadata:
    """The DCAT-AP metadata a publisher supplies (the rest is derived)."""

    title: str
    description: str
    publisher: str
    keywords: tuple[str, ...] = ()
    temporal: tuple[date, date] | None = None
    spatial: str | None = None
    frequency: str = "irregular"
    licence: str = DEFAULT_LICENCE
    name: str | None = None


def publish_release(
    settings: Settings,
    release_id: str,
    *,
    title: str | None = None,
    description: str | None = None,
    keywords: Sequence[str] = (),
    temporal: tuple[date, date] | None = None,
    spatial: str | None = None,
    frequency: str = "never",
    licence: str = DEFAULT_LICENCE,
    name: str | None = None,
    published_by: str | None = None,
    column_titles: Mapping[str, str] | None = None,
    column_descriptions: Mapping[str, str] | None = None,
) -> Dataset:
    """Publish a released output as a dataset and return it.

    ``title`` and ``description`` default to the data use's title (with the file's name) and
    summary; the publisher is the use's organisation. Raises :class:`PublishRefused` when the
    file fails the publish check, and :class:`CatalogueError` when the release is not released,
    its file no longer matches the hash that was checked and logged, its data use is not in the
    register, or it is already published.
    """
    release = get_release(settings, release_id)
    if release.status != "released" or not release.release_path:
        raise CatalogueError(f"{release_id} is {release.status}; only a released output can be "
                             "published")
    path = Path(release.release_path)
    try:
        released_meta: dict[str, Any] = json.loads((path.parent / "release.json").read_text())
        actual = sha256_file(path)
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"the released files of {release_id} cannot be read: {exc}") from None
    if not actual == released_meta.get("file_sha256") == release.output_sha256:
        raise CatalogueError(
            f"{path} does not match the hash that was checked and logged for {release_id}; "
            "it will not be published"
        )
    report = get_output(settings, release.output_id).report
    keys, counts, report_threshold = _disclosure_facts(report)
    with transaction(settings) as session:
        use = session.execute(
            select(DataUse).where(DataUse.use_id == release.use_id)
        ).scalar_one_or_none()
        if use is None:
            raise CatalogueError(
                f"{release.use_id} is not in the register, so {release_id} has no provenance "
                "to publish"
            )
        entries = [
            t.ledger_index
            for t in session.execute(
                select(UseTransition).where(UseTransition.use_id == use.use_id)
            ).scalars()
            if t.ledger_index is not None
        ]
        use_title, use_summary, organisation = use.title, use.summary, use.organisation
        threshold = max(use.threshold, report_threshold or 0)
    if release.ledger_index is not None:
        entries.append(release.ledger_index)
    table = files.read_source(path)
    check_publishable(table, count_columns=counts, threshold=threshold, key_columns=keys)
    meta = Metadata(
        title=title or f"{use_title}: {_words(path.stem)}",
        description=description or use_summary,
        publisher=organisation,
        keywords=tuple(keywords),
        temporal=temporal,
        spatial=spatial,
        frequency=frequency,
        licence=licence,
        name=name,
    )
    columns = files.describe(
        table, count_columns=counts, titles=column_titles, descriptions=column_descriptions
    )
    return _publish(
        settings,
        table,
        columns,
        meta,
        origin="release",
        use_id=release.use_id,
        release_id=release_id,
        ledger_entries=sorted(set(entries)),
        source_sha256=actual,
        threshold=threshold,
        published_by=published_by,
    )


def publish_file(
    settings: Settings,
    path: Path,
    *,
    title: str,
    description: str,
    publisher: str,
    declared_by: str,
    declare_non_personal: bool,
    keywords: Sequence[str] = (),
    temporal: tuple[date, date] | None = None,
    spatial: str | None = None,
    frequency: str = "irregular",
    licence: str = DEFAULT_LICENCE,
    name: str | None = None,
    column_titles: Mapping[str, str] | None = None,
    column_descriptions: Mapping[str, str] | None = None,
) -> Dataset:
    """Publish a CSV file that holds no personal data, on ``declared_by``'s declaration.

    ``declare_non_personal`` must be True: the declaration is explicit, never a default.
    ``declared_by`` must be an active staff user with the ``ig`` or ``admin`` role. When no
    ``temporal`` coverage is given it is taken from the first date or date-time column.
    """
    if not declare_non_personal:
        raise PublishRefused(
            ["a file is published directly only on an explicit declaration that it holds no "
             "personal data (--declare-non-personal); anything about people must go through "
             "disclosure control and release"]
        )
    with transaction(settings) as session:
        user = session.execute(
            select(StaffUser).where(StaffUser.name == declared_by)
        ).scalar_one_or_none()
        if user is None or not user.active:
            raise CatalogueError(f"{declared_by!r} is not an active staff user")
        if user.role not in DECLARER_ROLES:
            raise CatalogueError(
                f"{declared_by} has role {user.role}; only an information-governance lead (ig) "
                "or an admin may declare data non-personal"
            )
    table = files.read_source(path)
    check_publishable(table)
    source_sha256 = sha256_file(path)
    columns = files.describe(table, titles=column_titles, descriptions=column_descriptions)
    if temporal is None:
        temporal = _coverage(table, columns)
    meta = Metadata(
        title=title,
        description=description,
        publisher=publisher,
        keywords=tuple(keywords),
        temporal=temporal,
        spatial=spatial,
        frequency=frequency,
        licence=licence,
        name=name,
    )
    statement = (
        f"{declared_by} declares that {path.name} (SHA-256 {source_sha256}) holds no personal "
        "data: no row, column or value in it relates to an identified or identifiable living "
        "person, alone or combined with other data."
    )
    return _publish(
        settings,
        table,
        columns,
        meta,
        origin="non-personal",
        use_id=None,
        release_id=None,
        ledger_entries=[],
        source_sha256=source_sha256,
        threshold=None,
        published_by=declared_by,
        declaration=(declared_by, statement),
    )


# -- shared ----------------------------------------------------------------------------------


def _disclosure_facts(report: dict[str, Any]) -> tuple[list[str], list[str], int | None]:
    """Group keys, count columns and threshold, from an output's disclosure report."""
    keys = [str(k) for k in report.get("keys", [])]
    if report.get("method") == "dp":
        counts = ["count"] if report.get("statistic") == "count" else []
        return keys, counts, None
    counts = [str(m["column"]) for m in report.get("measures", []) if m.get("kind") == "count"]
    rules = report.get("rules") or {}
    threshold = rules.get("threshold")
    return keys, counts, int(threshold) if threshold is not None else None


def _words(stem: str) -> str:
    return re.sub(r"[_-]+", " ", stem).strip()


def slug(text: str) -> str:
    """A CKAN-style dataset or organisation name from a title."""
    value = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:90].strip("-")
    return value if len(value) >= 2 else "dataset"


def _coverage(table: pd.DataFrame, columns: Sequence[Column]) -> tuple[date, date] | None:
    for column in columns:
        if column.datatype in ("date", "datetime"):
            values = table[column.name]
            stamps = pd.to_datetime(values[values != ""], utc=True, format="ISO8601")
            if not stamps.empty:
                return stamps.min().date(), stamps.max().date()
    return None


def _validate(meta: Metadata) -> None:
    problems = []
    if not meta.title.strip() or len(meta.title) > 200:
        problems.append("a title of 1 to 200 characters is needed")
    if not meta.description.strip():
        problems.append("a description is needed")
    if not meta.publisher.strip() or len(meta.publisher) > 200:
        problems.append("a publisher of 1 to 200 characters is needed")
    if meta.licence not in LICENCES:
        problems.append(f"licence must be one of {', '.join(LICENCES)}")
    if meta.frequency not in FREQUENCIES:
        problems.append(f"update frequency must be one of {', '.join(FREQUENCIES)}")
    for keyword in meta.keywords:
        if not KEYWORD.fullmatch(keyword):
            problems.append(
                f"keyword {keyword!r} must be 2 to 100 letters, digits, spaces, - _ or ."
            )
    if meta.temporal is not None and meta.temporal[0] > meta.temporal[1]:
        problems.append("the temporal coverage ends before it starts")
    if meta.name is not None and not NAME.fullmatch(meta.name):
        problems.append("a name is 2 to 100 lowercase letters, digits, - or _")
    if problems:
        raise CatalogueError("; ".join(problems))


def _publish(
    settings: Settings,
    table: pd.DataFrame,
    columns: list[Column],
    meta: Metadata,
    *,
    origin: str,
    use_id: str | None,
    release_id: str | None,
    ledger_entries: list[int],
    source_sha256: str,
    threshold: int | None,
    published_by: str | None,
    declaration: tuple[str, str] | None = None,
) -> Dataset:
    _validate(meta)
    root = catalogue_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    dataset_id = str(uuid.uuid4())
    staging = root / f".staging-{dataset_id}"
    final: Path | None = None
    try:
        with transaction(settings) as session:
            if release_id is not None:
                already = session.execute(
                    select(CatalogueDataset.name).where(CatalogueDataset.release_id == release_id)
                ).scalar_one_or_none()
                if already is not None:
                    raise CatalogueError(f"{release_id} is already published as {already}")
            name = _free_name(session, meta)
            org = _organisation(session, meta.publisher)
            now = utcnow()
            dataset = Dataset(
                dataset_id=dataset_id,
                name=name,
                title=meta.title.strip(),
                description=meta.description.strip(),
                publisher=org,
                licence=LICENCES[meta.licence],
                keywords=tuple(dict.fromkeys(k.strip() for k in meta.keywords)),
                temporal_start=meta.temporal[0] if meta.temporal else None,
                temporal_end=meta.temporal[1] if meta.temporal else None,
                spatial=meta.spatial,
                frequency=meta.frequency,
                origin="release" if origin == "release" else "non-personal",
                use_id=use_id,
                release_id=release_id,
                ledger_entries=tuple(ledger_entries),
                source_sha256=source_sha256,
                rows=len(table),
                columns=tuple(columns),
                threshold=threshold,
                published_by=published_by,
                published_at=now,
            )
            resources = _write_files(staging, dataset, table)
            session.add(
                CatalogueDataset(
                    dataset_id=dataset_id,
                    name=name,
                    title=dataset.title,
                    description=dataset.description,
                    organisation_id=org.organisation_id,
                    licence=meta.licence,
                    keywords_json=json.dumps(list(dataset.keywords)),
                    temporal_start=dataset.temporal_start,
                    temporal_end=dataset.temporal_end,
                    spatial=dataset.spatial,
                    frequency=dataset.frequency,
                    origin=origin,
                    use_id=use_id,
                    release_id=release_id,
                    ledger_json=json.dumps(list(ledger_entries)),
                    source_sha256=source_sha256,
                    rows=dataset.rows,
                    columns_json=json.dumps([c.as_dict() for c in columns]),
                    threshold=threshold,
                    published_by=published_by,
                    published_at=now,
                )
            )
            session.flush()
            for r in resources:
                session.add(
                    CatalogueResource(
                        resource_id=r.resource_id,
                        dataset_id=dataset_id,
                        position=r.position,
                        format=r.format,
                        media_type=r.media_type,
                        file_name=r.file_name,
                        size=r.size,
                        sha256=r.sha256,
                    )
                )
            declared: Declaration | None = None
            if declaration is not None:
                declared = Declaration(declaration[0], now, declaration[1], source_sha256)
                session.add(
                    CatalogueDeclaration(
                        dataset_id=dataset_id,
                        declared_by=declared.declared_by,
                        declared_at=now,
                        statement=declared.statement,
                        file_sha256=source_sha256,
                    )
                )
            session.flush()
            target = root / name
            if target.exists():
                raise CatalogueError(f"{target} already exists; refusing to overwrite it")
            staging.rename(target)
            final = target
            result = to_dataset(
                session,
                session.execute(
                    select(CatalogueDataset).where(CatalogueDataset.dataset_id == dataset_id)
                ).scalar_one(),
            )
        return result
    except IntegrityError as exc:
        _cleanup(staging, final)
        raise CatalogueError(
            f"the dataset could not be recorded (published twice at once?): {exc.orig}"
        ) from None
    except BaseException:
        _cleanup(staging, final)
        raise


def _cleanup(staging: Path, final: Path | None) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if final is not None:
        shutil.rmtree(final, ignore_errors=True)


def _free_name(session: Session, meta: Metadata) -> str:
    taken = set(session.execute(select(CatalogueDataset.name)).scalars())
    if meta.name is not None:
        if meta.name in taken:
            raise CatalogueError(f"a dataset called {meta.name} already exists")
        return meta.name
    base = slug(meta.title)
    name, n = base, 2
    while name in taken:
        name = f"{base[:95]}-{n}"
        n += 1
    return name


def _organisation(session: Session, title: str) -> Organisation:
    title = title.strip()
    name = slug(title)
    row = session.execute(
        select(CatalogueOrganisation).where(CatalogueOrganisation.name == name)
    ).scalar_one_or_none()
    if row is None:
        row = CatalogueOrganisation(organisation_id=str(uuid.uuid4()), name=name, title=title)
        session.add(row)
        session.flush()
    return Organisation(row.organisation_id, row.name, row.title, row.created_at)


def _write_files(staging: Path, dataset: Dataset, table: pd.DataFrame) -> list[Resource]:
    """Write the CSV, JSON, Parquet and CSVW files; return the three downloads as resources."""
    staging.mkdir()
    frame = files.typed(table, dataset.columns)
    blobs = {
        "CSV": files.csv_bytes(table),
        "JSON": files.json_bytes(frame, dataset.columns),
        "Parquet": files.parquet_bytes(frame),
    }
    resources = []
    for position, (fmt, media_type, suffix) in enumerate(files.FORMATS):
        file_name = f"{dataset.name}.{suffix}"
        data = blobs[fmt]
        files.write_file(staging / file_name, data)
        resources.append(
            Resource(
                resource_id=str(uuid.uuid4()),
                dataset_id=dataset.dataset_id,
                position=position,
                format=fmt,
                media_type=media_type,
                file_name=file_name,
                size=len(data),
                sha256=files.sha256_bytes(data),
            )
        )
    described = replace(dataset, resources=tuple(resources))
    csvw = files.csvw_metadata(described, f"{dataset.name}.csv")
    files.write_file(
        staging / dataset.csvw_file,
        (json.dumps(csvw, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
    )
    return resources

