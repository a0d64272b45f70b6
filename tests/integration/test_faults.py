"""Faults (issue 8): kill -9 at random points, and a full disk, on a small synthetic county.

Four kinds of process are killed at least 20 times each, at delays drawn uniformly over the
command's own measured duration: ``candour serve`` while requests run, ``candour ingest``,
``candour link`` and a ledger appender. After every kill the home is checked as an operator
would (``candour check``, and ``candour check --repair`` where a repair is the documented
recovery), then the command is run again on the same home, and each series ends with a run left
to finish, which must succeed.

The commands run exactly as the CLI runs them (the Typer app given an argv), each in a fresh
process forked from a server that imported Candour once: importing the CLI costs several
seconds, and 80 trials cannot pay that each time. ``kill_at_random_point`` is the one helper
that starts a trial's clock and sends SIGKILL.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from sqlalchemy import select

from candour import ledger
from candour.config import Settings
from candour.home import Home
from candour.ledger import verify
from candour.maintenance.check import CheckReport, check_home
from candour.store import IngestBatch, dispose, transaction
from candour.store.linkage import LinkRun
from candour.synth import write_county
from candour.vault import dispose_vault, open_vault, workspaces_root

pytestmark = pytest.mark.slow

PEOPLE = 500
KILLS = 20
FAST_LINK = "u_max_pairs: 200000\n"
SERVER_PATHS = ("/", "/register", "/transparency", "/log/checkpoint", "/api/3/action/package_list")


# -- running commands and killing them ------------------------------------------------------


def _cli_child(argv: list[str], env: dict[str, str], log: str) -> None:
    """The body of a forked child: run ``candour <argv>`` with output to ``log``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(env)
    from candour.cli.main import app

    app(argv, prog_name="candour")


def _appender_child(home: str, acks: str, batch: int) -> None:
    """A ledger appender: append ``batch`` entries at a time for ever, noting each ack."""
    from candour import ledger as the_ledger

    settings = Settings(home=Path(home))
    fd = os.open(acks, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    # Open the log and build an entry once before saying so: the kill should land among
    # appends, not in a process's first-use set-up.
    the_ledger.open_log(settings)
    the_ledger.entries.encode("query", _query_entry(0))
    os.write(fd, b"ready\n")
    n = 0
    while True:
        items = [("query", _query_entry(n + i)) for i in range(batch)]
        first = the_ledger.record_many(items, settings=settings)[0]
        n += batch
        # Written only after the append returned: every line is an acknowledged size.
        os.write(fd, f"{first + batch}\n".encode())


def _query_entry(i: int) -> dict[str, str]:
    h = f"{i:064x}"
    return {
        "use_id": "DU-2026-001",
        "sql_hash": h,
        "choices_hash": h,
        "cohort_hash": h,
        "output_hash": h,
    }


@pytest.fixture(scope="module")
def forker() -> Iterator[Any]:
    """A forkserver context that has imported the CLI once (see the module docstring)."""
    context = multiprocessing.get_context("forkserver")
    # Commands import some heavy modules only when they run (the web app, uvicorn, Splink's
    # engines): preload them too, so a rerun after a kill costs its work, not a fresh import.
    context.set_forkserver_preload(
        ["candour.cli.main", "candour.web", "uvicorn", "candour.linkage.runs", "splink", __name__]
    )
    yield context


@dataclass
class Trial:
    """One run of a command: how long it was given, and whether the kill landed."""

    delay: float
    killed: bool
    exitcode: int | None


def kill_at_random_point(process: Any, delay: float) -> Trial:
    """Give ``process`` (started, with ``pid``, ``join``, ``is_alive``) ``delay`` seconds, then
    SIGKILL it if it is still running. The one place the fault tests send kill -9."""
    process.join(delay)
    if not process.is_alive():
        return Trial(delay, False, process.exitcode)
    os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    assert not process.is_alive()
    return Trial(delay, True, process.exitcode)


def start_cli(forker: Any, argv: Sequence[str], log: Path, **env: str) -> Any:
    """Start ``candour <argv>`` in a forked process; returns the started process."""
    process = forker.Process(target=_cli_child, args=(list(argv), dict(env), str(log)))
    process.start()
    return process


def run_cli(forker: Any, argv: Sequence[str], log: Path) -> float:
    """Run ``candour <argv>`` to the end; returns its duration. Fails on a non-zero exit."""
    started = time.perf_counter()
    process = start_cli(forker, argv, log)
    process.join(300)
    duration = time.perf_counter() - started
    assert process.exitcode == 0, log.read_text()[-3000:]
    return duration


def _forget(settings: Settings) -> None:
    """Close this process's pooled connections: the next child must find nothing held."""
    dispose(settings)
    dispose_vault(settings)
    ledger.close_log(settings)


def _check(settings: Settings, *, repair: bool) -> CheckReport:
    report = check_home(settings, repair=repair)
    _forget(settings)
    problems = [f"{f.part} {f.check}: {f.detail}" for f in report.findings if not f.ok]
    assert report.ok, problems
    return report


def _copy_home(source: Path, target: Path) -> Settings:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, symlinks=True)
    return Settings(home=target)


