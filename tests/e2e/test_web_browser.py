"""In a real browser (Playwright driving Debian's chromium): pages, CSP, axe-core, keyboard.

axe-core (from node_modules, installed by scripts/setup-web.sh) must report zero WCAG 2.2 A/AA
violations on every page. The CSP is checked in a normal context (no violations, GOV.UK Frontend
starts); axe runs in a context that bypasses CSP only so it can be injected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from candour import register
from candour.web import create_app
from e2e.support import (
    DictMatcher,
    Provider,
    check_page,
    free_port,
    live_server,
    make_home,
    oidc_provider,
    require_browser,
    resident_oidc,
    sign_in_with_mouse,
)

pytestmark = pytest.mark.e2e

PERSON = "P-ABCDEFGHJKMN"
ALICE = {"given_name": "Alice", "family_name": "Smith", "birthdate": "1980-02-29",
         "address": {"postal_code": "AB1 2CD"}}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Provider]]:
    require_browser()
    with oidc_provider() as provider:
        provider.set_user("alice", ALICE)
        provider.set_user("nobody", {**ALICE, "given_name": "Nobody"})
        provider.set_user("iris", {"name": "Iris Green", "roles": ["ig", "checker"]})
        port = free_port()
        settings = make_home(
            tmp_path_factory.mktemp("e2e"),
            entries=300,
            web_base_url=f"http://127.0.0.1:{port}",
            **resident_oidc(provider.issuer),
            staff_oidc_issuer=provider.issuer,
            staff_oidc_client_id="staff-client",
            staff_oidc_client_secret="staff-secret",
            web_signin_rate_limit=1000,
        )
        # Staff roles come from the register; iris is an output checker there.
        register.add_user("iris", "checker", settings=settings)
        matcher = DictMatcher({("Alice", "Smith", "1980-02-29", "AB1 2CD"): PERSON})
        with live_server(create_app(settings, matcher=matcher), port) as base:
            yield base, provider


def test_public_pages_pass_axe(site: tuple[str, Provider], page: Page) -> None:
    base, _ = site
    for path, name in [
        ("/", "home"),
        ("/transparency", "transparency"),
        ("/transparency?start=0", "transparency-oldest"),
        ("/transparency/entries/299", "entry"),
        ("/sign-in", "sign-in"),
        ("/staff/sign-in", "staff-sign-in"),
        ("/sign-in/not-confirmed", "not-confirmed"),
        ("/signed-out", "signed-out"),
        ("/no-such-page", "not-found"),
    ]:
        page.goto(base + path)
        assert page.locator("h1").count() == 1, path
        check_page(page, name)


def test_csp_allows_govuk_frontend_and_nothing_inline(
    site: tuple[str, Provider], browser: Browser
) -> None:
    base, _ = site
    context = browser.new_context()  # CSP enforced
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(base + "/transparency")
    page.wait_for_load_state("networkidle")
    body_class = page.locator("body").get_attribute("class") or ""
    assert "govuk-frontend-supported" in body_class and "js-enabled" in body_class
    # GOV.UK Frontend's JavaScript ran: the service navigation's menu button is initialised.
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.locator(".govuk-service-navigation__toggle").is_visible()
    assert problems == []
    # An inline script is refused by the policy.
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__inline = 1'; document.body.appendChild(s); }""")
    assert page.evaluate("window.__inline") is None
    context.close()


def test_core_journey_works_without_javascript(
    site: tuple[str, Provider], browser: Browser
) -> None:
    base, _ = site
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(base + "/transparency")
    page.get_by_role("link", name="Older").click()
    assert "start=" in page.url
    page.get_by_role("link", name="Entry 270", exact=True).click()
    assert page.locator("h1").inner_text() == "Log entry 270"
    sign_in_with_mouse(page, base, "/sign-in", "alice")
    assert page.url == base + "/me"
    page.get_by_role("button", name="Sign out").click()
    assert page.locator("h1").inner_text() == "You have signed out"
    context.close()


def test_resident_and_staff_pages_pass_axe(site: tuple[str, Provider], page: Page) -> None:
    base, _ = site
    sign_in_with_mouse(page, base, "/sign-in", "alice")
    assert page.url == base + "/me"
    check_page(page, "me")
    page.get_by_role("button", name="Sign out").click()
    sign_in_with_mouse(page, base, "/staff/sign-in", "iris")
    assert page.url == base + "/staff"
    assert "Output checker" in page.locator("main").inner_text()
    check_page(page, "staff")


def _tab_to(page: Page, pattern: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        text = page.evaluate(
            "() => (document.activeElement.innerText || document.activeElement.value || "
            "document.activeElement.getAttribute('placeholder') || '').trim()"
        )
        if re.search(pattern, text):
            return
    raise AssertionError(f"could not reach {pattern!r} with the keyboard")


def test_keyboard_only_sign_in_and_sign_out(site: tuple[str, Provider], page: Page) -> None:
    base, provider = site
    page.goto(base + "/")
    _tab_to(page, r"^Skip to main content$")
    _tab_to(page, r"^Sign in$")
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/sign-in")
    _tab_to(page, r"Continue to sign in")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(provider.issuer) + "/oauth2/authorize"))
    # On the provider's page: type the subject, then submit with Enter.
    _tab_to(page, r"^sub$")
    page.keyboard.type("alice")
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/me")
    assert page.locator("h1").inner_text() == "Your data"
    # Focus is visible on the sign-out button, and it works from the keyboard.
    _tab_to(page, r"^Sign out$")
    outline = page.evaluate("getComputedStyle(document.activeElement).backgroundColor")
    assert outline == "rgb(255, 221, 0)"
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/signed-out")
    page.goto(base + "/me")
    assert page.url == base + "/sign-in"


def test_unmatched_resident_sees_the_safe_page(site: tuple[str, Provider], page: Page) -> None:
    base, _ = site
    sign_in_with_mouse(page, base, "/sign-in", "nobody")
    assert page.url == base + "/sign-in/not-confirmed"
    assert page.locator("h1").inner_text() == "We could not confirm who you are"
    check_page(page, "not-confirmed-after-sign-in")
