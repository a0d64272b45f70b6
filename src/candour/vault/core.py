"""The identity vault's database: sealed identities, the look-up index, and audited reads.

The vault lives in its own database (SQLite ``vault.db`` in the data home unless
``CANDOUR_VAULT_URL`` says otherwise), apart from the operational store, so it can be secured and
backed up on its own. Tables:

- ``vault_meta``: the schema version and key checks (which catch a replaced key before it
  writes records nobody can open);
- ``identities``: one row per record, ``(record_key, source, batch_id, flags, sealed)``, where
  ``sealed`` holds every identity field encrypted on its own (see :mod:`candour.vault.crypto`);
- ``lookups``: ``(kind, digest, record_key, batch_id)``, the keyed-HMAC index of exact
  identifiers (NHS number, ``identifiers.<name>``).

Writing (ingest) and deleting a batch (ingest's rollback) need no reason. Reading decrypted
identities, or searching the index, is only possible through calls that take a stated reason
and actor, and each one is recorded in the store's ``vault_access`` table *before* anything is
decrypted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from threading import Lock
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home, read_secret
from candour.vault.crypto import Sealer, key_check
from candour.vault.records import IDENTIFIERS, INDEXED_FIELDS

SCHEMA_VERSION = "1"
VAULT_FILE_MODE = 0o600

metadata = MetaData()
vault_meta = Table(
    "vault_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)
identities = Table(
    "identities",
    metadata,
    Column("record_key", String(200), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("batch_id", Integer, nullable=False),
    Column("flags", Integer, nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Index("ix_identities_batch_id", "batch_id"),
    # No index on source: record keys start with "<source>:", so the primary key serves it.
)
lookups = Table(
    "lookups",
    metadata,
    Column("kind", String(80), nullable=False),
    Column("digest", LargeBinary(32), nullable=False),
    Column("record_key", String(200), nullable=False),
    Column("batch_id", Integer, nullable=False),
    # The digest alone: the kind is inside the HMAC, so equal digests are of the same kind.
    Index("ix_lookups_digest", "digest"),
    Index("ix_lookups_batch_id", "batch_id"),
)


_SEALED_COLUMNS = (
    identities.c.record_key,
    identities.c.source,
    identities.c.batch_id,
    identities.c.flags,
    identities.c.sealed,
)


def _scoped(query: Any, source: str | None, batch_id: int | None) -> Any:
    if source is not None:
        query = query.where(*_source_range(source))
    if batch_id is not None:
        query = query.where(identities.c.batch_id == batch_id)
    return query


def sealed_rows(
    connection: Any,
    source: str | None,
    batch_id: int | None,
    after: str | None,
    upto: str | None,
) -> list[Any]:
    """The sealed rows ``(record_key, source, batch_id, flags, sealed)`` with keys in
    ``(after, upto]`` (None: unbounded), in key order: one chunk of a full read, by this
    process or by a worker process with its own connection."""
    query = _scoped(select(*_SEALED_COLUMNS), source, batch_id).order_by(identities.c.record_key)
    if after is not None:
        query = query.where(identities.c.record_key > after)
    if upto is not None:
        query = query.where(identities.c.record_key <= upto)
    return connection.execute(query).all()


def key_ranges(
    connection: Any, source: str | None, batch_id: int | None, chunk_size: int
) -> list[tuple[str | None, str | None]]:
    """The records in runs of ``chunk_size`` keys, as ``(after, upto]`` bounds (None:
    unbounded), so that each run can be read on its own, by worker processes in parallel.

    The database finds every ``chunk_size``-th key in one statement. A run read later also
    holds whatever was added inside its bounds in between, as a paged read would.
    """
    numbered = _scoped(
        select(
            identities.c.record_key,
            func.row_number().over(order_by=identities.c.record_key).label("n"),
        ),
        source,
        batch_id,
    ).subquery()
    query = (
        select(numbered.c.record_key)
        .where(numbered.c.n % chunk_size == 0)
        .order_by(numbered.c.record_key)
    )
    bounds: list[str | None] = [None, *connection.scalars(query).all()]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)] + [(bounds[-1], None)]


def _source_range(source: str) -> tuple[Any, Any]:
    """Conditions selecting one source's records by their key prefix ``<source>:``."""
    # ":" + 1 is ";": every key "<source>:..." sorts between the two.
    return identities.c.record_key >= f"{source}:", identities.c.record_key < f"{source};"


