"""The register, resident portal and staff console in a real browser, on a synthetic town.

Residents sign in through the real OIDC provider and are matched by the vault matcher. Every new
page passes axe-core (WCAG 2.2 A and AA) with zero violations and is screenshotted; choices
are changed with the keyboard alone; staff approve a use and check a release; the download
works without JavaScript.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from candour import register
from candour.choices import current
from candour.disclosure import get_release
from candour.linkage.review import list_pairs
from candour.web import create_app
from candour.workflows.identity_match import VaultMatcher
from e2e.support import (
    add_staff,
    check_page,
    free_port,
    live_server,
    make_release,
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
            tmp_path_factory.mktemp("portal"),
            web_base_url=f"http://127.0.0.1:{port}",
            **resident_oidc(provider.issuer),
            staff_oidc_issuer=provider.issuer,
            staff_oidc_client_id="staff-client",
            staff_oidc_client_secret="staff-secret",
            web_signin_rate_limit=1000,
        )
        add_staff(settings)
        alice, bob = matched_residents(settings, 2)
        provider.set_user("alice", alice.claims)
        provider.set_user("bob", bob.claims)
        for user in ("ana", "ian", "cat", "adam"):
            provider.set_user(user, {"name": user.title()})
        active = make_use(settings, "active", title="Falls prevention evaluation")
        submitted = make_use(settings, "submitted", title="Fire safety visit planning",
                             purpose="service-planning")
        release_id = make_release(settings, active)
        app = create_app(settings, matcher=VaultMatcher(settings))
        with live_server(app, port) as base:
            yield {"base": base, "provider": provider, "settings": settings, "alice": alice,
                   "bob": bob, "active": active, "submitted": submitted,
                   "release": release_id}


def visit(page: Page, url: str, name: str) -> None:
    page.goto(url)
    assert page.locator("h1").count() == 1, url
    check_page(page, name)


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("h1")).to_have_text("You have signed out")


def test_register_pages_pass_axe(site: dict[str, Any], page: Page) -> None:
    base = site["base"]
    visit(page, base + "/register", "register")
    visit(page, base + "/register?purpose=service-planning&status=submitted", "register-filtered")
    assert site["submitted"] in page.content() and site["active"] not in page.content()
    visit(page, f"{base}/register/{site['active']}", "register-use")
    assert page.get_by_role("heading", name="Technical detail").is_visible()


def test_resident_pages_pass_axe(site: dict[str, Any], page: Page) -> None:
    base = site["base"]
    sign_in_with_mouse(page, base, "/sign-in", "alice")
    assert page.url == base + "/me"
    check_page(page, "me-home")
    for path, name in [("/me/records", "me-records"), ("/me/choices", "me-choices"),
                       ("/me/choices/research", "me-choice-research"),
                       ("/me/choices/fraud-prevention", "me-choice-fraud-prevention"),
                       ("/me/services", "me-services"), ("/me/download", "me-download")]:
        visit(page, base + path, name)
    page.goto(base + "/me/services")
    page.locator("input[type=radio][value=paper]").first.check()
    page.get_by_role("button", name="Save preferences").click()
    expect(page.locator("main")).to_contain_text("1 preference saved")
    check_page(page, "me-services-saved")
    page.goto(base + "/me/download")
    page.get_by_role("button", name="Download").click()  # nothing chosen: the error page
    page.locator(".govuk-error-summary").wait_for(state="visible", timeout=10_000)
    check_page(page, "me-download-error")
    sign_out(page)


def _tab_until(page: Page, selector: str, limit: int = 60) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"could not reach {selector!r} with the keyboard")


def test_keyboard_only_journey_through_choices(
    site: dict[str, Any], page: Page
) -> None:
    base, provider = site["base"], site["provider"]
    bob = site["bob"]
    page.goto(base + "/sign-in")
    _tab_until(page, "a.govuk-button--start")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(provider.issuer) + "/oauth2/authorize"))
    _tab_until(page, "input[placeholder=sub]")
    page.keyboard.type("bob")
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/me")
    _tab_until(page, "a[href='/me/choices']")
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/me/choices")
    _tab_until(page, "a[href='/me/choices/research']")
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/me/choices/research")
    # Tab lands on the selected radio ("Yes"); the arrow key moves to "No".
    _tab_until(page, "input[type=radio]")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.value") == "opt-out"
    _tab_until(page, "button.govuk-button")
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/me/choices/research/saved")
    assert page.locator("h1").inner_text() == "Your choice has been saved"
    assert "This takes effect immediately" in page.locator("main").inner_text()
    check_page(page, "me-choice-saved")
    assert "research" in current(bob.person_id, settings=site["settings"]).everywhere
    _tab_until(page, "a[href='/me/choices']")
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/me/choices")
    assert "You have said no" in page.locator("main").inner_text()


def test_download_works_without_javascript(
    site: dict[str, Any], browser: Browser
) -> None:
    context = browser.new_context(java_script_enabled=False, accept_downloads=True)
    tab = context.new_page()
    sign_in_with_mouse(tab, site["base"], "/sign-in", "alice")
    tab.goto(site["base"] + "/me/download")
    tab.get_by_label("Spreadsheet (CSV)").check()
    with tab.expect_download() as info:
        tab.get_by_role("button", name="Download").click()
    download = info.value
    assert download.suggested_filename == "candour-my-data.csv"
    text = download.path().read_text(encoding="utf-8")
    assert text.startswith("source,service,controller,record_id")
    for key in site["alice"].record_keys:
        assert key.split(":", 1)[1] in text
    context.close()


def test_staff_approve_a_use_and_check_a_release(
    site: dict[str, Any], page: Page
) -> None:
    base, settings = site["base"], site["settings"]
    sign_in_with_mouse(page, base, "/staff/sign-in", "ian")
    assert page.url == base + "/staff"
    check_page(page, "staff-home-ig")
    visit(page, base + "/staff/uses", "staff-uses")
    visit(page, f"{base}/staff/uses/{site['submitted']}", "staff-use-submitted")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("main")).to_contain_text(f"{site['submitted']} approved")
    assert register.get_use(site["submitted"], settings=settings).status == "active"
    pair = list_pairs(settings, limit=1)[0]
    visit(page, base + "/staff/linkage", "staff-linkage")
    visit(page, f"{base}/staff/linkage/{pair.pair_id}", "staff-linkage-pair")
    visit(page, base + "/staff/audit?kind=use-approved", "staff-audit")
    sign_out(page)

    sign_in_with_mouse(page, base, "/staff/sign-in", "cat")
    visit(page, base + "/staff/releases", "staff-releases")
    visit(page, f"{base}/staff/releases/{site['release']}", "staff-release")
    assert "Suppressed: primary" in page.locator("main").inner_text()
    page.locator("input[name=decision][value=approve]").check()
    page.get_by_role("button", name="Save check").click()
    expect(page.locator("main")).to_contain_text("released and written to the public log")
    check_page(page, "staff-release-done")
    assert get_release(settings, site["release"]).status == "released"
    sign_out(page)

    sign_in_with_mouse(page, base, "/staff/sign-in", "ana")
    visit(page, base + "/staff/releases", "staff-releases-analyst")
    assert "Your outputs" in page.locator("main").inner_text()
    visit(page, base + "/staff/uses/new", "staff-use-new")
    page.get_by_role("button", name="Save as draft").click()  # empty: an error summary
    page.locator(".govuk-error-summary").wait_for(state="visible", timeout=10_000)
    check_page(page, "staff-use-new-error")
    sign_out(page)

    sign_in_with_mouse(page, base, "/staff/sign-in", "adam")
    visit(page, base + "/staff/services", "staff-services")
    page.get_by_role("button", name="Issue a token").click()
    expect(page.locator("main")).to_contain_text("It will not be shown again")
    check_page(page, "staff-services-issued")
