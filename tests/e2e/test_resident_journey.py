"""A resident's whole journey in a real browser, against the real OIDC provider and the gate.

A resident signs in, sees what services hold about them, finds an earlier research query in
"every use of my data" and downloads its proof (checked with the ledger's own functions), says
no to research; the analyst's next research query then leaves them out (checked in the gate's
private cohort bitmap) and their list of uses does not grow. Every page passes axe-core (WCAG
2.2 A and AA) and is screenshotted to ``test-artifacts/screenshots/journey-*.png``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from candour import gate, ledger
from candour.choices import current
from candour.config import Settings
from candour.gate.cohort import CohortStore
from candour.home import Home
from candour.ledger import checkpoint as cpmod
from candour.ledger import tree
from candour.web import create_app
from candour.workflows.identity_match import VaultMatcher
from e2e.support import (
    add_staff,
    check_page,
    count_query,
    free_port,
    live_server,
    make_use,
    matched_residents,
    oidc_provider,
    require_browser,
    resident_oidc,
    sign_in_with_mouse,
    town,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    with oidc_provider() as provider:
        port = free_port()
        settings = town(
            tmp_path_factory.mktemp("journey"),
            web_base_url=f"http://127.0.0.1:{port}",
            **resident_oidc(provider.issuer),
            web_signin_rate_limit=1000,
        )
        add_staff(settings)
        (resident,) = matched_residents(settings, 1)
        provider.set_user("resident", resident.claims)
        # An earlier research query, over a table that holds the resident's records.
        table = sorted({k.split(":", 1)[0] for k in resident.record_keys})[0]
        use_id = make_use(
            settings,
            "active",
            title="Falls and frailty research",
            purpose="research",
            organisation="Wealdshire University",
            grants={table: '"*"'},
        )
        earlier = count_query(settings, use_id, table)
        app = create_app(settings, matcher=VaultMatcher(settings))
        with live_server(app, port) as base:
            yield {
                "base": base,
                "settings": settings,
                "resident": resident,
                "use_id": use_id,
                "table": table,
                "earlier": earlier,
            }


def in_cohort(settings: Settings, query_id: str, person_id: str) -> bool:
    """From the gate's private cohort bitmap: did the query include this person?"""
    num = gate.person_num_of(person_id, settings=settings)
    return num in CohortStore(Home(settings.home)).read(query_id)


def research_uses(page: Page, base: str) -> list[str]:
    """The research queries the resident's own API lists (all pages), by the browser's session."""
    found: list[str] = []
    number, pages = 1, 1
    while number <= pages:
        data = page.request.get(f"{base}/api/v1/me/uses?page={number}").json()
        found += [q["query_id"] for q in data["queries"] if q["purpose"] == "research"]
        number, pages = number + 1, data["pages"]
    return found


def verify_download(settings: Settings, path: Path, index: int) -> dict[str, Any]:
    """Check a downloaded proof with the ledger's own functions, as anyone could."""
    proof: dict[str, Any] = json.loads(path.read_text())
    verifier = ledger.verifier_key(Home(settings.home))
    cp, _ = cpmod.open_checkpoint(proof["checkpoint"].encode(), [verifier], settings.log_origin)
    inclusion = proof["inclusion_proof"]
    entry = base64.b64decode(proof["entry_base64"])
    assert proof["ledger_index"] == inclusion["index"] == index
    assert (cp.size, cp.root) == (inclusion["tree_size"], base64.b64decode(inclusion["root"]))
    tree.verify_inclusion(
        index,
        cp.size,
        tree.leaf_hash(entry),
        [base64.b64decode(h) for h in inclusion["hashes"]],
        cp.root,
    )
    return proof


def test_a_residents_journey_from_sign_in_to_opting_out(site: dict[str, Any], page: Page) -> None:
    base, settings = site["base"], site["settings"]
    resident, earlier = site["resident"], site["earlier"]
    assert in_cohort(settings, earlier.query_id, resident.person_id)

    # Sign in through the provider; the vault matcher confirms who they are.
    sign_in_with_mouse(page, base, "/sign-in", "resident")
    page.wait_for_url(base + "/me")
    check_page(page, "journey-me")

    # What is held about them.
    page.get_by_role("link", name="What services hold about you").click()
    page.wait_for_url(base + "/me/records")
    records = page.locator("main").inner_text()
    for key in resident.record_keys:
        assert key.split(":", 1)[1] in records
    check_page(page, "journey-records")

    # Every use of their data: the earlier research query, with its proof.
    page.goto(base + "/me")
    page.get_by_role("link", name="Every use of your data").click()
    page.wait_for_url(base + "/me/uses")
    main = page.locator("main")
    expect(main).to_contain_text("Falls and frailty research")
    expect(main).to_contain_text(earlier.query_id)
    expect(main).to_contain_text("Wealdshire University")
    check_page(page, "journey-uses")
    before = research_uses(page, base)
    assert earlier.query_id in before
    with page.expect_download() as download:
        page.get_by_role("link", name=f"Download proof for query {earlier.query_id}").click()
    assert download.value.suggested_filename == (
        f"candour-entry-{earlier.receipt.ledger_index}-proof.json"
    )
    proof = verify_download(settings, Path(download.value.path()), earlier.receipt.ledger_index)
    assert proof["query_id"] == earlier.query_id
    page.get_by_role("link", name="Falls and frailty research").first.click()
    page.wait_for_url(f"{base}/register/{site['use_id']}")

    # They say no to research.
    page.goto(base + "/me/choices")
    page.get_by_role("link", name="Change your choice about research").click()
    page.wait_for_url(base + "/me/choices/research")
    page.get_by_label("No, do not use my data for research").check()
    check_page(page, "journey-choice-research")
    page.get_by_role("button", name="Save my choice").click()
    page.wait_for_url(base + "/me/choices/research/saved")
    expect(page.locator("main")).to_contain_text("This takes effect immediately")
    check_page(page, "journey-choice-saved")
    assert "research" in current(resident.person_id, settings=settings).everywhere

    # The analyst's next research query leaves them out: their number is not in its cohort.
    later = count_query(settings, site["use_id"], site["table"])
    assert not in_cohort(settings, later.query_id, resident.person_id)

    # And their list of uses shows no new research use; the opt-out is listed as theirs.
    page.goto(base + "/me/uses")
    main = page.locator("main")
    expect(main).to_contain_text("You said no to research")
    assert later.query_id not in main.inner_text()
    assert research_uses(page, base) == before
    check_page(page, "journey-uses-after-opt-out")
