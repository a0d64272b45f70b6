"""The staff console: roles from the register, data uses, output checking, linkage review,
audit search and service tokens, with every rule checked on the server."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from candour import ledger, register
from candour.config import Settings
from candour.disclosure import get_release
from candour.linkage.review import list_pairs
from candour.store import transaction
from candour.store.ingest import VaultAccess
from candour.web import create_app
from candour.web.preferences import set_preferences
from e2e.support import (
    CSRF,
    add_staff,
    make_release,
    make_use,
    matched_residents,
    session_cookie,
    staff_session,
    town,
    use_yaml,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = town(tmp_path_factory.mktemp("staff"))
    add_staff(settings)
    register.add_user("old", "ig", settings=settings)
    app = create_app(settings)
    return {"settings": settings, "app": app}


def as_staff(world: dict[str, Any], user: str, claim: list[str] | None = None) -> TestClient:
    client = TestClient(world["app"])
    client.cookies.set("candour-session",
                       session_cookie(world["settings"], staff_session(user, claim)))
    return client


def test_roles_come_from_the_register_and_a_claim_can_only_narrow(world: dict[str, Any]) -> None:
    assert "Information governance lead" in as_staff(world, "ian").get("/staff").text
    nobody = as_staff(world, "someone-else").get("/staff")
    assert "not an active staff user in the register" in nobody.text
    assert "You do not have a role" in nobody.text
    assert as_staff(world, "someone-else").get("/staff/uses").status_code == 403
    # The provider's roles claim can take the register's role away, never add one.
    assert as_staff(world, "ian", ["checker"]).get("/staff/uses").status_code == 403
    assert as_staff(world, "ian", ["ig"]).get("/staff/uses").status_code == 200
    assert as_staff(world, "ana", ["ig", "admin"]).get("/staff/services").status_code == 403
    # Deactivating a user takes effect on their very next request.
    client = as_staff(world, "old")
    assert client.get("/staff/uses").status_code == 200
    from candour.store.register import StaffUser

    with transaction(world["settings"]) as session:
        session.scalars(select(StaffUser).where(StaffUser.name == "old")).one().active = False
    assert client.get("/staff/uses").status_code == 403


def test_each_area_checks_its_role(world: dict[str, Any]) -> None:
    allowed = {
        "/staff/uses": {"ana", "ian", "cat", "adam"},
        "/staff/uses/new": {"ana"},
        "/staff/releases": {"ana", "ian", "cat", "adam"},
        "/staff/linkage": {"ian", "adam"},
        "/staff/audit": {"ian", "cat", "adam"},
        "/staff/services": {"adam"},
        "/api/v1/staff/linkage/pairs": {"ian", "adam"},
        "/api/v1/staff/audit": {"ian", "cat", "adam"},
    }
    for path, users in allowed.items():
        for user in ("ana", "ian", "cat", "adam"):
            status = as_staff(world, user).get(path).status_code
            assert status == (200 if user in users else 403), (path, user, status)
        assert TestClient(world["app"]).get(path, follow_redirects=False).status_code in (303, 401)


def test_an_analyst_applies_and_submits_and_only_they_see_the_draft(
    world: dict[str, Any],
) -> None:
    ana, bob = as_staff(world, "ana"), as_staff(world, "bob")
    refused = ana.post("/staff/uses/new", data={"csrf_token": CSRF,
                                                "application": use_yaml(applicant="bob",
                                                                        analysts="bob")})
    assert refused.status_code == 400 and "cannot apply for someone else" in refused.text
    broken = ana.post("/staff/uses/new", data={"csrf_token": CSRF, "application": "title: ["})
    assert broken.status_code == 400 and "not valid YAML" in broken.text
    assert ana.post("/staff/uses/new", data={"application": use_yaml()}).status_code == 403
    created = ana.post("/staff/uses/new",
                       data={"csrf_token": CSRF, "application": use_yaml(title="Ana's draft")},
                       follow_redirects=False)
    assert created.status_code == 303
    use_id = created.headers["location"].rsplit("/", 1)[1]
    assert "Submit for approval" in ana.get(f"/staff/uses/{use_id}").text
    assert bob.get(f"/staff/uses/{use_id}").status_code == 404
    assert use_id not in bob.get("/staff/uses").text
    assert bob.post(f"/staff/uses/{use_id}/submit", data={"csrf_token": CSRF}).status_code == 404
    done = ana.post(f"/staff/uses/{use_id}/submit", data={"csrf_token": CSRF},
                    follow_redirects=False)
    assert done.status_code == 303
    assert register.get_use(use_id, settings=world["settings"]).status == "submitted"
    assert "submitted for approval" in ana.get(done.headers["location"]).text


def test_approval_is_for_an_ig_lead_who_is_not_involved(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    own = make_use(settings, "submitted", title="IG lead's own application", applicant="ida",
                   analysts="ana")
    ida = as_staff(world, "ida")
    page = ida.get(f"/staff/uses/{own}").text
    assert "Approve" not in page  # the button is not offered...
    refused = ida.post(f"/staff/uses/{own}/approve", data={"csrf_token": CSRF})
    assert refused.status_code == 400  # ...and the server refuses anyway
    assert "applied for" in refused.text and "cannot also approve" in refused.text
    assert register.get_use(own, settings=settings).status == "submitted"
    # An analyst or a checker cannot approve at all.
    for user in ("ana", "cat"):
        assert as_staff(world, user).post(f"/staff/uses/{own}/approve",
                                          data={"csrf_token": CSRF}).status_code == 403
    ian = as_staff(world, "ian")
    assert "Approve" in ian.get(f"/staff/uses/{own}").text
    assert ian.post(f"/staff/uses/{own}/approve", data={"csrf_token": "no"}).status_code == 403
    approved = ian.post(f"/staff/uses/{own}/approve", data={"csrf_token": CSRF},
                        follow_redirects=False)
    assert approved.status_code == 303
    view = register.get_use(own, settings=settings)
    assert view.status == "active" and view.decided_by == "ian"
    entry = json.loads(ledger.entry(view.transitions[-1].ledger_index or 0, settings=settings))
    assert entry["kind"] == "use-approved" and entry["use_id"] == own
    rejected = make_use(settings, "submitted", title="To be rejected")
    ian.post(f"/staff/uses/{rejected}/reject", data={"csrf_token": CSRF})
    assert register.get_use(rejected, settings=settings).status == "rejected"
    api = ian.get(f"/api/v1/staff/uses/{own}").json()
    assert api["decided_by"] == "ian" and api["can_decide"] is False


def test_output_checking_shows_suppressed_and_rounded_cells(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    use_id = make_use(settings, "active", title="Falls by area")
    release_id = make_release(settings, use_id, created_by="ana")
    cat = as_staff(world, "cat")
    page = cat.get(f"/staff/releases/{release_id}").text
    assert "Suppressed: primary" in page and "Rounded" in page
    assert "Ashcombe" in page and "[c]" in page
    assert "Can this output be released?" in page
    detail = cat.get(f"/api/v1/staff/releases/{release_id}").json()
    cells = {c["key"]: c for c in detail["cells"]}
    assert cells["Ashcombe"]["suppressed"] == "primary"
    assert cells["Cresthaven"]["rounded"] == ["n"] and cells["Cresthaven"]["published"]["n"] == 25
    # The analyst who made it sees it, but cannot check it; another analyst cannot see it.
    assert "Can this output be released?" not in as_staff(world, "ana").get(
        f"/staff/releases/{release_id}").text
    assert as_staff(world, "bob").get(f"/staff/releases/{release_id}").status_code == 404
    assert as_staff(world, "ana").post(f"/staff/releases/{release_id}",
                                       data={"csrf_token": CSRF, "decision": "approve"}
                                       ).status_code == 403
    no_reason = cat.post(f"/staff/releases/{release_id}",
                         data={"csrf_token": CSRF, "decision": "reject"})
    assert no_reason.status_code == 400 and "needs a reason" in no_reason.text
    released = cat.post(f"/staff/releases/{release_id}",
                        data={"csrf_token": CSRF, "decision": "approve"},
                        follow_redirects=False)
    assert released.status_code == 303
    release = get_release(settings, release_id)
    assert release.status == "released" and release.checked_by == "cat"
    assert json.loads(ledger.entry(release.ledger_index or 0, settings=settings))["kind"] \
        == "release"


def test_a_checker_cannot_check_their_own_output(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    use_id = make_use(settings, "active", title="Checker's own output")
    release_id = make_release(settings, use_id, created_by="col")
    col = as_staff(world, "col")
    assert "Can this output be released?" not in col.get(f"/staff/releases/{release_id}").text
    refused = col.post(f"/staff/releases/{release_id}",
                       data={"csrf_token": CSRF, "decision": "approve"})
    assert refused.status_code == 400 and "two-person rule" in refused.text
    assert get_release(settings, release_id).status == "pending"


def test_linkage_review_side_by_side_with_waterfall_and_audited(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    pairs = list_pairs(settings, limit=5)
    assert pairs, "the town's link run should leave pairs to review"
    pair = pairs[0]
    ian = as_staff(world, "ian")
    assert f"/staff/linkage/{pair.pair_id}" in ian.get("/staff/linkage").text
    page = ian.get(f"/staff/linkage/{pair.pair_id}").text
    assert pair.record_key_l in page and pair.record_key_r in page
    assert "family name" in page and "Prior (two records chosen at random)" in page
    assert re.search(r"candour-w-\d+", page)
    with transaction(settings) as session:
        access = session.scalars(
            select(VaultAccess).order_by(VaultAccess.id.desc()).limit(1)
        ).one()
        assert access.actor == "ian" and str(pair.pair_id) in access.reason
    api = ian.get(f"/api/v1/staff/linkage/pairs/{pair.pair_id}").json()
    assert api["left"]["values"] == {} and len(api["waterfall"]) >= 2  # no identities in the API
    decided = ian.post(f"/staff/linkage/{pair.pair_id}",
                       data={"csrf_token": CSRF, "decision": "non-match"}, follow_redirects=False)
    assert decided.status_code == 303
    assert "Latest decision: <strong>non-match</strong>, by ian" in ian.get(
        decided.headers["location"]).text
    assert as_staff(world, "cat").get(f"/staff/linkage/{pair.pair_id}").status_code == 403


def test_audit_search_filters_by_kind_use_and_date(world: dict[str, Any]) -> None:
    settings: Settings = world["settings"]
    use_id = make_use(settings, "active", title="Audited use")
    ian = as_staff(world, "ian")
    found = ian.get("/api/v1/staff/audit", params={"use_id": use_id}).json()
    assert [e["kind"] for e in found["entries"]] == ["use-approved", "use-submitted"]
    ingests = ian.get("/api/v1/staff/audit", params={"kind": "ingest"}).json()
    assert ingests["total"] >= 6 and {e["kind"] for e in ingests["entries"]} == {"ingest"}
    assert ian.get("/api/v1/staff/audit",
                   params={"date_to": "2000-01-01"}).json()["total"] == 0
    page = ian.get("/staff/audit", params={"kind": "use-approved", "use_id": use_id}).text
    assert "1 entry found" in page
    assert ian.get("/staff/audit", params={"kind": "nonsense"}).status_code == 400


def test_service_tokens_let_a_service_read_only_its_own_preferences(
    world: dict[str, Any],
) -> None:
    settings: Settings = world["settings"]
    resident = matched_residents(settings, 1)[0]
    key = resident.record_keys[0]
    source, record_id = key.split(":", 1)
    other = next(s for s in ("police_incidents", "gp_registrations") if s != source)
    set_preferences(resident.person_id, {source: "paper", other: "online"}, channel="portal",
                    settings=settings)
    adam = as_staff(world, "adam")
    issued = adam.post("/staff/services", data={"csrf_token": CSRF, "source": source})
    token = re.search(r"cst_[a-z0-9]{12}_[A-Za-z0-9_-]+", issued.text)
    assert token, "the new token is shown once"
    assert token.group(0) not in adam.get("/staff/services").text
    service = TestClient(world["app"])
    auth = {"Authorization": f"Bearer {token.group(0)}"}
    one = service.get(f"/api/v1/services/{source}/preferences/{record_id}", headers=auth)
    assert one.status_code == 200 and one.json()["preference"] == "paper"
    assert one.headers["cache-control"] == "no-store"
    assert resident.person_id not in one.text
    changes = service.get(f"/api/v1/services/{source}/preferences", headers=auth).json()
    assert any(record_id in c["record_ids"] and c["preference"] == "paper"
               for c in changes["changes"])
    assert all(c["preference"] == "paper" for c in changes["changes"])
    assert service.get(f"/api/v1/services/{other}/preferences", headers=auth).status_code == 403
    assert service.get(f"/api/v1/services/{source}/preferences/NOPE", headers=auth
                       ).status_code == 404
    assert service.get(f"/api/v1/services/{source}/preferences").status_code == 401
    assert service.get(f"/api/v1/services/{source}/preferences",
                       headers={"Authorization": "Bearer cst_aaaaaaaaaaaa_" + "x" * 40}
                       ).status_code == 401
    token_id = token.group(0).split("_")[1]
    adam.post(f"/staff/services/{token_id}/revoke", data={"csrf_token": CSRF})
    assert service.get(f"/api/v1/services/{source}/preferences", headers=auth).status_code == 401


def test_an_analyst_requests_the_release_of_their_own_output(world: dict[str, Any]) -> None:
    import pandas as pd

    from candour.disclosure import Count, list_releases, protect, save_output

    settings: Settings = world["settings"]
    use_id = make_use(settings, "active", title="Output to request")
    table = pd.DataFrame({"area": ["Ashcombe", "Brookley"], "n": [30, 45]})
    output = save_output(settings, protect(table, keys=["area"], measures=[Count("n")]),
                         use_id=use_id, created_by="ana", name="areas")
    ana, bob = as_staff(world, "ana"), as_staff(world, "bob")
    page = ana.get("/staff/releases").text
    assert output.output_id in page and f"/staff/outputs/{output.output_id}/request" in page
    assert output.output_id not in bob.get("/staff/releases").text
    path = f"/staff/outputs/{output.output_id}/request"
    assert bob.post(path, data={"csrf_token": CSRF}).status_code == 404
    assert as_staff(world, "cat").post(path, data={"csrf_token": CSRF}).status_code == 403
    assert ana.post(path).status_code == 403
    done = ana.post(path, data={"csrf_token": CSRF}, follow_redirects=False)
    assert done.status_code == 303
    [release] = [r for r in list_releases(settings) if r.output_id == output.output_id]
    assert release.status == "pending" and release.requested_by == "ana"
    assert done.headers["location"] == f"/staff/releases/{release.release_id}"
    again = ana.post(path, data={"csrf_token": CSRF})
    assert "Not requested" in again.text and "already has release request" in again.text
