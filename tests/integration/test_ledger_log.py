"""The appender and the auditor's verifier on real files: tampering, crashes and concurrency."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import candour.ledger as ledger
from candour.config import Settings
from candour.home import Home
from candour.ledger import entries, tiles, tree, verify
from candour.ledger.log import Log

ORIGIN = "test.candour.example/log"


def make_home(tmp_path: Path) -> tuple[Home, Settings]:
    home = Home(tmp_path / "home")
    home.create_directories()
    ledger.ensure_keys(home, ORIGIN, "witness.test.example/w")
    return home, Settings(home=home.root, log_origin=ORIGIN)


def audit(home: Home, full: bool = True, state: Path | None = None) -> verify.Report:
    source = verify.DirSource(ledger.public_dir(home))
    return verify.verify(source, ledger.verifier_key(home), full=full, state_path=state)


def query(i: int) -> dict[str, object]:
    h = f"{i:064x}"
    return {
        "use_id": "DU-2026-001",
        "sql_hash": h,
        "choices_hash": h,
        "cohort_hash": h,
        "output_hash": h,
    }


@pytest.fixture
def small_log(tmp_path: Path) -> tuple[Home, Settings]:
    """A log of 700 entries appended in uneven batches, so there are old partial tiles."""
    home, conf = make_home(tmp_path)
    log = Log.open(conf)
    n = 0
    for size in (1, 5, 250, 44, 300, 100):
        log.append([f"entry {n + i}".encode() for i in range(size)])
        n += size
    return home, conf


def test_record_validates_appends_and_proves(tmp_path: Path) -> None:
    home, conf = make_home(tmp_path)
    assert ledger.record("query", query(1), settings=conf) == 0
    assert ledger.record_many([("query", query(2)), ("query", query(3))], settings=conf) == [1, 2]
    with pytest.raises(entries.EntryError):
        ledger.record("query", {**query(4), "name": "Jane Smith"}, settings=conf)
    with pytest.raises(entries.EntryError):
        ledger.record("gossip", {}, settings=conf)
    raw = ledger.entry(1, settings=conf)
    assert entries.decode(raw)["sql_hash"] == f"{2:064x}"
    proof = ledger.inclusion_proof(1, settings=conf)
    proof.verify()
    assert proof.leaf_hash == tree.leaf_hash(raw) and proof.tree_size == 3
    cons = ledger.consistency_proof(1, 3, settings=conf)
    cons.verify()
    assert cons.old_root == ledger.inclusion_proof(0, 1, settings=conf).root
    report = audit(home)
    assert report.size == 3 and report.entries_checked == 3


def test_published_layout_is_c2sp(small_log: tuple[Home, Settings]) -> None:
    home, _ = small_log
    public = ledger.public_dir(home)
    assert (public / "checkpoint").read_bytes().startswith(f"{ORIGIN}\n700\n".encode())
    assert (public / "tile/0/000").stat().st_size == 8192
    assert (public / "tile/0/002.p/188").stat().st_size == 188 * 32
    assert (public / "tile/1/000.p/2").stat().st_size == 64
    assert (public / "tile/entries/000").is_file()
    # Old partials from earlier checkpoints stay published, as tlog-tiles requires.
    assert (public / "tile/0/000.p/6").is_file() and (public / "tile/entries/001.p/44").is_file()
    assert not (ledger.state_dir(home) / "append.lock").is_relative_to(public)


def _stored_files(home: Home) -> list[Path]:
    public = ledger.public_dir(home)
    return sorted(p for p in public.rglob("*") if p.is_file())


def test_flipping_any_byte_in_any_file_is_named(small_log: tuple[Home, Settings]) -> None:
    home, _ = small_log
    audit(home)
    public = ledger.public_dir(home)
    rng = random.Random(7)
    files = _stored_files(home)
    assert len(files) >= 15
    for path in files:
        original = path.read_bytes()
        positions = {0, len(original) - 1, *rng.sample(range(len(original)), 3)}
        for pos in positions:
            bad = bytearray(original)
            bad[pos] ^= 1 << rng.randrange(8)
            path.write_bytes(bytes(bad))
            with pytest.raises(verify.VerifyError) as caught:
                audit(home)
            assert caught.value.path == path.relative_to(public).as_posix(), (path, pos)
        path.write_bytes(original)
    audit(home)


def test_removal_reordering_and_appending_are_detected(small_log: tuple[Home, Settings]) -> None:
    home, _ = small_log
    public = ledger.public_dir(home)

    def expect_failure(rel: str) -> None:
        with pytest.raises(verify.VerifyError) as caught:
            audit(home)
        assert caught.value.path == rel

    for rel in ("tile/entries/001", "tile/0/001", "tile/1/000.p/2", "checkpoint"):
        original = (public / rel).read_bytes()
        (public / rel).unlink()
        expect_failure(rel)
        (public / rel).write_bytes(original)
    bundle = public / "tile/entries/000"
    original = bundle.read_bytes()
    items = tiles.decode_bundle(original)
    items[3], items[4] = items[4], items[3]
    bundle.write_bytes(tiles.encode_bundle(items))
    expect_failure("tile/entries/000")
    bundle.write_bytes(original + tiles.encode_bundle([b"extra"]))
    expect_failure("tile/entries/000")
    bundle.write_bytes(original)
    last = public / "tile/entries/002.p/188"
    tail = last.read_bytes()
    last.write_bytes(tail + tiles.encode_bundle([b"sneaked in"]))
    expect_failure("tile/entries/002.p/188")
    last.write_bytes(tail)
    # Swapping two whole bundles is a reordering of entries too.
    a, b = public / "tile/entries/000", public / "tile/entries/001"
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    expect_failure("tile/entries/000")
    a.write_bytes(da)
    b.write_bytes(db)
    audit(home)


def test_auditor_state_catches_a_rewritten_history(tmp_path: Path) -> None:
    home, conf = make_home(tmp_path)
    state = tmp_path / "auditor.json"
    log = Log.open(conf)
    log.append([b"a", b"b", b"c"])
    assert audit(home, full=False, state=state).previous_size is None
    log.append([b"d"])
    assert audit(home, full=False, state=state).previous_size == 3
    # The operator rebuilds the log with a different history, signed with the same key.
    public = ledger.public_dir(home)
    for path in _stored_files(home):
        path.unlink()
    Log.open(conf).append([b"a", b"X", b"c", b"d", b"e"])
    assert audit(home, full=True).size == 5  # fine on its own...
    with pytest.raises(verify.VerifyError) as caught:
        audit(home, full=False, state=state)  # ...but not consistent with what we saw
    assert caught.value.path == "checkpoint" and "not consistent" in caught.value.reason
    assert public.is_dir()


def test_resume_after_restart_keeps_everything(tmp_path: Path) -> None:
    home, conf = make_home(tmp_path)
    first = Log.open(conf)
    first.append([b"x%d" % i for i in range(300)])
    second = Log.open(conf)  # a new process would start like this
    assert second.append([b"y"]) == 300
    assert first.append([b"z"]) == 301  # the first appender notices the newer checkpoint
    assert audit(home).size == 302
    assert ledger.entry(300, settings=conf) == b"y"


def _appender(home_root: str, worker: int, batches: int) -> None:
    conf = Settings(home=Path(home_root), log_origin=ORIGIN)
    log = Log.open(conf)
    for b in range(batches):
        log.append([f"w{worker}-b{b}-{i}".encode() for i in range(37)])


def test_several_processes_append_at_once(tmp_path: Path) -> None:
    home, _ = make_home(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_appender, args=(str(home.root), w, 8)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    report = audit(home)
    assert report.size == 4 * 8 * 37
    reader = Log(home, Log.open(Settings(home=home.root, log_origin=ORIGIN)).signer).reader()
    seen = {reader.entry(i) for i in range(report.size)}
    assert len(seen) == report.size
    # Each batch stayed contiguous: batches are atomic units.
    for start in range(0, report.size, 37):
        prefixes = {reader.entry(i).rsplit(b"-", 1)[0] for i in range(start, start + 37)}
        assert len(prefixes) == 1


CRASHER = """
import sys
from pathlib import Path
from candour.config import Settings
from candour.ledger.log import Log
log = Log.open(Settings(home=Path(sys.argv[1]), log_origin=sys.argv[2]))
batch = int(sys.argv[3])
print("ready", flush=True)
n = 0
while True:
    first = log.append([b"crash-%d" % (n + i) for i in range(batch)])
    n += batch
    print(first + batch, flush=True)
