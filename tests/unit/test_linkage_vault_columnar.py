"""Opening sealed records a column at a time (what linkage reads) gives what open_record gives."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import delete, insert
from sqlalchemy.exc import OperationalError

from candour.vault import FIELDS, NHS_NUMBER_VALID, POSTCODE_VALID, Sealer, VaultCryptoError
from candour.vault.columnar import open_columns, open_ranges, open_rows
from candour.vault.core import engine_for_url, identities, key_ranges, metadata
from candour.vault.crypto import field_plaintext
from candour.vault.workspace import IDENTITY_SCHEMA, to_record_batch

VAULT_KEY = bytes(range(32))
HMAC_KEY = bytes(range(32, 64))


def _rows(n: int, source: str = "gp") -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = []
    for i in range(n):
        row: dict[str, str | None] = {"key": f"{source}:{i:05d}"}
        if i % 2 == 0:
            row["given_name"], row["raw_given_name"] = "zoe", "Zoë"  # std NUL raw
        elif i % 3 == 0:
            row["raw_given_name"] = "???"  # NUL raw: nothing standardised
        else:
            row["given_name"] = f"name{i}"
        if i % 4 != 1:
            row["family_name"] = "obrien"
        if i % 5 == 0:
            row["nhs_number"] = "9434765919"
        if i % 7 == 0:
            row["postcode"] = "ME1 2AB"
        if i % 3 == 1:
            row["id_pnc"], row["id_raw_pnc"] = f"99{i}A", f"99/{i}A"
        rows.append(row)
    return rows


def _sealed(n: int, source: str = "gp") -> list[tuple[str, str, int, int, bytes]]:
    rows = _rows(n, source)
    keys = [row["key"] for row in rows]
    flags = [
        (NHS_NUMBER_VALID if row.get("nhs_number") else 0)
        | (POSTCODE_VALID if row.get("postcode") else 0)
        for row in rows
    ]
    columns: list[list[object]] = [keys, flags]
    for name in FIELDS:
        columns.append([field_plaintext(row.get(name), row.get(f"raw_{name}")) for row in rows])
    columns.append([row.get("id_pnc") for row in rows])
    columns.append([row.get("id_raw_pnc") for row in rows])
    sealed, _ = Sealer(VAULT_KEY, HMAC_KEY, ["pnc"]).seal_columns(columns, source, 3)
    return sealed


def _by_record(sealer: Sealer, sealed: list[tuple[str, str, int, int, bytes]]) -> pa.Table:
    batch = to_record_batch([sealer.open_record(*row) for row in sealed])
    return pa.Table.from_batches([batch], schema=IDENTITY_SCHEMA)


def _columns(rows: list[tuple[str, str, int, int, bytes]]) -> list[list[object]]:
    return [list(column) for column in zip(*rows, strict=True)]


def test_columns_equal_records_opened_one_by_one():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, [])
    sealed = _sealed(40)
    batch = open_columns(sealer, _columns(sealed), IDENTITY_SCHEMA)
    assert pa.Table.from_batches([batch]).equals(_by_record(sealer, sealed))
    table = batch.to_pydict()
    # The standardised part only: "zoe" (not "Zoë"); nothing where only a raw value exists.
    assert table["given_name"][0] == "zoe"
    assert table["given_name"][3] is None
    assert table["identifiers"][1] == [("pnc", "991A")]
    assert table["nhs_number_valid"][:2] == [True, False]


def _vault(tmp_path: Path, sealed: list[tuple[str, str, int, int, bytes]]) -> str:
    """A vault database file holding ``sealed``; its URL."""
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    engine = engine_for_url(url)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(identities),
            [dict(zip(("record_key", "source", "batch_id", "flags", "sealed"), row, strict=True))
             for row in sealed],
        )
    engine.dispose()
    return url


def _ranges(url: str, chunk: int, source: str | None = None) -> list[tuple[str | None, str | None]]:
    engine = engine_for_url(url, reading=True)
    try:
        with engine.connect() as connection:
            return key_ranges(connection, source, None, chunk)
    finally:
        engine.dispose()


def test_rows_in_chunks_keep_order_and_values():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, [])
    sealed = _sealed(53)
    batches = list(open_rows(sealer, iter(sealed), IDENTITY_SCHEMA, chunk_size=10))
    assert [b.num_rows for b in batches] == [10, 10, 10, 10, 10, 3]
    assert pa.Table.from_batches(batches).equals(_by_record(sealer, sealed))


def test_workers_read_and_open_runs_of_keys_in_order(tmp_path: Path):
    sealer = Sealer(VAULT_KEY, HMAC_KEY, [])
    sealed = sorted(_sealed(53) + _sealed(7, "ae"))
    url = _vault(tmp_path, sealed)
    ranges = _ranges(url, 10)
    assert len(ranges) == 7 and ranges[0][0] is None and ranges[-1][1] is None
    batches = list(open_ranges(sealer, url, ranges, IDENTITY_SCHEMA, workers=2))
    assert [b.num_rows for b in batches] == [10, 10, 10, 10, 10, 10, 0]
    assert pa.Table.from_batches(batches).equals(_by_record(sealer, sealed))
    # One source's runs: only its records, still in key order.
    gp = [row for row in sealed if row[1] == "gp"]
    ranges = _ranges(url, 20, source="gp")
    batches = list(open_ranges(sealer, url, ranges, IDENTITY_SCHEMA, source="gp", workers=3))
    assert pa.Table.from_batches(batches).equals(_by_record(sealer, gp))


def test_a_tampered_field_names_its_record(tmp_path: Path):
    sealer = Sealer(VAULT_KEY, HMAC_KEY, [])
    sealed = _sealed(30)
    key, source, batch_id, flags, blob = sealed[17]
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    sealed[17] = (key, source, batch_id, flags, flipped)
    with pytest.raises(VaultCryptoError, match="gp:00017: a sealed field does not authenticate"):
        list(open_rows(sealer, iter(sealed), IDENTITY_SCHEMA, chunk_size=8))
    url = _vault(tmp_path, sealed)
    with pytest.raises(VaultCryptoError, match="gp:00017: a sealed field does not authenticate"):
        list(open_ranges(sealer, url, _ranges(url, 8), IDENTITY_SCHEMA, workers=2))


def test_a_worker_cannot_write_to_the_vault(tmp_path: Path):
    url = _vault(tmp_path, _sealed(3))
    engine = engine_for_url(url, reading=True)
    try:
        with pytest.raises(OperationalError, match="readonly"), engine.begin() as connection:
            connection.execute(delete(identities))
    finally:
        engine.dispose()


def test_a_wrong_key_or_format_is_refused():
    sealed = _sealed(5)
    with pytest.raises(VaultCryptoError, match="gp:00000: a sealed field does not authenticate"):
        open_columns(Sealer(bytes(32), HMAC_KEY, []), _columns(sealed), IDENTITY_SCHEMA)
    key, source, batch_id, flags, blob = sealed[2]
    sealed[2] = (key, source, batch_id, flags, b"\x09" + blob[1:])
    with pytest.raises(VaultCryptoError, match="gp:00002: unknown vault record format"):
        open_columns(Sealer(VAULT_KEY, HMAC_KEY, []), _columns(sealed), IDENTITY_SCHEMA)
    sealed[2] = (key, source, batch_id, flags, blob[:-40])
    with pytest.raises(VaultCryptoError, match="gp:00002: a sealed record is malformed"):
        open_columns(Sealer(VAULT_KEY, HMAC_KEY, []), _columns(sealed), IDENTITY_SCHEMA)


def test_workers_are_used_only_when_a_core_is_idle_now(monkeypatch):
    from candour.vault import columnar

    monkeypatch.setattr(columnar.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(columnar, "_idle_cores", lambda: 1.4)
    assert columnar.default_workers() == 2
    monkeypatch.setattr(columnar, "_idle_cores", lambda: 0.3)
    assert columnar.default_workers() == 1
    # Without /proc/stat, the load average decides.
    monkeypatch.setattr(columnar, "_idle_cores", lambda: None)
    monkeypatch.setattr(columnar.os, "getloadavg", lambda: (1.8, 1.0, 1.0))
    assert columnar.default_workers() == 1
    monkeypatch.setattr(columnar.os, "getloadavg", lambda: (0.2, 1.0, 1.0))
    assert columnar.default_workers() == 2
    monkeypatch.setattr(columnar.os, "cpu_count", lambda: 1)
    assert columnar.default_workers() == 1


def test_idle_cores_reads_the_kernel_counters():
    from candour.vault.columnar import _idle_cores

    idle = _idle_cores(0.05)
    assert idle is not None
    assert 0.0 <= idle <= (os.cpu_count() or 1)
