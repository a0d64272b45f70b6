"""The resident portal on a real synthetic town: sign-in by identity matching, records,
choices, services, the download, every use of my data with its proofs, and that nobody ever
sees anyone else's data."""

from __future__ import annotations

import base64
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
from tests.integration.test_gate_support import approved_use, build_home

from candour import gate, ledger
from candour.choices import current, set_choice, snapshot
from candour.config import Settings
from candour.gate import Receipt, ReceiptError, home_verifier
from candour.gate.cohort import CohortStore
from candour.home import Home
from candour.ledger import checkpoint as cpmod
from candour.ledger import tree
from candour.web import create_app
from candour.web.preferences import history as preference_history
from candour.web.transparency import PublicLog
from candour.web.uses import PER_PAGE, UnknownPerson, entry_proof, page_links, uses_view
from candour.workflows.identity_match import VaultMatcher
from e2e.support import (
    CSRF,
    Provider,
    Resident,
    add_staff,
    count_query,
    make_use,
    matched_residents,
    oidc_provider,
    resident_oidc,
    resident_session,
    session_cookie,
    staff_session,
    town,
)

PERSONAL_PAGES = ["/me", "/me/records", "/me/choices", "/me/choices/research",
                  "/me/choices/research/saved", "/me/services", "/me/download", "/me/uses",
                  "/me/uses/0/proof"]
PERSONAL_API = ["/api/v1/me", "/api/v1/me/records", "/api/v1/me/choices",
                "/api/v1/me/choices/history", "/api/v1/me/services", "/api/v1/me/uses",
                "/api/v1/me/uses/0/proof"]
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
        **resident_oidc(provider.issuer),
        web_signin_rate_limit=1000,
    )
    alice, bob, carol = matched_residents(settings, 3)
    for sub, who in (("alice", alice), ("bob", bob), ("carol", carol)):
        provider.set_user(sub, who.claims)
    provider.set_user("stranger", {**alice.claims, "birthdate": "1900-01-01"})
    provider.set_user("moved", {**alice.claims, "address": {"postal_code": "ZZ99 9ZZ"}})
    # An earlier research query over a table holding Alice's records (and Bob's, if one does),
    # run through the gate as an analyst would: "every use of my data" must list it.
    add_staff(settings)
    mine = sources_of(alice)
    table = sorted(mine & sources_of(bob) or mine)[0]
    use_id = make_use(settings, "active", title="Home safety research", purpose="research",
                      organisation="Wealdshire Public Health", grants={table: '"*"'})
    query = count_query(settings, use_id, table)
    app = create_app(settings, matcher=VaultMatcher(settings))
    return {"settings": settings, "app": app, "alice": alice, "bob": bob, "carol": carol,
            "use_id": use_id, "table": table, "query": query}


def sources_of(who: Resident) -> set[str]:
    return {k.split(":", 1)[0] for k in who.record_keys}


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
                 f"/me/choices/{bob.person_id}", f"/me/uses/{bob.person_id}",
                 f"/me/uses/{bob.person_id}/proof", f"/api/v1/me/uses/{bob.person_id}/proof",
                 f"/me/uses?page=1&person_id={bob.person_id}"]
    for path in attempts:
        response = client.get(path)
        # A malformed id in an API path is FastAPI's 422; in a page's path, a 404 page.
        allowed = (200, 404, 403, 422) if path.startswith("/api/") else (200, 404, 403)
        assert response.status_code in allowed, path
        body = response.text
        # Bob's id may appear only where an error echoes the address the visitor typed.
        assert bob.person_id not in body or response.status_code in (404, 422) and \
            bob.person_id not in body.replace(path, "").replace(
                f'"input":"{bob.person_id}"', ""), path
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
    for path in PERSONAL_PAGES[:3] + ["/me/uses"] + PERSONAL_API[:2] + ["/api/v1/me/uses"]:
        assert client.get(path).headers["cache-control"] == "no-store", path


def test_home_links_to_every_page_of_the_portal(world: dict[str, Any]) -> None:
    client = as_resident(world, world["alice"])
    home = client.get("/me").text
    for path in ("/me/records", "/me/uses", "/me/choices", "/me/services", "/me/download"):
        assert f'href="{path}"' in home
    assert client.get("/me/uses").status_code == 200


# -- every use of my data ----------------------------------------------------------------------


def in_cohort(settings: Settings, query_id: str, who: Resident) -> bool:
    """The truth, from the gate's private cohort bitmap: did the query include this person?"""
    num = gate.person_num_of(who.person_id, settings=settings)
    return num in CohortStore(Home(settings.home)).read(query_id)


