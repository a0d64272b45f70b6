"""``candour init``: lay out a data home, generate its keys, and migrate its store.

Safe to run again at any time: existing keys are never overwritten and migrations only move
forward.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from candour import __version__, ledger
from candour.config import Settings
from candour.home import Home, write_secret_once
from candour.store import HomeInfo, migrate, transaction

SYMMETRIC_KEY_BYTES = 32  # AES-256-GCM for the vault; HMAC-SHA-256 for commitments


@dataclass
class InitReport:
    """What ``initialise_home`` did."""

    home: Path
    keys_created: list[Path] = field(default_factory=list)
    store_revision: str = ""
    home_id: str = ""


def initialise_home(settings: Settings) -> InitReport:
    """Create the data home described by ``settings``, idempotently."""
    home = Home(settings.home)
    home.create_directories()
    report = InitReport(home=home.root)
    for path in (home.vault_key, home.hmac_key):
        if write_secret_once(path, lambda: secrets.token_bytes(SYMMETRIC_KEY_BYTES)):
            report.keys_created.append(path)
    report.keys_created.extend(
        ledger.ensure_keys(home, origin=settings.log_origin, witness_name=settings.witness_name)
    )
    report.store_revision = migrate(settings)
    with transaction(settings) as session:
        info = session.scalars(select(HomeInfo)).first()
        if info is None:
            info = HomeInfo(home_id=uuid.uuid4().hex, created_by_version=__version__)
            session.add(info)
        report.home_id = info.home_id
    return report
