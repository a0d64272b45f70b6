"""OpenID Connect clients for residents and staff (Authlib, authorization code flow with PKCE).

Each audience has its own provider, client and client-authentication method, all from settings:
residents typically sign in with GOV.UK One Login (``private_key_jwt``, vectors of trust, the
core identity claim), staff with the organisation's own provider (``client_secret_basic``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from candour.config import Settings
from candour.errors import CandourError

Audience = Literal["resident", "staff"]
CALLBACK_PATHS: dict[Audience, str] = {
    "resident": "/sign-in/callback",
    "staff": "/staff/sign-in/callback",
}


class SignInConfigError(CandourError):
    """Sign-in is configured inconsistently; the message says which setting to fix."""


@dataclass(frozen=True)
class Provider:
    """One configured provider: the Authlib client and what to ask it for."""

    audience: Audience
    client: StarletteOAuth2App
    client_id: str
    redirect_uri: str
    authorize_params: dict[str, str] = field(default_factory=dict)
    wants_userinfo: bool = False


def _client_secret(
    prefix: str, auth: str, secret: str | None, key_path: Path | None
) -> tuple[str, Any]:
    if auth == "private_key_jwt":
        if key_path is None:
            raise SignInConfigError(
                f"CANDOUR_{prefix}_OIDC_PRIVATE_KEY must name a PEM private key for private_key_jwt"
            )
        try:
            pem = key_path.expanduser().read_text()
        except OSError as exc:
            raise SignInConfigError(f"cannot read {key_path}: {exc.strerror}") from exc
        # Authlib signs the client assertion with the key passed as the "secret"; the audience
        # is the token endpoint, which is what GOV.UK One Login requires.
        return pem, PrivateKeyJWT()
    if not secret:
        raise SignInConfigError(f"CANDOUR_{prefix}_OIDC_CLIENT_SECRET is needed for {auth}")
    return secret, auth


def _metadata_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def build_providers(settings: Settings) -> dict[Audience, Provider]:
    """The providers configured in ``settings`` (none, one or both audiences)."""
    oauth = OAuth()
    providers: dict[Audience, Provider] = {}
    base = settings.web_base_url.rstrip("/")
    if settings.resident_oidc_issuer:
        if not settings.resident_oidc_client_id:
            raise SignInConfigError("CANDOUR_RESIDENT_OIDC_CLIENT_ID is needed")
        secret, method = _client_secret(
            "RESIDENT",
            settings.resident_oidc_client_auth,
            settings.resident_oidc_client_secret,
            settings.resident_oidc_private_key,
        )
        params: dict[str, str] = {}
        if settings.resident_oidc_vtr:
            params["vtr"] = settings.resident_oidc_vtr
        if settings.resident_oidc_claims:
            params["claims"] = json.dumps(
                {"userinfo": {claim: None for claim in settings.resident_oidc_claims}},
                separators=(",", ":"),
            )
        if settings.resident_claims_format == "govuk-one-login":
            if settings.resident_core_identity_key is None:
                raise SignInConfigError(
                    "CANDOUR_RESIDENT_CORE_IDENTITY_KEY must name One Login's identity public key"
                )
        client = oauth.register(
            "resident",
            client_id=settings.resident_oidc_client_id,
            client_secret=secret,
            server_metadata_url=_metadata_url(settings.resident_oidc_issuer),
            client_kwargs={
                "scope": " ".join(settings.resident_oidc_scopes),
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": method,
                "timeout": 10.0,
            },
        )
        providers["resident"] = Provider(
            "resident",
            client,
            settings.resident_oidc_client_id,
            base + CALLBACK_PATHS["resident"],
            params,
            wants_userinfo=True,
        )
    if settings.staff_oidc_issuer:
        if not settings.staff_oidc_client_id:
            raise SignInConfigError("CANDOUR_STAFF_OIDC_CLIENT_ID is needed")
        secret, method = _client_secret(
            "STAFF",
            settings.staff_oidc_client_auth,
            settings.staff_oidc_client_secret,
            settings.staff_oidc_private_key,
        )
        client = oauth.register(
            "staff",
            client_id=settings.staff_oidc_client_id,
            client_secret=secret,
            server_metadata_url=_metadata_url(settings.staff_oidc_issuer),
            client_kwargs={
                "scope": " ".join(settings.staff_oidc_scopes),
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": method,
                "timeout": 10.0,
            },
        )
        providers["staff"] = Provider(
            "staff",
            client,
            settings.staff_oidc_client_id,
            base + CALLBACK_PATHS["staff"],
            wants_userinfo=True,
        )
    return providers
