"""The public register of data uses: ``/register`` and ``/register/{use_id}``, and their API.

The list is the busiest public page, so its data comes from :class:`RegisterCache` (re-read at
most every few seconds). Detail pages read the use with its lifecycle, the queries and releases
the public log records under it (through the incremental
:class:`~candour.web.logindex.LogIndex`), and its release requests. Both pages are cached, for
the same few seconds, for anonymous visitors, whose page depends on nothing but the address.
Drafts are private applications and are never shown.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from candour.choices import PurposeError, load_purposes
from candour.config import Settings
from candour.disclosure import list_releases
from candour.register import UseError, UseView, export_record, get_use, list_uses
from candour.web.deps import SettingsDep
from candour.web.logindex import LogIndex
from candour.web.templating import Page, render

CACHE_SECONDS = 5.0
PUBLIC_STATUSES = ("submitted", "approved", "active", "expired", "rejected", "revoked")
StatusFilter = Literal["submitted", "approved", "active", "expired", "rejected", "revoked"]
STATUS_WORDS = {
    "submitted": "Waiting for a decision",
    "approved": "Approved, not started",
    "active": "Active",
    "expired": "Ended",
    "rejected": "Rejected",
    "revoked": "Stopped",
}
STATUS_TAGS = {
    "submitted": "govuk-tag--yellow",
    "approved": "govuk-tag--blue",
    "active": "govuk-tag--green",
    "expired": "govuk-tag--grey",
    "rejected": "govuk-tag--red",
    "revoked": "govuk-tag--red",
}
KIND_WORDS = {
    "use-submitted": "Application submitted",
    "use-approved": "Approved",
    "use-rejected": "Rejected",
    "use-revoked": "Stopped",
    "query": "Query run",
    "release": "Results released",
}


class UseSummary(BaseModel):
    """A data use as the register's list shows it."""

    use_id: str
    title: str
    organisation: str
    purpose: str
    purpose_title: str
    status: str
    status_text: str
    starts: str
    ends: str


class RegisterList(BaseModel):
    """The register's list: the uses that match the filters, and the filters' choices."""

    uses: list[UseSummary]
    total: int
    purposes: dict[str, str]
    organisations: list[str]
    statuses: dict[str, str]


class LogItem(BaseModel):
    """An entry of the public log about a use."""

    index: int
    kind: str
    what: str
    time: str


class ReleaseItem(BaseModel):
    """A release request under a use, as the public may see it."""

    release_id: str
    status: str
    checked_at: str | None
    ledger_index: int | None


class TransitionItem(BaseModel):
    """One step of a use's lifecycle (no staff names: the register names roles)."""

    from_status: str | None
    to_status: str
    at: str
    ledger_index: int | None


class UseDetail(BaseModel):
    """One data use: plain-English tier, technical (ATRS-style) tier, queries and releases."""

    summary: UseSummary
    description: str
    public_benefit: str
    team: str
    senior_responsible_owner: str
    purpose_description: str
    opt_outs_apply: bool | None
    why_no_opt_out: str | None
    record: dict[str, Any]
    grants: dict[str, list[str] | str]
    dp_epsilon: float | None
    lifecycle: list[TransitionItem]
    queries: list[LogItem]
    query_count: int
    releases: list[ReleaseItem]
    log_entries: list[LogItem]


class RegisterCache:
    """The non-draft uses, re-read from the store at most every ``seconds``."""

    def __init__(self, settings: Settings, seconds: float = CACHE_SECONDS) -> None:
        self.settings = settings
        self.seconds = seconds
        self._lock = threading.Lock()
        self._at = -1e9
        self._uses: list[UseSummary] = []
        self.pages: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def uses(self) -> list[UseSummary]:
        """Every non-draft use, oldest first (at most ``seconds`` old)."""
        now = time.monotonic()
        if now - self._at < self.seconds:
            return self._uses
        with self._lock:
            if time.monotonic() - self._at >= self.seconds:
                titles = purpose_titles(self.settings)
                self._uses = [
                    summary_of(v, titles)
                    for v in list_uses(settings=self.settings, include_drafts=False)
                ]
                self._at = time.monotonic()
            return self._uses

    def page(self, key: str) -> bytes | None:
        """A cached anonymous page, if it is still fresh."""
        found = self.pages.get(key)
        if found is None or time.monotonic() - found[0] >= self.seconds:
            return None
        return found[1]

    def keep_page(self, key: str, body: bytes) -> None:
        """Keep an anonymous page (at most 256 distinct addresses)."""
        with self._lock:
            self.pages[key] = (time.monotonic(), body)
            self.pages.move_to_end(key)
            while len(self.pages) > 256:
                self.pages.popitem(last=False)


