"""The public register: list and filters, detail tiers, queries from the log, releases, API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from candour import ledger
from candour.config import Settings
from candour.disclosure import approve_release
from candour.web import create_app
from e2e.support import add_staff, make_release, make_use, town


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    settings = town(tmp_path_factory.mktemp("register"))
    add_staff(settings)
    active = make_use(settings, "active", title="Falls prevention evaluation")
    research = make_use(settings, "active", title="Causes of hospital admissions",
                        purpose="research", organisation="Wealdshire Hospitals NHS Trust")
    submitted = make_use(settings, "submitted", title="Fire safety visit planning",
                         purpose="service-planning")
    rejected = make_use(settings, "rejected", title="A use that was turned down")
    draft = make_use(settings, "draft", title="A private draft application")
    # Two queries under the first use, as the gate logs them, and one under another.
    for use_id in (active, active, research):
        ledger.record("query", {"use_id": use_id, "sql_hash": "a" * 64, "choices_hash": "b" * 64,
                                "cohort_hash": "c" * 64, "output_hash": "d" * 64},
                      settings=settings)
    release_id = make_release(settings, active)
    approve_release(settings, release_id, checker="cat")
    return {"settings": settings, "active": active, "research": research,
            "submitted": submitted, "rejected": rejected, "draft": draft,
            "release": release_id}


@pytest.fixture(scope="module")
def client(home: dict[str, object]) -> TestClient:
    settings = home["settings"]
    assert isinstance(settings, Settings)
    return TestClient(create_app(settings))


def test_the_list_shows_every_use_but_drafts(client: TestClient, home: dict) -> None:
    page = client.get("/register")
    assert page.status_code == 200
    for key in ("active", "research", "submitted", "rejected"):
        assert home[key] in page.text
    assert home["draft"] not in page.text
    assert "A private draft application" not in page.text
    assert "4 of 4 data uses" in page.text
    assert page.headers["cache-control"] == "no-cache"


def test_filters_by_purpose_organisation_and_status(client: TestClient, home: dict) -> None:
    research = client.get("/register", params={"purpose": "research"}).text
    assert home["research"] in research and home["active"] not in research
    assert "1 of 4 data uses" in research
    org = client.get("/register", params={"organisation": "Wealdshire Hospitals NHS Trust"}).text
    assert home["research"] in org and home["submitted"] not in org
    waiting = client.get("/register", params={"status": "submitted"}).text
    assert home["submitted"] in waiting and home["rejected"] not in waiting
    nothing = client.get("/register", params={"purpose": "no-such-purpose"}).text
    assert "No data uses match these filters" in nothing
    assert client.get("/register", params={"status": "draft"}).status_code == 400
    api = client.get("/api/v1/register/uses", params={"status": "active"}).json()
    assert {u["use_id"] for u in api["uses"]} == {home["active"], home["research"]}
    assert api["total"] == 4


def test_the_detail_page_has_both_tiers_queries_and_releases(
    client: TestClient, home: dict
) -> None:
    page = client.get(f"/register/{home['active']}")
    assert page.status_code == 200
    text = page.text
    assert "In plain English" in text and "Technical detail" in text
    assert "6(1)(e) public task" in text and "de-identified data" in text
    assert "counts below 10 suppressed" in text
    assert "2 queries in the public log" in text
    assert text.count('href="/transparency/entries/') >= 4  # lifecycle + queries + release
    assert home["release"] in text
    main = text.split("<main")[1]
    for name in ("ana", "ian", "cat"):  # staff names are not published
        assert not re.search(rf"\b{name}\b", main), name
    detail = client.get(f"/api/v1/register/uses/{home['active']}").json()
    assert detail["query_count"] == 2
    assert [r["release_id"] for r in detail["releases"]] == [home["release"]]
    assert [t["to_status"] for t in detail["lifecycle"]] == ["draft", "submitted", "approved"]
    assert detail["record"]["national_data_opt_out_applied"] is True
    research = client.get(f"/api/v1/register/uses/{home['research']}").json()
    assert research["query_count"] == 1 and research["releases"] == []


def test_drafts_and_unknown_uses_are_not_found(client: TestClient, home: dict) -> None:
    assert client.get(f"/register/{home['draft']}").status_code == 404
    assert client.get("/register/DU-1999-001").status_code == 404
    assert client.get(f"/api/v1/register/uses/{home['draft']}").status_code == 404


def test_new_queries_appear_on_the_next_view(client: TestClient, home: dict) -> None:
    settings = home["settings"]
    before = client.get(f"/api/v1/register/uses/{home['research']}").json()["query_count"]
    ledger.record("query", {"use_id": home["research"], "sql_hash": "e" * 64,
                            "choices_hash": "b" * 64, "cohort_hash": "c" * 64,
                            "output_hash": "d" * 64}, settings=settings)
    after = client.get(f"/api/v1/register/uses/{home['research']}").json()["query_count"]
    assert after == before + 1


def test_anonymous_list_pages_are_served_from_the_cache(
    client: TestClient, home: dict, tmp_path: Path
) -> None:
    first = client.get("/register", params={"purpose": "research"})
    cache = client.app.state.register_cache  # type: ignore[attr-defined]
    assert cache.page("purpose=research") == first.content
    second = client.get("/register", params={"purpose": "research"})
    assert second.content == first.content
    assert second.headers["content-security-policy"].startswith("default-src 'self'")
