"""An outside auditor's check of the published log, from a directory or an http(s) URL.

It trusts only the log's verifier key. It checks the checkpoint signature; that the tiles at
the right edge hash to the signed root; with ``full``, every tile against the tile above it and
every entry bundle against its level-0 tile (so every stored byte is tied to the signed root),
and any older partial tiles it can list against the full ones; and that the checkpoint is
consistent with the last one it saw, kept in a small state file. The first failure is reported
with the name of the file at fault.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from candour.errors import CandourError
from candour.ledger import checkpoint as cpmod
from candour.ledger import note, tiles, tree
from candour.ledger.log import CHECKPOINT, LogError, TileReader


class VerifyError(CandourError):
    """The published log failed a check; ``path`` names the file at fault."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class Source(Protocol):
    """Where the published files come from."""

    name: str

    def get(self, path: str) -> bytes | None:
        """A file's bytes, or None when it does not exist."""
        ...

    def list(self) -> Iterator[str] | None:
        """Every file under ``tile/``, or None when the source cannot list."""
        ...


class DirSource:
    """Published files in a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = str(root)

    def get(self, path: str) -> bytes | None:
        """A file's bytes, or None."""
        try:
            return (self.root / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def list(self) -> Iterator[str] | None:
        """Every non-temporary file under ``tile/``."""
        base = self.root / "tile"

        def walk() -> Iterator[str]:
            for dirpath, _dirs, files in os.walk(base):
                for name in files:
                    if not name.startswith("."):
                        yield Path(dirpath, name).relative_to(self.root).as_posix()

        return walk()


class HttpSource:
    """Published files under an http(s) URL prefix."""

    def __init__(self, url: str) -> None:
        import httpx

        self.name = url
        self._client = httpx.Client(base_url=url.rstrip("/") + "/", timeout=30.0)

    def get(self, path: str) -> bytes | None:
        """A file's bytes, or None on 404."""
        import httpx

        try:
            response = self._client.get(path)
        except httpx.HTTPError as exc:
            raise VerifyError(path, f"cannot fetch: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise VerifyError(path, f"HTTP {response.status_code}")
        return response.content

    def list(self) -> Iterator[str] | None:
        """HTTP cannot list files."""
        return None


def source_for(location: str | Path) -> Source:
    """A directory or URL source."""
    text = str(location)
    if text.startswith(("http://", "https://")):
        return HttpSource(text)
    path = Path(text)
    if not path.is_dir():
        raise CandourError(f"{path} is not a directory or an http(s) URL")
    return DirSource(path)


@dataclass
class Report:
    """What a successful verification established."""

    origin: str
    size: int
    root: bytes
    full: bool
    previous_size: int | None
    files_checked: int = 0
    entries_checked: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        line = f"OK {self.origin} size {self.size} root {base64.b64encode(self.root).decode()}"
        if self.full:
            line += f"; checked {self.files_checked} files and {self.entries_checked} entries"
        if self.previous_size is not None:
            line += f"; consistent with size {self.previous_size} seen before"
        return line


def _need(source: Source, path: str) -> bytes:
    data = source.get(path)
    if data is None:
        raise VerifyError(path, "missing")
    return data


def _fold(partials: list[list[bytes]]) -> bytes:
    parts: list[bytes] = []
    for hashes in reversed(partials):
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


class _Tiles:
    """Tiles for one tree size, fetched once, with shape checks that name the file."""

    def __init__(self, source: Source, size: int) -> None:
        self.source = source
        self.size = size
        self.raw: dict[tuple[int, int], bytes] = {}
        self.fetched = 0

    def get(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self.raw:
            width = tiles.tile_width(level, index, self.size)
            path = tiles.tile_path(level, index, width)
            data = _need(self.source, path)
            self.fetched += 1
            if len(data) != width * tree.HASH_SIZE:
                raise VerifyError(path, f"is {len(data)} bytes, not {width} hashes")
            self.raw[key] = data
        return self.raw[key]

    def hashes(self, level: int, index: int) -> list[bytes]:
        return tiles.split_hashes(self.get(level, index))


def _leaf_hashes(source: Source, index: int, width: int) -> tuple[str, list[bytes], bytes]:
    path = tiles.entries_path(index, width)
    data = _need(source, path)
    try:
        entries = tiles.decode_bundle(data, path)
    except tiles.TileError as exc:
        raise VerifyError(path, str(exc)) from exc
    if len(entries) != width:
        raise VerifyError(path, f"holds {len(entries)} entries, not {width}")
    leaf = tree.leaf_hash
    return path, entries, b"".join(leaf(e) for e in entries)


def _check_right_edge(source: Source, cp: cpmod.Checkpoint, store: _Tiles) -> None:
    size = cp.size
    partials: list[list[bytes]] = []
    paths: list[str] = []
    for level in range(tiles.levels_for(size)):
        count = tiles.level_size(level, size)
        if count % 256:
            partials.append(store.hashes(level, count // 256))
            paths.append(tiles.tile_path(level, count // 256, count % 256))
        else:
            partials.append([])
    if _fold(partials) == cp.root:
        return
    # Work out which stored partial tile is wrong by rebuilding each one from the level below.
    derived: list[list[bytes]] = []
    for level, stored in enumerate(partials):
        if not stored:
            derived.append([])
            continue
        count = tiles.level_size(level, size)
        first = count // 256 * 256
        if level == 0:
            try:
                _, _, leaves = _leaf_hashes(source, count // 256, count % 256)
                derived.append(tiles.split_hashes(leaves))
            except VerifyError:
                derived.append(stored)
            continue
        rows = []
        for k in range(first, count):
            rows.append(tree.root_from_hashes(store.hashes(level - 1, k)))
        derived.append(rows)
    if _fold(derived) == cp.root:
        for level, (stored, good) in enumerate(zip(partials, derived, strict=True)):
            if stored != good:
                count = tiles.level_size(level, size)
                raise VerifyError(
                    tiles.tile_path(level, count // 256, count % 256),
                    "does not hash to the signed root",
                )
    raise VerifyError(paths[-1] if paths else CHECKPOINT, "tiles do not hash to the signed root")


def _check_full(source: Source, cp: cpmod.Checkpoint, store: _Tiles, report: Report) -> None:
    size = cp.size
    top = tiles.levels_for(size)
    # Top down: each tile is trusted once its parent hash (or the root) vouches for it.
    for level in range(top - 1, 0, -1):
        for ref in tiles.tiles_for(size, level):
            parent = store.hashes(level, ref.index)
            for i, expected in enumerate(parent):
                child = ref.index * 256 + i
                child_hashes = store.hashes(level - 1, child)
                if tree.root_from_hashes(child_hashes) != expected:
                    raise VerifyError(
                        tiles.tile_path(level - 1, child), "does not match the tile above it"
                    )
    for ref in tiles.tiles_for(size, 0):
        path, entries, leaves = _leaf_hashes(source, ref.index, ref.width)
        report.files_checked += 1
        expected = store.get(0, ref.index)
        if leaves != expected:
            bad = next(
                i
                for i in range(len(entries))
                if leaves[i * 32 : i * 32 + 32] != expected[i * 32 : i * 32 + 32]
            )
            raise VerifyError(path, f"entry {ref.index * 256 + bad} does not match its tile")
        report.entries_checked += len(entries)
    listing = source.list()
    if listing is None:
        report.notes.append("source cannot list files: older partial tiles were not checked")
        return
    current = {r.path for lvl in range(top) for r in tiles.tiles_for(size, lvl)}
    current |= {tiles.entries_path(r.index, r.width) for r in tiles.tiles_for(size, 0)}
    for path in sorted(listing):
        try:
            ref = tiles.parse_path(path)
        except tiles.TileError:
            report.notes.append(f"{path}: not a tile path, ignored")
            continue
        if path in current:
            continue
        if not tiles.covered(ref, size):
            report.notes.append(f"{path}: beyond the checkpoint, ignored")
            continue
        if ref.width == tiles.TILE_WIDTH:
            continue  # a full tile inside the tree is one of the current ones
        data = _need(source, path)
        report.files_checked += 1
        n = ref.width
        if ref.is_entries:
            try:
                entries = tiles.decode_bundle(data, path)
            except tiles.TileError as exc:
                raise VerifyError(path, str(exc)) from exc
            good = store.get(0, ref.index)[: n * 32]
            if len(entries) != n or b"".join(tree.leaf_hash(e) for e in entries) != good:
                raise VerifyError(path, "does not match the entries in the signed tree")
        elif data != store.get(ref.level, ref.index)[: n * 32]:
            raise VerifyError(path, "does not match the hashes in the signed tree")


def _load_state(path: Path | None) -> dict[str, dict[str, object]]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise CandourError(f"{path}: verifier state is not JSON") from exc
    return data if isinstance(data, dict) else {}


def _save_state(path: Path, state: dict[str, dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def verify(
    source: Source,
    verifier: note.Verifier,
    *,
    full: bool = False,
    state_path: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Verify the published log at ``source`` with the log's ``verifier`` key.

    Raises :class:`VerifyError` naming the first file that fails. When ``state_path`` is given,
    the checkpoint must be consistent with the one recorded there, and is recorded on success.
    """
    data = _need(source, CHECKPOINT)
    try:
        cp, _ = cpmod.open_checkpoint(data, [verifier], verifier.name)
    except cpmod.CheckpointError as exc:
        raise VerifyError(CHECKPOINT, str(exc)) from exc
    state = _load_state(state_path)
    seen = state.get(cp.origin)
    report = Report(cp.origin, cp.size, cp.root, full, None)
    store = _Tiles(source, cp.size)
    try:
        _check_right_edge(source, cp, store)
        if full:
            _check_full(source, cp, store, report)
            report.files_checked += store.fetched + 1
        if seen is not None:
            _check_consistent(source, cp, seen, store)
            report.previous_size = int(str(seen["size"]))
    except LogError as exc:
        path, _, reason = str(exc).partition(": ")
        raise VerifyError(path, reason or "cannot be read") from exc
    except tiles.TileError as exc:
        raise VerifyError(CHECKPOINT, f"tiles are malformed: {exc}") from exc
    if state_path is not None:
        state[cp.origin] = {
            "size": cp.size,
            "root": base64.b64encode(cp.root).decode(),
            "checkpoint": data.decode(),
        }
        _save_state(state_path, state)
    return report


def _check_consistent(
    source: Source, cp: cpmod.Checkpoint, seen: dict[str, object], store: _Tiles
) -> None:
    old_size = int(str(seen["size"]))
    old_root = base64.b64decode(str(seen["root"]))
    if cp.size < old_size:
        raise VerifyError(
            CHECKPOINT, f"tree size went back from {old_size} to {cp.size} since the last check"
        )
    if cp.size == old_size:
        if cp.root != old_root:
            raise VerifyError(
                CHECKPOINT, f"root differs from the checkpoint seen before at size {old_size}"
            )
        return
    if old_size == 0:
        return
    by_path = {
        tiles.tile_path(lvl, idx, tiles.tile_width(lvl, idx, cp.size)): raw
        for (lvl, idx), raw in store.raw.items()
    }
    reader = TileReader(lambda path: by_path.get(path) or source.get(path), cp.size)
    proof = tree.consistency_proof(old_size, cp.size, reader.node)
    try:
        tree.verify_consistency(old_size, cp.size, proof, old_root, cp.root)
    except tree.ProofError as exc:
        raise VerifyError(
            CHECKPOINT, f"not consistent with the checkpoint seen before at size {old_size}: {exc}"
        ) from exc
