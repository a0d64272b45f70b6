"""Store tables for ingest and the identity vault's audit trail (migration 0002).

The vault keeps identities in its own database (``vault.db``) so it can be secured and backed up
separately; who read them, when and why is recorded here, in the operational store, where the
governance tools (and the information-governance lead) look.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from candour.store.models import Base, utcnow


class VaultAccess(Base):
    """One deliberate read of the identity vault: who, why, what scope, and how many records.

    The row is written (and committed) before any identity is decrypted, so an access that
    cannot be recorded does not happen; ``records`` and ``finished_at`` are filled in when it
    completes, and stay empty if the reader failed or stopped early.
    """

    __tablename__ = "vault_access"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(500))
    # "identities" (decrypted records), "lookup" (exact-identifier index search), "records".
    operation: Mapped[str] = mapped_column(String(32), index=True)
    scope: Mapped[str] = mapped_column(String(256))
    workspace: Mapped[str | None] = mapped_column(String(64), nullable=True)
    records: Mapped[int | None] = mapped_column(Integer, nullable=True)