# -- the county and the homes built from it ------------------------------------------------


@dataclass(frozen=True)
class County:
    """A small county, an initialised empty home, and the same home after a clean ingest."""

    sources: Path
    empty: Path
    ingested: Path
    ingest_seconds: float
    clean: dict[str, tuple[int, int]]  # source -> (vault records, warehouse rows)


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory, forker: Any) -> County:
    root = tmp_path_factory.mktemp("faults")
    write_county(root / "county", people=PEOPLE, seed=8, workers=1)
    empty = root / "empty"
    run_cli(forker, ["init", "--home", str(empty)], root / "init.log")
    ingested = _copy_home(empty, root / "ingested")
    sources = root / "county" / "sources.yaml"
    seconds = run_cli(
        forker, ["ingest", str(sources), "--home", str(ingested.home)], root / "ingest.log"
    )
    clean = _per_source(ingested)
    _forget(ingested)
    assert len(clean) >= 5 and all(v == w > 0 for v, w in clean.values()), clean
    return County(sources, empty, ingested.home, seconds, clean)


def _per_source(settings: Settings) -> dict[str, tuple[int, int]]:
    """Each source's vault records and warehouse rows, for sources with a finished batch."""
    with transaction(settings) as session:
        sources = set(
            session.scalars(select(IngestBatch.source).where(IngestBatch.status == "done"))
        )
    vault = open_vault(settings)
    counts: dict[str, tuple[int, int]] = {}
    with duckdb.connect(str(Home(settings.home).warehouse), read_only=True) as con:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        for source in sorted(sources | tables - {"person_index"}):
            rows = 0
            if source in tables:
                found = con.execute(f'SELECT count(*) FROM "{source}"').fetchone()
                rows = int(found[0]) if found else 0
            counts[source] = (vault.count(source), rows)
    return counts


def _log_kinds(settings: Settings) -> Counter[str]:
    """How many entries of each kind the published log holds (ingest ones per source too)."""
    kinds: Counter[str] = Counter()
    found = ledger.open_log(settings).read_checkpoint()
    for index in range(found[0].size if found else 0):
        entry = json.loads(ledger.entry(index, settings=settings))
        kinds[entry["kind"]] += 1
        if entry["kind"] == "ingest":
            kinds[f"ingest:{entry['source']}"] += 1
    return kinds


def _assert_ingest_whole_or_absent(settings: Settings, county: County) -> int:
    """Every source is exactly a clean ingest or absent; returns how many are whole."""
    counts = _per_source(settings)
    kinds = _log_kinds(settings)
    _forget(settings)
    with transaction(settings) as session:
        done = Counter(
            session.scalars(select(IngestBatch.source).where(IngestBatch.status == "done"))
        )
    whole = 0
    for source, clean in county.clean.items():
        held = counts.get(source, (0, 0))
        if held == clean:
            assert done[source] == 1 and kinds[f"ingest:{source}"] == 1, (source, done, kinds)
            whole += 1
        else:
            assert held == (0, 0), f"{source}: half-applied ingest {held} (clean is {clean})"
            assert done[source] == 0 and kinds[f"ingest:{source}"] == 0, (source, done, kinds)
    return whole


# -- kill -9: ingest -------------------------------------------------------------------------


