"""The JSON API, version 1, under ``/api/v1``: the same public data as the pages.

The OpenAPI document is at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from candour.web.deps import SettingsDep
from candour.web.transparency import (
    MAX_PAGE,
    CheckpointView,
    EntryPage,
    EntryView,
    NotFound,
    ProofBundle,
    PublicLog,
)

MAX_INDEX = (1 << 63) - 1


class ErrorBody(BaseModel):
    """An error: what went wrong, in words."""

    detail: str


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Not in the log (yet)."}
}
OPEN = {"Access-Control-Allow-Origin": "*"}

router = APIRouter(prefix="/api/v1", tags=["transparency log"])

Index = Annotated[int, Path(ge=0, le=MAX_INDEX, description="The entry's index in the log.")]


@router.get("/log/checkpoint", response_model=CheckpointView, responses=NOT_FOUND)
def get_checkpoint(settings: SettingsDep) -> JSONResponse:
    """The newest checkpoint, parsed, with every signature and witness cosignature on it."""
    try:
        view = PublicLog(settings).checkpoint_view()
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return JSONResponse(view.model_dump(mode="json"), headers=OPEN)


@router.get("/log/entries", response_model=EntryPage)
def list_entries(
    settings: SettingsDep,
    start: Annotated[int, Query(ge=0, le=MAX_INDEX, description="First index.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="How many entries.")] = 20,
) -> JSONResponse:
    """Entries from ``start``, at most ``limit`` of them, in index order."""
    page = PublicLog(settings).entries(start, limit)
    return JSONResponse(page.model_dump(mode="json"), headers=OPEN)


@router.get("/log/entries/{index}", response_model=EntryView, responses=NOT_FOUND)
def get_entry(index: Index, settings: SettingsDep) -> JSONResponse:
    """One entry, with its leaf hash."""
    try:
        view = PublicLog(settings).entry(index)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return JSONResponse(view.model_dump(mode="json"), headers=OPEN)


@router.get("/log/entries/{index}/proof", response_model=ProofBundle, responses=NOT_FOUND)
def get_proof(index: Index, settings: SettingsDep) -> JSONResponse:
    """The entry, its inclusion proof in the newest tree, and that tree's signed checkpoint.

    Offered as a download (``candour-entry-<index>-proof.json``) so it can be kept and checked
    offline later.
    """
    try:
        bundle = PublicLog(settings).proof(index)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return JSONResponse(
        bundle.model_dump(mode="json"),
        headers={
            "Content-Disposition": f'attachment; filename="candour-entry-{index}-proof.json"',
            **OPEN,
        },
    )
