"""Shared by the web tests: a data home with a log, a real OIDC provider, a live server, and
the browser tests' helpers (Chromium, axe-core, screenshots).

The OIDC provider is ``oidc-provider-mock`` (an independent, Authlib-based OpenID provider) run
on a real socket in a thread. A thin WSGI wrapper records the requests the app sends it, so
tests can check the PKCE challenge and the ``private_key_jwt`` client assertion on the wire.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import httpx
import oidc_provider_mock
import pytest
import uvicorn
import werkzeug.serving
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey
from playwright.sync_api import Browser, Page, sync_playwright

import candour.ledger as ledger
from candour.config import Settings
from candour.initialise import initialise_home
from candour.web.identity import IdentityClaims

CLIENT_ID = "candour-test-client"
ONE_LOGIN_ISSUER = "https://identity.test.example/"

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def make_home(root: Path, entries: int = 300, **overrides: Any) -> Settings:
    """An initialised data home whose log has ``entries`` ingest entries (one full tile+)."""
    settings = Settings(home=root / "home", web_secure_cookies=False, **overrides)
    initialise_home(settings)
    if entries:
        ledger.record_many(
            [
                (
                    "ingest",
                    {"source": "council-tax", "file_hash": f"{i:064x}", "rows": i, "rejected": 0},
                )
                for i in range(entries)
            ],
            settings=settings,
        )
    return settings


class DictMatcher:
    """Matches an exact (given names, family name, birth date, postcode) to one person."""

    def __init__(self, people: dict[tuple[str, str, str, str | None], str]) -> None:
        self.people = people
        self.seen: list[IdentityClaims] = []

    def match(self, claims: IdentityClaims) -> str | None:
        self.seen.append(claims)
        key = (claims.given_names, claims.family_name, claims.birth_date.isoformat(),
               claims.postcode)
        return self.people.get(key)


@dataclass
class Recorder:
    """WSGI middleware that keeps each request's path, query, form and headers."""

    app: Callable[..., Iterable[bytes]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    client_keys: dict[str, Any] = field(default_factory=dict)
    seen_jti: set[str] = field(default_factory=set)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        import io

        form = parse_qs(body.decode("latin-1"))
        if environ.get("PATH_INFO") == "/oauth2/token" and "client_assertion" in form:
            # oidc-provider-mock does not implement private_key_jwt, so check the assertion
            # here as a provider would (RFC 7523) and only then let the request through.
            client_id = self.check_assertion(environ, form)
            if client_id is None:
                start_response("401 Unauthorized", [("Content-Type", "application/json")])
                return [b'{"error": "invalid_client"}']
            # Re-present the verified client to the mock in a form it accepts (it takes any
            # secret for an unregistered client).
            body += f"&client_id={quote(client_id)}&client_secret=assertion-verified".encode()
            environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
        self.requests.append(
            {
                "path": environ.get("PATH_INFO", ""),
                "query": parse_qs(environ.get("QUERY_STRING", "")),
                "form": parse_qs(body.decode("latin-1")),
                "authorization": environ.get("HTTP_AUTHORIZATION"),
            }
        )
        return self.app(environ, start_response)

    def check_assertion(self, environ: dict[str, Any], form: dict[str, list[str]]) -> str | None:
        """The client id of a valid private_key_jwt assertion, or None."""
        if form.get("client_assertion_type") != [
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ]:
            return None
        token = form["client_assertion"][0]
        for client_id, key in self.client_keys.items():
            try:
                decoded = jwt.decode(token, key, algorithms=["RS256", "ES256", "PS256"])
                host = environ.get("HTTP_HOST", "")
                jwt.JWTClaimsRegistry(
                    iss={"essential": True, "value": client_id},
                    sub={"essential": True, "value": client_id},
                    aud={"essential": True, "value": f"http://{host}/oauth2/token"},
                    exp={"essential": True},
                    jti={"essential": True},
                ).validate(decoded.claims)
            except Exception:
                continue
            jti = decoded.claims["jti"]
            if jti in self.seen_jti:  # a replayed assertion
                return None
            self.seen_jti.add(jti)
            return client_id
        return None

    def last(self, path: str) -> dict[str, Any]:
        return [r for r in self.requests if r["path"] == path][-1]


@dataclass
class Provider:
    """A running provider: its issuer URL and the recorder of what it was sent."""

    issuer: str
    recorder: Recorder

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        response = httpx.put(f"{self.issuer}/users/{quote(sub, safe='')}", json=claims)
        assert response.status_code == 204, response.text


@contextmanager
def oidc_provider() -> Iterator[Provider]:
    """Start oidc-provider-mock on a free localhost port; stop it afterwards."""
    recorder = Recorder(oidc_provider_mock.app(require_nonce=True))
    server = werkzeug.serving.make_server("localhost", 0, recorder, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Provider(f"http://localhost:{server.server_port}", recorder)
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(app: Any, port: int) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1:``port`` in a thread."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def rsa_private_key_pem(path: Path) -> rsa.RSAPrivateKey:
    """Write a new RSA private key to ``path`` as PEM and return it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def one_login_identity_key(path: Path) -> ECKey:
    """A P-256 key standing in for One Login's identity signing key; its public half at path."""
    private = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return ECKey.import_key(pem)


def core_identity_jwt(
    key: ECKey, sub: str, given: str, family: str, born: str, *, vot: str = "P2",
    issuer: str = ONE_LOGIN_ISSUER, audience: str = CLIENT_ID,
) -> str:
    """A core identity JWT shaped like GOV.UK One Login's, signed with ``key`` (ES256)."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "nbf": now - 5,
        "iat": now,
        "exp": now + 600,
        "vot": vot,
        "vtm": "https://oidc.test.example/trustmark",
        "vc": {
            "type": ["VerifiableCredential", "IdentityCheckCredential"],
            "credentialSubject": {
                "name": [
                    {
                        "nameParts": [
                            {"type": "GivenName", "value": given},
                            {"type": "FamilyName", "value": family},
                        ]
                    }
                ],
                "birthDate": [{"value": born}],
            },
        },
    }
    return jwt.encode({"alg": "ES256"}, claims, key)


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge for a PKCE verifier."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# -- a synthetic town with real people, for the portal and console tests ----------------------

_TOWN: dict[tuple[int, int], Path] = {}


def _build_town(people: int, seed: int) -> Path:
    """Synthesise, ingest and link a county once per test session; return its home."""
    import atexit
    import shutil
    import tempfile

    from candour.home import Home
    from candour.linkage.runs import link
    from candour.sources.ingest import ingest
    from candour.synth import write_county
    from candour.warehouse import open_warehouse

    parent = Path(tempfile.mkdtemp(prefix="candour-town-"))
    atexit.register(shutil.rmtree, parent, True)
    root = parent / "home"
    settings = Settings(home=root)
    initialise_home(settings)
    home = Home(settings.home)
    write_county(home.synth, people=people, seed=seed)
    with open_warehouse(settings) as warehouse:
        ingest(home.synth / "sources.yaml", settings, warehouse)
    link(settings)
    from candour.store import dispose

    dispose(settings)
    return root


def resident_oidc(issuer: str) -> dict[str, Any]:
    """Settings for resident sign-in through the test provider at ``issuer`` (plain OIDC claims,
    a client secret rather than One Login's private_key_jwt)."""
    return {
        "resident_oidc_issuer": issuer,
        "resident_oidc_client_id": CLIENT_ID,
        "resident_oidc_client_secret": "resident-secret",
        "resident_oidc_client_auth": "client_secret_basic",
        "resident_oidc_scopes": ["openid", "profile", "address"],
        "resident_oidc_vtr": "",
        "resident_oidc_claims": [],
        "resident_claims_format": "oidc",
    }


def town(root: Path, people: int = 200, seed: int = 11, **overrides: Any) -> Settings:
    """A private copy of a linked synthetic town (built once per session) at ``root/home``."""
    import shutil

    key = (people, seed)
    if key not in _TOWN:
        _TOWN[key] = _build_town(people, seed)
    target = root / "home"
    shutil.copytree(_TOWN[key], target)
    return Settings(home=target, web_secure_cookies=False, **overrides)


@dataclass(frozen=True)
class Resident:
    """A synthetic resident the matcher confirms: their OIDC claims and their person id."""

    person_id: str
    claims: dict[str, Any]
    nhs_number: str | None
    record_keys: tuple[str, ...]


def matched_residents(settings: Settings, wanted: int = 3) -> list[Resident]:
    """Residents of the town (from its truth files) that the vault matcher confirms uniquely."""
    import csv
    from collections import Counter, defaultdict
    from datetime import date

    from candour.home import Home
    from candour.vault import open_vault
    from candour.web.identity import IdentityClaims
    from candour.workflows.identity_match import VaultMatcher
    from candour.workflows.subject_access import record_keys_of

    truth = Home(settings.home).synth / "truth"
    records: dict[str, list[str]] = defaultdict(list)
    with (truth / "records.csv").open() as handle:
        for row in csv.DictReader(handle):
            records[row["person_key"]].append(f"{row['source']}:{row['record_id']}")
    with open_vault(settings).open_workspace(reason="test: find residents to sign in",
                                             actor="tests") as workspace:
        held = {r.record_key: r for r in workspace.identities()}
    matcher = VaultMatcher(settings)
    found: list[Resident] = []
    with (truth / "people.csv").open() as handle:
        for person in csv.DictReader(handle):
            keys = [k for k in records[person["person_key"]] if k in held]
            postcodes = Counter(held[k].postcode for k in keys if held[k].postcode)
            if len(keys) < 2 or not postcodes:
                continue
            postcode = postcodes.most_common(1)[0][0]
            claims = {
                "given_name": person["given_name"],
                "family_name": person["family_name"],
                "birthdate": person["date_of_birth"],
                "address": {"postal_code": postcode},
            }
            person_id = matcher.match(
                IdentityClaims(
                    given_names=person["given_name"],
                    family_name=person["family_name"],
                    birth_date=date.fromisoformat(person["date_of_birth"]),
                    postcode=postcode,
                )
            )
            if person_id is None or any(r.person_id == person_id for r in found):
                continue
            found.append(
                Resident(
                    person_id=person_id,
                    claims=claims,
                    nhs_number=person["nhs_number"] or None,
                    record_keys=tuple(record_keys_of(person_id, settings=settings)),
                )
            )
            if len(found) == wanted:
                return found
    raise AssertionError(f"the town has fewer than {wanted} residents the matcher confirms")


def session_cookie(settings: Settings, session: dict[str, Any]) -> str:
    """A session cookie value signed the way the app signs it (Starlette's SessionMiddleware)."""
    import json

    from itsdangerous import TimestampSigner

    from candour.web.app import session_secret

    data = base64.b64encode(json.dumps(session).encode())
    return TimestampSigner(session_secret(settings).decode()).sign(data).decode()


def resident_session(person_id: str) -> dict[str, Any]:
    """The session of a signed-in resident."""
    return {"resident": {"person_id": person_id, "since": int(time.time())}, "csrf": "t" * 43}


def staff_session(user: str, roles_claim: list[str] | None = None) -> dict[str, Any]:
    """The session of a signed-in member of staff who is register user ``user``."""
    return {
        "staff": {"sub": f"sub-{user}", "name": user.title(), "user": user,
                  "claim_roles": roles_claim, "since": int(time.time())},
        "csrf": "t" * 43,
    }


CSRF = "t" * 43


USE_YAML = """\
title: {title}
summary: Did home safety visits reduce falls among older people?
public_benefit: Fewer older people hurt by falls at home
organisation: {organisation}
team: Public Health Intelligence
senior_responsible_owner: Director of Public Health
purpose: {purpose}
legal_basis:
  article_6: "6(1)(e) public task"
  common_law: "de-identified data; no duty of confidence breached"
applicant: {applicant}
analysts: [{analysts}]
grants:
{grants}output: aggregate
disclosure: {{threshold: 10, rounding: 5}}
starts: 2026-01-01
ends: 2099-12-31
"""


def use_yaml(
    title: str = "Falls prevention evaluation",
    *,
    applicant: str = "ana",
    analysts: str = "ana",
    purpose: str = "service-evaluation",
    organisation: str = "Wealdshire County Council",
    grants: dict[str, str] | None = None,
) -> str:
    """A valid use.yaml for the town's sources (``grants``: table -> "*" or a YAML list)."""
    granted = grants or {"ae_attendances": '"*"', "fire_home_safety_visits": "[visit_date]"}
    return USE_YAML.format(
        title=title, applicant=applicant, analysts=analysts, purpose=purpose,
        organisation=organisation,
        grants="".join(f"  {table}: {columns}\n" for table, columns in granted.items()),
    )


def add_staff(settings: Settings) -> None:
    """The staff of the tests: two analysts, two IG leads, two checkers and an admin."""
    from candour import register

    for name, role in (("ana", "analyst"), ("bob", "analyst"), ("ian", "ig"), ("ida", "ig"),
                       ("cat", "checker"), ("col", "checker"), ("adam", "admin")):
        register.add_user(name, role, settings=settings)


def make_use(settings: Settings, stage: str = "active", **fields: Any) -> str:
    """A use taken to ``stage`` (draft, submitted, active or rejected); returns its id."""
    from candour import register
    from candour.choices import load_purposes

    spec = register.parse_use(use_yaml(**fields))
    use_id = register.apply_use(spec, purposes=load_purposes(settings), settings=settings).use_id
    if stage == "draft":
        return use_id
    register.submit(use_id, spec.applicant, settings=settings)
    if stage == "active":
        register.approve(use_id, "ian", purposes=load_purposes(settings), settings=settings)
    elif stage == "rejected":
        register.reject(use_id, "ian", settings=settings)
    return use_id


def count_query(settings: Settings, use_id: str, table: str, user: str = "ana") -> Any:
    """Run a whole-table count of ``table`` through the gate, in process, as an analyst would;
    returns the gate's ``QueryResult`` (its cohort is everyone in the table who has not said no
    to the use's purpose)."""
    from candour import gate

    return gate.run(use_id, user, f"SELECT count(*) AS n FROM {table}", settings=settings)


def make_release(settings: Settings, use_id: str, created_by: str = "ana") -> str:
    """An output with small, suppressed and rounded cells, and a pending release request."""
    import pandas as pd

    from candour.disclosure import Count, protect, request_release, save_output

    table = pd.DataFrame({"area": ["Ashcombe", "Brookley", "Cresthaven", "Dunmore"],
                          "n": [3, 12, 27, 41]})
    result = protect(table, keys=["area"], measures=[Count("n")])
    output = save_output(settings, result, use_id=use_id, created_by=created_by, name="falls")
    return request_release(settings, output.output_id, user=created_by).release_id


# -- the browser tests' helpers ---------------------------------------------------------------


def require_browser() -> None:
    """Fail (not skip) when Chromium or axe-core is missing: the browser tests are not optional."""
    if not CHROMIUM.exists() or not AXE.exists():
        pytest.fail("browser tests need chromium and axe-core: run scripts/setup-web.sh")


@contextmanager
def launch_browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def axe_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context that bypasses CSP, only so that axe-core can be injected (the
    CSP itself is checked by test_web_browser in a normal context)."""
    context = browser.new_context(bypass_csp=True, viewport={"width": 1024, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0, 2.1 and 2.2 A and AA violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]


def check_page(page: Page, name: str) -> None:
    """Zero axe violations, then a full-page screenshot ``test-artifacts/screenshots/<name>``."""
    assert axe_violations(page) == [], f"axe violations on {name}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in_with_mouse(page: Page, base: str, start: str, sub: str) -> None:
    """Sign in through the provider's page as ``sub``, clicking as a person would."""
    page.goto(base + start)
    page.get_by_role("button", name="Continue to sign in").click()
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize").click()
