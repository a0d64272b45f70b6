"""The appender: batched, durable, crash-safe, multi-process appends to the tiled log.

Files, under the data home's ``ledger/``:

- ``public/`` holds exactly what the world sees, as C2SP static files: ``checkpoint``,
  ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``. The web app serves this directory
  as-is under ``/log/``.
- ``state/`` is private to the appender: ``append.lock`` (the cross-process lock),
  ``pending.json`` (the batch in flight) and ``witnesses.json`` (what each witness last cosigned).

The published checkpoint is the commit point. An append, under the lock: (1) writes
``pending.json`` naming the sizes it goes from and to, durably; (2) writes every new or changed
tile and bundle, each atomically, all fsynced with their directories; (3) signs and atomically
replaces ``checkpoint``; only then does it return the new indices. A crash before (3) leaves the
old checkpoint in force: the next appender sees ``pending.json``, deletes exactly the files the
unfinished batch may have written, and continues from the checkpoint. Nothing acknowledged is
lost, and the log never signs a checkpoint over data that is not on disk.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home, read_secret
from candour.ledger import checkpoint as cpmod
from candour.ledger import note, tiles, tree
from candour.ledger.storage import PosixStorage, Storage

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
Fetch = Callable[[str], bytes | None]
# (url, body) -> (status, content type, body); injectable so tests need no network.
Poster = Callable[[str, bytes], tuple[int, str, bytes]]


class LogError(CandourError):
    """The log cannot be read or appended to as it stands."""


def public_dir(home: Home) -> Path:
    """The directory of published C2SP files (served under ``/log/``)."""
    return home.ledger / "public"


def state_dir(home: Home) -> Path:
    """The appender's private state directory."""
    return home.ledger / "state"


