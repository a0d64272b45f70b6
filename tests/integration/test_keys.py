"""`candour keys rotate`: every key, crash-safety at each step and under kill -9, log entries."""

from __future__ import annotations

import json
import random
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from candour import ledger
from candour.cli.main import app
from candour.config import Settings
from candour.home import Home, read_secret
from candour.initialise import initialise_home
from candour.ledger import checkpoint as cpmod
from candour.ledger import entries, note, verify
from candour.maintenance import keys as keys_module
from candour.maintenance.check import check_home
from candour.maintenance.keys import (
    KeyRotationError,
    key_id,
    key_path,
    pending_rotations,
    rotate_key,
)
from candour.sources.ingest import ingest
from candour.store import dispose
from candour.synth import write_county
from candour.vault import Sealer, VaultCryptoError, VaultError, dispose_vault, open_vault
from candour.vault.core import engine_for_url, identities, lookups
from candour.vault.records import IdentityRecord
from candour.warehouse import open_warehouse

runner = CliRunner()
REASON = "test: compare every identity before and after a key rotation"


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small county's sources.yaml, written once for the module."""
    out = tmp_path_factory.mktemp("county")
    write_county(out, people=60, seed=4, workers=1)
    return out / "sources.yaml"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, county: Path) -> Path:
    """A SQLite home with the county ingested, built once; tests rotate copies of it."""
    settings = _built(Settings(home=tmp_path_factory.mktemp("template") / "home"), county)
    dispose(settings)
    _forget(settings)
    return settings.home


def _copy(template: Path, settings: Settings) -> Settings:
    shutil.copytree(template, settings.home)
    return settings


def _built(settings: Settings, sources: Path) -> Settings:
    initialise_home(settings)
    with open_warehouse(settings) as warehouse:
        ingest(sources, settings, warehouse)
    return settings


def _forget(settings: Settings) -> None:
    dispose_vault(settings)
    ledger.close_log(settings)


def _identities(settings: Settings) -> dict[str, IdentityRecord]:
    vault = open_vault(settings)
    with vault.open_workspace(reason=REASON, actor="test") as workspace:
        found = {r.record_key: r for r in workspace.identities()}
    _forget(settings)
    return found


def _raw(settings: Settings, table: Any) -> list[tuple[Any, ...]]:
    engine = engine_for_url(settings.vault_store_url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(select(table)).all()]
    finally:
        engine.dispose()


def _rotation_entries(settings: Settings, key: str) -> list[tuple[int, dict[str, Any]]]:
    found = ledger.open_log(settings).read_checkpoint()
    out = []
    for index in range(found[0].size if found else 0):
        entry = entries.decode(ledger.entry(index, settings=settings))
        if entry["kind"] == "key-rotation" and entry["key"] == key:
            out.append((index, entry))
    return out


def _assert_ok(settings: Settings) -> None:
    report = check_home(settings)
    _forget(settings)
    assert report.ok, [f for f in report.findings if not f.ok]


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def test_vault_key_rotation_reseals_every_record(store_settings: Settings, county: Path) -> None:
    settings = _built(store_settings, county)
    home = Home(settings.home)
    before = _identities(settings)
    sealed_before = {r[0]: bytes(r[4]) for r in _raw(settings, identities)}
    lookups_before = sorted(_raw(settings, lookups))
    old = read_secret(home.vault_key)

    report = rotate_key(settings, "vault")

    new = read_secret(home.vault_key)
    assert new != old and len(new) == 32 and _private(home.vault_key)
    assert (report.old_key_id, report.new_key_id) == (key_id("vault", old), key_id("vault", new))
    assert report.records == len(before) > 100 and not report.resumed
    # Every record decrypts to the same identity under the new key, and every ciphertext is new.
    assert _identities(settings) == before
    sealed_after = {r[0]: bytes(r[4]) for r in _raw(settings, identities)}
    assert sealed_after.keys() == sealed_before.keys()
    assert all(sealed_after[k] != sealed_before[k] for k in sealed_before)
    assert sorted(_raw(settings, lookups)) == lookups_before  # the HMAC key did not change
    row = next(r for r in _raw(settings, identities))
    with pytest.raises(VaultCryptoError):
        Sealer(old, read_secret(home.hmac_key), ()).open_record(*row)
    # The log says so, under the ids the report gave; nothing of the key is in the entry.
    [(index, entry)] = _rotation_entries(settings, "vault")
    assert index == report.ledger_index
    assert (entry["old_key_id"], entry["new_key_id"]) == (report.old_key_id, report.new_key_id)
    assert old.hex() not in json.dumps(entry) and new.hex() not in json.dumps(entry)
    assert not list(home.keys.glob("vault.key.*")) and pending_rotations(home) == []
    _assert_ok(settings)