def purpose_titles(settings: Settings) -> dict[str, str]:
    """Purpose id -> title, from the configured purposes."""
    return {p.id: p.title for p in load_purposes(settings).purposes}


def summary_of(view: UseView, titles: dict[str, str]) -> UseSummary:
    """The list form of a use."""
    spec = view.spec
    return UseSummary(
        use_id=view.use_id,
        title=spec.title,
        organisation=spec.organisation,
        purpose=spec.purpose,
        purpose_title=titles.get(spec.purpose, spec.purpose),
        status=view.status,
        status_text=STATUS_WORDS.get(view.status, view.status),
        starts=spec.starts.isoformat(),
        ends=spec.ends.isoformat(),
    )


def filtered(
    cache: RegisterCache,
    purpose: str | None,
    organisation: str | None,
    status: str | None,
) -> RegisterList:
    """The register's list with filters applied (unknown values simply match nothing)."""
    uses = cache.uses()
    chosen = [
        u
        for u in uses
        if (not purpose or u.purpose == purpose)
        and (not organisation or u.organisation == organisation)
        and (not status or u.status == status)
    ]
    return RegisterList(
        uses=chosen,
        total=len(uses),
        purposes=purpose_titles(cache.settings),
        organisations=sorted({u.organisation for u in uses}),
        statuses={s: STATUS_WORDS[s] for s in PUBLIC_STATUSES},
    )


def _log_item(entry: Any) -> LogItem:
    return LogItem(
        index=entry.index, kind=entry.kind, what=KIND_WORDS.get(entry.kind, entry.kind),
        time=entry.time,
    )


def use_detail(use_id: str, settings: Settings, index: LogIndex) -> UseDetail:
    """Everything the register shows about one (non-draft) use; UseError if there is none."""
    view = get_use(use_id, settings=settings)
    if view.stored_status == "draft":
        raise UseError(f"no data use {use_id} in the register")
    purposes = load_purposes(settings)
    titles = {p.id: p.title for p in purposes.purposes}
    try:
        purpose = purposes.get(view.spec.purpose)
        opt_outs: bool | None = purpose.opt_out
        purpose_text, why_not = purpose.description, purpose.why_no_opt_out
    except PurposeError:  # a purpose since removed from the configuration
        opt_outs, purpose_text, why_not = None, "", None
    entries = index.for_use(use_id)
    queries = [_log_item(e) for e in entries if e.kind == "query"]
    releases = [
        ReleaseItem(
            release_id=r.release_id,
            status=r.status,
            checked_at=r.checked_at.strftime("%Y-%m-%d") if r.checked_at else None,
            ledger_index=r.ledger_index,
        )
        for r in list_releases(settings)
        if r.use_id == use_id and r.status == "released"
    ]
    return UseDetail(
        summary=summary_of(view, titles),
        description=view.spec.summary,
        public_benefit=view.spec.public_benefit,
        team=view.spec.team,
        senior_responsible_owner=view.spec.senior_responsible_owner,
        purpose_description=purpose_text,
        opt_outs_apply=opt_outs,
        why_no_opt_out=why_not,
        record=export_record(view, opt_outs),
        grants={s: c if isinstance(c, str) else list(c) for s, c in view.spec.grants.items()},
        dp_epsilon=view.spec.dp_epsilon,
        lifecycle=[
            TransitionItem(
                from_status=t.from_status,
                to_status=t.to_status,
                at=t.at.strftime("%Y-%m-%d %H:%M UTC"),
                ledger_index=t.ledger_index,
            )
            for t in view.transitions
        ],
        # The newest 100 on the page; the count and the API say how many there are in all.
        queries=queries[::-1][:100],
        query_count=len(queries),
        releases=releases,
        log_entries=[_log_item(e) for e in entries if e.kind != "query"],
    )


