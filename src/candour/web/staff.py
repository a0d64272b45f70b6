"""``/staff``: the signed-in member of staff's home. Every route here depends on CurrentStaff."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from candour.web.deps import CurrentStaff
from candour.web.templating import Page, render

router = APIRouter(include_in_schema=False)

ROLE_NAMES = {
    "analyst": "Analyst",
    "ig": "Information governance lead",
    "checker": "Output checker",
    "admin": "Administrator",
}


class StaffPage(Page):
    """Who is signed in and with which roles."""

    name: str
    roles: list[str]


@router.get("/staff", response_class=HTMLResponse)
def staff_home(request: Request, staff: CurrentStaff) -> HTMLResponse:
    """The staff home page: the signed-in member and their roles."""
    page = StaffPage(
        title="Staff",
        name=staff.name or "Member of staff",
        roles=[ROLE_NAMES[r] for r in staff.roles],
    )
    return render(request, "staff.html", page)
