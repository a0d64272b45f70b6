"""``candour keys rotate``: replace one of the home's keys, crash-safely, and say so in the log.

Every rotation follows the same steps, each safe to repeat, so a rotation killed at any point
is finished by running it again (or by ``candour check --repair``):

1. **prepare**: the new key is written beside the old one as ``keys/<name>.next`` (mode 0600,
   fsynced), and a small journal ``keys/<name>.rotation`` records the two key ids and the log's
   size before the announcement. The old key stays in force.
2. **announce**: a ``key-rotation`` entry (``key``, ``old_key_id``, ``new_key_id``) is appended to
   the public log, under the *old* log key. On a rerun the log is searched from the journalled
   size, so the entry is never written twice.
3. **apply**, per key: the vault key re-encrypts every sealed record, and the HMAC key rebuilds
   every look-up digest, each in one vault transaction that also replaces the key check the vault
   keeps (until that commits, the vault is whole under the old key); the log key adds the new
   key's signature to the published checkpoint beside the old one.
4. **install**: ``<name>.next`` replaces ``<name>`` (one atomic rename, directory fsynced); a log
   or witness key's public ``.vkey`` is replaced just before. The old HMAC key is kept under
   ``keys/retired/`` (residents' commitments already in the log were made with it); every other
   old key is gone once the rename is durable.
5. The journal is removed.

A key id never reveals the key: for the log and witness keys it is the C2SP signed-note key id
(8 hex digits); for the vault and HMAC keys the first 16 hex digits of the key check the vault
stores (``HMAC-SHA256(key, "candour/vault/key-check/v1")``); for the web-session key a SHA-256
of a label and the key. Every rotation, the web-session key's included, gets a ``key-rotation``
entry.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from sqlalchemy import bindparam, delete, select, update

from candour import ledger
from candour.config import Settings
from candour.errors import CandourError
from candour.home import KEY_MODE, Home, read_secret, write_secret_once
from candour.ledger import checkpoint as cpmod
from candour.ledger import note
from candour.ledger.log import CHECKPOINT
from candour.ledger.storage import PosixStorage, fsync_directory
from candour.progress import ProgressCallback, silent
from candour.vault.audit import audited
from candour.vault.core import engine_for_url, identities, lookups, metadata, vault_meta
from candour.vault.crypto import Sealer, field_plaintext, key_check
from candour.vault.records import FIELDS, IDENTIFIERS, IdentityRecord
from candour.warehouse import open_warehouse

KEYS = ("vault", "hmac", "log", "witness", "web-session")
# The entry schema's ``key`` values (candour.ledger.entries.KeyRotation).
LOGGED_KEYS = KEYS  # every rotation is announced, so auditors see when any key changed
SYMMETRIC_KEY_BYTES = 32
WEB_SESSION_FILE = "web-session.key"  # the name candour.web.app reads
RETIRED_DIR = "retired"
CHUNK = 2000  # records re-sealed per step: bounded memory however large the vault
ACTOR = "candour keys rotate"


class KeyRotationError(CandourError):
    """A key cannot be rotated as asked (unknown key, a busy home, a vault that does not match)."""


@dataclass(frozen=True)
class RotationReport:
    """What a rotation did. Key ids only: a key itself is never returned or printed."""

    key: str
    old_key_id: str
    new_key_id: str
    ledger_index: int | None
    records: int
    resumed: bool
    notes: tuple[str, ...] = ()


def key_path(home: Home, key: str) -> Path:
    """The file of one of the home's keys (``--key`` name as in :data:`KEYS`)."""
    paths = {
        "vault": home.vault_key,
        "hmac": home.hmac_key,
        "log": home.log_signing_key,
        "witness": home.witness_key,
        "web-session": home.keys / WEB_SESSION_FILE,
    }
    try:
        return paths[key]
    except KeyError:
        raise KeyRotationError(f"unknown key {key!r}; choose one of {', '.join(KEYS)}") from None


def _next_path(current: Path) -> Path:
    return current.with_name(current.name + ".next")


def _journal_path(current: Path) -> Path:
    return current.with_name(current.name + ".rotation")


def key_id(key: str, material: bytes) -> str:
    """The public id of ``material`` as a ``key`` key (see the module docstring)."""
    if key in ("vault", "hmac"):
        return key_check(material)[:16]
    if key in ("log", "witness"):
        return f"{_signer(key, material).verifier.id:08x}"
    return hashlib.sha256(b"candour/web-session/key-id\x00" + material.strip()).hexdigest()[:16]


def _signer(key: str, material: bytes) -> note.Signer:
    key_type = note.ED25519 if key == "log" else note.COSIGNATURE_V1
    try:
        return note.parse_skey(material.decode().strip(), (key_type,))
    except (note.NoteError, UnicodeDecodeError) as exc:
        raise KeyRotationError(f"the {key} key is not a valid signed-note key: {exc}") from None


