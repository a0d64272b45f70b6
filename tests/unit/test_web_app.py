"""The web app without sign-in: headers, CSRF, /log/ files, the JSON API and the pages."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import candour.ledger as ledger
from candour.config import Settings
from candour.demo import DEMO_MARKER
from candour.errors import CandourError
from candour.home import Home, HomeError
from candour.ledger import tree
from candour.web import create_app
from candour.web.assets import AssetsMissing
from candour.web.security import RateLimiter
from e2e.support import make_home


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # 300 entries: one full tile (256) and a partial one (.p/44) at level 0.
    return make_home(tmp_path_factory.mktemp("web"), entries=300)


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def test_security_headers_on_pages_files_api_and_errors(client: TestClient) -> None:
    for path in ["/", "/transparency", "/log/checkpoint", "/api/v1/log/entries", "/no-such-page",
                 "/assets/govuk-frontend.min.css"]:
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp, path
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "camera=()" in response.headers["permissions-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        # The test home allows http cookies, so no HSTS; production settings send it (below).
        assert "strict-transport-security" not in response.headers


def test_hsts_and_secure_session_cookie_by_default(tmp_path: Path) -> None:
    settings = make_home(tmp_path, entries=0).model_copy(update={"web_secure_cookies": True})
    client = TestClient(create_app(settings), base_url="https://testserver")
    page = client.get("/sign-in")
    assert page.headers["strict-transport-security"].startswith("max-age=63072000")
    # A page with a form (sign-out shows only when signed in) sets no cookie on public pages...
    assert "set-cookie" not in page.headers
    # ...but an anonymous /me visit remembers where to return to, in a hardened cookie.
    cookie = client.get("/me", follow_redirects=False).headers["set-cookie"]
    assert cookie.startswith("__Host-candour-session=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "secure" in lowered and "samesite=lax" in lowered
    assert "path=/" in lowered and "domain" not in lowered


def test_personal_pages_are_never_cached_and_redirect_anonymous_visitors(
    client: TestClient,
) -> None:
    for path in ["/me", "/staff"]:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["cache-control"] == "no-store"
    assert client.get("/me", follow_redirects=False).headers["location"] == "/sign-in"
    assert client.get("/staff", follow_redirects=False).headers["location"] == "/staff/sign-in"
    assert client.get("/sign-in").headers["cache-control"] == "no-store"
    assert client.get("/").headers["cache-control"] == "no-cache"


def test_forms_without_a_valid_csrf_token_are_refused(client: TestClient) -> None:
    assert client.post("/sign-out").status_code == 403
    assert client.post("/sign-out", data={"csrf_token": "guess"}).status_code == 403
    assert client.post("/sign-out", headers={"X-CSRF-Token": "guess"}).status_code == 403
    refused = client.post("/sign-out", data={"csrf_token": ""})
    assert refused.status_code == 403 and "You cannot do that" in refused.text


def test_checkpoint_is_served_as_published(client: TestClient, settings: Settings) -> None:
    response = client.get("/log/checkpoint")
    on_disk = (ledger.public_dir(Home(settings.home)) / "checkpoint").read_bytes()
    assert response.status_code == 200
    assert response.content == on_disk
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["access-control-allow-origin"] == "*"
    assert client.head("/log/checkpoint").status_code == 200


def test_tiles_are_served_with_immutable_or_short_caching(
    client: TestClient, settings: Settings
) -> None:
    public = ledger.public_dir(Home(settings.home))
    for path, cache in [
        ("tile/0/000", "public, max-age=31536000, immutable"),
        ("tile/entries/000", "public, max-age=31536000, immutable"),
        ("tile/0/001.p/44", "public, max-age=60"),
        ("tile/entries/001.p/44", "public, max-age=60"),
        ("tile/1/000.p/1", "public, max-age=60"),
    ]:
        response = client.get(f"/log/{path}")
        assert response.status_code == 200, path
        assert response.content == (public / path).read_bytes()
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["cache-control"] == cache
    # The leaf hashes in tile 0 are the entries' RFC 6962 leaf hashes.
    first = client.get("/log/tile/0/000").content[:32]
    assert first == tree.leaf_hash(ledger.entry(0, settings=settings))


@pytest.mark.parametrize(
    "path",
    [
        "/log/tile/../../keys/vault.key",
        "/log/tile/%2e%2e/%2e%2e/keys/log-signing.key",
        "/log/tile/..%2f..%2fkeys%2fhmac.key",
        "/log/tile/0/%2e%2e/%2e%2e/%2e%2e/state/pending.json",
        "/log/tile/0/.000.1234abcd.tmp",
        "/log/tile/0/000/../../../../keys/vault.key",
        "/log/tile/0/0",  # not canonical
        "/log/tile/0/002",  # beyond the log
        "/log/tile/0/001.p/45",  # beyond the log
        "/log/tile/entries/%00",
        "/log/.hidden",
        "/log/state/append.lock",
    ],
)
def test_log_rejects_traversal_hidden_and_unknown_files(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert b"PRIVATE+KEY" not in response.content


def test_log_refuses_a_symlink_out_of_the_public_directory(tmp_path: Path) -> None:
    settings = make_home(tmp_path, entries=1)
    home = Home(settings.home)
    target = ledger.public_dir(home) / "tile" / "0" / "005.p" / "1"
    target.parent.mkdir(parents=True)
    target.symlink_to(home.hmac_key)
    client = TestClient(create_app(settings))
    assert client.get("/log/tile/0/005.p/1").status_code == 404


def test_api_entries_paging_and_proofs(client: TestClient, settings: Settings) -> None:
    page = client.get("/api/v1/log/entries", params={"start": 290, "limit": 50}).json()
    assert page["tree_size"] == 300
    assert [e["index"] for e in page["entries"]] == list(range(290, 300))
    assert page["next_start"] is None and page["previous_start"] == 240
    assert page["entries"][0]["entry"]["rows"] == 290

    one = client.get("/api/v1/log/entries/7").json()
    assert one["kind"] == "ingest" and one["entry"]["rows"] == 7

    response = client.get("/api/v1/log/entries/299/proof")
    assert "attachment" in response.headers["content-disposition"]
    bundle = response.json()
    data = base64.b64decode(bundle["entry_base64"])
    assert data == ledger.entry(299, settings=settings)
    # Check the proof the way an outsider would: fold the hashes up to the checkpoint's root.
    leaf = hashlib.sha256(b"\x00" + data).digest()
    proof = bundle["proof"]
    root = tree.root_from_inclusion_proof(
        299, proof["tree_size"], leaf, [base64.b64decode(h) for h in proof["hashes"]]
    )
    assert base64.b64encode(root).decode() == proof["root"]
    assert f"\n{proof['tree_size']}\n{proof['root']}\n" in bundle["checkpoint"]

    assert client.get("/api/v1/log/entries/300").status_code == 404
    assert client.get("/api/v1/log/entries/300/proof").status_code == 404
    assert client.get("/api/v1/log/entries/-1").status_code == 422
    assert client.get("/api/v1/log/entries", params={"limit": 101}).status_code == 422


def test_api_checkpoint_lists_signatures(client: TestClient) -> None:
    checkpoint = client.get("/api/v1/log/checkpoint").json()
    assert checkpoint["size"] == 300
    assert checkpoint["signatures"][0]["role"] == "log"
    assert checkpoint["signatures"][0]["verified"] is True
    assert checkpoint["note"].startswith(checkpoint["text"])


def test_witness_cosignatures_are_shown_and_checked(tmp_path: Path) -> None:
    from candour.ledger import note

    witness = note.generate("witness.test.example/w", note.COSIGNATURE_V1)
    stranger = note.generate("stranger.example/w", note.COSIGNATURE_V1)
    settings = make_home(tmp_path, entries=2).model_copy(
        update={"log_witnesses": [f"{witness.verifier.vkey()} http://127.0.0.1:9/"]}
    )
    path = ledger.public_dir(Home(settings.home)) / "checkpoint"
    signed = path.read_bytes()
    text = signed[: signed.index(b"\n\n") + 1]
    path.write_bytes(
        signed + witness.sign(text, 1_700_000_000).encode() + stranger.sign(text).encode()
    )
    client = TestClient(create_app(settings))
    roles = {s["name"]: s for s in client.get("/api/v1/log/checkpoint").json()["signatures"]}
    assert roles["witness.test.example/w"]["role"] == "witness"
    assert roles["witness.test.example/w"]["verified"] is True
    assert roles["witness.test.example/w"]["time"] == "2023-11-14T22:13:20Z"
    assert roles["stranger.example/w"]["role"] == "unknown"
    assert roles["stranger.example/w"]["verified"] is False
    page = client.get("/transparency").text
    assert "witness.test.example/w" in page and "Key not known here" in page


def test_pages_render_with_the_log(client: TestClient) -> None:
    home = client.get("/")
    assert home.status_code == 200 and "What we promise" in home.text
    assert 'class="govuk-service-navigation' in home.text and "govuk-phase-banner" in home.text
    # The open data catalogue is public: linked from every page's navigation.
    assert re.search(r'href="/data"[^>]*>\s*Open data', home.text)
    transparency = client.get("/transparency")
    assert "Entry 299" in transparency.text and "Entry 280" in transparency.text
    assert "Entry 279" not in transparency.text  # 20 a page, newest first
    older = client.get("/transparency", params={"start": 0})
    assert "Entry 0" in older.text and "Entry 20<" not in older.text
    entry = client.get("/transparency/entries/3")
    assert entry.status_code == 200 and "council-tax" in entry.text
    assert client.get("/transparency/entries/300").status_code == 404
    assert client.get("/transparency", params={"start": "x"}).status_code == 400
    assert client.get("/log/", follow_redirects=False).headers["location"] == "/transparency"


def test_empty_log_pages(tmp_path: Path) -> None:
    client = TestClient(create_app(make_home(tmp_path, entries=0)))
    assert "Nothing has been written to the log yet" in client.get("/transparency").text
    assert client.get("/api/v1/log/checkpoint").status_code == 404
    assert client.get("/api/v1/log/entries").json()["entries"] == []
    assert client.get("/log/checkpoint").status_code == 404


def test_startup_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(HomeError, match="candour init"):
        create_app(Settings(home=tmp_path / "nothing"))
    settings = make_home(tmp_path, entries=0)
    with pytest.raises(AssetsMissing, match="run `make setup`"):
        create_app(settings.model_copy(update={"web_assets_dir": tmp_path / "missing"}))
    with pytest.raises(CandourError, match="only for demo homes"):
        create_app(settings.model_copy(update={"web_demo_idp": True}))
    (settings.home / DEMO_MARKER).write_text("demo\n")
    demo = TestClient(create_app(settings.model_copy(update={"web_demo_idp": True})))
    assert "This is a demonstration" in demo.get("/").text
    with pytest.raises(CandourError, match="PRIVATE_KEY"):
        create_app(settings.model_copy(update={
            "resident_oidc_issuer": "https://oidc.example", "resident_oidc_client_id": "c"}))


def test_session_secret_is_created_once_with_mode_600(tmp_path: Path) -> None:
    settings = make_home(tmp_path, entries=0)
    create_app(settings)
    key = Home(settings.home).keys / "web-session.key"
    first = key.read_bytes()
    assert key.stat().st_mode & 0o777 == 0o600 and len(first) == 64
    create_app(settings)
    assert key.read_bytes() == first


def test_rate_limiter_window() -> None:
    limiter = RateLimiter(2, window=60, max_keys=2)
    assert limiter.hit("a", now=0) is None and limiter.hit("a", now=1) is None
    assert limiter.hit("a", now=2) == pytest.approx(58)
    assert limiter.hit("b", now=2) is None
    assert limiter.hit("a", now=60.5) is None  # the first hit has left the window
    limiter.hit("c", now=61)  # evicts the least recently used key ("b")
    assert set(limiter._events) == {"a", "c"}