"""


def test_kill_9_at_random_points_loses_nothing_acknowledged(tmp_path: Path) -> None:
    home, conf = make_home(tmp_path)
    rng = random.Random(2026)
    acknowledged = 0
    interrupted = 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    pending = ledger.state_dir(home) / "pending.json"
    for _round in range(22):
        batch = rng.choice([1, 7, 100, 255, 300, 600])
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASHER, str(home.root), ORIGIN, str(batch)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.04))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        acks = [int(x) for x in out.split()]
        if acks:
            acknowledged = max(acknowledged, acks[-1])
        if not (ledger.public_dir(home) / "checkpoint").exists():
            assert acknowledged == 0  # killed before the first commit: an empty log
            continue
        report = audit(home)  # verifies straight after the crash, before any resume
        assert report.size >= acknowledged
        if pending.exists() and f'"from": {report.size},'.encode() in pending.read_bytes():
            interrupted += 1  # killed inside a batch, after it had started writing
    assert interrupted >= 3, "the kills never landed inside a batch; the test proves nothing"
    log = Log.open(conf)
    before = audit(home).size
    assert log.append([b"after the crashes"]) == before
    final = audit(home)
    assert final.size == before + 1 >= acknowledged + 1
    assert ledger.entry(final.size - 1, settings=conf) == b"after the crashes"
    assert not pending.exists() or f'"from": {before},'.encode() in pending.read_bytes()