class VaultError(CandourError):
    """The vault cannot be used as asked (missing keys, wrong key, unreachable database)."""


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = Lock()


def engine_for_url(url: str, *, deferred_sync: bool = False, reading: bool = False) -> Engine:
    """A new engine for a vault URL, with the vault's SQLite settings (also used by workers).

    ``deferred_sync`` (sealing workers) commits without waiting for the disk; the ingest then
    calls :meth:`Vault.sync` once, which makes every earlier commit durable, before it writes
    the ledger entry. ``reading`` (workers opening records) gives connections that cannot
    write, to a vault that must exist already.
    """
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    if reading:
        reader = create_engine(url, connect_args={"timeout": 120})

        @event.listens_for(reader, "connect")
        def _read_only(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA query_only=1")

        return reader
    database = make_url(url).database
    if database and database != ":memory:" and not os.path.exists(database):
        # Create the file private from the start; SQLite gives its WAL the same mode.
        try:
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, VAULT_FILE_MODE))
        except FileExistsError:
            pass
    # Generous timeout: sealing workers take turns at SQLite's single write lock.
    engine = create_engine(url, connect_args={"timeout": 120})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        # Sealed records are about 400 bytes each: 16 KiB pages hold forty of them and cut the
        # page writes of a bulk load. SQLite applies this only to a new, empty database (an
        # existing vault keeps its page size, and works the same either way).
        cursor.execute("PRAGMA page_size=16384")
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: the ledger entry is written after the vault commits, so a commit must
        # survive a power cut, or the log could vouch for rows that were lost.
        cursor.execute(f"PRAGMA synchronous={'NORMAL' if deferred_sync else 'FULL'}")
        # A large page cache keeps the look-up index's random inserts in memory.
        cursor.execute("PRAGMA cache_size=-262144")
        cursor.close()

    return engine


def _engine(settings: Settings) -> Engine:
    url = settings.vault_store_url
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = engine_for_url(url)
        return engine


