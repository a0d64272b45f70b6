"""The application factory: settings in, a fully wired FastAPI app out.

Adding a page: write a route in the area's module (or a new ``APIRouter`` module included
below), a :class:`~candour.web.templating.Page` subclass for its context, and a template that
extends ``layout.html``. See docs/web.md.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from candour import __version__
from candour.config import Settings
from candour.demo import DEMO_MARKER
from candour.errors import CandourError
from candour.home import Home, read_secret, write_secret_once
from candour.warehouse import WarehouseError
from candour.web import (
    api,
    auth,
    catalogue,
    log,
    me,
    public,
    register,
    services_api,
    staff,
    studies,
)
from candour.web.assets import govuk_frontend_dir
from candour.web.deps import SignInRequired
from candour.web.identity import IdentityMatcher
from candour.web.logindex import LogIndex
from candour.web.oidc import build_providers
from candour.web.register import RegisterCache
from candour.web.security import RateLimiter, SecurityHeadersMiddleware, verify_csrf
from candour.web.templating import Page, build_environment, render
from candour.workflows.identity_match import VaultMatcher

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SESSION_KEY_FILE = "web-session.key"


class ErrorPage(Page):
    """An error page: a heading and plain-English paragraphs."""

    heading: str
    paragraphs: list[str]


ERRORS: dict[int, tuple[str, list[str]]] = {
    400: ("There is a problem with that request", ["Check the address or the form and try again."]),
    403: (
        "You cannot do that",
        [
            "You do not have permission to see this page, or the form you sent had expired.",
            "Go back, reload the page and try again.",
        ],
    ),
    404: (
        "Page not found",
        ["If you typed the web address, check it is correct.", "If you pasted it, check you "
         "copied the entire address."],
    ),
    405: ("There is a problem with that request", ["That page cannot be used in that way."]),
    429: (
        "You have tried to sign in too many times",
        ["For your security, wait a minute before you try again."],
    ),
    500: (
        "Sorry, there is a problem with the service",
        ["Try again later. Nothing you entered has been saved."],
    ),
    503: (
        "Sorry, this page is busy",
        [
            "Records are being updated. Try again in a few minutes.",
            "Nothing you entered has been lost.",
        ],
    ),
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def session_secret(settings: Settings) -> bytes:
    """The session-signing secret, created once in the home's keys directory (mode 0600)."""
    home = Home(settings.home)
    home.keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = home.keys / SESSION_KEY_FILE
    write_secret_once(path, lambda: secrets.token_hex(32).encode())
    return read_secret(path).strip()


def _error(request: Request, status: int, headers: dict[str, str] | None = None) -> Response:
    heading, paragraphs = ERRORS.get(status, ERRORS[400 if status < 500 else 500])
    if _is_api(request):
        return JSONResponse({"detail": heading}, status_code=status, headers=headers)
    page = ErrorPage(title=heading, heading=heading, paragraphs=paragraphs)
    return render(request, "error.html", page, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) and exc.status_code == 404 and exc.detail not in (None, "Not Found"):
            return JSONResponse({"detail": exc.detail}, status_code=404)
        return _error(request, exc.status_code, dict(exc.headers or {}) or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            # FastAPI's own 422 body, as the OpenAPI document promises.
            from fastapi.exception_handlers import request_validation_exception_handler

            return await request_validation_exception_handler(request, exc)
        # A page address that cannot exist (a malformed id in the path) is not found.
        if any(error.get("loc", ("",))[0] == "path" for error in exc.errors()):
            return _error(request, 404)
        return _error(request, 400)

    @app.exception_handler(WarehouseError)
    async def warehouse_busy(request: Request, exc: WarehouseError) -> Response:
        # An ingest or link run can hold the warehouse for minutes; readers wait
        # (CANDOUR_WAREHOUSE_WAIT_SECONDS) and then get this page rather than a crash.
        logger.warning("warehouse unavailable for %s: %s", request.url.path, exc)
        return _error(request, 503, {"Retry-After": "60"})

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "sign in required"}, status_code=401)
        if request.method == "GET" and not request.url.query:
            request.session["next"] = request.url.path
        target = "/staff/sign-in" if exc.audience == "staff" else "/sign-in"
        return RedirectResponse(target, status_code=303)