def test_kill_9_ingest(county: County, forker: Any, tmp_path: Path) -> None:
    rng = random.Random(81)
    settings = _copy_home(county.empty, tmp_path / "home")
    argv = ["ingest", str(county.sources), "--home", str(settings.home)]
    log = tmp_path / "ingest.log"
    kills = partial = finished = trials = 0
    while kills < KILLS:
        trials += 1
        assert trials <= 3 * KILLS, "the kills keep missing the command"
        trial = kill_at_random_point(
            start_cli(forker, argv, log), rng.uniform(0, county.ingest_seconds)
        )
        if not trial.killed:
            # The command finished first: it is the rerun that must succeed.
            assert trial.exitcode == 0, log.read_text()[-3000:]
            assert _assert_ingest_whole_or_absent(settings, county) == len(county.clean)
            _check(settings, repair=False)
            finished += 1
            settings = _copy_home(county.empty, tmp_path / "home")
            continue
        kills += 1
        # The documented recovery after a crash is `candour check --repair` (or simply the
        # next ingest): a batch whose ledger entry was written is completed, others undone.
        _check(settings, repair=True)
        whole = _assert_ingest_whole_or_absent(settings, county)
        partial += 0 < whole < len(county.clean)
    # The last home has just been killed (or is fresh): a rerun to the end completes it.
    run_cli(forker, argv, log)
    assert _assert_ingest_whole_or_absent(settings, county) == len(county.clean)
    _check(settings, repair=False)
    assert partial >= 3, f"only {partial} kills landed between sources; the test proves little"


# -- kill -9: link ---------------------------------------------------------------------------


def _link_state(settings: Settings) -> tuple[int, int]:
    """(finished link runs, link-run log entries), after checking the run's invariants."""
    with transaction(settings) as session:
        runs = session.execute(select(LinkRun.run_id, LinkRun.ledger_index, LinkRun.records)).all()
    kinds = _log_kinds(settings)
    _forget(settings)
    for run_id, ledger_index, _records in runs:
        assert ledger_index is not None, f"run {run_id} has no ledger entry"
        entry = json.loads(ledger.entry(ledger_index, settings=settings))
        assert (entry["kind"], entry["run_id"]) == ("link-run", run_id)
    latest = max(runs, key=lambda r: r[1]) if runs else None
    with duckdb.connect(str(Home(settings.home).warehouse), read_only=True) as con:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        rows = (
            con.execute("SELECT count(*) FROM person_index").fetchone()
            if "person_index" in tables
            else (0,)
        )
    # The warehouse's person index is the latest finished run's, whole.
    assert rows is not None and rows[0] == (latest[2] if latest else 0), (rows, latest)
    return len(runs), kinds["link-run"]


def test_kill_9_link(county: County, forker: Any, tmp_path: Path) -> None:
    rng = random.Random(82)
    settings = _copy_home(county.ingested, tmp_path / "home")
    fast = tmp_path / "fast.yaml"
    fast.write_text(FAST_LINK)
    argv = ["link", "--home", str(settings.home), "--settings", str(fast)]
    log = tmp_path / "link.log"
    run_cli(forker, argv, log)  # trains the model once; later runs reuse it, as in production
    seconds = run_cli(forker, argv, log)
    runs, entries = _link_state(settings)
    assert runs == entries == 2
    kills = trials = 0
    while kills < KILLS:
        trials += 1
        assert trials <= 3 * KILLS, "the kills keep missing the command"
        trial = kill_at_random_point(start_cli(forker, argv, log), rng.uniform(0, seconds))
        if not trial.killed:
            assert trial.exitcode == 0, log.read_text()[-3000:]
        kills += trial.killed
        # A killed run leaves its workspace of decrypted identities: `candour check` says so,
        # and --repair (or the next link) removes it. Nothing else needs repairing.
        _check(settings, repair=True)
        assert not any(workspaces_root(settings).iterdir())
        after, logged = _link_state(settings)
        assert after >= runs
        # A run logs inside its store transaction: a kill between the two leaves an entry
        # for a run that never finished, never a finished run without one.
        assert logged >= after
        runs = after
    run_cli(forker, argv, log)
    final, _ = _link_state(settings)
    assert final == runs + 1
    _check(settings, repair=False)


