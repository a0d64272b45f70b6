"""The demo's test sign-in (oidc-provider-mock) and the identity index warm-up at start-up.

A demo home (it carries the demo marker) serves resident sign-in through the local test
provider, whose users are synthetic residents the vault matcher confirms, and each lands on
/me as their own person; every page says "Demo sign-in: test identities only". A home without
the marker is refused, in code and by ``candour serve --demo-sign-in`` (exit 2, one line).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from candour.cli.main import app as cli
from candour.config import Settings
from candour.demo import DEMO_MARKER
from candour.errors import CandourError
from candour.initialise import initialise_home
from candour.store import transaction
from candour.store.ingest import VaultAccess
from candour.web import create_app
from candour.web.demo_identity import BANNER, DemoSignInError, demo_sign_in, require_demo_home
from candour.workflows.identity_match import VaultMatcher
from e2e.support import free_port, make_home, town

REPO = Path(__file__).resolve().parents[2]


def demo_town(root: Path) -> Settings:
    """A private copy of the linked synthetic town, marked as a demo home."""
    settings = town(root, web_signin_rate_limit=1000)
    (settings.home / DEMO_MARKER).write_text("made by the tests\n")
    return settings


def sign_in_as(client: Any, sub: str, start: str) -> httpx.Response:
    """Start sign-in, press the resident's button on the provider's page, follow the callback."""
    started = client.get(start, follow_redirects=False)
    assert started.status_code == 302, started.text
    authorize = started.headers["location"]
    form = httpx.get(authorize)
    assert form.status_code == 200
    # The provider offers the demo residents as one-click buttons.
    assert f'value="{sub}"' in form.text
    answer = httpx.post(authorize, data={"sub": sub}, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    return client.get(answer.headers["location"], follow_redirects=False)


def test_a_demo_home_signs_residents_in_through_the_test_provider(tmp_path: Path) -> None:
    settings = demo_town(tmp_path)
    matcher = VaultMatcher(settings)
    with demo_sign_in(settings, "http://testserver", matcher=matcher, wanted=3) as (
        config,
        provider,
    ):
        residents = provider.residents
        assert len(residents) == 3
        assert len({r.person_id for r in residents}) == 3
        assert config.web_demo_idp and config.resident_oidc_issuer == provider.issuer
        assert provider.issuer.startswith("http://127.0.0.1:")
        client = TestClient(create_app(config, matcher=matcher))

        home = client.get("/")
        assert BANNER in home.text and "This is a demonstration" in home.text
        assert "a test sign-in service" in client.get("/sign-in").text

        for resident in residents[:2]:
            done = sign_in_as(client, resident.sub, "/sign-in/start")
            assert done.status_code == 303 and done.headers["location"] == "/me"
            me = client.get("/me")
            assert me.status_code == 200 and BANNER in me.text
            # Signed in as exactly the person the test identity was chosen for.
            assert client.get("/api/v1/me").json()["person_id"] == resident.person_id
            out = client.post(
                "/sign-out", data={"csrf_token": csrf_of(client)}, follow_redirects=False
            )
            assert out.status_code == 303 and client.get("/api/v1/me").status_code == 401

        # The provider knows only the app's registered client and its callback.
        stranger = httpx.get(
            f"{provider.issuer}/oauth2/authorize",
            params={
                "client_id": "someone-else",
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": "http://evil.example/cb",
                "nonce": "n",
                "state": "s",
            },
        )
        assert stranger.status_code == 400
        wrong_callback = httpx.get(
            f"{provider.issuer}/oauth2/authorize",
            params={
                "client_id": provider.client_id,
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": "http://evil.example/cb",
                "nonce": "n",
                "state": "s",
            },
        )
        assert wrong_callback.status_code == 400
        issuer = provider.issuer
    # Stopped with the block.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2)


def csrf_of(client: TestClient) -> str:
    token = client.get("/api/v1/me").json()["csrf_token"]
    assert isinstance(token, str)
    return token


def test_demo_sign_in_is_refused_outside_a_demo_home(store_settings: Settings) -> None:
    initialise_home(store_settings)
    with pytest.raises(DemoSignInError, match="only for demo homes"):
        require_demo_home(store_settings)
    with pytest.raises(CandourError, match="only for demo homes"):
        with demo_sign_in(store_settings, "http://testserver"):
            pass  # pragma: no cover - never reached
    # Nothing was started: no identity provider configured, no banner.
    page = TestClient(create_app(store_settings)).get("/")
    assert BANNER not in page.text

    result = CliRunner().invoke(
        cli,
        ["serve", "--demo-sign-in", "--port", str(free_port()), "--home", str(store_settings.home)],
    )
    assert result.exit_code == 2
    assert "only for demo homes" in result.output and "Traceback" not in result.output


def test_a_demo_home_nobody_can_be_matched_in_is_refused(tmp_path: Path) -> None:
    settings = make_home(tmp_path, entries=0)
    (settings.home / DEMO_MARKER).write_text("demo\n")
    with pytest.raises(DemoSignInError, match="can be matched to exactly one person"):
        with demo_sign_in(settings, "http://testserver"):
            pass  # pragma: no cover - never reached


def test_candour_serve_demo_sign_in_prints_residents_and_signs_them_in(tmp_path: Path) -> None:
    settings = demo_town(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANDOUR_")}
    env["COLUMNS"] = "200"
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "candour"),
            "serve",
            "--demo-sign-in",
            "--port",
            str(port),
            "--home",
            str(settings.home),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(
        target=lambda: output.extend(iter(server.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while "Serving Candour" not in "".join(output):
            assert server.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "".join(output)
            time.sleep(0.1)
        while True:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "".join(output)
                time.sleep(0.1)
        printed = "".join(output)
        assert BANNER in printed and f"{base}/sign-in" in printed
        subs = re.findall(r"resident-\d+-[a-z0-9-]+", printed)
        assert len(set(subs)) >= 3, printed
        with httpx.Client(base_url=base) as client:
            assert BANNER in client.get("/register").text
            done = sign_in_as(client, subs[0], "/sign-in/start")
            assert done.status_code == 303 and done.headers["location"] == "/me"
            me = client.get("/me")
            assert me.status_code == 200 and "You are signed in" in me.text
    finally:
        server.terminate()
        server.wait(20)


class RecordingMatcher:
    """A matcher whose warm-up can be watched (and held up, to show it does not block)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.warmed = threading.Event()
        self.thread: str | None = None

    def warm(self) -> None:
        self.thread = threading.current_thread().name
        self.release.wait(10)
        self.warmed.set()

    def match(self, claims: Any) -> str | None:
        return None


