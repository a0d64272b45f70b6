"""C2SP tlog-checkpoint v1.0.0: the signed tree head as a note.

The note text is the origin line, the decimal tree size with no leading zeroes, the base64 root
hash, and optional non-empty extension lines, each ending in a newline.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from candour.ledger import note
from candour.ledger.tree import HASH_SIZE, MAX_U64

_SIZE = re.compile(r"^(0|[1-9][0-9]*)$")


class CheckpointError(ValueError):
    """A checkpoint is malformed or not signed by the expected key."""


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size and root (and extension lines, which Candour does not write)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> bytes:
        """The note text of this checkpoint."""
        root = base64.b64encode(self.root).decode()
        lines = [self.origin, str(self.size), root, *self.extensions]
        return ("\n".join(lines) + "\n").encode()


def parse_text(text: bytes) -> Checkpoint:
    """Parse checkpoint note text strictly."""
    try:
        body = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError("checkpoint is not valid UTF-8") from exc
    if not body.endswith("\n"):
        raise CheckpointError("checkpoint text does not end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint has fewer than three lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise CheckpointError("checkpoint origin is empty")
    if not _SIZE.match(size_text) or int(size_text) > MAX_U64:
        raise CheckpointError(f"checkpoint size {size_text!r} is not a canonical decimal")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError("checkpoint root is not base64") from exc
    if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
        raise CheckpointError("checkpoint root is not a canonical base64 SHA-256 hash")
    if any(not line for line in extensions):
        raise CheckpointError("checkpoint has an empty extension line")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def sign(checkpoint: Checkpoint, signers: Sequence[note.Signer]) -> bytes:
    """The checkpoint as a signed note."""
    return note.sign(checkpoint.text(), signers)


def open_checkpoint(
    data: bytes, verifiers: Sequence[note.Verifier], origin: str | None = None
) -> tuple[Checkpoint, note.Note]:
    """Verify a signed checkpoint and parse it; the origin must match when given."""
    try:
        opened = note.open_note(data, verifiers)
    except note.NoteError as exc:
        raise CheckpointError(str(exc)) from exc
    checkpoint = parse_text(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint, opened
