"""``/api/v1/services``: how services read residents' contact preferences (bearer tokens).

A service (one source, such as ``council_tax_housing``) gets a token from an administrator at
``/staff/services``. With it, and only for its own source, it can:

- ``GET /api/v1/services/{source}/preferences/{record_id}``: the preference (``online``,
  ``paper`` or ``null`` if the resident has not said) of the person its record belongs to;
- ``GET /api/v1/services/{source}/preferences?after=<change id>&limit=<n>``: the changes since
  the last one it saw, each with the service's own record ids it applies to.

The service never sees Candour's person ids, nor anything residents told other services.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel

from candour.web import preferences
from candour.web.deps import SettingsDep


class ErrorBody(BaseModel):
    """An error: what went wrong, in words."""

    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid service token."},
    403: {"model": ErrorBody, "description": "The token is for another service."},
}
api = APIRouter(prefix="/api/v1/services", tags=["services"], responses=ERRORS)
SourcePath = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}$")]


def service_source(request: Request, settings: SettingsDep) -> str:
    """The source the request's bearer token was issued to (401 without a valid one)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    source = (
        preferences.authenticate(token.strip(), settings=settings)
        if scheme.lower() == "bearer"
        else None
    )
    if source is None:
        raise HTTPException(
            status_code=401,
            detail="a valid service token is required",
            headers={"WWW-Authenticate": 'Bearer realm="candour-services"'},
        )
    return source


ServiceSource = Annotated[str, Depends(service_source)]


def _own(source: str, token_source: str) -> None:
    if source != token_source:
        raise HTTPException(status_code=403, detail="this token is for another service")


class RecordPreferenceView(BaseModel):
    """The preference of the resident a service's record belongs to."""

    record_id: str
    preference: str | None
    updated_at: datetime | None


class ChangeView(BaseModel):
    """A change a service should apply to these records of its own."""

    change_id: int
    record_ids: list[str]
    preference: str
    recorded_at: datetime


class ChangesView(BaseModel):
    """A page of changes, and where to continue from."""

    changes: list[ChangeView]
    next_after: int


@api.get(
    "/{source}/preferences/{record_id}",
    response_model=RecordPreferenceView,
    responses={404: {"model": ErrorBody, "description": "The record is not linked."}},
)
def record_preference(
    source: SourcePath,
    record_id: Annotated[str, Path(max_length=150)],
    token_source: ServiceSource,
    settings: SettingsDep,
) -> RecordPreferenceView:
    """How the resident behind one of the service's records wants to be dealt with."""
    _own(source, token_source)
    found = preferences.for_record(source, record_id, settings=settings)
    if found is None:
        raise HTTPException(status_code=404, detail="no linked record with that id")
    return RecordPreferenceView(
        record_id=found.record_id, preference=found.preference, updated_at=found.updated_at
    )


@api.get("/{source}/preferences", response_model=ChangesView)
def preference_changes(
    source: SourcePath,
    token_source: ServiceSource,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0, le=2**62, description="Last change id seen.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ChangesView:
    """Changes of preference for this service after change ``after``, oldest first."""
    _own(source, token_source)
    changes = preferences.changes_since(source, after, limit, settings=settings)
    return ChangesView(
        changes=[
            ChangeView(
                change_id=c.change_id,
                record_ids=c.record_ids,
                preference=c.preference,
                recorded_at=c.recorded_at,
            )
            for c in changes
        ],
        next_after=changes[-1].change_id if changes else after,
    )