# -- pages -----------------------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


class RegisterPage(Page):
    """The register list with its filters."""

    listing: RegisterList
    purpose: str | None
    organisation: str | None
    status: str | None
    status_tags: dict[str, str]


class UsePage(Page):
    """One use of the register."""

    use: UseDetail
    status_tags: dict[str, str]


def _cache(request: Request) -> RegisterCache:
    cache: RegisterCache = request.app.state.register_cache
    return cache


def _anonymous(request: Request) -> bool:
    return "resident" not in request.session and "staff" not in request.session


@router.get("/register", response_class=HTMLResponse)
async def register_page(
    request: Request,
    purpose: Annotated[str | None, Query(max_length=64)] = None,
    organisation: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[StatusFilter | None, Query()] = None,
) -> HTMLResponse:
    """Every data use, filterable by purpose, organisation and status."""
    cache = _cache(request)
    key = request.url.query
    anonymous = _anonymous(request)
    if anonymous:
        # The hot path stays on the event loop: a cached page needs no thread hand-off.
        body = cache.page(key)
        if body is not None:
            return HTMLResponse(body)

    def build() -> HTMLResponse:
        page = RegisterPage(
            title="Register of data uses",
            listing=filtered(cache, purpose or None, organisation or None, status),
            purpose=purpose or None,
            organisation=organisation or None,
            status=status,
            status_tags=STATUS_TAGS,
        )
        return render(request, "register.html", page)

    # Reading the store and rendering block, so they run in the thread pool.
    response = await run_in_threadpool(build)
    if anonymous:
        cache.keep_page(key, bytes(response.body))
    return response


@router.get("/register/{use_id}", response_class=HTMLResponse)
async def use_page(
    request: Request,
    settings: SettingsDep,
    use_id: Annotated[str, Path(max_length=16)],
) -> HTMLResponse:
    """One data use: what it is for in plain English, then the technical detail."""
    cache = _cache(request)
    # The space keeps detail pages apart from list pages, which are kept under their query
    # string: a request line cannot carry a space, so no query string can name this entry.
    key = "use " + use_id
    anonymous = _anonymous(request)
    if anonymous:
        # Like the list: a use's page is the same for every anonymous visitor, and reading the
        # use, its releases and its log entries, then rendering, costs several milliseconds.
        body = cache.page(key)
        if body is not None:
            return HTMLResponse(body)

    def build() -> HTMLResponse:
        try:
            detail = use_detail(use_id, settings, request.app.state.log_index)
        except UseError:
            raise HTTPException(status_code=404) from None
        page = UsePage(title=detail.summary.title, use=detail, status_tags=STATUS_TAGS)
        return render(request, "register_use.html", page)

    response = await run_in_threadpool(build)
    if anonymous:
        cache.keep_page(key, bytes(response.body))
    return response


# -- API -------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """An error: what went wrong, in words."""

    detail: str


api = APIRouter(prefix="/api/v1/register", tags=["register of data uses"])


@api.get("/uses", response_model=RegisterList)
def api_uses(
    request: Request,
    purpose: Annotated[str | None, Query(max_length=64, description="Purpose id.")] = None,
    organisation: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[StatusFilter | None, Query()] = None,
) -> JSONResponse:
    """Every data use in the register (no drafts), with optional filters."""
    data = filtered(_cache(request), purpose or None, organisation or None, status)
    return JSONResponse(data.model_dump(mode="json"), headers={"Access-Control-Allow-Origin": "*"})


@api.get(
    "/uses/{use_id}",
    response_model=UseDetail,
    responses={404: {"model": ErrorBody, "description": "No such use in the register."}},
)
def api_use(
    request: Request,
    settings: SettingsDep,
    use_id: Annotated[str, Path(max_length=16)],
) -> JSONResponse:
    """One data use with its lifecycle, queries (newest 100) and releases."""
    try:
        detail = use_detail(use_id, settings, request.app.state.log_index)
    except UseError:
        raise HTTPException(status_code=404, detail=f"no data use {use_id}") from None
    return JSONResponse(
        detail.model_dump(mode="json"), headers={"Access-Control-Allow-Origin": "*"}
    )
