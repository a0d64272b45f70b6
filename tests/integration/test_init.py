import stat

import pytest
from sqlalchemy import func, select

from candour.config import Settings
from candour.home import Home
from candour.initialise import initialise_home
from candour.store import HomeInfo, current_revision, head_revision, transaction

PRIVATE_KEYS = ("vault_key", "hmac_key", "log_signing_key", "witness_key")


def test_init_creates_layout_keys_and_schema(store_settings: Settings):
    report = initialise_home(store_settings)
    home = Home(store_settings.home)
    for directory in home.directories():
        assert directory.is_dir()
    for name in PRIVATE_KEYS:
        path = getattr(home, name)
        assert path.exists(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert path in report.keys_created
    assert len(home.vault_key.read_bytes()) == 32
    assert len(home.hmac_key.read_bytes()) == 32
    assert home.vault_key.read_bytes() != home.hmac_key.read_bytes()
    assert current_revision(store_settings) == head_revision()
    if store_settings.database_url is None:
        assert home.store_db.exists()


def test_log_signing_key_is_in_signed_note_format(sqlite_settings: Settings):
    initialise_home(sqlite_settings)
    home = Home(sqlite_settings.home)
    skey = home.log_signing_key.read_text().strip()
    parts = skey.split("+")
    assert parts[:3] == ["PRIVATE", "KEY", sqlite_settings.log_origin]
    assert len(parts[3]) == 8 and int(parts[3], 16) >= 0
    vkey = home.log_verifier_key.read_text().strip()
    assert vkey.split("+")[:2] == [sqlite_settings.log_origin, parts[3]]


def test_init_is_idempotent_and_never_overwrites_keys(store_settings: Settings):
    first = initialise_home(store_settings)
    home = Home(store_settings.home)
    before = {name: getattr(home, name).read_bytes() for name in PRIVATE_KEYS}
    second = initialise_home(store_settings)
    assert second.keys_created == []
    assert second.home_id == first.home_id
    assert {name: getattr(home, name).read_bytes() for name in PRIVATE_KEYS} == before
    with transaction(store_settings) as session:
        assert session.scalar(select(func.count()).select_from(HomeInfo)) == 1


def test_init_keeps_a_key_that_already_exists(sqlite_settings: Settings):
    home = Home(sqlite_settings.home)
    home.create_directories()
    home.vault_key.write_bytes(b"k" * 32)
    home.vault_key.chmod(0o600)
    report = initialise_home(sqlite_settings)
    assert home.vault_key not in report.keys_created
    assert home.vault_key.read_bytes() == b"k" * 32


def test_unreachable_store_is_a_clear_error(home_dir):
    from candour.store import StoreError

    settings = Settings(home=home_dir, database_url="postgresql+psycopg://postgres@127.0.0.1:1/x")
    with pytest.raises(StoreError, match="cannot reach the store"):
        initialise_home(settings)