def dispose_vault(settings: Settings) -> None:
    """Close the vault's pooled connections (tests, or before moving the vault file)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(settings.vault_store_url, None)
    if engine is not None:
        engine.dispose()


@dataclass(frozen=True)
class VaultStats:
    """Counts of what the vault holds."""

    records: int
    lookups: int
    batches: int


class Vault:
    """The identity vault of one data home. Create with :func:`open_vault`."""

    def __init__(self, settings: Settings, engine: Engine, vault_key: bytes, hmac_key: bytes):
        self.settings = settings
        self.engine = engine
        self._vault_key = vault_key
        self._hmac_key = hmac_key

    # -- writing (ingest) ----------------------------------------------------------------

    def sealer(self, identifier_names: Sequence[str] = ()) -> Sealer:
        """A sealer for rows of a source with these ``identifiers`` names (see :class:`Sealer`)."""
        return Sealer(self._vault_key, self._hmac_key, identifier_names)

    @contextmanager
    def writer(self) -> Iterator[VaultWriter]:
        """One transaction of bulk inserts: committed when the block ends, rolled back on error."""
        with self.engine.begin() as connection:
            yield VaultWriter(connection)

    def sync(self) -> None:
        """Make every commit so far durable (on SQLite: a synchronous commit flushes the WAL,
        and with it every commit before it)."""
        with self.engine.begin() as connection:
            connection.execute(
                vault_meta.update()
                .where(vault_meta.c.name == "schema_version")
                .values(value=SCHEMA_VERSION)
            )
        if self.engine.dialect.name == "sqlite":
            self._truncate_wal()

    def _truncate_wal(self) -> None:
        # Sealing workers commit by turns without pause, so SQLite's automatic checkpoints
        # never find a moment to restart the write-ahead log: a county's ingest left a 9.5 GB
        # log beside a 2.8 GB vault, which every later read had to search. Once a batch is in,
        # fold the log back into the vault and empty it. Best effort and brief: a reader that
        # holds the log open (the web server) only postpones it to the next batch.
        with self.engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA busy_timeout = 2000")
            try:
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            finally:
                raw.execute("PRAGMA busy_timeout = 120000")

    def delete_batch(self, batch_id: int) -> int:
        """Remove every record (and index entry) of a batch; returns the records removed."""
        with self.engine.begin() as connection:
            connection.execute(delete(lookups).where(lookups.c.batch_id == batch_id))
            result = connection.execute(delete(identities).where(identities.c.batch_id == batch_id))
            return int(result.rowcount or 0)

    # -- facts that reveal no identity ---------------------------------------------------

    def count(self, source: str | None = None, batch_id: int | None = None) -> int:
        """How many records the vault holds (of a source, or a batch)."""
        query = select(func.count()).select_from(identities)
        if source is not None:
            query = query.where(*_source_range(source))
        if batch_id is not None:
            query = query.where(identities.c.batch_id == batch_id)
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def batch_ids(self) -> set[int]:
        """The batches that have records in the vault."""
        with self.engine.connect() as connection:
            return set(connection.scalars(select(identities.c.batch_id).distinct()))

    def stats(self) -> VaultStats:
        """Counts of records, index entries and batches."""
        with self.engine.connect() as connection:
            records = connection.scalar(select(func.count()).select_from(identities)) or 0
            indexed = connection.scalar(select(func.count()).select_from(lookups)) or 0
        return VaultStats(int(records), int(indexed), len(self.batch_ids()))

    def has_records(self, record_keys: Iterable[str]) -> set[str]:
        """Which of ``record_keys`` are in the vault (keys are pseudonymous; no identity read)."""
        found: set[str] = set()
        keys = list(record_keys)
        with self.engine.connect() as connection:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                found.update(
                    connection.scalars(
                        select(identities.c.record_key).where(identities.c.record_key.in_(chunk))
                    )
                )
        return found

    # -- audited reads --------------------------------------------------------------------

    def lookup(
        self, kind: str, values: Iterable[str], *, reason: str, actor: str
    ) -> dict[str, list[str]]:
        """Record keys whose ``kind`` (``nhs_number`` or ``identifiers.<name>``) equals a value.

        ``values`` must be standardised the way ingest standardised them (use
        ``candour.sources.standardise.standardise_value``). Searches the keyed-HMAC index, so
        nothing is decrypted; the search is still an access, and is recorded with ``reason``.
        Returns ``{value: [record_key, ...]}`` for the values found.
        """
        from candour.vault.audit import audited

        sealer = self.sealer()
        wanted = {sealer.digest(kind, value): value for value in values}
        found: dict[str, list[str]] = {}
        scope = f"kind={kind} values={len(wanted)}"
        with audited(self.settings, "lookup", scope, reason, actor) as log:
            digests = list(wanted)
            with self.engine.connect() as connection:
                for start in range(0, len(digests), 500):
                    chunk = digests[start : start + 500]
                    rows = connection.execute(
                        select(lookups.c.digest, lookups.c.record_key)
                        .where(lookups.c.kind == kind)
                        .where(lookups.c.digest.in_(chunk))
                    )
                    for digest, record_key in rows:
                        found.setdefault(wanted[bytes(digest)], []).append(record_key)
            log.records = sum(len(keys) for keys in found.values())
        for keys in found.values():
            keys.sort()
        return found

    @contextmanager
    def open_workspace(self, *, reason: str, actor: str) -> Iterator[Any]:
        """A temporary workspace for decrypted identities, removed afterwards even on failure.

        Yields a :class:`candour.vault.workspace.Workspace`; see its methods for reading
        identities. ``reason`` and ``actor`` are recorded with every read made through it.
        """
        from candour.vault.workspace import workspace

        with workspace(self, reason=reason, actor=actor) as opened:
            yield opened

    def _rows(
        self,
        source: str | None,
        batch_id: int | None,
        record_keys: Sequence[str] | None,
        chunk_size: int,
        ranges: Sequence[tuple[str | None, str | None]] | None = None,
    ) -> Iterator[Sequence[Any]]:
        """Sealed rows in record-key order, streamed in chunks (used by the workspace), by
        ``ranges`` of keys when the caller has them already."""
        if record_keys is not None:
            with self.engine.connect() as connection:
                for start in range(0, len(record_keys), 500):
                    chunk = list(record_keys[start : start + 500])
                    query = select(*_SEALED_COLUMNS).where(identities.c.record_key.in_(chunk))
                    yield from connection.execute(query).all()
            return
        if ranges is None:
            ranges = self.key_ranges(source, batch_id, chunk_size)
        for after, upto in ranges:
            # A connection per chunk: no long-lived read that would hold the SQLite WAL open
            # while linkage runs for minutes.
            with self.engine.connect() as connection:
                yield from sealed_rows(connection, source, batch_id, after, upto)

    def key_ranges(
        self, source: str | None, batch_id: int | None, chunk_size: int
    ) -> list[tuple[str | None, str | None]]:
        """The records as runs of ``chunk_size`` keys (see :func:`key_ranges`)."""
        with self.engine.connect() as connection:
            return key_ranges(connection, source, batch_id, chunk_size)


class VaultWriter:
    """Bulk inserts inside one vault transaction (see :meth:`Vault.writer`)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        style = connection.dialect.paramstyle
        mark = "?" if style == "qmark" else "%s"
        self._identities_sql = (
            "INSERT INTO identities (record_key, source, batch_id, flags, sealed) "
            f"VALUES ({', '.join([mark] * 5)})"
        )
        self._lookups_sql = (
            "INSERT INTO lookups (kind, digest, record_key, batch_id) "
            f"VALUES ({', '.join([mark] * 4)})"
        )

    def insert(
        self,
        sealed_rows: Sequence[tuple[str, str, int, int, bytes]],
        lookup_rows: Sequence[tuple[str, bytes, str, int]],
    ) -> None:
        """Insert sealed rows and their index entries (from :meth:`Sealer.seal_columns`)."""
        # Straight to the driver's executemany: this is the hot path of ingest, and building
        # a dict per row for SQLAlchemy's insert() would cost more than the encryption.
        if sealed_rows:
            self.connection.exec_driver_sql(self._identities_sql, list(sealed_rows))
        if lookup_rows:
            self.connection.exec_driver_sql(self._lookups_sql, list(lookup_rows))


