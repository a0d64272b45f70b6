"""``/me``: the signed-in resident's own pages. Every route here depends on CurrentResident."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from candour.web.deps import CurrentResident
from candour.web.templating import Page, render

router = APIRouter(include_in_schema=False)


class MePage(Page):
    """The resident's home: that they are signed in, and since when."""

    signed_in_at: str


def _when(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%-d %B %Y at %-I:%M%p UTC").replace("AM", "am").replace("PM", "pm")


@router.get("/me", response_class=HTMLResponse)
def me(request: Request, resident: CurrentResident) -> HTMLResponse:
    """The signed-in resident's home page."""
    page = MePage(title="Your data", signed_in_at=_when(resident.signed_in_at))
    return render(request, "me.html", page)
