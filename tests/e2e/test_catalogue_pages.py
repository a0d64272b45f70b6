"""The catalogue's pages in a real browser: zero axe-core WCAG 2.2 A/AA violations on the
browse, search and dataset pages, and downloads that work from the page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from candour.web import create_app
from e2e.support import (
    check_page,
    free_port,
    live_server,
    require_browser,
)
from integration.test_catalogue_publish import build_catalogue

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_browser()
    port = free_port()
    settings = build_catalogue(
        tmp_path_factory.mktemp("catalogue-e2e"), web_base_url=f"http://127.0.0.1:{port}"
    )
    with live_server(create_app(settings), port) as base:
        yield base


def test_catalogue_pages_pass_axe(site: str, page: Page) -> None:
    for path, name in [
        ("/data", "data"),
        ("/data?q=falls", "data-search"),
        ("/data?q=nothing+matches+this", "data-no-results"),
        ("/data?organisation=wealdshire-county-council-highways", "data-publisher"),
        ("/data/falls-evaluation-falls-by-area", "dataset-release"),
        ("/data/road-surface-temperatures-on-gritting-routes", "dataset-non-personal"),
    ]:
        page.goto(site + path)
        assert page.locator("h1").count() == 1, path
        check_page(page, f"catalogue-{name}")


def test_searching_and_downloading_from_the_pages(site: str, browser: Browser) -> None:
    context = browser.new_context(accept_downloads=True)  # CSP enforced
    page = context.new_page()
    page.goto(site + "/data")
    page.get_by_label("Words to search for").fill("temperatures")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Road surface temperatures on gritting routes").click()
    assert page.locator("h1").inner_text() == "Road surface temperatures on gritting routes"
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV file of Road surface temperatures").click()
    assert download.value.suggested_filename == "road-surface-temperatures-on-gritting-routes.csv"
    context.close()