def _check_keys(engine: Engine, vault_key: bytes, hmac_key: bytes) -> None:
    expected = {
        "schema_version": SCHEMA_VERSION,
        "vault_key_check": key_check(vault_key),
        "hmac_key_check": key_check(hmac_key),
    }
    with engine.begin() as connection:
        held = dict(connection.execute(select(vault_meta.c.name, vault_meta.c.value)).all())
        for name, value in expected.items():
            if name not in held:
                connection.execute(vault_meta.insert().values(name=name, value=value))
            elif held[name] != value:
                what = name.removesuffix("_check").replace("_", " ")
                if name == "schema_version":
                    raise VaultError(
                        f"the vault's schema is version {held[name]}; this Candour reads "
                        f"version {value}"
                    )
                raise VaultError(
                    f"the {what} in keys/ is not the one this vault was written with; restore "
                    "the original key (the vault cannot be read without it)"
                )


def open_vault(settings: Settings) -> Vault:
    """The vault of the data home named by ``settings`` (created on first use).

    Raises :class:`VaultError` when the home has no keys (run ``candour init``) or the keys are
    not the ones the vault was written with.
    """
    home = Home(settings.home)
    home.require_initialised()
    vault_key = read_secret(home.vault_key)
    hmac_key = read_secret(home.hmac_key)
    engine = _engine(settings)
    try:
        metadata.create_all(engine)
        _check_keys(engine, vault_key, hmac_key)
    except SQLAlchemyError as exc:
        safe = make_url(settings.vault_store_url).render_as_string(hide_password=True)
        raise VaultError(f"cannot open the vault at {safe}: {exc}") from exc
    return Vault(settings, engine, vault_key, hmac_key)


def indexed_kinds(identifier_names: Iterable[str]) -> list[str]:
    """The look-up kinds a source with these identifier names is indexed under."""
    return [*INDEXED_FIELDS, *(f"{IDENTIFIERS}.{name}" for name in identifier_names)]
