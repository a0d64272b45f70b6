"""Who a signed-in resident is: their verified identity claims, and matching them to one person.

The identity provider tells us a name, a date of birth and a postcode. Candour must match those
to exactly one person with high confidence before showing anyone anything (invariant 6). The
matching itself belongs to linkage; the web app depends only on the :class:`IdentityMatcher`
protocol, and treats ``None`` as "we could not confirm who you are".

Two claim formats are read:

- ``govuk-one-login``: GOV.UK One Login's core identity JWT (signed by One Login, checked here
  with its published public key) and its address claim.
- ``oidc``: the standard OpenID Connect claims ``given_name``, ``family_name``, ``birthdate``
  and ``address.postal_code``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Protocol

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

CORE_IDENTITY_CLAIM = "https://vocab.account.gov.uk/v1/coreIdentityJWT"
ADDRESS_CLAIM = "https://vocab.account.gov.uk/v1/address"
# The levels of identity confidence we accept: P2 (medium) and above.
ACCEPTED_VOT = frozenset({"P2", "P3", "P4"})


class IdentityClaims(BaseModel):
    """A resident's verified identity, as the matcher sees it. Never logged, never in a URL."""

    model_config = ConfigDict(frozen=True)

    given_names: str
    family_name: str
    birth_date: date
    postcode: str | None = None

    @field_validator("given_names", "family_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("empty name")
        return value

    def __repr__(self) -> str:
        # Keeps names and dates out of tracebacks and debug logs.
        return "IdentityClaims(<redacted>)"

    __str__ = __repr__


class IdentityMatcher(Protocol):
    """Finds the one person a verified identity belongs to."""

    def match(self, claims: IdentityClaims) -> str | None:
        """The ``person_id`` of the only person matching ``claims`` with high confidence.

        Returns None when nobody matches, when more than one person might, or when confidence
        is not high enough: the resident is then told we could not confirm who they are.
        """
        ...


class NoMatcher:
    """Confirms nobody. The safe choice until a linkage-backed matcher is configured."""

    def match(self, claims: IdentityClaims) -> str | None:
        """Always None: without a person index no one can be matched safely."""
        return None


class ClaimsError(ValueError):
    """The provider's claims do not give a usable, verified identity."""


def load_public_key(path: Path) -> ECKey | RSAKey:
    """A PEM public key (EC or RSA) from ``path``."""
    data = path.read_bytes()
    try:
        return ECKey.import_key(data)
    except (JoseError, ValueError, TypeError):
        return RSAKey.import_key(data)


def _one_login_identity(
    claims: dict[str, Any],
    key: ECKey | RSAKey,
    issuer: str,
    client_id: str,
) -> tuple[str, str, date]:
    token = claims.get(CORE_IDENTITY_CLAIM)
    if not isinstance(token, str):
        raise ClaimsError("no core identity claim")
    try:
        decoded = jwt.decode(token, key, algorithms=["ES256", "RS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            sub={"essential": True, "value": str(claims.get("sub"))},
            vot={"essential": True, "values": sorted(ACCEPTED_VOT)},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise ClaimsError(f"core identity JWT rejected: {type(exc).__name__}") from None
    subject = decoded.claims.get("vc", {}).get("credentialSubject", {})
    try:
        parts = subject["name"][0]["nameParts"]
        given = " ".join(p["value"] for p in parts if p.get("type") == "GivenName")
        family = " ".join(p["value"] for p in parts if p.get("type") == "FamilyName")
        born = date.fromisoformat(subject["birthDate"][0]["value"])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ClaimsError("core identity JWT lacks a name or birth date") from exc
    return given, family, born


def _one_login_postcode(claims: dict[str, Any]) -> str | None:
    addresses = claims.get(ADDRESS_CLAIM)
    if not isinstance(addresses, list):
        return None
    current = [a for a in addresses if isinstance(a, dict) and not a.get("validUntil")]
    for address in current or [a for a in addresses if isinstance(a, dict)]:
        postcode = address.get("postalCode")
        if isinstance(postcode, str) and postcode.strip():
            return postcode
    return None


def _oidc_identity(claims: dict[str, Any]) -> tuple[str, str, date, str | None]:
    given, family = claims.get("given_name"), claims.get("family_name")
    born = claims.get("birthdate")
    if not (isinstance(given, str) and isinstance(family, str) and isinstance(born, str)):
        raise ClaimsError("the provider did not send given_name, family_name and birthdate")
    try:
        birth = date.fromisoformat(born)
    except ValueError as exc:
        raise ClaimsError("birthdate is not YYYY-MM-DD") from exc
    address = claims.get("address")
    postcode = address.get("postal_code") if isinstance(address, dict) else None
    return given, family, birth, postcode if isinstance(postcode, str) else None


def extract_identity(
    claims: dict[str, Any],
    *,
    claims_format: str,
    client_id: str,
    core_identity_key: ECKey | RSAKey | None = None,
    core_identity_issuer: str = "",
) -> IdentityClaims:
    """The verified identity in a provider's claims (ID token merged with userinfo).

    Raises :class:`ClaimsError` when the claims are missing, unverified or malformed; the
    message names what is wrong but never a value.
    """
    if claims_format == "govuk-one-login":
        if core_identity_key is None:
            raise ClaimsError("no core identity key is configured")
        given, family, born = _one_login_identity(
            claims, core_identity_key, core_identity_issuer, client_id
        )
        postcode = _one_login_postcode(claims)
    elif claims_format == "oidc":
        given, family, born, postcode = _oidc_identity(claims)
    else:
        raise ClaimsError(f"unknown claims format {claims_format!r}")
    try:
        return IdentityClaims(
            given_names=given, family_name=family, birth_date=born, postcode=postcode
        )
    except ValidationError:
        raise ClaimsError("the identity has an empty name") from None
