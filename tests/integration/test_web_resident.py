"""The resident portal on a real synthetic town: sign-in by identity matching, records,
choices, services, the download, and that nobody ever sees anyone else's data."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from candour import ledger
from candour.choices import current, snapshot
from candour.config import Settings
from candour.web import create_app
from candour.web.preferences import history as preference_history
from candour.web.transparency import PublicLog
from candour.workflows.identity_match import VaultMatcher
from e2e.support import (
    CLIENT_ID,
    CSRF,
    Provider,
    Resident,
    matched_residents,
    oidc_provider,
    resident_session,
    session_cookie,
    staff_session,
    town,
)

PERSONAL_PAGES = ["/me", "/me/records", "/me/choices", "/me/choices/research",
                  "/me/choices/research/saved", "/me/services", "/me/download"]
PERSONAL_API = ["/api/v1/me", "/api/v1/me/records", "/api/v1/me/choices",
                "/api/v1/me/choices/history", "/api/v1/me/services"]
FORMS = ["/me/choices/research", "/me/services", "/me/download"]


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with oidc_provider() as running:
        yield running


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> dict[str, Any]:
    settings = town(
        tmp_path_factory.mktemp("resident"),
        web_base_url="http://testserver",
        resident_oidc_issuer=provider.issuer,
        resident_oidc_client_id=CLIENT_ID,
        resident_oidc_client_secret="resident-secret",
        resident_oidc_client_auth="client_secret_basic",
        resident_oidc_scopes=["openid", "profile", "address"],
        resident_oidc_vtr="",
        resident_oidc_claims=[],
        resident_claims_format="oidc",
        web_signin_rate_limit=1000,
    )
    alice, bob, carol = matched_residents(settings, 3)
    for sub, who in (("alice", alice), ("bob", bob), ("carol", carol)):
        provider.set_user(sub, who.claims)
    provider.set_user("stranger", {**alice.claims, "birthdate": "1900-01-01"})
    provider.set_user("moved", {**alice.claims, "address": {"postal_code": "ZZ99 9ZZ"}})
    app = create_app(settings, matcher=VaultMatcher(settings))
    return {"settings": settings, "app": app, "alice": alice, "bob": bob, "carol": carol}


def as_resident(world: dict[str, Any], who: Resident) -> TestClient:
    client = TestClient(world["app"])
    client.cookies.set("candour-session",
                       session_cookie(world["settings"], resident_session(who.person_id)))
    return client


def sign_in(client: TestClient, provider: Provider, sub: str) -> httpx.Response:
    started = client.get("/sign-in/start", follow_redirects=False)
    answer = httpx.post(started.headers["location"], data={"sub": sub}, follow_redirects=False)
    return client.get(answer.headers["location"], follow_redirects=False)


def record_ids(who: Resident) -> set[str]:
    return {k.split(":", 1)[1] for k in who.record_keys}


def test_a_verified_identity_signs_in_as_exactly_its_person(
    world: dict[str, Any], provider: Provider
) -> None:
    client = TestClient(world["app"])
    done = sign_in(client, provider, "alice")
    assert done.status_code == 303 and done.headers["location"] == "/me"
    me = client.get("/api/v1/me").json()
    assert me["person_id"] == world["alice"].person_id
    records = client.get("/me/records")
    assert records.status_code == 200
    assert all(rid in records.text for rid in record_ids(world["alice"]))
    # A wrong date of birth, or a postcode that none of their records holds: not confirmed.
    for sub in ("stranger", "moved"):
        other = TestClient(world["app"])
        assert sign_in(other, provider, sub).headers["location"] == "/sign-in/not-confirmed"
        assert other.get("/me", follow_redirects=False).headers["location"] == "/sign-in"


def test_records_show_each_source_with_controller_retention_and_values(
    world: dict[str, Any],
) -> None:
    alice = world["alice"]
    client = as_resident(world, alice)
    data = client.get("/api/v1/me/records").json()
    assert data["person_id"] == alice.person_id
    assert {s["source"] for s in data["sources"]} == {k.split(":")[0] for k in alice.record_keys}
    for source in data["sources"]:
        assert source["controller"] and source["retention"] and source["first_received"]
        for record in source["records"]:
            labels = {v["label"] for v in record["identity"]}
            assert "Family name" in labels
    page = client.get("/me/records").text
    assert data["sources"][0]["controller"] in page
    assert alice.claims["family_name"] in page


def test_choices_change_immediately_and_are_logged_for_the_person_only(
    world: dict[str, Any],
) -> None:
    settings: Settings = world["settings"]
    alice, bob = world["alice"], world["bob"]
    client = as_resident(world, alice)
    page = client.get("/me/choices/research")
    assert "What it does not stop" in page.text and "direct care" in page.text
    saved = client.post("/me/choices/research", data={"csrf_token": CSRF, "choice": "opt-out"},
                        follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/me/choices/research/saved"
    confirmation = client.get(saved.headers["location"]).text
    assert "Your choice has been saved" in confirmation
    assert "This takes effect immediately" in confirmation
    assert "research" in current(alice.person_id, settings=settings).everywhere
    # The gate's next snapshot already excludes Alice (the effect is immediate).
    assert alice.person_id in snapshot("research", settings=settings).everywhere
    # The choice-change entry is recognisable by Alice's key and by nobody else's.
    entries = client.get("/api/v1/me/choices/history").json()
    entry = json.loads(ledger.entry(entries[-1]["ledger_index"], settings=settings))
    assert entry["kind"] == "choice-change" and entry["choice"] == "opt-out"
    assert ledger.is_about(entry, ledger.person_key_for(alice.person_id, settings=settings))
    assert not ledger.is_about(entry, ledger.person_key_for(bob.person_id, settings=settings))
    assert alice.person_id not in json.dumps(entry)
    # Saying yes again, but leaving out one service's records (source-level narrowing).
    source = sorted(k.split(":")[0] for k in alice.record_keys)[0]
    client.post("/me/choices/research",
                data={"csrf_token": CSRF, "choice": "allow", "exclude": [source]})
    now = current(alice.person_id, settings=settings)
    assert "research" not in now.everywhere and now.by_source["research"] == {source}
    api = {c["id"]: c for c in client.get("/api/v1/me/choices").json()}
    assert api["research"]["opted_out_sources"] == [source]
    assert current(bob.person_id, settings=settings).everywhere == frozenset()


def test_a_purpose_without_opt_out_explains_why_and_refuses(world: dict[str, Any]) -> None:
    client = as_resident(world, world["carol"])
    page = client.get("/me/choices/fraud-prevention")
    assert "Why you cannot say no" in page.text and "legal duty" in page.text
    assert 'name="choice"' not in page.text
    refused = client.post("/me/choices/fraud-prevention",
                          data={"csrf_token": CSRF, "choice": "opt-out"})
    assert refused.status_code == 400
    put = client.put("/api/v1/me/choices/direct-care", json={"decision": "opt-out"},
                     headers={"X-CSRF-Token": CSRF})
    assert put.status_code == 409
    assert current(world["carol"].person_id, settings=world["settings"]).everywhere == frozenset()
    # No answer selected: an error summary, nothing saved.
    missing = client.post("/me/choices/research", data={"csrf_token": CSRF})
    assert missing.status_code == 400 and "There is a problem" in missing.text


def test_leaving_out_a_service_that_holds_nothing_about_me_is_refused(
    world: dict[str, Any],
) -> None:
    carol = world["carol"]
    mine = {k.split(":")[0] for k in carol.record_keys}
    foreign = next(s for s in ("police_incidents", "social_care_contacts", "ae_attendances",
                               "fire_home_safety_visits", "gp_registrations",
                               "council_tax_housing") if s not in mine)
    client = as_resident(world, carol)
    refused = client.post("/me/choices/research",
                          data={"csrf_token": CSRF, "choice": "allow", "exclude": [foreign]})
    assert refused.status_code == 400
    assert current(carol.person_id, settings=world["settings"]).by_source == {}


def test_service_preferences_keep_their_history(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    bob = world["bob"]
    client = as_resident(world, bob)
    source = sorted(k.split(":")[0] for k in bob.record_keys)[0]
    page = client.get("/me/services").text
    assert f'name="service-{source}"' in page
    client.post("/me/services", data={"csrf_token": CSRF, f"service-{source}": "paper"})
    done = client.post("/me/services", data={"csrf_token": CSRF, f"service-{source}": "online"},
                       follow_redirects=False)
    assert done.status_code == 303
    shown = client.get("/me/services").text
    assert "1 preference saved" in shown
    assert [(r.source, r.preference) for r in preference_history(bob.person_id,
                                                                 settings=settings)] == [
        (source, "paper"), (source, "online")]
    api = client.get("/api/v1/me/services").json()
    mine = {s["source"]: s for s in api["services"]}
    assert mine[source]["preference"] == "online" and mine[source]["holds_records"]
    assert [h["preference"] for h in api["history"]] == ["online", "paper"]  # newest first
    assert client.put(f"/api/v1/me/services/{source}", json={"preference": "fax"},
                      headers={"X-CSRF-Token": CSRF}).status_code == 422


def test_the_download_is_the_persons_data_and_is_logged_first(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    carol, alice = world["carol"], world["alice"]
    client = as_resident(world, carol)
    response = client.post("/me/download", data={"csrf_token": CSRF, "format": "json"})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="candour-my-data.json"'
    assert response.headers["cache-control"] == "no-store"
    document = response.json()
    assert document["person_id"] == carol.person_id
    held = {r["record_id"] for s in document["sources"] for r in s["records"]}
    assert held == record_ids(carol) and not held & record_ids(alice)
    # The subject-access entry commits to exactly this answer, for Carol's eyes only.
    import hashlib

    size = PublicLog(settings).size
    entry = json.loads(ledger.entry(size - 1, settings=settings))
    assert entry["kind"] == "subject-access"
    assert entry["response_hash"] == hashlib.sha256(response.content).hexdigest()
    assert ledger.is_about(entry, ledger.person_key_for(carol.person_id, settings=settings))
    as_csv = client.post("/me/download", data={"csrf_token": CSRF, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {r["record_id"] for r in rows} == record_ids(carol)
    assert client.post("/me/download", data={"csrf_token": CSRF}).status_code == 400
    api = client.post("/api/v1/me/download?format=csv", headers={"X-CSRF-Token": CSRF})
    assert api.status_code == 200 and api.headers["content-type"].startswith("text/csv")


def test_anonymous_visitors_are_sent_to_sign_in(world: dict[str, Any]) -> None:
    client = TestClient(world["app"])
    for path in PERSONAL_PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/sign-in", path
        assert response.headers["cache-control"] == "no-store"
    for path in PERSONAL_API:
        assert client.get(path).status_code == 401, path
    # Forms need a session's CSRF token first, so an anonymous POST is refused outright.
    for path in FORMS:
        assert client.post(path, data={"choice": "opt-out"}).status_code == 403, path


def test_every_form_needs_its_csrf_token(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    bob = world["bob"]
    client = as_resident(world, bob)
    before = current(bob.person_id, settings=settings)
    for path, data in (("/me/choices/research", {"choice": "opt-out"}),
                       ("/me/services", {"service-police_incidents": "paper"}),
                       ("/me/download", {"format": "json"})):
        assert client.post(path, data=data).status_code == 403, path
        assert client.post(path, data={**data, "csrf_token": "wrong"}).status_code == 403, path
    assert client.put("/api/v1/me/choices/research", json={"decision": "opt-out"}).status_code \
        == 403
    assert current(bob.person_id, settings=settings) == before


def test_no_route_shows_another_residents_data(world: dict[str, Any]) -> None:
    alice, bob = world["alice"], world["bob"]
    client = as_resident(world, alice)
    theirs = record_ids(bob) - record_ids(alice)
    assert theirs
    # Whatever a resident puts in the address, they get their own data or nothing.
    attempts = [f"{p}?person_id={bob.person_id}" for p in PERSONAL_PAGES + PERSONAL_API]
    attempts += [f"/me/records/{bob.person_id}", f"/api/v1/me/records/{bob.person_id}",
                 f"/me/{bob.person_id}", f"/api/v1/me/{bob.person_id}/records",
                 f"/me/choices/{bob.person_id}"]
    for path in attempts:
        response = client.get(path)
        assert response.status_code in (200, 404, 403), path
        body = response.text
        assert bob.person_id not in body or response.status_code == 404 and \
            bob.person_id not in body.replace(path, ""), path
        for rid in theirs:
            assert rid not in body, (path, rid)
        if bob.nhs_number and bob.nhs_number != alice.nhs_number:
            assert bob.nhs_number not in re.sub(r"\s", "", body), path
    # A cookie naming Bob that was not signed by the app is no session at all.
    forged = TestClient(world["app"])
    forged.cookies.set("candour-session", session_cookie(world["settings"], {})[:-3] + "xyz")
    assert forged.get("/me", follow_redirects=False).status_code == 303


def test_residents_cannot_reach_staff_or_services_routes(world: dict[str, Any]) -> None:
    client = as_resident(world, world["alice"])
    assert client.get("/staff/uses", follow_redirects=False).headers["location"] \
        == "/staff/sign-in"
    assert client.get("/api/v1/staff/uses").status_code == 401
    assert client.get("/api/v1/services/police_incidents/preferences").status_code == 401
    # And staff cannot use a resident's routes.
    staff = TestClient(world["app"])
    staff.cookies.set("candour-session", session_cookie(world["settings"], staff_session("ian")))
    assert staff.get("/me/records", follow_redirects=False).status_code == 303
    assert staff.get("/api/v1/me/records").status_code == 401


def test_a_merged_person_id_is_told_to_sign_in_again(world: dict[str, Any]) -> None:
    ghost = Resident(person_id="P-AAAAAAAAAAAA", claims={}, nhs_number=None, record_keys=())
    client = as_resident(world, ghost)
    for path in ("/me/records", "/me/choices", "/me/choices/research"):
        response = client.get(path)
        assert response.status_code == 404 and "sign in again" in response.text, path
    assert client.get("/api/v1/me/records").status_code == 404


def test_personal_pages_set_no_store(world: dict[str, Any], tmp_path: Path) -> None:
    client = as_resident(world, world["carol"])
    for path in PERSONAL_PAGES[:3] + PERSONAL_API[:2]:
        assert client.get(path).headers["cache-control"] == "no-store", path


def test_home_links_to_every_use_of_my_data_only_once_it_is_served(
    world: dict[str, Any],
) -> None:
    client = as_resident(world, world["alice"])
    home = client.get("/me").text
    for path in ("/me/records", "/me/choices", "/me/services", "/me/download"):
        assert f'href="{path}"' in home
    assert 'href="/me/uses"' not in home  # the gate has queries_including, but no page yet
    app = create_app(world["settings"], matcher=VaultMatcher(world["settings"]))
    app.add_api_route("/me/uses", lambda: {"uses": []})
    with_page = TestClient(app)
    with_page.cookies.set("candour-session", session_cookie(
        world["settings"], resident_session(world["alice"].person_id)))
    assert 'href="/me/uses"' in with_page.get("/me").text
