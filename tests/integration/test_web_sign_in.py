"""Sign-in against a real, independent OpenID provider (oidc-provider-mock on a real socket).

Covers the resident flow in both claim formats (standard OIDC with client_secret_basic, and
GOV.UK One Login style with private_key_jwt, vectors of trust and a signed core identity JWT),
identity matching, staff roles, sign-out, CSRF, rate limiting and the provider being down.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey

from candour import register
from candour.web import create_app
from e2e.support import (
    CLIENT_ID,
    ONE_LOGIN_ISSUER,
    DictMatcher,
    Provider,
    core_identity_jwt,
    free_port,
    make_home,
    oidc_provider,
    one_login_identity_key,
    pkce_challenge,
    resident_oidc,
    rsa_private_key_pem,
)

PERSON = "P-ABCDEFGHJKMN"
ALICE = {"given_name": "Alice", "family_name": "Smith", "birthdate": "1980-02-29",
         "address": {"postal_code": "AB1 2CD"}}


@pytest.fixture
def provider() -> Iterator[Provider]:
    with oidc_provider() as running:
        yield running


def oidc_settings(tmp_path: Path, provider: Provider, **extra: Any) -> Any:
    return make_home(
        tmp_path,
        entries=3,
        web_base_url="http://testserver",
        **resident_oidc(provider.issuer),
        **extra,
    )


def sign_in(client: TestClient, provider: Provider, sub: str, start: str) -> httpx.Response:
    """Start sign-in, authorise as ``sub`` at the provider, and follow the callback once."""
    started = client.get(start, follow_redirects=False)
    assert started.status_code == 302, started.text
    authorize = started.headers["location"]
    assert authorize.startswith(provider.issuer + "/oauth2/authorize?")
    answer = httpx.post(authorize, data={"sub": sub}, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    callback = answer.headers["location"]
    assert callback.startswith("http://testserver/")
    return client.get(callback, follow_redirects=False)


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def test_resident_signs_in_with_pkce_and_is_matched(tmp_path: Path, provider: Provider) -> None:
    provider.set_user("alice-sub", ALICE)
    matcher = DictMatcher({("Alice", "Smith", "1980-02-29", "AB1 2CD"): PERSON})
    client = TestClient(create_app(oidc_settings(tmp_path, provider), matcher=matcher))

    # Anonymous: /me sends the visitor to sign in, and remembers where they were going.
    assert client.get("/me", follow_redirects=False).headers["location"] == "/sign-in"
    done = sign_in(client, provider, "alice-sub", "/sign-in/start")
    assert done.status_code == 303 and done.headers["location"] == "/me"

    me = client.get("/me")
    assert me.status_code == 200
    assert "You are signed in" in me.text
    assert me.headers["cache-control"] == "no-store"
    # The matcher saw the verified identity; the page and cookie never carry it.
    assert [c.family_name for c in matcher.seen] == ["Smith"]
    assert "Alice" not in me.text and "1980" not in me.text
    cookie = client.cookies.get("candour-session") or ""
    assert "Alice" not in base64.b64decode(cookie.split(".")[0] + "==").decode("latin-1")

    # PKCE on the wire: S256 challenge at the authorize step, matching verifier at the token step.
    authorize = provider.recorder.last("/oauth2/authorize")["query"]
    token = provider.recorder.last("/oauth2/token")
    assert authorize["code_challenge_method"] == ["S256"]
    assert authorize["code_challenge"] == [pkce_challenge(token["form"]["code_verifier"][0])]
    assert "nonce" in authorize
    assert token["authorization"].startswith("Basic ")


def test_one_login_style_private_key_jwt_vtr_and_core_identity(
    tmp_path: Path, provider: Provider
) -> None:
    key = rsa_private_key_pem(tmp_path / "client.pem")
    identity_key = one_login_identity_key(tmp_path / "identity.pub.pem")
    provider.set_user(
        "urn:fdc:gov.uk:2022:abc",
        {
            "https://vocab.account.gov.uk/v1/coreIdentityJWT": core_identity_jwt(
                identity_key, "urn:fdc:gov.uk:2022:abc", "Bola", "Adeyemi", "1975-07-01"
            ),
            "https://vocab.account.gov.uk/v1/address": [
                {"postalCode": "ZZ9 9ZZ", "validUntil": "2020-01-01"},
                {"postalCode": "XY1 1YX"},
            ],
        },
    )
    settings = make_home(
        tmp_path,
        entries=1,
        web_base_url="http://testserver",
        resident_oidc_issuer=provider.issuer,
        resident_oidc_client_id=CLIENT_ID,
        resident_oidc_private_key=tmp_path / "client.pem",
        resident_core_identity_key=tmp_path / "identity.pub.pem",
        resident_core_identity_issuer=ONE_LOGIN_ISSUER,
    )
    assert settings.resident_oidc_client_auth == "private_key_jwt"  # the default
    matcher = DictMatcher({("Bola", "Adeyemi", "1975-07-01", "XY1 1YX"): PERSON})
    client = TestClient(create_app(settings, matcher=matcher))
    public = RSAKey.import_key(
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    # The provider knows the client's public key, as One Login does once it is registered.
    provider.recorder.client_keys[CLIENT_ID] = public

    done = sign_in(client, provider, "urn:fdc:gov.uk:2022:abc", "/sign-in/start")
    assert done.headers["location"] == "/me"
    assert client.get("/me").status_code == 200

    authorize = provider.recorder.last("/oauth2/authorize")["query"]
    assert authorize["vtr"] == ['["Cl.Cm.P2"]']
    requested = json.loads(authorize["claims"][0])["userinfo"]
    assert set(requested) == {
        "https://vocab.account.gov.uk/v1/coreIdentityJWT",
        "https://vocab.account.gov.uk/v1/address",
    }
    token = provider.recorder.last("/oauth2/token")
    assert token["authorization"] is None  # no secret is sent: the assertion is the proof
    form = token["form"]
    assert form["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ]
    assertion = jwt.decode(form["client_assertion"][0], public, algorithms=["RS256"])
    assert assertion.claims["iss"] == assertion.claims["sub"] == CLIENT_ID
    assert assertion.claims["aud"] == provider.issuer + "/oauth2/token"
    assert assertion.claims["jti"]


@pytest.mark.parametrize(
    ("signing", "vot", "reason"),
    [("other-key", "P2", "signed by a key that is not One Login's"), ("right", "P1", "P1 only")],
)
def test_untrusted_core_identity_is_not_confirmed(
    tmp_path: Path, provider: Provider, signing: str, vot: str, reason: str
) -> None:
    trusted = one_login_identity_key(tmp_path / "identity.pub.pem")
    other = one_login_identity_key(tmp_path / "other.pub.pem")
    key = trusted if signing == "right" else other
    provider.set_user(
        "sub-1",
        {"https://vocab.account.gov.uk/v1/coreIdentityJWT": core_identity_jwt(
            key, "sub-1", "Bola", "Adeyemi", "1975-07-01", vot=vot)},
    )
    settings = make_home(
        tmp_path,
        entries=1,
        web_base_url="http://testserver",
        resident_oidc_issuer=provider.issuer,
        resident_oidc_client_id=CLIENT_ID,
        resident_oidc_client_secret="s",
        resident_oidc_client_auth="client_secret_post",
        resident_core_identity_key=tmp_path / "identity.pub.pem",
        resident_core_identity_issuer=ONE_LOGIN_ISSUER,
    )
    matcher = DictMatcher({("Bola", "Adeyemi", "1975-07-01", None): PERSON})
    client = TestClient(create_app(settings, matcher=matcher))
    done = sign_in(client, provider, "sub-1", "/sign-in/start")
    assert done.headers["location"] == "/sign-in/not-confirmed", reason
    assert matcher.seen == []  # an unverified identity never reaches the matcher
    assert client.get("/me", follow_redirects=False).status_code == 303


def test_unmatched_resident_sees_the_safe_page_and_nothing_else(
    tmp_path: Path, provider: Provider
) -> None:
    provider.set_user("bob-sub", {**ALICE, "given_name": "Bob"})
    client = TestClient(
        create_app(oidc_settings(tmp_path, provider), matcher=DictMatcher({}))
    )
    done = sign_in(client, provider, "bob-sub", "/sign-in/start")
    assert done.status_code == 303
    assert done.headers["location"] == "/sign-in/not-confirmed"
    page = client.get("/sign-in/not-confirmed")
    assert "We could not confirm who you are" in page.text
    assert "Bob" not in page.text
    assert client.get("/me", follow_redirects=False).headers["location"] == "/sign-in"


def test_tampered_state_is_refused(tmp_path: Path, provider: Provider) -> None:
    provider.set_user("alice-sub", ALICE)
    client = TestClient(create_app(oidc_settings(tmp_path, provider),
                                   matcher=DictMatcher({})))
    started = client.get("/sign-in/start", follow_redirects=False)
    answer = httpx.post(started.headers["location"], data={"sub": "alice-sub"},
                        follow_redirects=False)
    forged = re.sub(r"state=[^&]+", "state=forged", answer.headers["location"])
    refused = client.get(forged, follow_redirects=False)
    assert refused.status_code == 400
    assert "You have not been signed in" in refused.text
    assert client.get("/me", follow_redirects=False).status_code == 303


def test_staff_sign_in_keeps_roles_and_sign_out_needs_csrf(
    tmp_path: Path, provider: Provider
) -> None:
    provider.set_user("iris", {"name": "Iris Green", "email": "iris@council.example",
                               "roles": ["ig", "not-a-role"]})
    settings = oidc_settings(
        tmp_path,
        provider,
        staff_oidc_issuer=provider.issuer,
        staff_oidc_client_id="staff-client",
        staff_oidc_client_secret="staff-secret",
    )
    # Roles come from the register's staff users; the provider's identity names the user.
    register.add_user("iris", "ig", settings=settings)
    client = TestClient(create_app(settings))
    assert client.get("/staff", follow_redirects=False).headers["location"] == "/staff/sign-in"
    done = sign_in(client, provider, "iris", "/staff/sign-in/start")
    assert done.headers["location"] == "/staff"
    staff = client.get("/staff")
    assert staff.status_code == 200 and staff.headers["cache-control"] == "no-store"
    assert "Information governance lead" in staff.text
    assert "not-a-role" not in staff.text
    assert client.get("/staff/uses").status_code == 200
    # Staff are not residents.
    assert client.get("/me", follow_redirects=False).status_code == 303

    assert client.post("/sign-out", follow_redirects=False).status_code == 403
    assert client.post("/sign-out", data={"csrf_token": "wrong"}).status_code == 403
    assert client.get("/staff").status_code == 200  # still signed in
    out = client.post("/sign-out", data={"csrf_token": csrf_from(staff.text)},
                      follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/signed-out"
    assert client.get("/staff", follow_redirects=False).status_code == 303


def test_sign_in_is_rate_limited(tmp_path: Path, provider: Provider) -> None:
    client = TestClient(create_app(oidc_settings(tmp_path, provider, web_signin_rate_limit=3)))
    for _ in range(3):
        assert client.get("/sign-in/start", follow_redirects=False).status_code == 302
    limited = client.get("/sign-in/start", follow_redirects=False)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 61
    assert "too many times" in limited.text
    # The callback shares the limit, so codes cannot be guessed faster either.
    assert client.get("/sign-in/callback?code=x&state=y").status_code == 429


def test_provider_down_is_a_clear_page(tmp_path: Path) -> None:
    settings = make_home(
        tmp_path,
        entries=1,
        web_base_url="http://testserver",
        resident_oidc_issuer=f"http://127.0.0.1:{free_port()}",
        resident_oidc_client_id=CLIENT_ID,
        resident_oidc_client_secret="s",
        resident_oidc_client_auth="client_secret_basic",
        resident_claims_format="oidc",
    )
    page = TestClient(create_app(settings)).get("/sign-in/start")
    assert page.status_code == 503
    assert "Sign-in is not working at the moment" in page.text


def test_staff_roles_need_a_register_user_and_a_claim_only_narrows(
    tmp_path: Path, provider: Provider
) -> None:
    provider.set_user("quinn", {"name": "Quinn", "preferred_username": "Quinn@council.example",
                                "roles": ["admin", "ig"]})
    provider.set_user("rae", {"name": "Rae", "roles": ["ig"]})
    settings = oidc_settings(
        tmp_path,
        provider,
        staff_oidc_issuer=provider.issuer,
        staff_oidc_client_id="staff-client",
        staff_oidc_client_secret="staff-secret",
    )
    register.add_user("quinn", "checker", settings=settings)
    client = TestClient(create_app(settings))
    sign_in(client, provider, "quinn", "/staff/sign-in/start")
    # quinn is a checker in the register; the claim lists admin and ig but not checker.
    page = client.get("/staff").text
    assert "You do not have a role" in page and "Administrator" not in page
    assert client.get("/staff/audit").status_code == 403
    other = TestClient(create_app(settings))
    sign_in(other, provider, "rae", "/staff/sign-in/start")  # no register user called rae
    assert "You do not have a role" in other.get("/staff").text
    assert other.get("/staff/uses").status_code == 403