class CrashPageMiddleware:
    """Turns an unhandled exception into the GOV.UK-style 500 page, inside the other middleware.

    Starlette's own last-resort handler runs outside every middleware, so its responses would
    lack the security headers and the session; this one runs inside them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            # The path only: query strings and bodies might one day carry something personal.
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await _error(Request(scope), 500)(scope, receive, send)


def _warm(matcher: Any) -> None:
    try:
        matcher.warm()
    except Exception as exc:  # the first sign-in builds it instead; nothing is lost
        logger.warning("identity index warm-up failed: %s", type(exc).__name__)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """At start-up, build the identity matcher's index in the background.

    Building it reads the whole vault once (minutes for a large county); done here, in a
    daemon thread, the server answers at once and the first resident to sign in does not wait
    (a sign-in during the build waits only for the rest of it). Only when residents can sign
    in: otherwise the index, and the audited vault read it takes, would serve no one.
    """
    matcher = app.state.matcher
    if "resident" in app.state.providers and callable(getattr(matcher, "warm", None)):
        threading.Thread(
            target=_warm, args=(matcher,), name="identity-index-warm-up", daemon=True
        ).start()
    yield


def create_app(settings: Settings, *, matcher: IdentityMatcher | None = None) -> FastAPI:
    """Build the web app for ``settings``.

    ``matcher`` confirms residents' identities; by default a
    :class:`~candour.workflows.identity_match.VaultMatcher` over the home's vault and person
    index, which confirms no one until linkage has run. Raises :class:`CandourError` when the home
    is not initialised, GOV.UK Frontend is not installed, sign-in is misconfigured, or the demo
    identity provider is asked for outside a demo home.
    """
    home = Home(settings.home)
    home.require_initialised()
    if settings.web_demo_idp and not (home.root / DEMO_MARKER).is_file():
        raise CandourError(
            f"the demo identity provider is only for demo homes, and {home.root} is not one "
            f"(it has no {DEMO_MARKER}); unset CANDOUR_WEB_DEMO_IDP"
        )
    assets = govuk_frontend_dir(settings)
    providers = build_providers(settings)

    app = FastAPI(
        title="Candour API",
        version=__version__,
        summary="The register, transparency log, resident portal and staff console of Candour.",
        openapi_url="/api/v1/openapi.json",
        # The interactive docs load scripts from a CDN, which the CSP (rightly) forbids.
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(verify_csrf)],
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.jinja = build_environment()
    app.state.providers = providers
    # The vault-backed matcher confirms no one until a link run has built the person index.
    app.state.matcher = matcher or VaultMatcher(settings)
    app.state.sign_in_limiter = RateLimiter(settings.web_signin_rate_limit, window=60.0)
    app.state.demo = settings.web_demo_idp

    secure = settings.web_secure_cookies
    app.add_middleware(CrashPageMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings).decode(),
        # __Host- binds the cookie to this exact origin; browsers accept it only when Secure.
        session_cookie="__Host-candour-session" if secure else "candour-session",
        max_age=settings.web_session_max_age,
        same_site="lax",
        https_only=secure,
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts=secure)

    app.state.register_cache = RegisterCache(settings)
    app.state.log_index = LogIndex(settings)

    for router in (
        public.router,
        register.router,
        log.router,
        auth.router,
        me.router,
        staff.router,
        api.router,
        register.api,
        me.api,
        staff.api,
        services_api.api,
        studies.router,
    ):
        app.include_router(router)
    catalogue.install(app, settings)

    css, js = assets / "govuk-frontend.min.css", assets / "govuk-frontend.min.js"

    @app.get("/assets/govuk-frontend.min.css", include_in_schema=False)
    def govuk_css() -> FileResponse:
        return FileResponse(css, media_type="text/css")

    @app.get("/assets/govuk-frontend.min.js", include_in_schema=False)
    def govuk_js() -> FileResponse:
        return FileResponse(js, media_type="text/javascript")

    # GOV.UK Frontend's stylesheet refers to its fonts and images under /assets.
    app.mount("/assets", StaticFiles(directory=assets / "assets"), name="assets")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _install_error_handlers(app)
    return app
