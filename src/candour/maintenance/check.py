"""``candour check``: is every part of the data home whole and consistent with the others?

An operator runs it after a crash, a restore or a disk problem. Each check reads only; with
``repair`` the safe repairs run first: finishing interrupted key rotations (each step of a
rotation can be repeated, see :mod:`candour.maintenance.keys`), then settling interrupted
ingests (roll forward when their ledger entry exists, otherwise roll back). The public log is
checked exactly as an outside auditor checks it.
"""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from candour import ledger
from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home
from candour.ledger import verify as ledger_verify
from candour.maintenance.keys import pending_rotations, resume_rotations
from candour.sources.ingest import recover
from candour.store import IngestBatch, current_revision, head_revision, transaction
from candour.vault import open_vault, remove_stale_workspaces, workspaces_root
from candour.vault.workspace import is_abandoned
from candour.warehouse import open_warehouse

PRIVATE_KEYS = ("log_signing_key", "witness_key", "vault_key", "hmac_key")


@dataclass
class Finding:
    """One check's outcome: ``ok`` False means something needs an operator's attention."""

    part: str
    check: str
    ok: bool
    detail: str


@dataclass
class CheckReport:
    """Every finding, in the order the checks ran."""

    home: Path
    findings: list[Finding] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing needs attention."""
        return all(f.ok for f in self.findings)


def check_home(settings: Settings, *, repair: bool = False) -> CheckReport:
    """Check the store, the vault, the warehouse, the ledger and the keys of a data home."""
    home = Home(settings.home)
    home.require_initialised()
    report = CheckReport(home=home.root)
    if repair:
        # Rotations first: a vault rotation killed between its commit and its key swap leaves
        # a vault that only the new key opens, and settling ingests needs the vault.
        report.repaired = [
            f"{r.key} key rotation {r.old_key_id} -> {r.new_key_id}: finished"
            for r in resume_rotations(settings)
        ]
        stale = remove_stale_workspaces(settings)
        if stale:
            report.repaired.append(f"removed {stale} workspace(s) left by a process that died")
        with open_warehouse(settings) as warehouse:
            report.repaired += [
                f"batch {r.batch_id} ({r.source}): {r.action}" for r in recover(settings, warehouse)
            ]

    def run(part: str, name: str, check: Callable[[], str]) -> None:
        try:
            report.findings.append(Finding(part, name, True, check()))
        except _Problem as problem:
            report.findings.append(Finding(part, name, False, str(problem)))
        except (CandourError, OSError, sqlite3.Error) as exc:
            report.findings.append(Finding(part, name, False, f"{type(exc).__name__}: {exc}"))

    run("keys", "present, private", lambda: _check_keys(home))
    run("keys", "rotations finished", lambda: _check_rotations(home))
    run("store", "schema", lambda: _check_schema(settings))
    if settings.database_url is None:
        run("store", "integrity", lambda: _sqlite_integrity(home.store_db))
    batches = _done_batches(settings)
    run("store", "ingests settled", lambda: _check_pending(settings))
    run("vault", "integrity", lambda: _vault_check(settings, home, batches))
    run("vault", "no stale workspaces", lambda: _check_workspaces(settings))
    run("warehouse", "batches", lambda: _warehouse_check(settings, batches))
    run("ledger", "verify --full", lambda: _ledger_check(home))
    return report


class _Problem(Exception):
    """A check found something wrong (as opposed to failing to run)."""


def _check_keys(home: Home) -> str:
    for name in PRIVATE_KEYS:
        path: Path = getattr(home, name)
        if not path.exists():
            raise _Problem(f"{path} is missing")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise _Problem(f"{path} has mode {mode:o}; run chmod 600 {path}")
    # Every other secret there too: the web-session key, a rotation's next key, retired keys.
    for path in sorted(home.keys.rglob("*")):
        if path.is_file() and not path.name.endswith((".vkey", ".lock", ".rotation")):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise _Problem(f"{path} has mode {mode:o}; run chmod 600 {path}")
    return f"{len(PRIVATE_KEYS)} private keys, mode 600"


def _check_rotations(home: Home) -> str:
    pending = pending_rotations(home)
    if pending:
        names = ", ".join(pending)
        raise _Problem(
            f"a rotation of the {names} key was interrupted; run `candour keys rotate --key "
            f"{pending[0]}` again (or `candour check --repair`) to finish it"
        )
    return "no rotation in progress"


def _check_schema(settings: Settings) -> str:
    have, want = current_revision(settings), head_revision()
    if have != want:
        raise _Problem(f"store schema is at {have}, this Candour needs {want}: run candour init")
    return f"at revision {want}"


def _sqlite_integrity(path: Path) -> str:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()
    if result != "ok":
        raise _Problem(f"{path.name}: {result}")
    return f"{path.name}: integrity_check ok"


def _done_batches(settings: Settings) -> dict[int, str]:
    with transaction(settings) as session:
        rows = session.execute(
            select(IngestBatch.id, IngestBatch.source).where(IngestBatch.status == "done")
        )
        return {int(batch_id): source for batch_id, source in rows}


def _check_pending(settings: Settings) -> str:
    with transaction(settings) as session:
        pending = session.scalar(
            select(func.count()).select_from(IngestBatch).where(IngestBatch.status == "pending")
        )
    if pending:
        raise _Problem(
            f"{pending} ingest batch(es) were interrupted; run `candour check --repair` "
            "(or the next `candour ingest`) to settle them"
        )
    return "no interrupted ingests"


def _vault_check(settings: Settings, home: Home, batches: dict[int, str]) -> str:
    vault = open_vault(settings)  # checks the vault and HMAC keys match what sealed it
    if settings.vault_url is None and home.vault_db.exists():
        _sqlite_integrity(home.vault_db)
    extra = vault.batch_ids() - set(batches)
    if extra:
        raise _Problem(f"vault holds rows of unfinished batches {sorted(extra)}")
    stats = vault.stats()
    return f"{stats.records:,} records in {stats.batches} batches; keys match"


def _check_workspaces(settings: Settings) -> str:
    """Decrypted identities left on disk by a link run or a subject access that was killed."""
    root = workspaces_root(settings)
    live, stale = 0, 0
    for directory in sorted(root.iterdir()) if root.is_dir() else []:
        if not directory.is_dir():
            continue
        alive = not is_abandoned(directory)
        live, stale = live + alive, stale + (not alive)
    if stale:
        raise _Problem(
            f"{stale} workspace(s) of decrypted identities were left by a process that died; "
            "run `candour check --repair` (or the next `candour link`) to remove them"
        )
    return f"{live} workspace(s) in use" if live else "none left behind"


def _warehouse_check(settings: Settings, batches: dict[int, str]) -> str:
    sources = set(batches.values())
    rows = 0
    if settings.engine == "duckdb" and not Home(settings.home).warehouse.exists():
        if sources:
            raise _Problem(
                f"the warehouse file is missing but {len(sources)} source(s) were ingested"
            )
        return "no warehouse yet: nothing ingested"
    with open_warehouse(settings, read_only=True) as warehouse:
        tables = set(warehouse.tables())
        for source in sorted(sources):
            if source not in tables:
                raise _Problem(f"table {source} is missing but has finished ingests")
            extra = warehouse.batch_ids(source) - {b for b, s in batches.items() if s == source}
            if extra:
                raise _Problem(f"table {source} holds rows of unfinished batches {sorted(extra)}")
            rows += warehouse.count(source)
    return f"{rows:,} rows in {len(sources)} source tables, all from finished batches"


def _ledger_check(home: Home) -> str:
    verifier = ledger.verifier_key(home)
    public = ledger.public_dir(home)
    if not (public / "checkpoint").exists():
        # Nothing appended yet (a new home, or one whose first append never committed): an
        # empty log is whole, unless tiles were published without a checkpoint over them.
        tile_dir = public / "tile"
        tiles = [p for p in tile_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
        if not tiles:
            return "empty: nothing logged yet"
        pending = ledger.state_dir(home) / "pending.json"
        if pending.exists() and json.loads(pending.read_bytes()).get("from") == 0:
            # The first append was killed before its checkpoint: the next append removes it.
            return "empty: an unfinished first append will be undone by the next append"
        raise _Problem(f"{public} holds {len(tiles)} tile file(s) but no checkpoint")
    try:
        report = ledger_verify.verify(
            ledger_verify.source_for(ledger.public_dir(home)), verifier, full=True
        )
    except ledger_verify.VerifyError as exc:
        raise _Problem(str(exc)) from exc
    return f"size {report.size}, {report.files_checked} files and every entry check out"
