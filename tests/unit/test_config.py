from pathlib import Path

import pytest
from pydantic import ValidationError

from candour.config import Settings


def test_defaults_use_sqlite_inside_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.home == (tmp_path / "candour-data").resolve()
    assert settings.store_url == f"sqlite:///{tmp_path.resolve() / 'candour-data' / 'candour.db'}"
    assert settings.engine == "duckdb"


def test_environment_variables_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CANDOUR_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("CANDOUR_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("CANDOUR_ENGINE", "spark")
    monkeypatch.setenv("CANDOUR_LOG_ORIGIN", "log.example.org/x")
    settings = Settings()
    assert settings.home == tmp_path / "elsewhere"
    assert settings.store_url == "postgresql+psycopg://u@h/db"
    assert settings.engine == "spark"
    assert settings.log_origin == "log.example.org/x"


def test_blank_database_url_means_the_embedded_store(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CANDOUR_DATABASE_URL", "")
    assert Settings().database_url is None
    assert Settings().store_url.startswith("sqlite:///")


def test_unknown_engine_is_rejected(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CANDOUR_ENGINE", "oracle")
    with pytest.raises(ValidationError):
        Settings()


def test_home_option_overrides_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CANDOUR_HOME", str(tmp_path / "env-home"))
    settings = Settings().with_home(tmp_path / "cli-home")
    assert settings.home == tmp_path / "cli-home"
    assert Settings().with_home(None).home == tmp_path / "env-home"


def test_settings_are_immutable(tmp_path: Path):
    settings = Settings(home=tmp_path)
    with pytest.raises(ValidationError):
        settings.engine = "spark"  # type: ignore[misc]