# -- kill -9: the server ---------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(base: str, process: Any, deadline: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        assert process.is_alive(), "candour serve exited before it served"
        try:
            if httpx.get(f"{base}/log/checkpoint", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("candour serve did not start")


def _hammer(base: str, stop: threading.Event, seen: Counter[int]) -> None:
    """Requests, one after another, until told to stop or the server dies (bounded)."""
    with httpx.Client(base_url=base, timeout=5) as client:
        for i in range(10_000):
            if stop.is_set():
                return
            try:
                seen[client.get(SERVER_PATHS[i % len(SERVER_PATHS)]).status_code] += 1
            except httpx.TransportError:
                return


def test_kill_9_server(county: County, forker: Any, tmp_path: Path) -> None:
    rng = random.Random(83)
    settings = _copy_home(county.ingested, tmp_path / "home")
    log = tmp_path / "serve.log"
    seen: Counter[int] = Counter()
    window = 1.5  # seconds of requests each server gets before its kill, at most
    kills = 0
    for _trial in range(KILLS):
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        argv = ["serve", "--home", str(settings.home), "--port", str(port)]
        process = start_cli(forker, argv, log, CANDOUR_WEB_SECURE_COOKIES="false")
        # Restarting after the previous kill is the rerun: it must come up and serve.
        _wait_ready(base, process, time.perf_counter() + 60)
        stop = threading.Event()
        clients = [threading.Thread(target=_hammer, args=(base, stop, seen)) for _ in range(2)]
        answered = sum(seen.values())
        for client in clients:
            client.start()
        # Start the clock once requests are being answered: the kill must land among them.
        deadline = time.perf_counter() + 30
        while sum(seen.values()) == answered and time.perf_counter() < deadline:
            time.sleep(0.01)
        assert sum(seen.values()) > answered, "no request was answered"
        trial = kill_at_random_point(process, rng.uniform(0, window))
        stop.set()
        for client in clients:
            client.join(10)
        assert trial.killed, log.read_text()[-3000:]
        kills += 1
        _check(settings, repair=False)
    assert kills >= KILLS
    assert seen[200] >= KILLS, seen  # the requests really ran while the servers were killed
    assert not {s for s in seen if s >= 500}, seen


# -- kill -9: a ledger appender -------------------------------------------------------------


def _wait_for_ready(acks: Path, process: Any) -> None:
    deadline = time.perf_counter() + 60
    while not (acks.exists() and b"ready" in acks.read_bytes()):
        assert process.is_alive() and time.perf_counter() < deadline, "the appender never started"
        time.sleep(0.01)


def test_kill_9_ledger_appender(county: County, forker: Any, tmp_path: Path) -> None:
    rng = random.Random(84)
    settings = _copy_home(county.ingested, tmp_path / "home")
    acks = tmp_path / "acks"
    vkey = ledger.verifier_key(Home(settings.home))
    pending = ledger.state_dir(Home(settings.home)) / "pending.json"
    acknowledged = inside = 0
    for _trial in range(KILLS + 2):
        batch = rng.choice([1, 7, 100, 255, 300])
        process = forker.Process(
            target=_appender_child, args=(str(settings.home), str(acks), batch)
        )
        process.start()
        _wait_for_ready(acks, process)
        trial = kill_at_random_point(process, rng.uniform(0, 0.5))
        assert trial.killed
        lines = [line for line in acks.read_text().split() if line != "ready"]
        acks.unlink()
        acknowledged = max([acknowledged, *map(int, lines)])
        # `candour ledger verify --full`, straight after the kill and before any append.
        source = verify.source_for(ledger.public_dir(Home(settings.home)))
        report = verify.verify(source, vkey, full=True)
        assert report.size >= acknowledged
        if pending.exists() and f'"from": {report.size},'.encode() in pending.read_bytes():
            inside += 1  # killed in the middle of a batch, after it began writing
        _check(settings, repair=False)
    assert inside >= 3, "the kills never landed inside a batch; the test proves nothing"
    final = ledger.record("query", _query_entry(10**9), settings=settings)
    assert final >= acknowledged
    _forget(settings)
    _check(settings, repair=False)


# -- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs (smaller than the county's home), unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)


def test_full_disk_leaves_no_corruption(county: County, forker: Any, small_disk: Path) -> None:
    settings = _copy_home(county.empty, small_disk / "home")
    log = small_disk.parent / "full.log"
    argv = ["ingest", str(county.sources), "--home", str(settings.home)]
    process = start_cli(forker, argv, log)
    process.join(300)
    assert process.exitcode != 0, "the ingest did not run out of space; the disk is too big"
    assert shutil.disk_usage(small_disk).free < 512 * 1024
    # With space freed, the home checks out after the documented repair: nothing half-done.
    _grow(small_disk)
    _check(settings, repair=True)
    whole = _assert_ingest_whole_or_absent(settings, county)
    assert whole < len(county.clean)
    run_cli(forker, argv, log)
    assert _assert_ingest_whole_or_absent(settings, county) == len(county.clean)
    _check(settings, repair=False)


def test_full_disk_gives_a_clear_error(county: County, forker: Any, small_disk: Path) -> None:
    settings = _copy_home(county.empty, small_disk / "home")
    log = small_disk.parent / "clear.log"
    process = start_cli(forker, ["ingest", str(county.sources), "--home", str(settings.home)], log)
    process.join(300)
    output = log.read_text()
    assert process.exitcode == 2, output[-3000:]
    assert "Traceback" not in output
    assert "space" in output.lower() or "full" in output.lower()
