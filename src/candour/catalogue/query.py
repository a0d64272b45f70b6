"""Reading the catalogue: datasets, search, publishers, resources and files."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from candour.catalogue.model import (
    LICENCES,
    CatalogueError,
    Column,
    Dataset,
    Declaration,
    NotFound,
    Organisation,
    Resource,
)
from candour.config import Settings
from candour.home import Home
from candour.store import transaction
from candour.store.catalogue import (
    CatalogueDataset,
    CatalogueDeclaration,
    CatalogueOrganisation,
    CatalogueResource,
)

MAX_ROWS = 1000


class BadQuery(CatalogueError):
    """A search query or sort order the catalogue does not understand."""


def catalogue_dir(settings: Settings) -> Path:
    """Where published datasets' files live: ``<home>/catalogue/<dataset name>/``."""
    return Home(settings.home).root / "catalogue"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _organisation(row: CatalogueOrganisation, datasets: int = 0) -> Organisation:
    return Organisation(
        organisation_id=row.organisation_id,
        name=row.name,
        title=row.title,
        created_at=_utc(row.created_at),
        datasets=datasets,
    )


def to_dataset(session: Session, row: CatalogueDataset) -> Dataset:
    """A dataset as the catalogue shows it, from its store rows."""
    org = session.execute(
        select(CatalogueOrganisation).where(
            CatalogueOrganisation.organisation_id == row.organisation_id
        )
    ).scalar_one()
    resources = session.execute(
        select(CatalogueResource)
        .where(CatalogueResource.dataset_id == row.dataset_id)
        .order_by(CatalogueResource.position)
    ).scalars()
    declaration = session.execute(
        select(CatalogueDeclaration).where(CatalogueDeclaration.dataset_id == row.dataset_id)
    ).scalar_one_or_none()
    return Dataset(
        dataset_id=row.dataset_id,
        name=row.name,
        title=row.title,
        description=row.description,
        publisher=_organisation(org),
        licence=LICENCES[row.licence],
        keywords=tuple(json.loads(row.keywords_json)),
        temporal_start=row.temporal_start,
        temporal_end=row.temporal_end,
        spatial=row.spatial,
        frequency=row.frequency,
        origin="release" if row.origin == "release" else "non-personal",
        use_id=row.use_id,
        release_id=row.release_id,
        ledger_entries=tuple(json.loads(row.ledger_json)),
        source_sha256=row.source_sha256,
        rows=row.rows,
        columns=tuple(Column(**c) for c in json.loads(row.columns_json)),
        threshold=row.threshold,
        published_by=row.published_by,
        published_at=_utc(row.published_at),
        resources=tuple(
            Resource(
                resource_id=r.resource_id,
                dataset_id=r.dataset_id,
                position=r.position,
                format=r.format,
                media_type=r.media_type,
                file_name=r.file_name,
                size=r.size,
                sha256=r.sha256,
            )
            for r in resources
        ),
        declaration=None
        if declaration is None
        else Declaration(
            declared_by=declaration.declared_by,
            declared_at=_utc(declaration.declared_at),
            statement=declaration.statement,
            file_sha256=declaration.file_sha256,
        ),
    )


def list_datasets(settings: Settings) -> list[Dataset]:
    """Every published dataset, newest first."""
    with transaction(settings) as session:
        rows = session.execute(
            select(CatalogueDataset).order_by(
                CatalogueDataset.published_at.desc(), CatalogueDataset.id.desc()
            )
        ).scalars()
        return [to_dataset(session, row) for row in rows]


