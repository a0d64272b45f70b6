"""Where linkage gets identities from: the vault (always, in production) or a given table.

This module is the only seam between linkage and the vault. An identity provider is a context
manager that yields a private directory and the standardised identity table; the directory
(and anything linkage writes in it) is removed when the block ends, even on failure.

Vault functions used: ``open_vault(settings)``, ``Vault.open_workspace(reason=, actor=)``,
``Workspace.identity_batches()`` (Arrow batches of ``IDENTITY_SCHEMA``), ``Workspace.path``
and ``Workspace.records(keys)`` for the two records a reviewer looks at.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

from candour.config import Settings
from candour.linkage.fields import IDENTITY_FIELDS, KEY_COLUMNS, identifier_column
from candour.linkage.workspace import workspace


class IdentityProvider(Protocol):
    """Yields (private directory, identity table) and cleans the directory up afterwards."""

    def __call__(self, reason: str) -> AbstractContextManager[tuple[Path, pa.Table]]: ...


def from_vault_schema(table: pa.Table) -> pa.Table:
    """The vault's identity batches as linkage's table: identifiers become ``id_*`` columns."""
    columns: dict[str, pa.ChunkedArray | pa.Array] = {
        name: table[name] for name in (*KEY_COLUMNS, *IDENTITY_FIELDS) if name in table.column_names
    }
    if "identifiers" in table.column_names and table.num_rows:
        identifiers = table["identifiers"].combine_chunks()
        # ``MapArray.keys`` is every entry's key, flattened across rows (pyarrow has no
        # ``map_keys`` kernel); ``map_lookup`` then gives each key's value per row.
        keys = pc.unique(identifiers.keys).to_pylist()
        for key in sorted(k for k in keys if k is not None):
            values = pc.map_lookup(identifiers, pa.scalar(key, pa.string()), "first")
            columns[identifier_column(key)] = values
    return pa.table(columns)


def vault_provider(settings: Settings) -> IdentityProvider:
    """Identities decrypted from the vault into one of its audited workspaces."""

    @contextmanager
    def provide(reason: str) -> Iterator[tuple[Path, pa.Table]]:
        from candour.vault import IDENTITY_SCHEMA, open_vault

        vault = open_vault(settings)
        with vault.open_workspace(reason=reason, actor="linkage") as ws:
            batches = list(ws.identity_batches())
            table = pa.Table.from_batches(batches, schema=IDENTITY_SCHEMA)
            yield Path(ws.path), from_vault_schema(table)

    return provide


def table_provider(table: pa.Table, parent: Path | None = None) -> IdentityProvider:
    """Identities given directly (tests, benchmarks), in a private temporary workspace."""

    @contextmanager
    def provide(reason: str) -> Iterator[tuple[Path, pa.Table]]:
        with workspace(parent) as space:
            yield space.root, table

    return provide


def records_for_review(
    settings: Settings, record_keys: Sequence[str], reviewer: str, pair_id: int
) -> dict[str, dict[str, str]]:
    """The standardised identity values of the records in a review pair, read from the vault.

    The read is audited by the vault with the reviewer's name and the pair it was for.
    """
    from candour.vault import open_vault

    vault = open_vault(settings)
    reason = f"clerical review of linkage pair {pair_id}"
    with vault.open_workspace(reason=reason, actor=reviewer) as ws:
        found = ws.records(list(record_keys))
        return {record.record_key: record.values() for record in found}