class TileReader:
    """Perfect-subtree hashes and entries read from tiles, for a tree of a known size.

    ``size`` should be the size of a published checkpoint: the tiles for it exist, and their
    prefixes serve every smaller tree too.
    """

    def __init__(self, fetch: Fetch, size: int) -> None:
        self.fetch = fetch
        self.size = size
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def _get(self, path: str) -> bytes:
        data = self.fetch(path)
        if data is None:
            raise LogError(f"{path}: missing")
        return data

    def tile(self, level: int, index: int) -> list[bytes]:
        """The hashes of tile ``index`` at ``level``, as wide as the tree allows."""
        key = (level, index)
        cached = self._tiles.get(key)
        if cached is not None:
            return cached
        width = tiles.tile_width(level, index, self.size)
        if width == 0:
            raise LogError(f"tile {level}/{index} is beyond tree size {self.size}")
        path = tiles.tile_path(level, index, width)
        hashes = tiles.split_hashes(self._get(path), path)
        if len(hashes) != width:
            raise LogError(f"{path}: holds {len(hashes)} hashes, not {width}")
        self._tiles[key] = hashes
        return hashes

    def node(self, level: int, index: int) -> bytes:
        """The hash of the perfect subtree of ``2**level`` leaves at ``index``."""
        tile_level, height = divmod(level, tiles.TILE_HEIGHT)
        first = index << height
        hashes = self.tile(tile_level, first // tiles.TILE_WIDTH)
        return tiles.subtree_in_tile(hashes, first % tiles.TILE_WIDTH, height)

    def bundle(self, index: int) -> list[bytes]:
        """The entries of bundle ``index``."""
        width = tiles.tile_width(0, index, self.size)
        if width == 0:
            raise LogError(f"entry bundle {index} is beyond tree size {self.size}")
        path = tiles.entries_path(index, width)
        entries = tiles.decode_bundle(self._get(path), path)
        if len(entries) != width:
            raise LogError(f"{path}: holds {len(entries)} entries, not {width}")
        return entries

    def entry(self, index: int) -> bytes:
        """Entry ``index``."""
        if not 0 <= index < self.size:
            raise LogError(f"entry {index} is not in the log (size {self.size})")
        return self.bundle(index // tiles.TILE_WIDTH)[index % tiles.TILE_WIDTH]


@dataclass
class Edge:
    """The right edge of the tree: the partial tile at each level and the partial bundle.

    That is all an appender needs to extend the tree and compute its root.
    """

    size: int = 0
    bundle: list[bytes] = field(default_factory=list)
    levels: list[list[bytes]] = field(default_factory=list)

    @classmethod
    def load(cls, fetch: Fetch, size: int) -> Edge:
        """Read the right edge of a tree of ``size`` from its tiles."""
        reader = TileReader(fetch, size)
        levels: list[list[bytes]] = []
        for level in range(tiles.levels_for(size)):
            count = tiles.level_size(level, size)
            levels.append(reader.tile(level, count // 256) if count % 256 else [])
        bundle = reader.bundle(size // 256) if size % 256 else []
        if size % 256 and [tree.leaf_hash(e) for e in bundle] != levels[0]:
            raise LogError(f"{tiles.entries_path(size // 256, size % 256)}: does not match tile")
        return cls(size, list(bundle), [list(h) for h in levels])

    def root(self) -> bytes:
        """The root hash of the tree."""
        parts: list[bytes] = []
        for hashes in reversed(self.levels):
            pos, width = 0, len(hashes)
            for height in range(tiles.TILE_HEIGHT - 1, -1, -1):
                if width >> height & 1:
                    parts.append(tiles.subtree_in_tile(hashes, pos, height))
                    pos += 1 << height
        if not parts:
            return tree.EMPTY_ROOT
        acc = parts[-1]
        for h in reversed(parts[:-1]):
            acc = tree.node_hash(h, acc)
        return acc

    def extend(self, entries: Sequence[bytes]) -> tuple[Edge, dict[str, bytes]]:
        """The edge after appending ``entries``, and the files that must be written for it."""
        size = self.size
        bundle = list(self.bundle)
        levels = [list(h) for h in self.levels]
        files: dict[str, bytes] = {}
        leaf = tree.leaf_hash
        width = tiles.TILE_WIDTH
        for entry in entries:
            if len(entry) > tiles.MAX_ENTRY_SIZE:
                raise LogError(f"entry of {len(entry)} bytes exceeds {tiles.MAX_ENTRY_SIZE}")
            bundle.append(entry)
            h = leaf(entry)
            size += 1
            level = 0
            while True:
                if level == len(levels):
                    levels.append([])
                row = levels[level]
                row.append(h)
                if len(row) < width:
                    break
                index = tiles.level_size(level, size) // width - 1
                files[tiles.tile_path(level, index)] = b"".join(row)
                if level == 0:
                    files[tiles.entries_path(index)] = tiles.encode_bundle(bundle)
                    bundle = []
                h = tree.root_from_hashes(row)
                levels[level] = []
                level += 1
        new = Edge(size, bundle, levels)
        for ref in tiles.changed_tiles(self.size, size):
            if ref.width == width:
                continue  # written above, when the tile filled
            if ref.is_entries:
                files[ref.path] = tiles.encode_bundle(bundle)
            else:
                files[ref.path] = b"".join(levels[ref.level])
        return new, files


@dataclass(frozen=True)
class WitnessConfig:
    """A witness the log asks for cosignatures: its submission URL prefix and verifier key."""

    url: str
    verifier: note.Verifier

    @classmethod
    def parse(cls, text: str) -> WitnessConfig:
        """Parse ``"<vkey> <url>"``."""
        parts = text.split()
        if len(parts) != 2:
            raise LogError(f"witness setting {text!r} is not '<vkey> <url>'")
        try:
            verifier = note.parse_vkey(parts[0], (note.COSIGNATURE_V1,))
        except note.NoteError as exc:
            raise LogError(f"witness key {parts[0]!r}: {exc}") from exc
        return cls(parts[1].rstrip("/"), verifier)


def http_post(url: str, body: bytes) -> tuple[int, str, bytes]:
    """POST with httpx; network failures become status 0."""
    import httpx

    try:
        response = httpx.post(url, content=body, timeout=10.0)
    except httpx.HTTPError as exc:
        return 0, "", str(exc).encode()
    return response.status_code, response.headers.get("content-type", ""), response.content


class Log:
    """One log in one data home: appends and the proofs a reader needs."""

    def __init__(
        self,
        home: Home,
        signer: note.Signer,
        witnesses: Sequence[WitnessConfig] = (),
        post: Poster = http_post,
    ) -> None:
        self.home = home
        self.signer = signer
        self.origin = signer.name
        self.verifier = signer.verifier
        self.witnesses = tuple(witnesses)
        self.post = post
        self.storage: Storage = PosixStorage(public_dir(home))
        self.state = PosixStorage(state_dir(home))
        state_dir(home).mkdir(parents=True, exist_ok=True)
        public_dir(home).mkdir(parents=True, exist_ok=True)
        self._file_lock = FileLock(str(state_dir(home) / "append.lock"))
        self._thread_lock = threading.Lock()
        self._cached: tuple[bytes, Edge] | None = None

    @classmethod
    def open(cls, settings: Settings, post: Poster = http_post) -> Log:
        """The log of the home named by ``settings``, signing with the home's log key."""
        home = Home(settings.home)
        try:
            signer = note.parse_skey(read_secret(home.log_signing_key).decode(), (note.ED25519,))
        except note.NoteError as exc:
            raise LogError(f"{home.log_signing_key}: {exc}") from exc
        if signer.name != settings.log_origin:
            raise LogError(
                f"the log signing key is for {signer.name!r} but the log origin is "
                f"{settings.log_origin!r}; the origin of an existing log cannot change"
            )
        witnesses = [WitnessConfig.parse(w) for w in settings.log_witnesses]
        return cls(home, signer, witnesses, post)

    # -- reading -------------------------------------------------------------------------

    def read_checkpoint(self) -> tuple[cpmod.Checkpoint, bytes] | None:
        """The published checkpoint, verified with the log's own key, or None if none yet."""
        data = self.storage.read(CHECKPOINT)
        if data is None:
            return None
        try:
            cp, _ = cpmod.open_checkpoint(data, [self.verifier], self.origin)
        except cpmod.CheckpointError as exc:
            raise LogError(f"{public_dir(self.home) / CHECKPOINT}: {exc}") from exc
        return cp, data

    def reader(self, size: int | None = None) -> TileReader:
        """A tile reader for the published checkpoint (or a smaller ``size``)."""
        current = self.read_checkpoint()
        top = current[0].size if current else 0
        if size is not None and size > top:
            raise LogError(f"tree size {size} is beyond the published size {top}")
        return TileReader(self.storage.read, top)

    # -- appending -----------------------------------------------------------------------

    def _recover(self, committed: int) -> None:
        raw = self.state.read("pending.json")
        if raw is None:
            return
        pending = json.loads(raw)
        start, end = int(pending["from"]), int(pending["to"])
        if committed == start and end > start:
            # The batch never committed: remove whatever of it reached the disk.
            for ref in tiles.changed_tiles(start, end):
                self.storage.delete(ref.path)
            log.warning("ledger: undid an unfinished append of sizes %d..%d", start, end)
            self.state.delete("pending.json")

    def _edge(self) -> Edge:
        current = self.read_checkpoint()
        data = current[1] if current else b""
        committed = current[0].size if current else 0
        # Always, even with a warm cache: another process may have died mid-batch.
        self._recover(committed)
        if self._cached is not None and self._cached[0] == data:
            return self._cached[1]
        if current is None:
            if any(True for _ in self.storage.list("tile")):
                raise LogError(
                    f"{public_dir(self.home)} has tiles but no checkpoint; the log is damaged"
                )
            edge = Edge()
        else:
            edge = Edge.load(self.storage.read, committed)
            if edge.root() != current[0].root:
                raise LogError("the tiles at the right edge do not match the checkpoint")
        self._cached = (data, edge)
        return edge

    def append(self, entries: Sequence[bytes]) -> int:
        """Append a batch durably and return the index of its first entry."""
        if not entries:
            raise LogError("nothing to append")
        with self._thread_lock, self._file_lock:
            edge = self._edge()
            new, files = edge.extend(entries)
            self.state.write_many(
                {"pending.json": json.dumps({"from": edge.size, "to": new.size}).encode()}
            )
            self.storage.write_many(files)
            cp = cpmod.Checkpoint(self.origin, new.size, new.root())
            signed = cpmod.sign(cp, [self.signer])
            self.storage.write_many({CHECKPOINT: signed})
            self._cached = (signed, new)
            # pending.json is left behind on purpose: it is harmless once the checkpoint
            # covers it, and deleting it would cost another directory sync per batch.
            if self.witnesses:
                self._cosign(cp, signed)
            return edge.size

    # -- witnessing ----------------------------------------------------------------------

    def _cosign(self, cp: cpmod.Checkpoint, signed: bytes) -> None:
        raw = self.state.read("witnesses.json")
        seen: dict[str, int] = json.loads(raw) if raw else {}
        reader = TileReader(self.storage.read, cp.size)
        lines: list[str] = []
        for witness in self.witnesses:
            old = min(seen.get(witness.verifier.vkey(), 0), cp.size)
            status, body = 0, b""
            for _ in range(2):
                proof = tree.consistency_proof(old, cp.size, reader.node) if old else []
                request = (
                    f"old {old}\n".encode()
                    + b"".join(_b64(h) + b"\n" for h in proof)
                    + b"\n"
                    + signed
                )
                status, ctype, body = self.post(witness.url + "/add-checkpoint", request)
                if status == 409 and ctype.startswith("text/x.tlog.size"):
                    try:
                        theirs = int(body.decode().strip())
                    except ValueError:
                        break
                    if theirs > cp.size or theirs == old:
                        break
                    old = theirs
                    continue
                break
            if status != 200:
                log.warning("ledger: witness %s refused with %d: %r", witness.url, status, body)
                continue
            try:
                opened = note.open_note(cp.text() + b"\n" + body, [witness.verifier])
            except note.NoteError as exc:
                log.warning("ledger: witness %s returned a bad cosignature: %s", witness.url, exc)
                continue
            seen[witness.verifier.vkey()] = cp.size
            lines.extend(s.line() for s in opened.verified)
        self.state.write_many({"witnesses.json": json.dumps(seen).encode()})
        if lines:
            cosigned = signed + "".join(lines).encode()
            self.storage.write_many({CHECKPOINT: cosigned})
            if self._cached is not None:
                self._cached = (cosigned, self._cached[1])


def _b64(h: bytes) -> bytes:
    import base64

    return base64.b64encode(h)


_logs: dict[tuple[Path, str, tuple[str, ...]], Log] = {}
_logs_lock = threading.Lock()


def open_log(settings: Settings | None = None) -> Log:
    """The (cached) log for these settings."""
    settings = settings or Settings()
    key = (settings.home, settings.log_origin, tuple(settings.log_witnesses))
    with _logs_lock:
        found = _logs.get(key)
        if found is None:
            found = _logs[key] = Log.open(settings)
        return found


def close_log(settings: Settings) -> None:
    """Forget the cached log of this home (after the home was deleted or restored)."""
    with _logs_lock:
        for key in [k for k in _logs if k[0] == settings.home]:
            del _logs[key]
