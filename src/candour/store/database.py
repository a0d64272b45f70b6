"""Engines, transactions and migrations for the operational store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import Lock

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from candour.config import Settings
from candour.errors import CandourError

MIGRATIONS = Path(__file__).parent / "migrations"


class StoreError(CandourError):
    """The operational store cannot be reached or is not in the expected state."""


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = Lock()


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL lets the web app read while an ingest writes; foreign keys are off by default.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def engine_for(settings: Settings) -> Engine:
    """The SQLAlchemy engine for these settings' store, shared by everyone in this process."""
    url = settings.store_url
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = _create_engine(url)
        return engine


def dispose(settings: Settings) -> None:
    """Close this store's pooled connections (before dropping or moving its database)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(settings.store_url, None)
    if engine is not None:
        engine.dispose()


@contextmanager
def transaction(settings: Settings) -> Iterator[Session]:
    """A session in one transaction: committed if the block succeeds, rolled back otherwise."""
    factory = sessionmaker(engine_for(settings), expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


def _alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Passed through attributes rather than the ini, so URLs with % need no escaping.
    config.attributes["url"] = settings.store_url
    return config


def migrate(settings: Settings) -> str:
    """Bring the store's schema to the newest revision and return that revision."""
    config = _alembic_config(settings)
    try:
        with engine_for(settings).begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise StoreError(f"cannot reach the store at {_safe_url(settings)}: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"migrating the store at {_safe_url(settings)} failed: {exc}") from exc
    return head_revision()


def head_revision() -> str:
    """The newest migration revision shipped with this version of Candour."""
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def current_revision(settings: Settings) -> str | None:
    """The revision the store is at, or None if it was never migrated."""
    with engine_for(settings).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _safe_url(settings: Settings) -> str:
    # Never print a password into a terminal or a log.
    from sqlalchemy.engine import make_url

    return make_url(settings.store_url).render_as_string(hide_password=True)
