"""A C2SP tlog-witness v1.0.0 that cosigns checkpoints per tlog-cosignature v1.0.1 (Ed25519).

For each log it trusts (by origin and verifier key) the witness keeps the latest checkpoint it
cosigned, in its own directory. It cosigns a new checkpoint only if the consistency proof from
that size verifies, so it never cosigns two views of one log that cannot both be true: a split
view is refused with 409 (wrong old size, or same size with another root) or 422 (the proof
fails), and the refused request is kept as evidence. Checking and updating the stored size
happen under one file lock, so concurrent requests cannot roll the witness back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from filelock import FileLock
from starlette.concurrency import run_in_threadpool

from candour.ledger import checkpoint as cpmod
from candour.ledger import note, tree
from candour.ledger.storage import PosixStorage

SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
MAX_BODY = 1 << 20
_OLD = re.compile(r"^old (0|[1-9][0-9]*)$")


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, content type and body."""

    status: int
    content_type: str
    body: bytes


def _text(status: int, message: str) -> Reply:
    return Reply(status, "text/plain; charset=utf-8", (message + "\n").encode())


class Witness:
    """The add-checkpoint logic, independent of any HTTP framework."""

    def __init__(
        self,
        signer: note.Signer,
        logs: Mapping[str, Sequence[note.Verifier]],
        state: Path,
    ) -> None:
        if signer.key_type != note.COSIGNATURE_V1:
            raise ValueError("a witness signs with a cosignature (type 0x04) key")
        self.signer = signer
        self.logs = {origin: tuple(keys) for origin, keys in logs.items()}
        self.state = state
        self.store = PosixStorage(state, file_mode=0o600)
        state.mkdir(parents=True, exist_ok=True)

    def _name(self, origin: str) -> str:
        return hashlib.sha256(origin.encode()).hexdigest()[:32]

    def latest(self, origin: str) -> dict[str, Any] | None:
        """What this witness last cosigned for ``origin``: size, root and checkpoint."""
        raw = self.store.read(self._name(origin) + ".json")
        return json.loads(raw) if raw else None

    def _evidence(self, origin: str, body: bytes, reason: str) -> None:
        # Kept because a log-signed checkpoint that fails to extend history proves misbehaviour.
        name = f"evidence/{self._name(origin)}-{time.time_ns()}-{secrets.token_hex(4)}"
        self.store.write_many({name + ".req": body, name + ".why": reason.encode()})

    def add_checkpoint(self, body: bytes, timestamp: int | None = None) -> Reply:
        """Handle one ``POST <prefix>/add-checkpoint`` request body."""
        if len(body) > MAX_BODY:
            return _text(400, "request too large")
        parsed = _parse_request(body)
        if isinstance(parsed, Reply):
            return parsed
        old, proof, signed = parsed
        try:
            cp = cpmod.parse_text(note.parse(signed).text)
        except (note.NoteError, cpmod.CheckpointError) as exc:
            return _text(400, f"malformed checkpoint: {exc}")
        keys = self.logs.get(cp.origin)
        if keys is None:
            return _text(404, "unknown log origin")
        try:
            note.open_note(signed, keys)
        except note.NoteError:
            return _text(403, "checkpoint is not signed by a trusted log key")
        if old > cp.size:
            return _text(400, "old size is above the checkpoint size")
        with FileLock(str(self.state / (self._name(cp.origin) + ".lock"))):
            latest = self.latest(cp.origin)
            have_size = int(latest["size"]) if latest else 0
            have_root = base64.b64decode(latest["root"]) if latest else tree.EMPTY_ROOT
            if old != have_size:
                return Reply(409, SIZE_CONTENT_TYPE, f"{have_size}\n".encode())
            if old == cp.size:
                if proof:
                    return _text(422, "proof must be empty when the sizes are equal")
                if cp.root != have_root:
                    self._evidence(cp.origin, body, "same size, different root")
                    return Reply(409, SIZE_CONTENT_TYPE, f"{have_size}\n".encode())
            elif old == 0:
                if proof:
                    return _text(422, "proof must be empty when the old size is zero")
            else:
                try:
                    tree.verify_consistency(old, cp.size, proof, have_root, cp.root)
                except tree.ProofError as exc:
                    self._evidence(cp.origin, body, f"consistency proof failed: {exc}")
                    return _text(422, f"consistency proof does not verify: {exc}")
            record = {
                "origin": cp.origin,
                "size": cp.size,
                "root": base64.b64encode(cp.root).decode(),
                "checkpoint": signed.decode(),
            }
            # Persist before answering: a cosignature must never outrun the witness's memory.
            self.store.write_many({self._name(cp.origin) + ".json": json.dumps(record).encode()})
        line = self.signer.sign(cp.text(), timestamp)
        return Reply(200, "text/plain; charset=utf-8", line.encode())


def _parse_request(body: bytes) -> tuple[int, list[bytes], bytes] | Reply:
    lines: list[bytes] = []
    pos = 0
    while True:
        end = body.find(b"\n", pos)
        if end < 0:
            return _text(400, "request ends before the blank line")
        line = body[pos:end]
        pos = end + 1
        if not line:
            break
        lines.append(line)
        if len(lines) > MAX_PROOF_LINES + 1:
            return _text(400, "too many consistency proof lines")
    if not lines:
        return _text(400, "missing old size line")
    match = _OLD.match(lines[0].decode("ascii", "replace"))
    if match is None:
        return _text(400, "first line must be 'old <size>'")
    old = int(match[1])
    if old > tree.MAX_U64:
        return _text(400, "old size is not a 64-bit integer")
    proof: list[bytes] = []
    for raw in lines[1:]:
        try:
            h = base64.b64decode(raw, validate=True)
        except binascii.Error:
            return _text(400, "proof line is not base64")
        if len(h) != tree.HASH_SIZE:
            return _text(400, "proof line is not a 32-byte hash")
        proof.append(h)
    return old, proof, body[pos:]


def create_app(witness: Witness) -> FastAPI:
    """A FastAPI app serving ``POST /add-checkpoint`` for ``witness``."""
    app = FastAPI(title="Candour witness", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        reply = await run_in_threadpool(witness.add_checkpoint, body)
        return Response(reply.body, status_code=reply.status, media_type=reply.content_type)

    return app