def check_proof(settings: Settings, proof: dict[str, Any]) -> None:
    """Verify a downloaded proof with the ledger's own functions, as an outsider would."""
    verifier = ledger.verifier_key(Home(settings.home))
    assert proof["log_verifier_key"] == verifier.vkey()
    cp, _ = cpmod.open_checkpoint(proof["checkpoint"].encode(), [verifier], settings.log_origin)
    entry = base64.b64decode(proof["entry_base64"])
    assert entry == proof["entry"].encode()
    assert entry == ledger.entry(proof["ledger_index"], settings=settings)
    inclusion = proof["inclusion_proof"]
    leaf = tree.leaf_hash(entry)
    assert base64.b64decode(inclusion["leaf_hash"]) == leaf
    assert inclusion["index"] == proof["ledger_index"]
    assert (cp.size, cp.root) == (inclusion["tree_size"], base64.b64decode(inclusion["root"]))
    tree.verify_inclusion(
        inclusion["index"], inclusion["tree_size"], leaf,
        [base64.b64decode(h) for h in inclusion["hashes"]], cp.root,
    )


def test_every_use_of_my_data_lists_the_queries_that_included_me(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    query = world["query"]
    assert in_cohort(settings, query.query_id, world["alice"])
    for who in (world["alice"], world["bob"], world["carol"]):
        client = as_resident(world, who)
        data = client.get("/api/v1/me/uses").json()
        listed = {q["query_id"]: q for q in data["queries"]}
        # Listed exactly when the cohort bitmap holds the person: never more, never fewer.
        assert (query.query_id in listed) == in_cohort(settings, query.query_id, who)
        assert data["total"] == len(data["queries"]) and data["page"] == data["pages"] == 1
    client = as_resident(world, world["alice"])
    item = next(q for q in client.get("/api/v1/me/uses").json()["queries"]
                if q["query_id"] == query.query_id)
    assert item["use_id"] == world["use_id"] and item["title"] == "Home safety research"
    assert item["organisation"] == "Wealdshire Public Health"
    assert (item["purpose"], item["purpose_title"]) == ("research", "Research")
    assert item["ledger_index"] == query.receipt.ledger_index
    assert item["register_url"] == f"/register/{world['use_id']}"
    assert item["proof_url"] == f"/me/uses/{query.receipt.ledger_index}/proof"
    page = client.get("/me/uses")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    for text in ("Every use of your data", "Home safety research", "Wealdshire Public Health",
                 f'href="/register/{world["use_id"]}"', f'href="{item["proof_url"]}"'):
        assert text in page.text, text
    assert client.get("/me/uses?page=2").status_code == 404  # one page only
    assert client.get("/me/uses?page=0").status_code == 400  # a bad query string
    assert client.get("/me/uses?page=two").status_code == 400
    assert client.get("/api/v1/me/uses?page=2").status_code == 404


def test_a_downloaded_proof_verifies_with_the_ledgers_own_functions(
    world: dict[str, Any],
) -> None:
    settings: Settings = world["settings"]
    query = world["query"]
    index = query.receipt.ledger_index
    client = as_resident(world, world["alice"])
    response = client.get(f"/me/uses/{index}/proof")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"] == \
        f'attachment; filename="candour-entry-{index}-proof.json"'
    proof = response.json()
    assert proof["kind"] == "query" and proof["query_id"] == query.query_id
    check_proof(settings, proof)
    assert json.loads(proof["entry"])["cohort_hash"] == query.cohort_sha256
    # A query's proof is also a gate receipt, checked by the gate's own code.
    Receipt.from_json(proof).verify(home_verifier(settings))
    tampered = {**proof, "entry": proof["entry"].replace(query.cohort_sha256, "0" * 64)}
    with pytest.raises(ReceiptError):
        Receipt.from_json(tampered).verify(home_verifier(settings))
    with pytest.raises(ledger.ProofError):
        inclusion = proof["inclusion_proof"]
        tree.verify_inclusion(index, inclusion["tree_size"], tree.leaf_hash(b"{}"),
                              [base64.b64decode(h) for h in inclusion["hashes"]],
                              base64.b64decode(inclusion["root"]))
    api = client.get(f"/api/v1/me/uses/{index}/proof")
    assert api.status_code == 200 and api.json()["entry"] == proof["entry"]


def test_entries_about_me_are_listed_with_my_commitments(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    carol, alice = world["carol"], world["alice"]
    client = as_resident(world, carol)
    download = client.post("/api/v1/me/download?format=json", headers={"X-CSRF-Token": CSRF})
    assert download.status_code == 200
    changed = client.put("/api/v1/me/choices/service-planning", json={"decision": "opt-out"},
                         headers={"X-CSRF-Token": CSRF})
    assert changed.status_code == 200
    change_index = client.get("/api/v1/me/choices/history").json()[-1]["ledger_index"]
    entries = client.get("/api/v1/me/uses").json()["entries"]
    kinds = {e["ledger_index"]: e["kind"] for e in entries}
    assert kinds[change_index] == "choice-change"
    assert "subject-access" in kinds.values()
    assert [e["ledger_index"] for e in entries] == sorted(kinds, reverse=True)  # newest first
    mine = ledger.person_key_for(carol.person_id, settings=settings)
    theirs = ledger.person_key_for(alice.person_id, settings=settings)
    for item in entries:
        entry = json.loads(ledger.entry(item["ledger_index"], settings=settings))
        assert (entry["nonce"], entry["commitment"]) == (item["nonce"], item["commitment"])
        assert ledger.is_about(entry, mine) and not ledger.is_about(entry, theirs)
    # Every subject-access entry in the log that is Carol's is listed, and no one else's.
    size = ledger.open_log(settings).read_checkpoint()[0].size  # type: ignore[index]
    hers = {i for i in range(size)
            if (e := json.loads(ledger.entry(i, settings=settings)))["kind"] == "subject-access"
            and ledger.is_about(e, mine)}
    assert hers and hers == {i for i, k in kinds.items() if k == "subject-access"}
    page = client.get("/me/uses").text
    assert "You said no to service planning" in page
    assert "You downloaded your data" in page
    assert entries[0]["commitment"] in page and entries[0]["nonce"] in page
    proof = client.get(entries[0]["proof_url"])
    assert proof.status_code == 200
    check_proof(settings, proof.json())


def test_another_residents_entry_proof_is_not_found(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    bobs = as_resident(world, bob)
    assert bobs.post("/api/v1/me/download?format=json",
                     headers={"X-CSRF-Token": CSRF}).status_code == 200
    bob_entry = next(e for e in bobs.get("/api/v1/me/uses").json()["entries"]
                     if e["kind"] == "subject-access")["ledger_index"]
    assert bobs.get(f"/me/uses/{bob_entry}/proof").status_code == 200
    client = as_resident(world, alice)
    for path in (f"/me/uses/{bob_entry}/proof", f"/api/v1/me/uses/{bob_entry}/proof"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert bob_entry not in [e["ledger_index"] for e in
                                 client.get("/api/v1/me/uses").json()["entries"]]
    # Carol says no to research; the next research query leaves her out, and its proof is
    # not hers to have (exactly as for an entry that does not exist).
    set_choice(carol.person_id, "research", "opt-out", channel="portal", actor="resident",
               settings=settings)
    later = count_query(settings, world["use_id"], world["table"])
    assert not in_cohort(settings, later.query_id, carol)
    carols = as_resident(world, carol)
    assert later.query_id not in [q["query_id"] for q in
                                  carols.get("/api/v1/me/uses").json()["queries"]]
    index = later.receipt.ledger_index
    assert carols.get(f"/me/uses/{index}/proof").status_code == 404
    assert carols.get(f"/api/v1/me/uses/{index}/proof").status_code == 404
    # Entries about nobody (the use's approval) and indices past the end: 404 too.
    size = ledger.open_log(settings).read_checkpoint()[0].size  # type: ignore[index]
    approval = next(i for i in range(size)
                    if json.loads(ledger.entry(i, settings=settings))["kind"] == "use-approved")
    for path in (f"/me/uses/{approval}/proof", f"/me/uses/{size + 5}/proof",
                 f"/api/v1/me/uses/{size + 5}/proof", "/me/uses/-1/proof",
                 f"/me/uses/{bob.person_id}/proof"):
        assert carols.get(path).status_code == 404, path
    assert carols.get(f"/api/v1/me/uses/{bob.person_id}/proof").status_code == 422


def test_page_links_follow_the_govuk_pattern() -> None:
    def shown(page: int, pages: int) -> list[object]:
        return ["..." if link.ellipsis else link.number for link in page_links(page, pages)]

    assert shown(1, 1) == [1]
    assert shown(1, 3) == [1, 2, 3]
    assert shown(5, 9) == [1, "...", 4, 5, 6, "...", 9]
    assert shown(9, 9) == [1, "...", 8, 9]
    assert [link.current for link in page_links(2, 3)] == [False, True, False]
    assert page_links(2, 3)[0].href == "/me/uses?page=1"


def test_every_use_pages_newest_first_on_each_store(store_settings: Settings) -> None:
    """On SQLite and PostgreSQL: 20 a page, newest first, and proofs for the person's only."""
    home = build_home(store_settings)
    settings = store_settings.model_copy(update={"web_secure_cookies": False})
    use_id = approved_use(settings)
    person = home.people[home.ae[0]["person_num"]]
    # Someone who said no to research before any query: in no cohort.
    outsider = next(p for p in home.people if p != person)
    set_choice(outsider, "research", "opt-out", channel="portal", actor="resident",
               settings=settings)
    sql = "SELECT diagnosis, count(*) AS n FROM ae_attendances GROUP BY diagnosis"
    ran = [gate.run(use_id, "ana", sql, settings=settings) for _ in range(PER_PAGE + 2)]
    first = uses_view(person, settings=settings)
    assert (first.total, first.pages, len(first.queries)) == (PER_PAGE + 2, 2, PER_PAGE)
    newest = [r.query_id for r in reversed(ran)]
    assert [q.query_id for q in first.queries] == newest[:PER_PAGE]
    second = uses_view(person, settings=settings, page=2)
    assert [q.query_id for q in second.queries] == newest[PER_PAGE:]
    with pytest.raises(LookupError):
        uses_view(person, settings=settings, page=3)
    with pytest.raises(UnknownPerson):
        uses_view("P-AAAAAAAAAAAA", settings=settings)
    assert uses_view(outsider, settings=settings).total == 0
    oldest = ran[0].receipt.ledger_index
    assert entry_proof(person, oldest, settings=settings).query_id == ran[0].query_id
    client = TestClient(create_app(settings))
    client.cookies.set("candour-session", session_cookie(settings, resident_session(person)))
    page = client.get("/me/uses?page=2")
    assert page.status_code == 200 and ran[0].query_id in page.text
    assert ran[-1].query_id not in page.text
    assert 'href="/me/uses?page=1"' in page.text and "govuk-pagination" in page.text
    proof = client.get(f"/me/uses/{oldest}/proof").json()
    Receipt.from_json(proof).verify(home_verifier(settings))
    outside = TestClient(create_app(settings))
    outside.cookies.set("candour-session", session_cookie(settings, resident_session(outsider)))
    assert outside.get(f"/me/uses/{oldest}/proof").status_code == 404
    assert outside.get("/api/v1/me/uses").json()["total"] == 0


def test_entries_from_before_an_hmac_rotation_are_still_mine(tmp_path: Path) -> None:
    from candour.maintenance.keys import rotate_key

    settings = town(tmp_path, web_base_url="http://testserver")
    (carol,) = matched_residents(settings, 1)
    cookie = session_cookie(settings, resident_session(carol.person_id))
    client = TestClient(create_app(settings))
    client.cookies.set("candour-session", cookie)
    assert client.post("/api/v1/me/download?format=json",
                       headers={"X-CSRF-Token": CSRF}).status_code == 200
    before = {e["ledger_index"] for e in client.get("/api/v1/me/uses").json()["entries"]}
    assert before
    rotate_key(settings, "hmac")
    after = TestClient(create_app(settings))
    after.cookies.set("candour-session", cookie)
    listed = {e["ledger_index"] for e in after.get("/api/v1/me/uses").json()["entries"]}
    assert before <= listed
    for index in before:
        assert after.get(f"/api/v1/me/uses/{index}/proof").status_code == 200


def test_a_busy_warehouse_gives_a_503_page_not_a_crash(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from candour.warehouse import WarehouseError
    from candour.web import me as me_module

    def busy(*_args: Any, **_kwargs: Any) -> Any:
        raise WarehouseError("the warehouse is in use by another Candour process (waited 60 s)")

    monkeypatch.setattr(me_module, "records_for", busy)
    client = as_resident(world, world["alice"])
    page = client.get("/me/records")
    assert page.status_code == 503 and page.headers["retry-after"] == "60"
    assert "this page is busy" in page.text and "Traceback" not in page.text
    api = client.get("/api/v1/me/records")
    assert api.status_code == 503 and api.json() == {"detail": "Sorry, this page is busy"}
