"""Receipts: proof, checkable without trusting Candour, that a query was logged.

A receipt holds the query's ledger entry (the exact bytes of the leaf), its index, the signed
checkpoint that was newest when the query returned, and the inclusion proof of the entry in that
checkpoint's tree. Anyone with the log's public verifier key can check all three; anyone can then
check, with the log's consistency proofs, that later checkpoints still include it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from candour import ledger
from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home
from candour.ledger import checkpoint as cpmod
from candour.ledger import note, tree
from candour.ledger.log import open_log


class ReceiptError(CandourError):
    """A receipt does not verify."""


@dataclass(frozen=True)
class Receipt:
    """A query's ledger index, entry, inclusion proof and the signed checkpoint it proves into."""

    query_id: str
    ledger_index: int
    entry: bytes
    proof: ledger.InclusionProof
    checkpoint: bytes

    @property
    def fields(self) -> dict[str, Any]:
        """The public entry, parsed."""
        parsed: dict[str, Any] = json.loads(self.entry)
        return parsed

    def verify(self, verifier: note.Verifier) -> None:
        """Raise :class:`ReceiptError` unless the checkpoint is signed by ``verifier``, the
        proof leads from the entry to the checkpoint's root, and the index matches."""
        try:
            cp, _ = cpmod.open_checkpoint(self.checkpoint, [verifier], verifier.name)
        except cpmod.CheckpointError as exc:
            raise ReceiptError(f"the receipt's checkpoint does not verify: {exc}") from None
        if cp.size != self.proof.tree_size or cp.root != self.proof.root:
            raise ReceiptError("the inclusion proof is not for the receipt's checkpoint")
        if self.proof.index != self.ledger_index:
            raise ReceiptError("the inclusion proof is for another entry")
        if tree.leaf_hash(self.entry) != self.proof.leaf_hash:
            raise ReceiptError("the receipt's entry is not the leaf the proof is for")
        try:
            self.proof.verify()
        except ledger.ProofError as exc:
            raise ReceiptError(f"the inclusion proof does not verify: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """JSON form: entry as text, checkpoint as text, proof hashes in base64."""
        return {
            "query_id": self.query_id,
            "ledger_index": self.ledger_index,
            "entry": self.entry.decode(),
            "checkpoint": self.checkpoint.decode(),
            "inclusion_proof": self.proof.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Receipt:
        """Read back :meth:`to_json`'s output."""
        proof = data["inclusion_proof"]
        return cls(
            query_id=str(data["query_id"]),
            ledger_index=int(data["ledger_index"]),
            entry=str(data["entry"]).encode(),
            proof=ledger.InclusionProof(
                index=int(proof["index"]),
                tree_size=int(proof["tree_size"]),
                leaf_hash=base64.b64decode(proof["leaf_hash"]),
                hashes=tuple(base64.b64decode(h) for h in proof["hashes"]),
                root=base64.b64decode(proof["root"]),
            ),
            checkpoint=str(data["checkpoint"]).encode(),
        )


def receipt_for(query_id: str, index: int, settings: Settings) -> Receipt:
    """The receipt of a logged entry, against the newest published checkpoint."""
    current = open_log(settings).read_checkpoint()
    if current is None or current[0].size <= index:
        raise ReceiptError(f"entry {index} is not covered by a published checkpoint yet")
    cp, signed = current
    proof = ledger.inclusion_proof(index, cp.size, settings=settings)
    if proof.root != cp.root:
        raise ReceiptError("the log changed while the receipt was made; ask again")
    return Receipt(
        query_id=query_id,
        ledger_index=index,
        entry=ledger.entry(index, settings=settings),
        proof=proof,
        checkpoint=signed,
    )


def home_verifier(settings: Settings) -> note.Verifier:
    """The log's verifier key from the data home (what a receipt is checked against)."""
    return ledger.verifier_key(Home(settings.home))
