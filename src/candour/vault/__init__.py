"""The identity vault: direct identifiers, encrypted field by field, read only with a reason.

Writing::

    vault = open_vault(settings)
    sealer = vault.sealer(identifier_names)
    with vault.writer() as writer:
        writer.insert(*sealer.seal_columns(columns, source, batch_id))

Reading (the linkage engine, subject access)::

    with vault.open_workspace(reason="link run L-7 for the person index", actor="linkage") as ws:
        for batch in ws.identity_batches():          # Arrow, standardised values
            ...
        ws.path                                      # private dir, removed afterwards
    vault.lookup("nhs_number", ["9434765919"], reason="...", actor="...")   # keyed-HMAC index

Every read is recorded in the store's ``vault_access`` table before anything is decrypted.
"""

from typing import TYPE_CHECKING, Any

from candour.vault.crypto import Sealer, VaultCryptoError, lookup_digest
from candour.vault.records import (
    DOB_VALID,
    FIELDS,
    IDENTIFIERS,
    INDEXED_FIELDS,
    NHS_NUMBER_VALID,
    POSTCODE_VALID,
    IdentityRecord,
)

if TYPE_CHECKING:
    from candour.vault.audit import AccessLog, audited
    from candour.vault.core import (
        Vault,
        VaultError,
        VaultStats,
        VaultWriter,
        dispose_vault,
        indexed_kinds,
        open_vault,
    )
    from candour.vault.workspace import (
        IDENTITY_SCHEMA,
        Workspace,
        remove_stale_workspaces,
        to_record_batch,
        workspaces_root,
    )

# Imported on first use: a sealing worker (``python -m candour.vault.sealworker``) imports
# this package, and needs neither the store nor the workspace; loading them would cost each
# worker most of a CPU-second.
_LAZY = {
    "AccessLog": "audit",
    "audited": "audit",
    "Vault": "core",
    "VaultError": "core",
    "VaultStats": "core",
    "VaultWriter": "core",
    "dispose_vault": "core",
    "indexed_kinds": "core",
    "open_vault": "core",
    "IDENTITY_SCHEMA": "workspace",
    "Workspace": "workspace",
    "remove_stale_workspaces": "workspace",
    "to_record_batch": "workspace",
    "workspaces_root": "workspace",
}


def __getattr__(name: str) -> Any:
    """Load a name of the vault's API from its module when it is first used (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DOB_VALID",
    "FIELDS",
    "IDENTIFIERS",
    "IDENTITY_SCHEMA",
    "INDEXED_FIELDS",
    "NHS_NUMBER_VALID",
    "POSTCODE_VALID",
    "AccessLog",
    "IdentityRecord",
    "Sealer",
    "Vault",
    "VaultCryptoError",
    "VaultError",
    "VaultStats",
    "VaultWriter",
    "Workspace",
    "audited",
    "dispose_vault",
    "indexed_kinds",
    "lookup_digest",
    "open_vault",
    "remove_stale_workspaces",
    "to_record_batch",
    "workspaces_root",
]
