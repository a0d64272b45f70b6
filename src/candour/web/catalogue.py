"""The open data catalogue on the web: pages, downloads, DCAT JSON-LD and the CKAN Action API.

- ``/data`` (browse and search), ``/data/{name}`` (a dataset), ``/data/{name}/{file}``
  (downloads and CSVW metadata), ``/catalog.jsonld`` (DCAT-AP), ``/api/3`` (CKAN's version).
- The CKAN read actions, under ``/api/3/action/`` and ``/api/action/`` (where ckanapi and
  other clients call them), accept GET with query parameters and POST with a JSON or form body,
  as CKAN does. They are a separate ASGI app mounted on those paths, outside the app-wide CSRF
  check: they only read public data and never look at the session, so a cross-site POST can do
  nothing a GET could not, and CKAN clients, which POST by default, need no token.

Everything here is public open data, so responses carry ``Access-Control-Allow-Origin: *``.
:func:`install` wires it all into the app.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.routing import Route

from candour.catalogue import (
    FREQUENCIES,
    BadQuery,
    Dataset,
    NotFound,
    ckan,
    dataset_file,
    dcat,
    get_dataset,
    list_datasets,
    list_organisations,
    search_datasets,
)
from candour.config import Settings
from candour.web.deps import SettingsDep
from candour.web.templating import Page, render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
OPEN = {"Access-Control-Allow-Origin": "*"}
FREQUENCY_WORDS = {
    "never": "Not updated (a one-off release)",
    "irregular": "Irregularly",
    "continuous": "Continuously",
    "unknown": "Not known",
}


class DatasetSummary(BaseModel):
    """A dataset as the browse page lists it."""

    name: str
    title: str
    description: str
    publisher: str
    published: str
    origin: str
    formats: list[str]


class Filter(BaseModel):
    """One publisher in the filter, with how many datasets it has."""

    name: str
    title: str
    datasets: int


class DataListPage(Page):
    """The catalogue: a search box, a publisher filter and one page of results."""

    q: str
    organisation: str | None
    organisations: list[Filter]
    results: list[DatasetSummary]
    count: int
    start: int
    previous_href: str | None
    next_href: str | None
    error: str | None


class Download(BaseModel):
    """One file to download."""

    format: str
    url: str
    size: str
    sha256: str


class ColumnView(BaseModel):
    """One column of the table schema."""

    name: str
    title: str
    datatype: str
    description: str | None


class EntryLink(BaseModel):
    """A transparency-log entry the dataset came from."""

    index: int
    url: str


class DatasetPage(Page):
    """One dataset: what it is, where it came from, how to get it."""

    name: str
    description: str
    publisher: str
    licence_title: str
    licence_url: str
    keywords: list[str]
    temporal: str | None
    spatial: str | None
    frequency: str
    published: str
    origin: str
    use_id: str | None
    use_url: str | None
    release_id: str | None
    entries: list[EntryLink]
    threshold: int | None
    declared_by: str | None
    declared_at: str | None
    declaration: str | None
    provenance: str
    rows: int
    downloads: list[Download]
    columns: list[ColumnView]
    csvw_url: str
    package_show_url: str


def _base(settings: Settings) -> str:
    return dcat.base_of(settings.web_base_url)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def _summary(dataset: Dataset) -> DatasetSummary:
    return DatasetSummary(
        name=dataset.name,
        title=dataset.title,
        description=dataset.description,
        publisher=dataset.publisher.title,
        published=_day(dataset.published_at.date()),
        origin="Released output" if dataset.origin == "release" else "Non-personal data",
        formats=[r.format for r in dataset.resources],
    )


def _href(q: str, organisation: str | None, start: int) -> str:
    params = {k: v for k, v in (("q", q), ("organisation", organisation)) if v}
    if start:
        params["start"] = str(start)
    return "/data" + ("?" + urlencode(params) if params else "") + "#results"


@router.get("/data", response_class=HTMLResponse)
def data_page(
    request: Request,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=200)] = "",
    organisation: Annotated[str | None, Query(max_length=100)] = None,
    start: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    """Browse and search the open data catalogue."""
    organisation = organisation or None
    fq = f"organization:{organisation}" if organisation else ""
    error = None
    try:
        # The search box takes words, not CKAN's field syntax: quote each word so that a
        # colon typed by a person is just text.
        words = " ".join('"' + w.replace('"', "") + '"' for w in q.split() if w.replace('"', ""))
        found = search_datasets(settings, words, fq=fq, rows=PAGE_SIZE, start=start,
                                sort="score desc, metadata_modified desc")
        results, count = [_summary(d) for d in found.datasets], found.count
    except BadQuery as exc:
        results, count, error = [], 0, str(exc)
    page = DataListPage(
        title="Open data" if not q else f"Open data matching ‘{q}’",
        q=q,
        organisation=organisation,
        organisations=[
            Filter(name=o.name, title=o.title, datasets=o.datasets)
            for o in list_organisations(settings)
        ],
        results=results,
        count=count,
        start=start,
        previous_href=_href(q, organisation, max(0, start - PAGE_SIZE)) if start else None,
        next_href=_href(q, organisation, start + PAGE_SIZE) if start + PAGE_SIZE < count else None,
        error=error,
    )
    return render(request, "catalogue/list.html", page)


def _dataset_or_404(settings: Settings, name: str) -> Dataset:
    try:
        return get_dataset(settings, name)
    except NotFound:
        raise HTTPException(status_code=404) from None


@router.get("/data/{name}", response_class=HTMLResponse)
def dataset_page(request: Request, settings: SettingsDep, name: str) -> HTMLResponse:
    """One dataset: metadata, provenance, downloads and schema."""
    dataset = _dataset_or_404(settings, name)
    base = _base(settings)
    declaration = dataset.declaration
    temporal = None
    if dataset.temporal_start and dataset.temporal_end:
        temporal = f"{_day(dataset.temporal_start)} to {_day(dataset.temporal_end)}"
    page = DatasetPage(
        title=dataset.title,
        name=dataset.name,
        description=dataset.description,
        publisher=dataset.publisher.title,
        licence_title=dataset.licence.title,
        licence_url=dataset.licence.url,
        keywords=list(dataset.keywords),
        temporal=temporal,
        spatial=dataset.spatial,
        frequency=FREQUENCY_WORDS.get(dataset.frequency, dataset.frequency.capitalize())
        if dataset.frequency in FREQUENCIES
        else dataset.frequency,
        published=_day(dataset.published_at.date()),
        origin=dataset.origin,
        use_id=dataset.use_id,
        use_url=f"/register/{dataset.use_id}" if dataset.use_id else None,
        release_id=dataset.release_id,
        entries=[
            EntryLink(index=i, url=f"/transparency/entries/{i}") for i in dataset.ledger_entries
        ],
        threshold=dataset.threshold,
        declared_by=declaration.declared_by if declaration else None,
        declared_at=dcat.iso(declaration.declared_at) if declaration else None,
        declaration=declaration.statement if declaration else None,
        provenance=dcat.provenance_text(dataset),
        rows=dataset.rows,
        downloads=[
            Download(
                format=r.format,
                url=f"/data/{dataset.name}/{r.file_name}",
                size=_size(r.size),
                sha256=r.sha256,
            )
            for r in dataset.resources
        ],
        columns=[
            ColumnView(name=c.name, title=c.title, datatype=c.datatype, description=c.description)
            for c in dataset.columns
        ],
        csvw_url=f"/data/{dataset.name}/{dataset.csvw_file}",
        package_show_url=f"{base}/api/3/action/package_show?id={dataset.name}",
    )
    return render(request, "catalogue/dataset.html", page)


@router.get("/data/{name}/{file_name}")
def download(settings: SettingsDep, name: str, file_name: str) -> FileResponse:
    """A dataset's file: CSV, JSON, Parquet, or its CSVW metadata."""
    dataset = _dataset_or_404(settings, name)
    try:
        path = dataset_file(settings, dataset, file_name)
    except NotFound:
        raise HTTPException(status_code=404) from None
    if file_name == dataset.csvw_file:
        media_type = "application/csvm+json"
    else:
        media_type = next(r.media_type for r in dataset.resources if r.file_name == file_name)
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    headers = {**OPEN, "Cache-Control": "public, max-age=3600"}
    disposition = "inline" if file_name == dataset.csvw_file else "attachment"
    return FileResponse(
        path, media_type=media_type, filename=file_name, headers=headers,
        content_disposition_type=disposition,
    )


