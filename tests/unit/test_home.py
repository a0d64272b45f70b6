import os
import stat
from pathlib import Path

import pytest

from candour.home import Home, HomeError, read_secret, write_secret_once


def test_layout_follows_the_design(tmp_path: Path):
    home = Home(tmp_path)
    assert home.store_db == tmp_path / "candour.db"
    assert home.vault_db == tmp_path / "vault.db"
    assert home.warehouse == tmp_path / "warehouse.duckdb"
    assert {p.name for p in home.directories()} >= {
        tmp_path.name,
        "ledger",
        "keys",
        "releases",
        "reports",
    }


def test_create_directories_is_idempotent(tmp_path: Path):
    home = Home(tmp_path / "h")
    home.create_directories()
    (home.ledger / "kept").write_text("x")
    home.create_directories()
    assert (home.ledger / "kept").read_text() == "x"
    assert stat.S_IMODE(home.keys.stat().st_mode) == 0o700


def test_a_file_in_the_way_is_a_clear_error(tmp_path: Path):
    (tmp_path / "h").write_text("not a directory")
    with pytest.raises(HomeError, match="not a directory"):
        Home(tmp_path / "h").create_directories()


def test_secret_written_once_with_mode_0600(tmp_path: Path):
    path = tmp_path / "k.key"
    assert write_secret_once(path, lambda: b"first") is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert write_secret_once(path, lambda: b"second") is False
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["k.key"]  # no temporary left behind


def test_secret_mode_is_exact_even_with_a_permissive_umask(tmp_path: Path):
    old = os.umask(0)
    try:
        write_secret_once(tmp_path / "k", lambda: b"s")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_reading_a_world_readable_key_is_refused(tmp_path: Path):
    path = tmp_path / "k"
    write_secret_once(path, lambda: b"s")
    assert read_secret(path) == b"s"
    path.chmod(0o644)
    with pytest.raises(HomeError, match="chmod 600"):
        read_secret(path)


def test_reading_a_missing_key_says_to_run_init(tmp_path: Path):
    with pytest.raises(HomeError, match="candour init"):
        read_secret(tmp_path / "missing")


def test_require_initialised(tmp_path: Path):
    home = Home(tmp_path)
    with pytest.raises(HomeError, match="candour init"):
        home.require_initialised()
