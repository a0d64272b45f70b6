"""Public pages: the home page and the transparency pages (checkpoint, how to verify, entries)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse

from candour.web.deps import SettingsDep
from candour.web.templating import Page, render
from candour.web.transparency import (
    CheckpointView,
    EntryPage,
    EntryView,
    NotFound,
    PublicLog,
)

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
MAX_INDEX = (1 << 63) - 1


class HomePage(Page):
    """The home page."""

    resident_sign_in: bool


class TransparencyPage(Page):
    """The transparency page: checkpoint, verification steps and one page of entries."""

    base_url: str
    verifier_key: str
    checkpoint: CheckpointView | None
    entries: EntryPage
    newest_first: list[EntryView]


class EntryDetailPage(Page):
    """One entry: its JSON and a link to download its inclusion proof."""

    entry: EntryView
    entry_json: str
    tree_size: int


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """What Candour is and what it promises, in plain English."""
    page = HomePage(
        title="See and check how public services use your data",
        resident_sign_in="resident" in request.app.state.providers,
    )
    return render(request, "home.html", page)


@router.get("/transparency", response_class=HTMLResponse)
def transparency(
    request: Request,
    settings: SettingsDep,
    start: Annotated[int | None, Query(ge=0, le=MAX_INDEX)] = None,
) -> HTMLResponse:
    """The newest checkpoint, how to verify the log, and an entry browser (newest first)."""
    log = PublicLog(settings)
    try:
        checkpoint: CheckpointView | None = log.checkpoint_view()
    except NotFound:
        checkpoint = None
    if start is None:
        start = max(0, log.size - PAGE_SIZE)
    entries = log.entries(start, PAGE_SIZE)
    page = TransparencyPage(
        title="Transparency log",
        base_url=settings.web_base_url.rstrip("/"),
        verifier_key=log.verifier.vkey(),
        checkpoint=checkpoint,
        entries=entries,
        newest_first=list(reversed(entries.entries)),
    )
    return render(request, "transparency.html", page)


@router.get("/transparency/entries/{index}", response_class=HTMLResponse)
def entry(
    request: Request,
    settings: SettingsDep,
    index: Annotated[int, Path(ge=0, le=MAX_INDEX)],
) -> HTMLResponse:
    """One log entry, in full, with its proof to download."""
    log = PublicLog(settings)
    try:
        view = log.entry(index)
    except NotFound:
        raise HTTPException(status_code=404) from None
    page = EntryDetailPage(
        title=f"Log entry {index}",
        entry=view,
        entry_json=json.dumps(view.entry, indent=2, ensure_ascii=False),
        tree_size=log.size,
    )
    return render(request, "entry.html", page)