@router.get("/catalog.jsonld")
def catalog_jsonld(settings: SettingsDep) -> Response:
    """The whole catalogue in DCAT-AP, as JSON-LD."""
    document = dcat.catalog(_base(settings), list_datasets(settings))
    return Response(
        json.dumps(document, ensure_ascii=False, indent=1),
        media_type="application/ld+json",
        headers=OPEN,
    )


@router.get("/api/3")
def api_version() -> JSONResponse:
    """CKAN's API root: the version of the Action API."""
    return JSONResponse({"version": ckan.API_VERSION}, headers=OPEN)


# -- CKAN Action API -------------------------------------------------------------------------


async def _params(request: Request) -> dict[str, Any]:
    """The action's parameters: query string for GET, JSON or form body for POST (as CKAN)."""
    params: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        params[key] = values[0] if len(values) == 1 else values
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        else:
            body = await request.body()
            if body.strip():
                data = json.loads(body)
                if not isinstance(data, dict):
                    raise ValueError("the request body must be a JSON object")
                params.update(data)
    return params


def ckan_app(settings: Settings) -> Starlette:
    """The CKAN read actions as a small ASGI app, to mount at ``/api/3/action`` and
    ``/api/action``."""
    base = _base(settings)

    async def action(request: Request) -> Response:
        name = request.path_params["action"]
        if request.method == "OPTIONS":
            return Response(
                status_code=204,
                headers={**OPEN, "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                         "Access-Control-Allow-Headers": "Content-Type"},
            )
        try:
            params = await _params(request)
        except ValueError as exc:
            body = {
                "help": ckan.help_url(base, name),
                "success": False,
                "error": {"__type": "Bad Request", "message": f"Bad request - JSON Error: {exc}"},
            }
            return JSONResponse(body, status_code=400, headers=OPEN)
        try:
            status, body = ckan.call(settings, base, name, params)
        except Exception:
            logger.exception("CKAN action %s failed", name)
            status, body = 500, {
                "help": ckan.help_url(base, name),
                "success": False,
                "error": {"__type": "Internal Server Error", "message": "Internal Server Error"},
            }
        return JSONResponse(body, status_code=status, headers=OPEN)

    return Starlette(
        routes=[Route("/{action}", action, methods=["GET", "POST", "OPTIONS"])]
    )


def install(app: FastAPI, settings: Settings) -> None:
    """Add the catalogue's pages, downloads and machine interfaces to ``app``."""
    app.include_router(router)
    actions = ckan_app(settings)
    app.mount("/api/3/action", actions)
    app.mount("/api/action", actions)
