"""Security for every response and form: headers, CSRF tokens, sign-in rate limiting.

- :class:`SecurityHeadersMiddleware` adds a strict Content-Security-Policy (no inline script or
  style, nothing from other origins), HSTS, and the other headers a public-sector service is
  expected to send, and ``Cache-Control: no-store`` on personal pages.
- CSRF uses the synchronizer-token pattern: a random token kept in the signed session, put in
  every form as ``csrf_token`` (or sent as the ``X-CSRF-Token`` header by scripts), and checked
  on every unsafe method by :func:`verify_csrf`, which the app applies to every route.
- :class:`RateLimiter` is a small in-process sliding-window limiter for the sign-in routes.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import MutableMapping
from typing import Any

from fastapi import HTTPException, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_SESSION_KEY = "csrf"
CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# Pages that show or act on one person's data: never stored by the browser or any cache.
PERSONAL_PREFIXES = (
    "/me", "/staff", "/api/v1/me", "/api/v1/staff", "/api/v1/services", "/sign-in", "/sign-out"
)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
        "browsing-topics",
    )
)


def is_personal(path: str) -> bool:
    """True for paths whose responses concern one signed-in person."""
    return any(path == p or path.startswith(p + "/") for p in PERSONAL_PREFIXES)


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response, whatever produced it."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        personal = is_personal(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Permissions-Policy"] = PERMISSIONS_POLICY
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
                if personal:
                    headers["Cache-Control"] = "no-store"
                elif "cache-control" not in headers:
                    # HTML may change with every log entry; revalidate rather than guess.
                    headers["Cache-Control"] = "no-cache"
                headers.append("Vary", "Cookie")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, created on first use (so only pages with forms set a cookie)."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


async def verify_csrf(request: Request) -> None:
    """Reject an unsafe request whose CSRF token is missing or wrong, with 403.

    Applied to every route. The token comes from the ``csrf_token`` form field or the
    ``X-CSRF-Token`` header and must equal the one in the signed session cookie.
    """
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get(CSRF_SESSION_KEY)
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FORM_FIELD)
            supplied = value if isinstance(value, str) else None
    if (
        not isinstance(expected, str)
        or not supplied
        or not hmac.compare_digest(expected.encode(), supplied.encode())
    ):
        raise HTTPException(status_code=403, detail="csrf")


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key, in this process only.

    Memory is bounded: at most ``max_keys`` keys are tracked, the least recently used first
    to go. Behind several processes or servers each enforces its own limit, which still caps
    an attacker's rate at a known multiple; a shared limiter belongs in the reverse proxy.
    """

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> float | None:
        """Record an event; return None if allowed, else the seconds until one is allowed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.get(key)
            if events is None:
                events = self._events[key] = deque()
                while len(self._events) > self.max_keys:
                    self._events.popitem(last=False)
            else:
                self._events.move_to_end(key)
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return max(events[0] + self.window - now, 0.0)
            events.append(now)
            return None