def get_dataset(settings: Settings, name_or_id: str) -> Dataset:
    """The dataset with this name or id, or :class:`NotFound`."""
    with transaction(settings) as session:
        row = session.execute(
            select(CatalogueDataset).where(
                or_(CatalogueDataset.name == name_or_id, CatalogueDataset.dataset_id == name_or_id)
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no dataset {name_or_id!r}")
        return to_dataset(session, row)


def get_resource(settings: Settings, resource_id: str) -> tuple[Dataset, Resource]:
    """The resource with this id and the dataset it belongs to, or :class:`NotFound`."""
    with transaction(settings) as session:
        resource = session.execute(
            select(CatalogueResource).where(CatalogueResource.resource_id == resource_id)
        ).scalar_one_or_none()
        if resource is None:
            raise NotFound(f"no resource {resource_id!r}")
        row = session.execute(
            select(CatalogueDataset).where(CatalogueDataset.dataset_id == resource.dataset_id)
        ).scalar_one()
        dataset = to_dataset(session, row)
    found = next(r for r in dataset.resources if r.resource_id == resource_id)
    return dataset, found


def dataset_file(settings: Settings, dataset: Dataset, file_name: str) -> Path:
    """The path of one of a dataset's published files (its downloads or CSVW metadata).

    Only names the catalogue recorded are served, so a request can never reach another file.
    """
    allowed = {r.file_name for r in dataset.resources} | {dataset.csvw_file}
    if file_name not in allowed:
        raise NotFound(f"{dataset.name} has no file {file_name!r}")
    path = catalogue_dir(settings) / dataset.name / file_name
    if not path.is_file():
        raise NotFound(f"the file {file_name} of {dataset.name} is missing")
    return path


def list_organisations(settings: Settings) -> list[Organisation]:
    """Every publisher with at least one dataset, by title, with its number of datasets."""
    with transaction(settings) as session:
        counts: dict[str, int] = {
            org_id: int(n)
            for org_id, n in session.execute(
                select(CatalogueDataset.organisation_id, func.count()).group_by(
                    CatalogueDataset.organisation_id
                )
            )
        }
        rows = session.execute(
            select(CatalogueOrganisation).order_by(
                CatalogueOrganisation.title, CatalogueOrganisation.name
            )
        ).scalars()
        return [
            _organisation(r, counts.get(r.organisation_id, 0))
            for r in rows
            if counts.get(r.organisation_id, 0)
        ]


def get_organisation(settings: Settings, name_or_id: str) -> Organisation:
    """The publisher with this name or id, or :class:`NotFound`."""
    for org in list_organisations(settings):
        if name_or_id in (org.name, org.organisation_id):
            return org
    raise NotFound(f"no organisation {name_or_id!r}")


# -- search ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    """One page of search results and how many matched in all."""

    count: int
    datasets: list[Dataset]
    sort: str


_TOKEN = re.compile(r'([A-Za-z_]+):("[^"]*"|\[[^\]]*\]|\S+)|"([^"]*)"|(\S+)')
_RANGE = re.compile(r"\[\s*(\S+)\s+TO\s+(\S+)\s*\]")
FIELDS = ("tags", "organization", "name", "res_format", "license_id", "id", "metadata_modified",
          "metadata_created", "title", "notes", "text")
SORT_FIELDS = ("score", "metadata_modified", "metadata_created", "name", "title_string", "id")
DEFAULT_SORT = "score desc, metadata_modified desc"


def _field_value(dataset: Dataset, field: str) -> list[str]:
    if field == "tags":
        return [k.lower() for k in dataset.keywords]
    if field == "organization":
        return [dataset.publisher.name]
    if field == "name":
        return [dataset.name]
    if field == "id":
        return [dataset.dataset_id]
    if field == "res_format":
        return [r.format.lower() for r in dataset.resources]
    if field == "license_id":
        return [dataset.licence.ckan_id, dataset.licence.id.lower()]
    if field == "title":
        return [dataset.title.lower()]
    if field == "notes":
        return [dataset.description.lower()]
    return [_haystack(dataset)]


def _haystack(dataset: Dataset) -> str:
    return " ".join(
        [dataset.title, dataset.description, dataset.name, dataset.publisher.title,
         *dataset.keywords, dataset.use_id or "", dataset.release_id or ""]
    ).lower()


def _parse_time(text: str) -> datetime | None:
    if text == "*":
        return None
    text = re.sub(r"NOW.*", datetime.now(UTC).isoformat(), text)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"{text!r} is not a date and time") from None
    return _utc(value)


def _matches(dataset: Dataset, query: str) -> tuple[bool, float]:
    """Whether every term of ``query`` matches, and a relevance score for the free-text ones."""
    score = 0.0
    for match in _TOKEN.finditer(query):
        field, value, quoted, word = match.groups()
        if field is not None:
            field = field.lower()
            if field == "*" or (field in ("q", "text") and value == "*"):
                continue
            if field not in FIELDS:
                raise BadQuery(f"cannot search on field {field!r}; use one of {', '.join(FIELDS)}")
            value = value.strip('"')
            if field in ("metadata_modified", "metadata_created"):
                span = _RANGE.fullmatch(value)
                if span is None:
                    raise BadQuery(f"{field} takes a range such as [2025-01-01T00:00:00Z TO *]")
                low, high = _parse_time(span.group(1)), _parse_time(span.group(2))
                when = dataset.published_at
                if (low and when < low) or (high and when > high):
                    return False, 0.0
                continue
            if value == "*":
                continue
            wanted = value.lower()
            values = _field_value(dataset, field)
            if field == "text":
                if wanted not in values[0]:
                    return False, 0.0
            elif wanted not in values:
                return False, 0.0
            continue
        term = (quoted if quoted is not None else word or "").lower().lstrip("+")
        if term in ("", "*", "*:*"):
            continue
        if term not in _haystack(dataset):
            return False, 0.0
        score += 3 * dataset.title.lower().count(term) + 2 * sum(
            term in k.lower() for k in dataset.keywords
        ) + dataset.description.lower().count(term) + 0.5
    return True, score


def _sort_keys(sort: str) -> list[tuple[str, bool]]:
    keys: list[tuple[str, bool]] = []
    for part in sort.split(","):
        bits = part.split()
        if not bits:
            continue
        field = bits[0]
        direction = bits[1].lower() if len(bits) > 1 else "asc"
        if field not in SORT_FIELDS or direction not in ("asc", "desc") or len(bits) > 2:
            raise BadQuery(
                f"cannot sort by {part.strip()!r}; use fields {', '.join(SORT_FIELDS)} with "
                "asc or desc"
            )
        keys.append((field, direction == "desc"))
    return keys


def search_datasets(
    settings: Settings,
    q: str = "",
    *,
    fq: str = "",
    rows: int = 10,
    start: int = 0,
    sort: str | None = None,
) -> SearchResult:
    """Datasets matching ``q`` and ``fq``, sorted, ``rows`` of them from ``start``.

    A query is whitespace-separated terms, all of which must match: words or "quoted
    phrases" (in the title, description, keywords, publisher or name), and ``field:value``
    for ``tags``, ``organization``, ``name``, ``res_format``, ``license_id``, ``id``, ``title``
    or ``notes``; ``metadata_modified:[FROM TO TO]`` filters by publication time (``*`` for
    open ends). ``*:*`` matches everything. ``fq`` takes the same terms.
    """
    if not 0 <= rows <= MAX_ROWS:
        raise BadQuery(f"rows must be between 0 and {MAX_ROWS}")
    if start < 0:
        raise BadQuery("start must not be negative")
    sort = (sort or DEFAULT_SORT).strip() or DEFAULT_SORT
    keys = _sort_keys(sort)
    scored: list[tuple[float, Dataset]] = []
    for dataset in list_datasets(settings):
        ok, score = _matches(dataset, f"{q} {fq}")
        if ok:
            scored.append((score, dataset))
    for field, descending in reversed(keys):
        scored.sort(key=partial(_sort_value, field=field), reverse=descending)
    page = [d for _, d in scored[start : start + rows]]
    return SearchResult(count=len(scored), datasets=page, sort=sort)


def _sort_value(item: tuple[float, Dataset], field: str) -> float | str:
    score, dataset = item
    if field == "score":
        return score
    if field in ("metadata_modified", "metadata_created"):
        return dataset.published_at.timestamp()
    if field == "name":
        return dataset.name
    if field == "title_string":
        return dataset.title.lower()
    return dataset.dataset_id