def test_the_identity_index_is_warmed_in_the_background_at_start_up(tmp_path: Path) -> None:
    settings = make_home(
        tmp_path,
        entries=0,
        resident_oidc_issuer="http://127.0.0.1:9",
        resident_oidc_client_id="c",
        resident_oidc_client_secret="s",
        resident_oidc_client_auth="client_secret_basic",
        resident_claims_format="oidc",
    )
    matcher = RecordingMatcher()
    with TestClient(create_app(settings, matcher=matcher)) as client:
        # The app answers while the warm-up is still running.
        assert client.get("/register").status_code == 200
        assert not matcher.warmed.is_set()
        matcher.release.set()
        assert matcher.warmed.wait(10)
        assert matcher.thread == "identity-index-warm-up"

    # Without resident sign-in there is no one to match, so the vault is not read for it.
    idle = RecordingMatcher()
    idle.release.set()
    with TestClient(create_app(make_home(tmp_path / "other", entries=0), matcher=idle)):
        assert not idle.warmed.wait(0.5)


def test_vault_matcher_warm_builds_the_index_once(tmp_path: Path) -> None:
    settings = town(tmp_path)
    matcher = VaultMatcher(settings)
    matcher.warm()
    matcher.warm()  # nothing changed: no second read of the vault
    with transaction(settings) as session:
        reads = session.scalars(
            select(VaultAccess.reason).where(VaultAccess.actor == "resident-sign-in")
        ).all()
    assert len([r for r in reads if "index dates of birth" in r]) == 1
    assert matcher._index and matcher._stamp is not None


def test_anonymous_detail_pages_are_cached_apart_from_list_pages(tmp_path: Path) -> None:
    # The register's detail page is cached for anonymous visitors like the list (for the load
    # target); a list query string must never be able to name a detail page's entry.
    from candour import ledger
    from e2e.support import add_staff, make_use

    settings = make_home(tmp_path, entries=0)
    add_staff(settings)
    use_id = make_use(settings, "active", title="Falls prevention evaluation")
    client = TestClient(create_app(settings))
    first = client.get(f"/register/{use_id}")
    assert first.status_code == 200 and "No queries have been made" in first.text
    cache = client.app.state.register_cache  # type: ignore[attr-defined]
    assert cache.page(f"use {use_id}") == first.content
    ledger.record(
        "query",
        {
            "use_id": use_id,
            "sql_hash": "e" * 64,
            "choices_hash": "b" * 64,
            "cohort_hash": "c" * 64,
            "output_hash": "d" * 64,
        },
        settings=settings,
    )
    # Anonymous visitors see the cached page until it is a few seconds old; the API is live.
    assert client.get(f"/register/{use_id}").content == first.content
    assert client.get(f"/api/v1/register/uses/{use_id}").json()["query_count"] == 1
    cache.pages.clear()
    assert "1 query in the public log" in client.get(f"/register/{use_id}").text
    # A list page whose query string looks like a detail key is a list page.
    listing = client.get(f"/register?use%20{use_id}")
    assert listing.status_code == 200 and "Register of data uses" in listing.text
    assert client.get(f"/register/{use_id}").content != listing.content
    assert client.get("/register/DU-1999-001").status_code == 404
    assert cache.page("use DU-1999-001") is None
