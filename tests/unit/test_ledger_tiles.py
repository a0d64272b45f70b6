"""tlog-tiles layout maths."""

from __future__ import annotations

import pytest

from candour.ledger import tiles


def test_index_encoding_matches_the_spec_example() -> None:
    assert tiles.encode_index(1234067) == "x001/x234/067"
    assert tiles.encode_index(0) == "000"
    assert tiles.encode_index(1000) == "x001/000"
    assert tiles.tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tiles.tile_path(1, 5, 17) == "tile/1/005.p/17"
    assert tiles.entries_path(3, 255) == "tile/entries/003.p/255"
    with pytest.raises(tiles.TileError):
        tiles.tile_path(64, 0)
    with pytest.raises(tiles.TileError):
        tiles.tile_path(0, 0, 0)


def test_parse_round_trips_and_rejects_non_canonical_paths() -> None:
    for path in ("tile/0/x001/x234/067", "tile/entries/000.p/5", "tile/2/000.p/1"):
        assert tiles.parse_path(path).path == path
    assert tiles.parse_path("tile/entries/001").is_entries
    for bad in (
        "tile/0/1",
        "tile/0/001.p/0",
        "tile/0/001.p/256",
        "tile/00/001",
        "tile/0/x000/001",
        "tile/64/000",
        "tile/0/001.p/07",
    ):
        with pytest.raises(tiles.TileError):
            tiles.parse_path(bad)


def test_widths_for_the_spec_example_of_70000() -> None:
    size = 70_000
    assert [len(list(tiles.tiles_for(size, lvl))) for lvl in range(3)] == [274, 2, 1]
    assert tiles.partial_width(0, size) == 112
    assert tiles.partial_width(1, size) == 17
    assert tiles.partial_width(2, size) == 1
    assert tiles.levels_for(size) == 3
    assert tiles.levels_for(256) == 2 and tiles.partial_width(1, 256) == 1
    assert tiles.levels_for(0) == 0


def test_changed_tiles_lists_exactly_what_an_append_writes() -> None:
    refs = {r.path for r in tiles.changed_tiles(250, 260)}
    assert refs == {
        "tile/0/000",
        "tile/0/001.p/4",
        "tile/entries/000",
        "tile/entries/001.p/4",
        "tile/1/000.p/1",
    }
    assert {r.path for r in tiles.changed_tiles(260, 261)} == {
        "tile/0/001.p/5",
        "tile/entries/001.p/5",
    }


def test_bundles_round_trip_and_reject_damage() -> None:
    items = [b"", b"a", b"x" * 300]
    data = tiles.encode_bundle(items)
    assert data[:2] == b"\x00\x00" and data[2:4] == b"\x00\x01"
    assert tiles.decode_bundle(data) == items
    for bad in (data[:-1], data + b"\x00", data[:3]):
        with pytest.raises(tiles.TileError):
            tiles.decode_bundle(bad)
    with pytest.raises(tiles.TileError):
        tiles.encode_bundle([b"x" * 65536])
    with pytest.raises(tiles.TileError):
        tiles.decode_bundle(tiles.encode_bundle([b"e"] * 257))
