"""Read-only views of the public log for the web: checkpoint, cosignatures, entries, proofs.

Everything here reads the published C2SP files in ``<home>/ledger/public`` and checks them with
the log's *verifier* key, so the web process never needs the log's private signing key.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from candour.config import Settings
from candour.home import Home
from candour.ledger import InclusionProof, LogError, note, public_dir, tree, verifier_key
from candour.ledger import checkpoint as cpmod
from candour.ledger.log import CHECKPOINT, TileReader, WitnessConfig
from candour.ledger.storage import PosixStorage

MAX_PAGE = 100


class CosignatureView(BaseModel):
    """One signature line on the checkpoint, with what we know about its signer."""

    name: str
    key_id: str
    role: str  # "log", "witness" (a configured witness) or "unknown"
    verified: bool
    timestamp: int | None = None
    time: str | None = None


class CheckpointView(BaseModel):
    """The newest signed checkpoint, parsed, with every signature on it."""

    origin: str
    size: int
    root: str
    text: str
    note: str
    verifier_key: str
    signatures: list[CosignatureView]


class EntryView(BaseModel):
    """One entry: its index, leaf hash and parsed JSON (the exact bytes are canonical JSON)."""

    index: int
    leaf_hash: str
    kind: str | None
    time: str | None
    entry: dict[str, Any]


class EntryPage(BaseModel):
    """A run of entries from ``start``, newest tree size first known."""

    tree_size: int
    start: int
    limit: int
    entries: list[EntryView]
    next_start: int | None
    previous_start: int | None


class ProofBundle(BaseModel):
    """Everything needed to check one entry offline: entry bytes, proof and signed checkpoint."""

    index: int
    entry: dict[str, Any]
    entry_base64: str
    proof: dict[str, Any]
    checkpoint: str


class NotFound(LookupError):
    """The entry or checkpoint asked for is not (yet) in the log."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class PublicLog:
    """A snapshot of the published log, read through the verifier key."""

    def __init__(self, settings: Settings) -> None:
        home = Home(settings.home)
        self.settings = settings
        self.storage = PosixStorage(public_dir(home))
        self.verifier = verifier_key(home)
        self.witnesses = [WitnessConfig.parse(w) for w in settings.log_witnesses]
        data = self.storage.read(CHECKPOINT)
        if data is None:
            self.checkpoint: cpmod.Checkpoint | None = None
            self.signed = b""
            self.reader = TileReader(self.storage.read, 0)
            return
        try:
            self.checkpoint, _ = cpmod.open_checkpoint(
                data, [self.verifier], self.verifier.name
            )
        except cpmod.CheckpointError as exc:
            raise LogError(f"the published checkpoint does not verify: {exc}") from exc
        self.signed = data
        self.reader = TileReader(self.storage.read, self.checkpoint.size)

    @property
    def size(self) -> int:
        """The published tree size (0 before the first entry)."""
        return self.checkpoint.size if self.checkpoint else 0

    def checkpoint_view(self) -> CheckpointView:
        """The checkpoint and its signatures; raises :class:`NotFound` before the first entry."""
        if self.checkpoint is None:
            raise NotFound("the log has no checkpoint yet")
        parsed = note.parse(self.signed)
        known = {(self.verifier.name, self.verifier.id): ("log", self.verifier)}
        for witness in self.witnesses:
            known[(witness.verifier.name, witness.verifier.id)] = ("witness", witness.verifier)
        signatures = []
        for sig in parsed.signatures:
            role, verifier = known.get((sig.name, sig.id), ("unknown", None))
            stamp = None
            if role != "log" and len(sig.signature) == 72:
                stamp = int.from_bytes(sig.signature[:8], "big")
            signatures.append(
                CosignatureView(
                    name=sig.name,
                    key_id=f"{sig.id:08x}",
                    role=role,
                    verified=bool(verifier and verifier.verify(parsed.text, sig.signature)),
                    timestamp=stamp,
                    time=(
                        datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                        if stamp is not None and stamp < 253402300800
                        else None
                    ),
                )
            )
        return CheckpointView(
            origin=self.checkpoint.origin,
            size=self.checkpoint.size,
            root=_b64(self.checkpoint.root),
            text=parsed.text.decode(),
            note=self.signed.decode(),
            verifier_key=self.verifier.vkey(),
            signatures=signatures,
        )

    def _entry_view(self, index: int) -> EntryView:
        data = self.reader.entry(index)
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        entry = parsed if isinstance(parsed, dict) else {}
        kind, time = entry.get("kind"), entry.get("time")
        return EntryView(
            index=index,
            leaf_hash=_b64(tree.leaf_hash(data)),
            kind=kind if isinstance(kind, str) else None,
            time=time if isinstance(time, str) else None,
            entry=entry,
        )

    def entry(self, index: int) -> EntryView:
        """Entry ``index``; raises :class:`NotFound` outside the published tree."""
        if not 0 <= index < self.size:
            raise NotFound(f"entry {index} is not in the log (size {self.size})")
        return self._entry_view(index)

    def entries(self, start: int, limit: int) -> EntryPage:
        """Up to ``limit`` (at most 100) entries from ``start``."""
        limit = max(1, min(limit, MAX_PAGE))
        start = max(0, start)
        end = min(start + limit, self.size)
        items = [self._entry_view(i) for i in range(start, end)]
        return EntryPage(
            tree_size=self.size,
            start=start,
            limit=limit,
            entries=items,
            next_start=end if end < self.size else None,
            previous_start=max(0, start - limit) if start > 0 else None,
        )

    def proof(self, index: int) -> ProofBundle:
        """Entry ``index`` with its inclusion proof in the published tree, checked before use."""
        if not 0 <= index < self.size or self.checkpoint is None:
            raise NotFound(f"entry {index} is not in the log (size {self.size})")
        data = self.reader.entry(index)
        hashes = tree.inclusion_proof(index, self.size, self.reader.node)
        proof = InclusionProof(
            index, self.size, tree.leaf_hash(data), tuple(hashes), self.checkpoint.root
        )
        # Never hand out a proof that would not verify: that would be a false accusation.
        proof.verify()
        return ProofBundle(
            index=index,
            entry=self._entry_view(index).entry,
            entry_base64=_b64(data),
            proof=proof.to_json(),
            checkpoint=self.signed.decode(),
        )
