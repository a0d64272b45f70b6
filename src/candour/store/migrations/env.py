"""Alembic environment: runs against the connection handed in by candour.store.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from candour.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    # Used by `alembic` run by hand with `-x url=...` (e.g. to autogenerate a migration).
    url = context.get_x_argument(as_dictionary=True).get("url") or config.attributes["url"]
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(
            connection=conn,
            target_metadata=target_metadata,
            render_as_batch=conn.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
