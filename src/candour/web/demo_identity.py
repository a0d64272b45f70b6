"""The demo's test sign-in: a local OpenID provider whose users are synthetic residents.

``candour serve --demo-sign-in`` (which ``candour demo`` uses) starts ``oidc-provider-mock`` (an
independent, Authlib-based OpenID provider, the one the tests use) on a free localhost port in
a background thread, registers the web app with it as a client (dynamic client registration,
``client_secret_basic``), and points the residents' sign-in settings at it. Its users are a few
synthetic residents whose name, date of birth and postcode the vault matcher confirms as exactly
one person, so signing in as any of them lands on ``/me``; the provider's own page offers them
as one-click buttons.

It is a demonstration aid and nothing else: :func:`require_demo_home` refuses any data home
without the demo marker (``.candour-demo``, written only by ``candour demo``), the settings it
returns switch on ``web_demo_idp`` (which :func:`~candour.web.create_app` refuses outside a demo
home too), and every page then carries the "Demo sign-in: test identities only" banner.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from candour.config import Settings
from candour.demo import DEMO_MARKER
from candour.errors import CandourError
from candour.web.oidc import CALLBACK_PATHS
from candour.workflows.identity_match import VaultMatcher, confirmable_identities

BANNER = "Demo sign-in: test identities only"
SCOPES = ("openid", "profile", "address")
DEFAULT_RESIDENTS = 5


class DemoSignInError(CandourError):
    """The demo sign-in cannot be used here (not a demo home, or nobody can be matched)."""


@dataclass(frozen=True)
class DemoResident:
    """One test identity: the provider's subject and the claims it vouches for."""

    sub: str
    person_id: str
    given_name: str
    family_name: str
    birthdate: str
    postcode: str

    def claims(self) -> dict[str, Any]:
        """The standard OIDC claims the provider sends for this resident."""
        return {
            "name": f"{self.given_name} {self.family_name}",
            "given_name": self.given_name,
            "family_name": self.family_name,
            "birthdate": self.birthdate,
            "address": {"postal_code": self.postcode},
        }


@dataclass(frozen=True)
class DemoIdentityProvider:
    """The running test provider: where it is, the client it registered, and its residents."""

    issuer: str
    client_id: str
    client_secret: str
    residents: tuple[DemoResident, ...]

    def settings_for(self, settings: Settings, base_url: str) -> Settings:
        """``settings`` with residents' sign-in pointed at this provider, in demo mode."""
        return settings.model_copy(
            update={
                "web_demo_idp": True,
                "web_base_url": base_url,
                # The demo is served over plain http on this machine; Secure cookies would be
                # dropped by browsers that do not treat the address as a secure context.
                "web_secure_cookies": False,
                "resident_oidc_issuer": self.issuer,
                "resident_oidc_client_id": self.client_id,
                "resident_oidc_client_secret": self.client_secret,
                "resident_oidc_client_auth": "client_secret_basic",
                "resident_oidc_scopes": list(SCOPES),
                "resident_oidc_vtr": None,
                "resident_oidc_claims": [],
                "resident_claims_format": "oidc",
            }
        )


def require_demo_home(settings: Settings) -> None:
    """Raise :class:`DemoSignInError` unless ``settings.home`` is a home ``candour demo`` made."""
    if not (settings.home / DEMO_MARKER).is_file():
        raise DemoSignInError(
            f"demo sign-in is only for demo homes, and {settings.home} is not one (it has no "
            f"{DEMO_MARKER}); run `candour demo`, or configure a real identity provider "
            "(docs/web.md)"
        )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def choose_residents(
    settings: Settings, matcher: VaultMatcher, wanted: int = DEFAULT_RESIDENTS
) -> list[DemoResident]:
    """Synthetic residents whose claims ``matcher`` confirms as exactly one person each."""
    require_demo_home(settings)
    found = confirmable_identities(settings, matcher, wanted)
    return [
        DemoResident(
            sub=f"resident-{n}-{_slug(f'{i.given_names} {i.family_name}')}",
            person_id=i.person_id,
            given_name=i.given_names,
            family_name=i.family_name,
            birthdate=i.birth_date.isoformat(),
            postcode=i.postcode,
        )
        for n, i in enumerate(found, start=1)
    ]


@contextmanager
def run_demo_provider(
    residents: list[DemoResident], redirect_uri: str
) -> Iterator[DemoIdentityProvider]:
    """Run oidc-provider-mock on a free localhost port with ``residents`` as its users.

    Registers one client for ``redirect_uri`` (so the provider sends codes nowhere else), and
    stops the provider when the block ends.
    """
    import oidc_provider_mock
    import werkzeug.serving

    app = oidc_provider_mock.app(
        require_client_registration=True,
        require_nonce=True,
        user_claims=[oidc_provider_mock.User(sub=r.sub, claims=r.claims()) for r in residents],
    )
    # Loopback only: the test provider vouches for anyone, so nothing off this machine may use it.
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.2},
        daemon=True,
        name="demo-identity-provider",
    )
    thread.start()
    issuer = f"http://127.0.0.1:{server.server_port}"
    try:
        answer = httpx.post(
            f"{issuer}/oauth2/clients",
            json={
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": " ".join(SCOPES),
            },
            timeout=10.0,
        )
        if answer.status_code != 201:
            raise DemoSignInError(
                f"the demo identity provider refused to register the app ({answer.status_code})"
            )
        client = answer.json()
        yield DemoIdentityProvider(
            issuer, str(client["client_id"]), str(client["client_secret"]), tuple(residents)
        )
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@contextmanager
def demo_sign_in(
    settings: Settings,
    base_url: str,
    *,
    matcher: VaultMatcher | None = None,
    wanted: int = DEFAULT_RESIDENTS,
) -> Iterator[tuple[Settings, DemoIdentityProvider]]:
    """Start the demo sign-in for a demo home; yield the app's settings and the provider.

    Refuses (:class:`DemoSignInError`) a home without the demo marker, and a home where no
    resident can be confirmed (for example before linkage has run). ``base_url`` is where the
    web app is served; its sign-in callback is the only redirect the provider accepts.
    """
    require_demo_home(settings)
    residents = choose_residents(settings, matcher or VaultMatcher(settings), wanted)
    if not residents:
        raise DemoSignInError(
            f"no resident of {settings.home} can be matched to exactly one person yet; run the "
            "demo to the end (linkage included) before serving it with demo sign-in"
        )
    redirect_uri = base_url.rstrip("/") + CALLBACK_PATHS["resident"]
    with run_demo_provider(residents, redirect_uri) as provider:
        yield provider.settings_for(settings, base_url.rstrip("/")), provider
