"""Rendering: a Jinja2 environment over Candour's templates and the GOV.UK Frontend macros.

Every page is rendered from a pydantic model (a subclass of :class:`Page`), never from ORM rows,
so a template sees exactly the fields its view chose to show. The layout's own state (who is
signed in, the navigation, the CSRF token) is a :class:`Chrome` built from the request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from pydantic import BaseModel

from candour.web.security import csrf_token

TEMPLATES = Path(__file__).parent / "templates"
SERVICE_NAME = "Candour"


class Page(BaseModel):
    """The typed context of one page. Subclass it per page; templates read ``page.<field>``."""

    title: str


class NavItem(BaseModel):
    """One link in the service navigation."""

    text: str
    href: str
    active: bool = False


class Chrome(BaseModel):
    """What the layout needs: navigation, sign-in state, phase and demo banners."""

    path: str
    navigation: list[NavItem]
    signed_in_as: str | None  # "resident", "staff" or None
    phase: str
    demo: bool


def build_environment() -> Environment:
    """The Jinja2 environment: our templates first, then ``govuk_frontend_jinja/...`` macros."""
    env = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(TEMPLATES),
                PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
            ]
        ),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _navigation(request: Request, signed_in_as: str | None) -> list[NavItem]:
    path = request.url.path
    items = [
        NavItem(text="Home", href="/"),
        NavItem(text="Register", href="/register"),
        NavItem(text="Transparency", href="/transparency"),
        NavItem(text="Open data", href="/data"),
    ]
    if signed_in_as == "resident":
        items.append(NavItem(text="Your data", href="/me"))
    elif signed_in_as == "staff":
        items.append(NavItem(text="Staff", href="/staff"))
    for item in items:
        item.active = path == item.href or (item.href != "/" and path.startswith(item.href + "/"))
    return items


def chrome(request: Request) -> Chrome:
    """The layout state for this request."""
    session = request.session
    signed_in_as = "resident" if "resident" in session else "staff" if "staff" in session else None
    return Chrome(
        path=request.url.path,
        navigation=_navigation(request, signed_in_as),
        signed_in_as=signed_in_as,
        phase="Alpha",
        demo=bool(request.app.state.demo),
    )


def render(
    request: Request,
    template: str,
    page: Page,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with ``page`` (and the layout's :class:`Chrome`) as an HTML response."""
    env: Environment = request.app.state.jinja
    context: dict[str, Any] = {
        "page": page,
        "chrome": chrome(request),
        "service_name": SERVICE_NAME,
        # Called only by templates that show a form, so public pages set no cookie.
        "csrf_token": lambda: csrf_token(request.session),
    }
    html = env.get_template(template).render(context)
    return HTMLResponse(html, status_code=status_code, headers=headers)
