"""Sign-in and sign-out for residents and staff: OIDC authorization code flow with PKCE.

Residents: ``/sign-in`` explains, ``/sign-in/start`` sends them to the provider (GOV.UK One
Login), ``/sign-in/callback`` checks the answer (state, nonce, PKCE, ID token signature), reads
the verified identity, and asks the :class:`~candour.web.identity.IdentityMatcher` for exactly
one person. Nothing about the person goes into a URL or a log line; the session holds only the
opaque person id. Staff: the same under ``/staff/sign-in``; the identity names a register user
(``staff_users``) whose role is read from the register, optionally narrowed by a roles claim.
Both start and callback routes are rate limited per client address.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from authlib.integrations.base_client import OAuthError
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from candour.web.deps import SettingsDep
from candour.web.identity import ClaimsError, extract_identity, load_public_key
from candour.web.oidc import Audience, Provider
from candour.web.security import RateLimiter
from candour.web.templating import Page, render

logger = logging.getLogger(__name__)


class SignInPage(Page):
    """The sign-in start page."""

    available: bool
    demo: bool


class MessagePage(Page):
    """A page that tells the visitor what happened and what to do next."""

    heading: str
    paragraphs: list[str]
    link_text: str | None = None
    link_href: str | None = None


def limit_sign_in(request: Request) -> None:
    """Allow at most ``web_signin_rate_limit`` sign-in requests a minute per client address."""
    limiter: RateLimiter = request.app.state.sign_in_limiter
    client = request.client.host if request.client else "unknown"
    wait = limiter.hit(client)
    if wait is not None:
        raise HTTPException(status_code=429, headers={"Retry-After": str(int(wait) + 1)})


router = APIRouter(include_in_schema=False)
rate_limited = [Depends(limit_sign_in)]


def _provider(request: Request, audience: Audience) -> Provider:
    provider: Provider | None = request.app.state.providers.get(audience)
    if provider is None:
        raise HTTPException(status_code=404)
    return provider


def _safe_next(value: Any, default: str) -> str:
    # Only a local path: an open redirect would let a phishing link borrow our address.
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return default


async def _start(request: Request, audience: Audience) -> Response:
    provider = _provider(request, audience)
    try:
        response: Response = await provider.client.authorize_redirect(
            request, provider.redirect_uri, **provider.authorize_params
        )
    except Exception as exc:  # the provider's discovery document could not be fetched
        logger.warning("sign-in: %s provider unavailable: %s", audience, type(exc).__name__)
        return _unavailable(request)
    return response


def _unavailable(request: Request) -> HTMLResponse:
    page = MessagePage(
        title="Sign-in is not working at the moment",
        heading="Sign-in is not working at the moment",
        paragraphs=["We could not reach the sign-in service. Try again in a few minutes."],
        link_text="Go to the home page",
        link_href="/",
    )
    return render(request, "message.html", page, status_code=503)


def _failed(request: Request, audience: Audience) -> HTMLResponse:
    again = "/staff/sign-in" if audience == "staff" else "/sign-in"
    page = MessagePage(
        title="You have not been signed in",
        heading="You have not been signed in",
        paragraphs=[
            "Sign-in was cancelled, took too long, or the answer from the sign-in service "
            "could not be checked.",
            "Nothing has been saved. You can try again.",
        ],
        link_text="Try signing in again",
        link_href=again,
    )
    return render(request, "message.html", page, status_code=400)


async def _claims(request: Request, provider: Provider) -> dict[str, Any] | None:
    """The verified ID token claims (plus userinfo when wanted), or None if sign-in failed."""
    if request.query_params.get("error"):
        logger.info("sign-in: %s provider returned an error", provider.audience)
        return None
    try:
        token = await provider.client.authorize_access_token(request)
    except OAuthError as exc:
        logger.info("sign-in: %s callback rejected: %s", provider.audience, exc.error)
        return None
    claims: dict[str, Any] = dict(token.get("userinfo") or {})
    if not claims.get("sub"):
        logger.info("sign-in: %s provider returned no ID token", provider.audience)
        return None
    if provider.wants_userinfo:
        try:
            userinfo = dict(await provider.client.userinfo(token=token))
        except Exception as exc:  # network or HTTP error from the userinfo endpoint
            logger.warning("sign-in: userinfo failed: %s", type(exc).__name__)
            return None
        # OIDC Core 5.3.2: userinfo about anyone else must not be used.
        if userinfo.get("sub") != claims["sub"]:
            logger.warning("sign-in: userinfo subject differs from the ID token's")
            return None
        claims.update(userinfo)
    return claims


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in(request: Request) -> HTMLResponse:
    """How residents sign in, with a button that starts it."""
    page = SignInPage(
        title="Sign in to see your data",
        available="resident" in request.app.state.providers,
        demo=bool(request.app.state.demo),
    )
    return render(request, "sign_in.html", page)


@router.get("/sign-in/start", dependencies=rate_limited)
async def sign_in_start(request: Request) -> Response:
    """Send the resident to their identity provider."""
    return await _start(request, "resident")


@router.get("/sign-in/callback", dependencies=rate_limited)
async def sign_in_callback(request: Request, settings: SettingsDep) -> Response:
    """Finish resident sign-in: verify the answer, then match the identity to one person."""
    provider = _provider(request, "resident")
    claims = await _claims(request, provider)
    if claims is None:
        return _failed(request, "resident")
    next_path = _safe_next(request.session.get("next"), "/me")
    # A fresh session at every sign-in, so nothing set before it (fixation) survives.
    request.session.clear()
    key_path = settings.resident_core_identity_key
    try:
        identity = extract_identity(
            claims,
            claims_format=settings.resident_claims_format,
            client_id=provider.client_id,
            core_identity_key=load_public_key(key_path) if key_path else None,
            core_identity_issuer=settings.resident_core_identity_issuer,
        )
    except ClaimsError as exc:
        logger.info("sign-in: identity not usable: %s", exc)
        return RedirectResponse("/sign-in/not-confirmed", status_code=303)
    person_id = await run_in_threadpool(request.app.state.matcher.match, identity)
    if not isinstance(person_id, str) or not person_id:
        logger.info("sign-in: identity matched no single person")
        return RedirectResponse("/sign-in/not-confirmed", status_code=303)
    request.session["resident"] = {"person_id": person_id, "since": int(time.time())}
    return RedirectResponse(next_path, status_code=303)


@router.get("/sign-in/not-confirmed", response_class=HTMLResponse)
def not_confirmed(request: Request) -> HTMLResponse:
    """The safe page for a resident whose identity matched nobody, or more than one person."""
    page = MessagePage(
        title="We could not confirm who you are",
        heading="We could not confirm who you are",
        paragraphs=[
            "You signed in, but the details your sign-in service gave us do not match exactly "
            "one person in the records the services share with Candour.",
            "To keep everyone's information safe, we only show records when we are sure they "
            "are yours. We have not shown you anything, and we have not saved your details.",
            "This can happen if you have moved recently, changed your name, or a service holds "
            "a mistake. Contact the service you deal with to check the details they hold, or "
            "ask your council's data protection officer for a copy of your data.",
        ],
        link_text="Go to the home page",
        link_href="/",
    )
    return render(request, "message.html", page)


@router.post("/sign-out")
def sign_out(request: Request) -> RedirectResponse:
    """Forget the session (CSRF-checked like every form)."""
    request.session.clear()
    return RedirectResponse("/signed-out", status_code=303)


@router.get("/signed-out", response_class=HTMLResponse)
def signed_out(request: Request) -> HTMLResponse:
    """Confirms sign-out."""
    page = MessagePage(
        title="You have signed out",
        heading="You have signed out",
        paragraphs=["You have signed out of Candour on this device."],
        link_text="Go to the home page",
        link_href="/",
    )
    return render(request, "message.html", page)


@router.get("/staff/sign-in", response_class=HTMLResponse)
def staff_sign_in(request: Request) -> HTMLResponse:
    """How staff sign in, with a button that starts it."""
    page = SignInPage(
        title="Staff sign in",
        available="staff" in request.app.state.providers,
        demo=bool(request.app.state.demo),
    )
    return render(request, "staff_sign_in.html", page)


@router.get("/staff/sign-in/start", dependencies=rate_limited)
async def staff_sign_in_start(request: Request) -> Response:
    """Send a member of staff to the organisation's identity provider."""
    return await _start(request, "staff")


def _roles(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [r for r in value if isinstance(r, str)]
    return []


@router.get("/staff/sign-in/callback", dependencies=rate_limited)
async def staff_sign_in_callback(request: Request, settings: SettingsDep) -> Response:
    """Finish staff sign-in and keep the member's roles in the session."""
    provider = _provider(request, "staff")
    claims = await _claims(request, provider)
    if claims is None:
        return _failed(request, "staff")
    next_path = _safe_next(request.session.get("next"), "/staff")
    request.session.clear()
    claimed = claims.get(settings.staff_roles_claim)
    request.session["staff"] = {
        "sub": claims["sub"],
        "name": claims.get("name") or claims.get("email") or "",
        # The register user this identity is; roles are read from the register per request.
        "user": _username(claims.get(settings.staff_username_claim) or claims["sub"]),
        "claim_roles": _roles(claimed) if claimed is not None else None,
        "since": int(time.time()),
    }
    return RedirectResponse(next_path, status_code=303)


def _username(value: Any) -> str | None:
    # Register names are lower case; an e-mail style name maps to its local part.
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower().split("@", 1)[0][:64]