def test_hmac_key_rotation_rebuilds_the_lookup_index(
    store_settings: Settings, county: Path
) -> None:
    settings = _built(store_settings, county)
    home = Home(settings.home)
    before = _identities(settings)
    nhs = sorted({r.nhs_number for r in before.values() if r.nhs_number_valid})[:5]
    assert nhs
    vault = open_vault(settings)
    found_before = vault.lookup("nhs_number", nhs, reason=REASON, actor="test")
    _forget(settings)
    rows_before = _raw(settings, lookups)
    digests_before = {bytes(r[1]) for r in rows_before}
    old = read_secret(home.hmac_key)
    person_entry = ledger.person_fields(entries.person_key(old, "P-TESTPERSON0001"))

    report = rotate_key(settings, "hmac")

    new = read_secret(home.hmac_key)
    assert new != old and _private(home.hmac_key)
    vault = open_vault(settings)
    assert vault.lookup("nhs_number", nhs, reason=REASON, actor="test") == found_before
    _forget(settings)
    after = _raw(settings, lookups)
    # The same index entries (kind, record, batch), every digest new.
    assert sorted((r[0], r[2], r[3]) for r in after) == sorted(
        (r[0], r[2], r[3]) for r in rows_before
    )
    assert not {bytes(r[1]) for r in after} & digests_before
    assert _identities(settings) == before
    # The old key is kept, private, so commitments already in the log still open with it.
    retired = home.keys / "retired" / f"hmac-{report.old_key_id}.key"
    assert _private(retired) and read_secret(retired) == old
    assert entries.is_about(
        person_entry, entries.person_key(read_secret(retired), "P-TESTPERSON0001")
    )
    assert not entries.is_about(person_entry, entries.person_key(new, "P-TESTPERSON0001"))
    [(_, entry)] = _rotation_entries(settings, "hmac")
    assert entry["new_key_id"] == key_id("hmac", new)
    _assert_ok(settings)


def _checkpoint(home: Home) -> bytes:
    return (ledger.public_dir(home) / "checkpoint").read_bytes()


def test_log_key_rotation_keeps_the_log_verifiable(sqlite_settings: Settings) -> None:
    settings = sqlite_settings
    initialise_home(settings)
    home = Home(settings.home)
    for i in range(3):
        ledger.record(
            "ingest",
            {"source": "gp", "file_hash": f"{i:064x}", "rows": i, "rejected": 0},
            settings=settings,
        )
    old_vkey = ledger.verifier_key(home)

    report = rotate_key(settings, "log")

    new_vkey = ledger.verifier_key(home)
    assert new_vkey.name == old_vkey.name == settings.log_origin  # the same log, a new key id
    assert (report.old_key_id, report.new_key_id) == (f"{old_vkey.id:08x}", f"{new_vkey.id:08x}")
    assert _private(home.log_signing_key)
    # The entry was signed under the old key first; the checkpoint over it carries both keys,
    # so an auditor who has only the old vkey can still read the announcement.
    [(index, _)] = _rotation_entries(settings, "log")
    cp, opened = cpmod.open_checkpoint(_checkpoint(home), [old_vkey], old_vkey.name)
    assert cp.size == index + 1
    cpmod.open_checkpoint(_checkpoint(home), [new_vkey], new_vkey.name)
    assert {s.id for s in opened.signatures} == {old_vkey.id, new_vkey.id}
    public = verify.source_for(ledger.public_dir(home))
    assert verify.verify(public, new_vkey, full=True).size == index + 1
    # The next append signs with the new key alone: old-key verifiers must take the new vkey.
    ledger.record(
        "ingest",
        {"source": "gp", "file_hash": "f" * 64, "rows": 1, "rejected": 0},
        settings=settings,
    )
    with pytest.raises(cpmod.CheckpointError):
        cpmod.open_checkpoint(_checkpoint(home), [old_vkey], old_vkey.name)
    assert verify.verify(public, new_vkey, full=True).size == index + 2
    _assert_ok(settings)


def test_witness_and_web_session_keys(sqlite_settings: Settings) -> None:
    settings = sqlite_settings
    initialise_home(settings)
    home = Home(settings.home)
    old_witness = note.parse_vkey(home.witness_verifier_key.read_text())
    report = rotate_key(settings, "witness")
    new_witness = note.parse_vkey(home.witness_verifier_key.read_text())
    assert new_witness.name == old_witness.name and new_witness.id != old_witness.id
    assert report.new_key_id == f"{new_witness.id:08x}" and _private(home.witness_key)
    signer = note.parse_skey(read_secret(home.witness_key).decode())
    assert signer.verifier == new_witness
    assert len(_rotation_entries(settings, "witness")) == 1

    session = key_path(home, "web-session")
    session.write_bytes(b"0" * 64)
    session.chmod(0o600)
    report = rotate_key(settings, "web-session")
    assert read_secret(session) != b"0" * 64 and len(read_secret(session)) == 64
    assert report.ledger_index is not None and _private(session)
    assert len(_rotation_entries(settings, "web-session")) == 1
    _assert_ok(settings)


