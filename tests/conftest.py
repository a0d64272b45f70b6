"""Shared fixtures: isolated settings, a fresh data home, and real SQLite and PostgreSQL stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.common import scratch_postgres

from candour.config import Settings
from candour.store import dispose

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PG_ADMIN_URL = os.environ.get("CANDOUR_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own CANDOUR_* settings."""
    for name in list(os.environ):
        if name.startswith("CANDOUR_"):
            monkeypatch.delenv(name)


@pytest.fixture
def home_dir(tmp_path: Path) -> Path:
    """A path for a data home that does not exist yet."""
    return tmp_path / "home"


@pytest.fixture
def sqlite_settings(home_dir: Path) -> Iterator[Settings]:
    """Settings for a home whose store is SQLite inside it (the embedded default)."""
    settings = Settings(home=home_dir)
    yield settings
    dispose(settings)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A brand-new PostgreSQL database for one test, dropped afterwards."""
    with scratch_postgres(PG_ADMIN_URL, "candour_test_") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request: pytest.FixtureRequest, home_dir: Path) -> Settings:
    """Settings for each store backend in turn: every store test runs on both."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_settings")  # type: ignore[no-any-return]
    url = request.getfixturevalue("postgres_url")
    return Settings(home=home_dir, database_url=url)
