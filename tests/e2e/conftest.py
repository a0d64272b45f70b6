"""Browser fixtures shared by every end-to-end test: one chromium per module, a fresh page with
axe-core injected per test (see support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from e2e.support import axe_page, launch_browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_browser() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with axe_page(browser) as opened:
        yield opened
