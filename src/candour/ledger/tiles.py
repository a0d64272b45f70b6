"""C2SP tlog-tiles v0.1.0 layout maths: tile and entry-bundle paths, widths and encodings.

Pure functions. A tile at level ``L`` and index ``N`` holds up to 256 consecutive hashes of
perfect subtrees of ``256**L`` leaves; a full tile is exactly 256 hashes (8,192 bytes), and the
rightmost tile of each level is *partial*, served as ``<N>.p/<W>``. Entry bundles mirror the
level-0 tiles and hold big-endian uint16 length-prefixed entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from candour.ledger.tree import HASH_SIZE, node_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_ENTRY_SIZE = 0xFFFF
MAX_LEVEL = 63


class TileError(ValueError):
    """A tile path or tile content does not follow tlog-tiles."""


def encode_index(index: int) -> str:
    """Encode a tile index as zero-padded 3-digit path elements, all but the last ``x``-prefixed.

    >>> encode_index(1234067)
    'x001/x234/067'
    """
    if index < 0:
        raise TileError(f"tile index {index} is negative")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index > 0:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _suffix(width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise TileError(f"tile width {width} is not between 1 and {TILE_WIDTH}")
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` for a hash tile."""
    if not 0 <= level <= MAX_LEVEL:
        raise TileError(f"tile level {level} is not between 0 and {MAX_LEVEL}")
    return f"tile/{level}/{encode_index(index)}{_suffix(width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]`` for an entry bundle."""
    return f"tile/entries/{encode_index(index)}{_suffix(width)}"


_PATH = re.compile(
    r"^tile/(?P<level>entries|0|[1-9][0-9]?)/(?P<index>(?:x\d{3}/)*\d{3})(?:\.p/(?P<w>[1-9]\d{0,2}))?$"
)


@dataclass(frozen=True, order=True)
class TileRef:
    """A parsed tile path. ``level`` is -1 for entry bundles."""

    level: int
    index: int
    width: int

    @property
    def is_entries(self) -> bool:
        """True for an entry bundle."""
        return self.level < 0

    @property
    def path(self) -> str:
        """The path this reference names."""
        if self.is_entries:
            return entries_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)


def parse_path(path: str) -> TileRef:
    """Parse a tile or entry-bundle path; raise :class:`TileError` if it is not canonical."""
    m = _PATH.match(path)
    if m is None:
        raise TileError(f"{path} is not a tlog-tiles path")
    level = -1 if m["level"] == "entries" else int(m["level"])
    index = int(m["index"].replace("x", "").replace("/", ""))
    width = int(m["w"]) if m["w"] else TILE_WIDTH
    ref = TileRef(level, index, width)
    if level > MAX_LEVEL or ref.path != path:
        raise TileError(f"{path} is not a canonical tlog-tiles path")
    return ref


def level_size(level: int, size: int) -> int:
    """How many complete level-``level`` hashes a tree of ``size`` leaves has."""
    return size >> (TILE_HEIGHT * level)


def partial_width(level: int, size: int) -> int:
    """The width of the partial tile at ``level`` for a tree of ``size`` (0: none)."""
    return level_size(level, size) % TILE_WIDTH


def tile_width(level: int, index: int, size: int) -> int:
    """Width of tile ``index`` at ``level`` in a tree of ``size`` (0 if it does not exist)."""
    return max(0, min(TILE_WIDTH, level_size(level, size) - index * TILE_WIDTH))


def levels_for(size: int) -> int:
    """How many tile levels a tree of ``size`` has (0 for the empty tree)."""
    levels = 0
    while level_size(levels, size) > 0:
        levels += 1
    return levels


def tiles_for(size: int, level: int) -> Iterator[TileRef]:
    """Every tile (full, then the partial one if any) at ``level`` for a tree of ``size``."""
    count = level_size(level, size)
    for index in range(count // TILE_WIDTH):
        yield TileRef(level, index, TILE_WIDTH)
    if count % TILE_WIDTH:
        yield TileRef(level, count // TILE_WIDTH, count % TILE_WIDTH)


def changed_tiles(old_size: int, new_size: int) -> list[TileRef]:
    """The tiles and bundles whose content differs between two tree sizes (``old < new``).

    These are exactly the files an append from ``old_size`` to ``new_size`` writes, so a crashed
    append can be undone by deleting them.
    """
    refs: list[TileRef] = []
    for level in range(-1, levels_for(new_size)):
        lvl = max(level, 0)
        old, new = level_size(lvl, old_size), level_size(lvl, new_size)
        if old == new:
            continue
        for index in range(old // TILE_WIDTH, new // TILE_WIDTH):
            refs.append(TileRef(level, index, TILE_WIDTH))
        if new % TILE_WIDTH:
            refs.append(TileRef(level, new // TILE_WIDTH, new % TILE_WIDTH))
    return refs


def covered(ref: TileRef, size: int) -> bool:
    """True when every hash or entry in the tile lies within a tree of ``size``."""
    level = max(ref.level, 0)
    return (ref.index * TILE_WIDTH + ref.width) <= level_size(level, size)


def split_hashes(data: bytes, where: str = "tile") -> list[bytes]:
    """Split a hash tile into its 32-byte hashes."""
    if len(data) % HASH_SIZE or not data or len(data) > TILE_WIDTH * HASH_SIZE:
        raise TileError(f"{where} is {len(data)} bytes, not a whole number of hashes up to 256")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length then its bytes."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise TileError(f"entry of {len(entry)} bytes exceeds {MAX_ENTRY_SIZE}")
        out += len(entry).to_bytes(2, "big")
        out += entry
    return bytes(out)


def decode_bundle(data: bytes, where: str = "entry bundle") -> list[bytes]:
    """Parse an entry bundle; raise :class:`TileError` on truncation or excess entries."""
    entries: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        if pos + 2 > end:
            raise TileError(f"{where} is truncated in a length prefix")
        n = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if pos + n > end:
            raise TileError(f"{where} is truncated inside entry {len(entries)}")
        entries.append(data[pos : pos + n])
        pos += n
        if len(entries) > TILE_WIDTH:
            raise TileError(f"{where} holds more than {TILE_WIDTH} entries")
    return entries


def subtree_in_tile(hashes: Sequence[bytes], start: int, height: int) -> bytes:
    """The hash of the perfect subtree of ``2**height`` tile hashes beginning at ``start``."""
    level = list(hashes[start : start + (1 << height)])
    if len(level) != 1 << height:
        raise TileError("tile is too narrow for the requested subtree")
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]