class Crash(BaseException):
    """A simulated power cut: nothing after it runs."""


def _crash(monkeypatch: pytest.MonkeyPatch, name: str, after: int = 0) -> None:
    """Make ``keys_module.<name>`` crash on its call number ``after`` (0 = the first)."""
    real = getattr(keys_module, name)
    calls = {"n": 0}

    def crashing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > after:
            raise Crash(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(keys_module, name, crashing)


def _crash_mid_reseal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Crash inside the re-sealing transaction, after some records were rewritten."""
    monkeypatch.setattr(keys_module, "CHUNK", 50)
    real = keys_module.Sealer.seal_columns
    calls = {"n": 0}

    def crashing(self: Sealer, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 3:
            raise Crash("mid re-seal")
        return real(self, *args)

    monkeypatch.setattr(keys_module.Sealer, "seal_columns", crashing)


STEPS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "before the announcement": lambda m: _crash(m, "_announce"),
    "after the announcement": lambda m: _crash(m, "_reseal_vault"),
    "mid re-seal": _crash_mid_reseal,
    "after the commit, before the swap": lambda m: _crash(m, "_install"),
    "after the swap": lambda m: _crash(m, "_finish"),
}


@pytest.mark.parametrize("key", ["vault", "hmac"])
@pytest.mark.parametrize("step", list(STEPS))
def test_a_rotation_interrupted_at_any_step_is_finished_by_a_rerun(
    sqlite_settings: Settings, template: Path, monkeypatch: pytest.MonkeyPatch, step: str, key: str
) -> None:
    settings = _copy(template, sqlite_settings)
    home = Home(settings.home)
    before = _identities(settings)
    old = read_secret(key_path(home, key))
    STEPS[step](monkeypatch)
    with pytest.raises(Crash):
        rotate_key(settings, key)
    monkeypatch.undo()
    _forget(settings)

    assert pending_rotations(home) == [key]
    report = check_home(settings)
    _forget(settings)
    problems = {f.check: f.detail for f in report.findings if not f.ok}
    assert "rotations finished" in problems and f"--key {key}" in problems["rotations finished"]
    if step == "after the commit, before the swap":
        # The one window where keys/ and the vault disagree: the vault was committed under the
        # new key, which is still only in <key>.key.next. The vault refuses the old key rather
        # than misread anything, and the rerun (or check --repair) completes the swap.
        with pytest.raises(VaultError):
            open_vault(settings)
        _forget(settings)
    else:
        # Every other moment: the home decrypts and checks out in full, under the key in keys/.
        assert set(problems) == {"rotations finished"}, problems
        assert _identities(settings) == before

    resumed = rotate_key(settings, key)
    assert resumed.resumed and pending_rotations(home) == []
    assert read_secret(key_path(home, key)) != old
    assert _identities(settings) == before
    [(_, entry)] = _rotation_entries(settings, key)  # announced exactly once
    assert entry["new_key_id"] == key_id(key, read_secret(key_path(home, key)))
    _assert_ok(settings)


def test_check_repair_finishes_an_interrupted_rotation(
    sqlite_settings: Settings, template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _copy(template, sqlite_settings)
    _crash(monkeypatch, "_install")
    with pytest.raises(Crash):
        rotate_key(settings, "vault")
    monkeypatch.undo()
    _forget(settings)
    report = check_home(settings, repair=True)
    _forget(settings)
    assert report.ok, [f for f in report.findings if not f.ok]
    assert any(line.startswith("vault key rotation") for line in report.repaired)
    assert pending_rotations(Home(settings.home)) == []


@pytest.mark.slow
def test_kill_9_during_vault_rotation(sqlite_settings: Settings, tmp_path: Path) -> None:
    import multiprocessing

    from integration.test_faults import kill_at_random_point, start_cli

    write_county(tmp_path / "county", people=300, seed=4, workers=1)
    settings = _built(sqlite_settings, tmp_path / "county" / "sources.yaml")
    home = Home(settings.home)
    before = _identities(settings)
    forker = multiprocessing.get_context("forkserver")
    forker.set_forkserver_preload(["candour.cli.main", "integration.test_faults"])
    argv = ["keys", "rotate", "--key", "vault", "--home", str(settings.home)]
    log = tmp_path / "rotate.log"
    seconds = 0.0
    for _warm in range(2):  # the first run also starts the fork server: time the second
        started = time.perf_counter()
        process = start_cli(forker, argv, log)
        process.join(120)
        seconds = time.perf_counter() - started
        assert process.exitcode == 0, log.read_text()
    rng = random.Random(9)
    kills = trials = 0
    while kills < 10:
        trials += 1
        assert trials <= 30, "the kills keep missing the rotation"
        trial = kill_at_random_point(start_cli(forker, argv, log), rng.uniform(0, seconds))
        kills += trial.killed
        _forget(settings)
        pending = pending_rotations(home)
        try:
            open_vault(settings)
            opens = True
        except VaultError:
            opens = False
        _forget(settings)
        if opens:
            assert _identities(settings) == before
        else:
            # Only between the vault's commit and the key swap: check names it, repair ends it.
            assert pending == ["vault"]
        report = check_home(settings, repair=True)
        _forget(settings)
        assert report.ok, [f for f in report.findings if not f.ok]
        assert _identities(settings) == before
    # The announcements form one unbroken chain from the first key to the one in keys/.
    chain = [e for _, e in _rotation_entries(settings, "vault")]
    assert len(chain) >= 2
    for first, second in zip(chain, chain[1:], strict=False):
        assert first["new_key_id"] == second["old_key_id"]
    assert chain[-1]["new_key_id"] == key_id("vault", read_secret(home.vault_key))
    assert len({e["new_key_id"] for e in chain}) == len(chain)
    _assert_ok(settings)


def test_cli(sqlite_settings: Settings) -> None:
    initialise_home(sqlite_settings)
    home = str(sqlite_settings.home)
    bad = runner.invoke(app, ["keys", "rotate", "--key", "everything", "--home", home])
    assert bad.exit_code == 2 and "unknown key 'everything'" in bad.output
    assert "Traceback" not in bad.output
    old = read_secret(Home(sqlite_settings.home).hmac_key)
    done = runner.invoke(app, ["keys", "rotate", "--key", "hmac", "--home", home])
    assert done.exit_code == 0, done.output
    new = read_secret(Home(sqlite_settings.home).hmac_key)
    assert key_id("hmac", old) in done.output and key_id("hmac", new) in done.output
    assert old.hex() not in done.output and new.hex() not in done.output
    assert "key-rotation entry" in done.output
    _forget(sqlite_settings)


def test_refuses_a_vault_sealed_with_another_key(sqlite_settings: Settings, template: Path) -> None:
    settings = _copy(template, sqlite_settings)
    path = Home(settings.home).vault_key
    path.write_bytes(b"\x01" * 32)  # someone replaced the key by hand
    with pytest.raises(KeyRotationError, match="matches neither"):
        rotate_key(settings, "vault")
    _forget(settings)


@pytest.mark.parametrize("crash_at", ["_rotate_log_key", "_install", "_finish"])
def test_an_interrupted_log_key_rotation_keeps_the_log_verifiable(
    sqlite_settings: Settings, template: Path, monkeypatch: pytest.MonkeyPatch, crash_at: str
) -> None:
    settings = _copy(template, sqlite_settings)
    home = Home(settings.home)
    old = read_secret(home.log_signing_key)
    _crash(monkeypatch, crash_at)
    with pytest.raises(Crash):
        rotate_key(settings, "log")
    monkeypatch.undo()
    _forget(settings)
    # Whichever key verifies now (vkey swapped or not), the log checks out as an auditor's
    # would, and only the unfinished rotation is reported.
    report = check_home(settings)
    _forget(settings)
    assert {f.check for f in report.findings if not f.ok} == {"rotations finished"}
    public = verify.source_for(ledger.public_dir(home))
    size = verify.verify(public, ledger.verifier_key(home), full=True).size
    resumed = rotate_key(settings, "log")
    assert resumed.resumed and read_secret(home.log_signing_key) != old
    [(index, _)] = _rotation_entries(settings, "log")
    assert index == size - 1
    ledger.record(
        "ingest",
        {"source": "gp", "file_hash": "e" * 64, "rows": 1, "rejected": 0},
        settings=settings,
    )
    assert verify.verify(public, ledger.verifier_key(home), full=True).size == size + 1
    _assert_ok(settings)


def test_commitments_made_before_an_hmac_rotation_stay_recognisable(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    initialise_home(settings)
    before = ledger.person_key_for("P-recognised", settings=settings)
    rotate_key(settings, "hmac")
    keys = ledger.person_keys_for("P-recognised", settings=settings)
    assert keys[0] == ledger.person_key_for("P-recognised", settings=settings) != before
    assert keys[1:] == [before]