def _generate(key: str, old: bytes, settings: Settings) -> bytes:
    """New key material of the same kind (and, for a signing key, the same name)."""
    if key in ("vault", "hmac"):
        return secrets.token_bytes(SYMMETRIC_KEY_BYTES)
    if key == "web-session":
        return secrets.token_hex(32).encode()
    signer = _signer(key, old)
    if key == "log" and signer.name != settings.log_origin:
        raise KeyRotationError(
            f"the log key is for {signer.name!r} but the log origin is {settings.log_origin!r}"
        )
    # The same name: a new log key keeps the log's origin (the checkpoint's first line), so
    # the log goes on as one log; only its key id changes.
    return (note.generate(signer.name, signer.key_type).skey() + "\n").encode()


def pending_rotations(home: Home) -> list[str]:
    """The keys whose rotation was started and not finished (a crash, or a failure)."""
    found: list[str] = []
    for key in KEYS:
        current = key_path(home, key)
        if _next_path(current).exists() or _journal_path(current).exists():
            found.append(key)
    return found


def rotate_key(
    settings: Settings, key: str, *, progress: ProgressCallback | None = None
) -> RotationReport:
    """Rotate ``key`` (one of :data:`KEYS`), or finish its interrupted rotation.

    Raises :class:`KeyRotationError` for an unknown key, a home that is busy (another rotation,
    or an ingest or link run holding the warehouse, for the vault and HMAC keys), or a vault
    sealed with neither the current key nor the new one.
    """
    progress = progress or silent
    home = Home(settings.home)
    home.require_initialised()
    current = key_path(home, key)
    if not current.exists():
        raise KeyRotationError(f"{current} does not exist; run `candour init` first")
    lock = FileLock(str(home.keys / "rotate.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise KeyRotationError("another key rotation is running in this home") from None
    try:
        return _rotate(settings, home, key, current, progress)
    finally:
        lock.release()


def resume_rotations(settings: Settings) -> list[RotationReport]:
    """Finish every interrupted rotation (``candour check --repair`` runs this first)."""
    home = Home(settings.home)
    return [rotate_key(settings, key) for key in pending_rotations(home)]


def _rotate(
    settings: Settings, home: Home, key: str, current: Path, progress: ProgressCallback
) -> RotationReport:
    nxt, journal = _next_path(current), _journal_path(current)
    resumed = nxt.exists() or journal.exists()
    if not nxt.exists() and journal.exists():
        # Killed after the new key was installed: only the bookkeeping is left.
        state = _read_journal(journal)
        announce = key in LOGGED_KEYS and state["new_key_id"] == key_id(key, read_secret(current))
        index = _announce(settings, key, state) if announce else None
        _finish(journal)
        return RotationReport(
            key, state["old_key_id"], state["new_key_id"], index, 0, True, ("finished",)
        )
    old = read_secret(current)
    if key in ("vault", "hmac"):
        # Before anything is written or announced: a vault sealed with some third key cannot
        # be rotated, and must not be announced as rotated.
        _preflight(settings, key, old, read_secret(nxt) if nxt.exists() else None)
    write_secret_once(nxt, lambda: _generate(key, old, settings))
    new = read_secret(nxt)
    old_id, new_id = key_id(key, old), key_id(key, new)
    held = _read_journal(journal) if journal.exists() else None
    if held is not None and (held["old_key_id"], held["new_key_id"]) == (old_id, new_id):
        state = held
    else:
        state = {
            "key": key,
            "old_key_id": old_id,
            "new_key_id": new_id,
            "log_size": _log_size(settings),
        }
        PosixStorage(home.keys, KEY_MODE).write(journal.name, json.dumps(state).encode())
    index = _announce(settings, key, state) if key in LOGGED_KEYS else None
    records = 0
    notes: list[str] = []
    if key in ("vault", "hmac"):
        records = _reseal_vault(settings, key, old, new, progress)
        if key == "hmac":
            # Residents' commitments already in the log were made with the old key: keep it,
            # private, so their entries can still be recognised (docs/operations.md).
            retired = home.retired_keys
            retired.mkdir(mode=0o700, exist_ok=True)
            write_secret_once(retired / f"hmac-{old_id}.key", lambda: old)
            notes.append(f"old HMAC key kept as keys/{RETIRED_DIR}/hmac-{old_id}.key")
        _install(current, nxt)
    elif key == "log":
        _rotate_log_key(settings, home, old, new, current, nxt)
        notes.append("publish the new verifier key (candour ledger vkey) to auditors and witnesses")
    elif key == "witness":
        signer = _signer(key, new)
        PosixStorage(home.keys).write(
            home.witness_verifier_key.name, (signer.verifier.vkey() + "\n").encode()
        )
        _install(current, nxt)
        notes.append("give the new witness.vkey to every log this witness cosigns for")
    else:
        _install(current, nxt)
        notes.append("restart candour serve: everyone signed in is signed out")
    _finish(journal)
    return RotationReport(key, old_id, new_id, index, records, resumed, tuple(notes))


def _read_journal(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_bytes())
        return {
            "key": str(state["key"]),
            "old_key_id": str(state["old_key_id"]),
            "new_key_id": str(state["new_key_id"]),
            "log_size": int(state["log_size"]),
        }
    except (ValueError, KeyError, TypeError):
        # Written atomically, so only tampering gets here; start the rotation's log search
        # from the beginning, which is slow but still exact.
        return {"key": "", "old_key_id": "", "new_key_id": "", "log_size": 0}


def _finish(journal: Path) -> None:
    journal.unlink(missing_ok=True)
    fsync_directory(journal.parent)


def _install(current: Path, nxt: Path) -> None:
    """Make the new key the key, atomically and durably (the old one is gone after this)."""
    nxt.replace(current)
    fsync_directory(current.parent)


def _log_size(settings: Settings) -> int:
    found = ledger.open_log(settings).read_checkpoint()
    return found[0].size if found else 0


def _announce(settings: Settings, key: str, state: dict[str, Any]) -> int:
    """The index of this rotation's ``key-rotation`` entry, appending it unless already there."""
    log = ledger.open_log(settings)
    size = _log_size(settings)
    reader = log.reader()
    for index in range(min(state["log_size"], size), size):
        try:
            entry = json.loads(reader.entry(index))
        except ValueError:
            continue
        if (
            entry.get("kind") == "key-rotation"
            and entry.get("key") == key
            and entry.get("old_key_id") == state["old_key_id"]
            and entry.get("new_key_id") == state["new_key_id"]
        ):
            return index
    payload = {"key": key, "old_key_id": state["old_key_id"], "new_key_id": state["new_key_id"]}
    return ledger.record("key-rotation", payload, settings=settings)


# -- the vault and HMAC keys ---------------------------------------------------------------


def _columns(
    records: Sequence[IdentityRecord], flags: Sequence[int], names: Sequence[str]
) -> list[list[Any]]:
    """Records back into :data:`candour.vault.crypto.COLUMN_LAYOUT`, exactly as ingest built it."""
    columns: list[list[Any]] = [[r.record_key for r in records], list(flags)]
    for name in FIELDS:
        columns.append([field_plaintext(getattr(r, name), r.raw.get(name)) for r in records])
    for name in names:
        std = [r.identifiers.get(name) for r in records]
        # A raw value equal to the standardised one was not stored separately: give it back
        # equal, so the sealed pair is again ``[std]``.
        raw = [r.raw.get(f"{IDENTIFIERS}.{name}", s) for r, s in zip(records, std, strict=True)]
        columns += [std, raw]
    return columns


def _vault_check(settings: Settings, key: str) -> str | None:
    """The key check the vault holds for ``key`` (None for a vault never written)."""
    engine = engine_for_url(settings.vault_store_url)
    try:
        metadata.create_all(engine)
        with engine.connect() as connection:
            held = connection.scalar(
                select(vault_meta.c.value).where(vault_meta.c.name == f"{key}_key_check")
            )
            return None if held is None else str(held)
    finally:
        engine.dispose()


def _preflight(settings: Settings, key: str, old: bytes, new: bytes | None) -> None:
    held = _vault_check(settings, key)
    allowed = {None, key_check(old)} | ({key_check(new)} if new is not None else set())
    if held not in allowed:
        raise KeyRotationError(
            f"the vault's {key} key check matches neither the {key} key in keys/ nor a rotation "
            "in progress; restore the key the vault was written with before rotating"
        )


def _reseal_vault(
    settings: Settings, key: str, old: bytes, new: bytes, progress: ProgressCallback
) -> int:
    """Re-seal every record under the new vault key, or rebuild every look-up digest under
    the new HMAC key, in one transaction with the vault's key check. Returns records done."""
    home = Home(settings.home)
    vault_key = read_secret(home.vault_key)
    hmac_key = read_secret(home.hmac_key)
    check_name = f"{key}_key_check"
    # The warehouse's single writer lock keeps ingest and link (which seal or read the vault
    # with the keys they loaded at start) out until the new key is in place.
    with open_warehouse(settings):
        held = _vault_check(settings, key)
        if held == key_check(new):
            return 0  # re-sealed and committed before a crash: only the install is left
        _preflight(settings, key, old, None)
        engine = engine_for_url(settings.vault_store_url)
        try:
            scope = f"key={key} every record"
            reason = f"{key} key rotation: re-seal every record under the new key"
            with audited(settings, "rotate-key", scope, reason, ACTOR) as access:
                with engine.begin() as connection:
                    access.records = _reseal(connection, key, vault_key, hmac_key, new, progress)
                    values = {"value": key_check(new)}
                    if held is None:
                        connection.execute(vault_meta.insert().values(name=check_name, **values))
                    else:
                        connection.execute(
                            update(vault_meta).where(vault_meta.c.name == check_name).values(values)
                        )
            return access.records
        finally:
            engine.dispose()


def _reseal(
    connection: Any,
    key: str,
    vault_key: bytes,
    hmac_key: bytes,
    new: bytes,
    progress: ProgressCallback,
) -> int:
    opener = Sealer(vault_key, hmac_key, ())
    seal_vault, seal_hmac = (new, hmac_key) if key == "vault" else (vault_key, new)
    if key == "hmac":
        connection.execute(delete(lookups))
    done = 0
    last: str | None = None
    task = f"re-sealing the vault ({key} key)"
    while True:
        query = (
            select(
                identities.c.record_key,
                identities.c.source,
                identities.c.batch_id,
                identities.c.flags,
                identities.c.sealed,
            )
            .order_by(identities.c.record_key)
            .limit(CHUNK)
        )
        if last is not None:
            query = query.where(identities.c.record_key > last)
        rows = connection.execute(query).all()
        if not rows:
            break
        last = rows[-1][0]
        groups: dict[tuple[str, int, tuple[str, ...]], list[tuple[IdentityRecord, int]]]
        groups = defaultdict(list)
        for record_key, source, batch_id, flags, sealed in rows:
            record = opener.open_record(record_key, source, batch_id, flags, bytes(sealed))
            found = set(record.identifiers)
            found |= {k.split(".", 1)[1] for k in record.raw if k.startswith(f"{IDENTIFIERS}.")}
            groups[(source, batch_id, tuple(sorted(found)))].append((record, flags))
        for (source, batch_id, names), members in groups.items():
            records = [m[0] for m in members]
            sealer = Sealer(seal_vault, seal_hmac, names)
            sealed_rows, lookup_rows = sealer.seal_columns(
                _columns(records, [m[1] for m in members], names), source, batch_id
            )
            if key == "vault":
                connection.execute(
                    update(identities)
                    .where(identities.c.record_key == bindparam("k"))
                    .values(sealed=bindparam("s")),
                    [{"k": r[0], "s": r[4]} for r in sealed_rows],
                )
            elif lookup_rows:
                connection.execute(
                    lookups.insert(),
                    [
                        {"kind": k, "digest": d, "record_key": r, "batch_id": b}
                        for k, d, r, b in lookup_rows
                    ],
                )
        done += len(rows)
        progress(task, done, None)
    return done


# -- the log key ---------------------------------------------------------------------------


def _rotate_log_key(
    settings: Settings, home: Home, old: bytes, new: bytes, current: Path, nxt: Path
) -> None:
    """Sign the published checkpoint with both keys, then install the new one.

    While both signatures are on the checkpoint, a verifier holding either key accepts it (C2SP
    signed-note: signatures by unknown keys are ignored), so the home verifies at every moment
    of the swap. The next append signs with the new key alone.
    """
    old_signer, new_signer = _signer("log", old), _signer("log", new)
    public = PosixStorage(ledger.public_dir(home))
    # The appender's lock: no append can sign with the old key between these steps.
    with FileLock(str(ledger.state_dir(home) / "append.lock")):
        data = public.read(CHECKPOINT)
        if data is not None:
            try:
                cpmod.open_checkpoint(
                    data, [old_signer.verifier, new_signer.verifier], old_signer.name
                )
                parsed = note.parse(data)
            except (cpmod.CheckpointError, note.NoteError) as exc:
                raise KeyRotationError(f"the published checkpoint does not verify: {exc}") from exc
            if not any(s.id == new_signer.verifier.id for s in parsed.signatures):
                public.write(CHECKPOINT, data + new_signer.sign(parsed.text).encode())
        PosixStorage(home.keys).write(
            home.log_verifier_key.name, (new_signer.verifier.vkey() + "\n").encode()
        )
        _install(current, nxt)
    # This process's cached log still holds the old signer.
    ledger.close_log(settings)


def describe(report: RotationReport) -> list[str]:
    """Lines for the CLI: what changed, by key id only."""
    lines = [
        f"Rotated the {report.key} key: {report.old_key_id} -> {report.new_key_id}"
        + (" (finished an interrupted rotation)" if report.resumed else "")
    ]
    if report.ledger_index is not None:
        lines.append(f"Logged as key-rotation entry {report.ledger_index}.")
    if report.records:
        lines.append(f"Re-sealed {report.records:,} vault records.")
    lines.extend(report.notes)
    return lines
