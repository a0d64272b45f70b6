"""Load test (issue 8): residents, analysts and ingests against a running ``candour serve``.

For 5 minutes (quick mode: 15 s) against one data home:

- **residents** (one process, one thread per resident): each signs in through a real OpenID
  provider (``oidc-provider-mock``, run on a loopback socket) with httpx and no browser, keeps
  its session cookie, and then loops over ``/me``, ``/me/records``, ``/me/choices``,
  ``/me/services``, ``/me/uses`` (when the server has it), the public ``/register``,
  ``/register/{id}``, ``/log/checkpoint`` and ``/transparency``; now and then it changes its
  ``research`` choice (GET the form, POST it with the CSRF token, GET the confirmation), which
  appends one ``choice-change`` entry through the server. Each resident waits a random 0-0.6 s
  between requests, as a person clicking would;
- **analysts** (two processes): gated queries with ``candour.gate.run`` under an approved
  ``research`` use, each appending one ``query`` entry, one every 0.5-1.5 s;
- **ingest** (one process): every few seconds a new small extract file (50 rows of the county's
  own people) for a source ``load_visits`` is written and ingested, appending one ``ingest``
  entry.

The data home is a small synthetic county (3,000 people; quick: 1,000) built with init, synth,
ingest and link, with a ``research`` use applied, submitted and approved. The server is
``candour serve`` in its own process (uvicorn), configured only through ``CANDOUR_*`` variables.

**The warehouse is one DuckDB file, and DuckDB lets one process open it for writing and no one
else open it at all meanwhile** (a reader needs every writer gone). The gate opens the file for
writing for each query (it updates the opt-out masks), ingest for each run, and the web server
opens it read-only for each ``/me/records`` request. None of them waits for the others: a clash
fails at once with "the warehouse ... is in use by another Candour process; try again". So:

- the load generator serialises its own writers (the analysts and the ingest) with a file lock
  of its own (``<home>/.load-warehouse.lock``), as an operator running several of them would;
- an analyst or ingest whose open clashes with the *server's* read gets the "try again" refusal,
  backs off 50 ms and retries; these refusals are counted and reported ("busy retries"), not
  hidden, and the operation's latency includes the waiting;
- the server's ``/me/records`` is *not* coordinated with anything (the server has no way to), so
  a clash there is a failed request, and it is counted as an error of that route.

After the load stops: entries per kind in the log are counted before and after, and each kind's
growth must equal what the load generator saw succeed (``query``: successful ``gate.run`` calls;
``ingest``: files ingested; ``choice-change``: successful POSTs); every other kind must not grow.
Where an id is known each appears exactly once: each query's ledger index holds a ``query``
entry of the use and no two queries share one, and its ``query_id`` is in the store once with
that index; each ingested file's hash is in exactly one ``ingest`` entry, at the index ingest
reported; each portal ``choice_events`` row of the run has its own ledger index holding a
``choice-change`` entry, and their count equals the successful POSTs. Then
``candour ledger verify --full`` and ``candour check`` run on the home and must exit 0.

Every latency is reported with the p95 of ``GET /log/checkpoint`` (a static file, the cheapest
route) in the same run as the reference, and the unloaded p50 of that route measured just
before the load starts. Samples are wall-clock times seen by the client, from request sent to
body read, on the same 2-core machine as the server (so client, server, analysts and ingest
share the CPUs, as documented in the results).
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import Result

PURPOSE = "research"
CLIENT_ID = "candour-load-client"
CLIENT_SECRET = "load-test-secret"
ROUTE_ORDER = [
    "GET /sign-in/start",
    "GET /sign-in/callback",
    "GET /me",
    "GET /me/records",
    "GET /me/choices",
    "GET /me/services",
    "GET /me/uses",
    "GET /me/choices/{purpose}",
    "POST /me/choices/{purpose}",
    "GET /me/choices/{purpose}/saved",
    "GET /register",
    "GET /register/{id}",
    "GET /transparency",
    "GET /log/checkpoint",
]
REFERENCE_ROUTE = "GET /log/checkpoint"
USE = """\
title: Load test falls study
summary: Falls among older people, for the load test
public_benefit: Fewer falls
organisation: Wealdshire County Council
team: Public Health Intelligence
senior_responsible_owner: Director of Public Health
purpose: research
legal_basis:
  article_6: "6(1)(e) public task"
  common_law: "de-identified data; no duty of confidence breached"
applicant: ana
analysts: [ana, bob]
grants:
  ae_attendances: "*"
  fire_home_safety_visits: "*"
output: aggregate
disclosure: {threshold: 10, rounding: 5}
starts: 2026-01-01
ends: 2099-12-31
"""
QUERIES = [
    "SELECT diagnosis_category, count(*) AS n FROM ae_attendances GROUP BY diagnosis_category",
    "SELECT arrival_mode, count(*) AS n FROM ae_attendances GROUP BY arrival_mode",
    "SELECT disposal, count(*) AS n FROM ae_attendances WHERE age_at_arrival >= 65 "
    "GROUP BY disposal",
    "SELECT count(*) AS n FROM fire_home_safety_visits",
]
LOAD_SOURCE = "load_visits"
LOAD_SOURCES_YAML = f"""\
version: 1
sources:
  - name: {LOAD_SOURCE}
    title: Community visits (load test)
    controller: Wealdshire County Council
    files: [visits/*.csv]
    record_id: visit_id
    identity:
      given_name: forename
      family_name: surname
      date_of_birth: {{column: dob, format: "%Y-%m-%d"}}
    attributes:
      visit_date: {{column: visit_date, type: date, format: "%Y-%m-%d"}}
      team: {{column: team, type: category}}
    event_date: visit_date
"""


@dataclass(frozen=True)
class Scale:
    """How big and how long the run is."""

    people: int
    seconds: float
    residents: int
    analysts: int
    ingest_every: float
    batch_rows: int


FULL = Scale(people=3000, seconds=300.0, residents=8, analysts=2, ingest_every=5.0, batch_rows=50)
QUICK = Scale(people=1000, seconds=15.0, residents=4, analysts=2, ingest_every=3.0, batch_rows=50)


# -- building the home -------------------------------------------------------------------------


def _build_home(root: Path, scale: Scale) -> tuple[Any, str]:
    """A linked county with an approved research use; returns its settings and the use id."""
    from candour import choices, register
    from candour.config import Settings
    from candour.home import Home
    from candour.initialise import initialise_home
    from candour.sources.ingest import ingest
    from candour.store import dispose
    from candour.synth import write_county
    from candour.warehouse import open_warehouse
    from candour.workflows.carry_choices import link_carrying_choices

    settings = Settings(home=root)
    initialise_home(settings)
    home = Home(settings.home)
    write_county(home.synth, people=scale.people, seed=8)
    with open_warehouse(settings) as warehouse:
        ingest(home.synth / "sources.yaml", settings, warehouse)
    link_carrying_choices(settings)
    for name, role in (("ana", "analyst"), ("bob", "analyst"), ("ian", "ig")):
        register.add_user(name, role, settings=settings)
    purposes = choices.load_purposes(settings)
    view = register.apply_use(register.parse_use(USE), purposes=purposes, settings=settings)
    register.submit(view.use_id, "ana", settings=settings)
    register.approve(view.use_id, "ian", purposes=purposes, settings=settings)
    load = root / "load"
    (load / "visits").mkdir(parents=True)
    (load / "sources.yaml").write_text(LOAD_SOURCES_YAML)
    dispose(settings)
    return settings, view.use_id


def _residents(settings: Any, wanted: int) -> list[dict[str, Any]]:
    """County people the vault matcher confirms uniquely from OIDC claims (as the portal will)."""
    from candour.home import Home
    from candour.vault import dispose_vault, open_vault
    from candour.web.identity import IdentityClaims
    from candour.workflows.identity_match import VaultMatcher

    truth = Home(settings.home).synth / "truth"
    records: dict[str, list[str]] = defaultdict(list)
    with (truth / "records.csv").open() as handle:
        for row in csv.DictReader(handle):
            records[row["person_key"]].append(f"{row['source']}:{row['record_id']}")
    with open_vault(settings).open_workspace(
        reason="load test: choose residents to sign in", actor="benchmarks"
    ) as workspace:
        held = {r.record_key: r for r in workspace.identities()}
    matcher = VaultMatcher(settings)
    found: list[dict[str, Any]] = []
    with (truth / "people.csv").open() as handle:
        for person in csv.DictReader(handle):
            keys = [k for k in records[person["person_key"]] if k in held]
            postcodes = Counter(held[k].postcode for k in keys if held[k].postcode)
            if len(keys) < 2 or not postcodes:
                continue
            postcode = postcodes.most_common(1)[0][0]
            person_id = matcher.match(
                IdentityClaims(
                    given_names=person["given_name"],
                    family_name=person["family_name"],
                    birth_date=date.fromisoformat(person["date_of_birth"]),
                    postcode=postcode,
                )
            )
            if person_id is None or any(r["person_id"] == person_id for r in found):
                continue
            found.append(
                {
                    "sub": f"load-resident-{len(found)}",
                    "person_id": person_id,
                    "claims": {
                        "given_name": person["given_name"],
                        "family_name": person["family_name"],
                        "birthdate": person["date_of_birth"],
                        "address": {"postal_code": postcode},
                    },
                }
            )
            if len(found) == wanted:
                break
    dispose_vault(settings)
    if len(found) < wanted:
        raise RuntimeError(f"only {len(found)} residents are confirmed by the matcher")
    return found


def _people_for_batches(settings: Any, limit: int = 2000) -> list[tuple[str, str, str]]:
    """(given, family, date of birth) of county people, for the ingest's new extracts."""
    from candour.home import Home

    rows: list[tuple[str, str, str]] = []
    with (Home(settings.home).synth / "truth" / "people.csv").open() as handle:
        for person in csv.DictReader(handle):
            rows.append((person["given_name"], person["family_name"], person["date_of_birth"]))
            if len(rows) == limit:
                break
    return rows


# -- the log -----------------------------------------------------------------------------------


def _log_entries(settings: Any) -> list[dict[str, Any]]:
    """Every entry of the published log, decoded, in order."""
    from candour.ledger.log import open_log

    reader = open_log(settings).reader()
    out: list[dict[str, Any]] = []
    for bundle in range((reader.size + 255) // 256):
        out.extend(json.loads(e) for e in reader.bundle(bundle))
    return out


# -- the OIDC provider and the server ----------------------------------------------------------


@contextmanager
def _provider() -> Iterator[str]:
    """oidc-provider-mock on a loopback port, in a thread; yields its issuer URL."""
    import oidc_provider_mock
    import werkzeug.serving

    app = oidc_provider_mock.app(require_nonce=True)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(home: Path, issuer: str, port: int, log: Path) -> Iterator[str]:
    """``candour serve`` as a subprocess, configured by CANDOUR_* variables; yields its URL."""
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CANDOUR_HOME": str(home),
        "CANDOUR_WEB_BASE_URL": base,
        "CANDOUR_WEB_SECURE_COOKIES": "false",
        # Every virtual resident signs in from 127.0.0.1; the per-address limit is for people.
        "CANDOUR_WEB_SIGNIN_RATE_LIMIT": "1000",
        "CANDOUR_RESIDENT_OIDC_ISSUER": issuer,
        "CANDOUR_RESIDENT_OIDC_CLIENT_ID": CLIENT_ID,
        "CANDOUR_RESIDENT_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        # The mock provider implements client secrets, not private_key_jwt.
        "CANDOUR_RESIDENT_OIDC_CLIENT_AUTH": "client_secret_basic",
        "CANDOUR_RESIDENT_OIDC_SCOPES": '["openid", "profile", "address"]',
        "CANDOUR_RESIDENT_OIDC_VTR": "",
        "CANDOUR_RESIDENT_OIDC_CLAIMS": "[]",
        "CANDOUR_RESIDENT_CLAIMS_FORMAT": "oidc",
    }
    candour = Path(sys.executable).parent / "candour"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(candour), "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"candour serve exited: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(base + "/log/checkpoint", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("candour serve did not start within 60 s")
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


# -- workers (each in its own process) ---------------------------------------------------------


def _write_json(path: str, data: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(data))


class _Recorder:
    """Latency samples and errors of one worker thread."""

    def __init__(self) -> None:
        self.samples: list[tuple[str, float, bool]] = []
        self.errors: list[str] = []

    def timed(
        self,
        client: httpx.Client,
        label: str,
        method: str,
        url: str,
        expect: int | tuple[int, ...],
        **kwargs: Any,
    ) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            response = client.request(method, url, **kwargs)
            response.read()
        except httpx.HTTPError as exc:
            self.samples.append((label, (time.perf_counter() - start) * 1000, False))
            self.errors.append(f"{label}: {type(exc).__name__}: {exc}")
            return None
        ms = (time.perf_counter() - start) * 1000
        ok = response.status_code in ((expect,) if isinstance(expect, int) else expect)
        self.samples.append((label, ms, ok))
        if not ok:
            where = response.headers.get("location", "")
            self.errors.append(f"{label}: HTTP {response.status_code} {where}".strip())
            return None
        return response


def _sign_in(client: httpx.Client, rec: _Recorder, sub: str) -> bool:
    """The resident flow: start, authorise at the provider as ``sub``, follow the callback."""
    started = rec.timed(client, "GET /sign-in/start", "GET", "/sign-in/start", 302)
    if started is None:
        return False
    answer = httpx.post(started.headers["location"], data={"sub": sub}, timeout=30)
    if answer.status_code != 302:
        rec.errors.append(f"provider authorize: HTTP {answer.status_code}")
        return False
    done = rec.timed(client, "GET /sign-in/callback", "GET", answer.headers["location"], (302, 303))
    if done is None:
        return False
    if done.headers.get("location") != "/me":
        rec.errors.append(f"sign-in of {sub} ended at {done.headers.get('location')}")
        return False
    return True


def _resident_loop(
    base: str,
    resident: dict[str, Any],
    use_id: str,
    routes: list[str],
    start: _Start,
    seed: int,
    choice_share: float,
    out: dict[str, Any],
) -> None:
    rec = _Recorder()
    rng = random.Random(seed)
    choices_made = 0
    opted_out = False
    with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as client:
        signed_in = _sign_in(client, rec, resident["sub"])
        start.ready.wait()
        start.go.wait()
        deadline = start.deadline
        if not signed_in:
            out.update(samples=rec.samples, errors=rec.errors, choices=0)
            return
        paths = {
            "GET /me": "/me",
            "GET /me/records": "/me/records",
            "GET /me/choices": "/me/choices",
            "GET /me/services": "/me/services",
            "GET /me/uses": "/me/uses",
            "GET /register": "/register",
            "GET /register/{id}": f"/register/{use_id}",
            "GET /transparency": "/transparency",
            "GET /log/checkpoint": "/log/checkpoint",
        }
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0, 0.6))
            if rng.random() < choice_share:
                page = rec.timed(
                    client, "GET /me/choices/{purpose}", "GET", f"/me/choices/{PURPOSE}", 200
                )
                if page is None:
                    continue
                token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                if token is None:
                    rec.errors.append("no CSRF token on the choice page")
                    continue
                # Post the opposite of the answer in force, so every POST changes the choice
                # and appends exactly one entry.
                radio = re.search(r'<input[^>]*value="opt-out"[^>]*>', page.text)
                opted_out = radio is not None and "checked" in radio.group(0)
                answer = "opt-in" if opted_out else "opt-out"
                form = {"choice": "allow" if opted_out else "opt-out", "csrf_token": token.group(1)}
                posted = rec.timed(
                    client,
                    "POST /me/choices/{purpose}",
                    "POST",
                    f"/me/choices/{PURPOSE}",
                    303,
                    data=form,
                )
                if posted is None:
                    continue
                if posted.headers.get("location") != f"/me/choices/{PURPOSE}/saved":
                    rec.errors.append(f"choice POST went to {posted.headers.get('location')}")
                    continue
                choices_made += 1
                opted_out = answer == "opt-out"
                saved = rec.timed(
                    client,
                    "GET /me/choices/{purpose}/saved",
                    "GET",
                    f"/me/choices/{PURPOSE}/saved",
                    200,
                )
                if saved is not None and "Your choice has been saved" not in saved.text:
                    rec.errors.append("the saved page does not confirm the choice")
                continue
            label = rng.choice(routes)
            rec.timed(client, label, "GET", paths[label], 200)
    out.update(samples=rec.samples, errors=rec.errors, choices=choices_made, opted_out=opted_out)


@dataclass
class _Start:
    """Lets a worker's threads sign in first and start their loops together."""

    ready: threading.Barrier
    go: threading.Barrier
    deadline: float = 0.0


def residents_worker(cfg: dict[str, Any], out_path: str, barrier: Any) -> None:
    """Sign in every resident, wait for the other workers, then loop until the deadline."""
    routes = [
        "GET /me",
        "GET /me/records",
        "GET /me/choices",
        "GET /me/services",
        "GET /register",
        "GET /register/{id}",
        "GET /transparency",
        "GET /log/checkpoint",
    ]
    # /me/uses is being added by another change: request it only when this server has it.
    rec = _Recorder()
    with httpx.Client(base_url=cfg["base"], follow_redirects=False, timeout=60) as probe:
        if _sign_in(probe, rec, cfg["residents"][0]["sub"]):
            if probe.get("/me/uses").status_code == 200:
                routes.append("GET /me/uses")
    results: list[dict[str, Any]] = [{} for _ in cfg["residents"]]
    n = len(cfg["residents"])
    start = _Start(threading.Barrier(n + 1), threading.Barrier(n + 1))
    threads = []
    for i, resident in enumerate(cfg["residents"]):
        thread = threading.Thread(
            target=_resident_loop,
            args=(
                cfg["base"],
                resident,
                cfg["use_id"],
                routes,
                start,
                1000 + i,
                cfg["choice_share"],
                results[i],
            ),
        )
        thread.start()
        threads.append(thread)
    start.ready.wait()
    barrier.wait()
    start.deadline = time.monotonic() + cfg["seconds"]
    start.go.wait()
    for thread in threads:
        thread.join()
    _write_json(
        out_path,
        {
            "residents": results,
            "routes": routes,
            "probe_samples": rec.samples,
            "probe_errors": rec.errors,
        },
    )


def _busy(exc: BaseException) -> bool:
    return "in use by another Candour process" in str(exc)


def analyst_worker(cfg: dict[str, Any], out_path: str, barrier: Any) -> None:
    """Gated queries in a loop under the use, serialised with the other warehouse writers."""
    from filelock import FileLock

    from candour import gate
    from candour.config import Settings

    settings = Settings(home=Path(cfg["home"]))
    lock = FileLock(cfg["lock"])
    rng = random.Random(cfg["seed"])
    done: list[dict[str, Any]] = []
    samples: list[float] = []
    errors: list[str] = []
    busy = 0
    barrier.wait()
    deadline = time.monotonic() + cfg["seconds"]
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 1.5))
        sql = rng.choice(QUERIES)
        start = time.perf_counter()
        while True:
            try:
                with lock:
                    result = gate.run(cfg["use_id"], cfg["user"], sql, settings=settings)
            except Exception as exc:
                if _busy(exc) and time.perf_counter() - start < 60:
                    busy += 1  # the server had the file open to read: the refusal says retry
                    time.sleep(0.05)
                    continue
                errors.append(f"{type(exc).__name__}: {exc}")
                result = None
            break
        samples.append((time.perf_counter() - start) * 1000)
        if result is not None:
            done.append({"query_id": result.query_id, "index": result.receipt.ledger_index})
    _write_json(out_path, {"done": done, "samples": samples, "errors": errors, "busy": busy})


def ingest_worker(cfg: dict[str, Any], out_path: str, barrier: Any) -> None:
    """A new small extract file every few seconds, ingested under the writers' lock."""
    from filelock import FileLock

    from candour.config import Settings
    from candour.sources.ingest import ingest
    from candour.warehouse import open_warehouse

    settings = Settings(home=Path(cfg["home"]))
    lock = FileLock(cfg["lock"])
    rng = random.Random(cfg["seed"])
    people = [tuple(p) for p in cfg["people"]]
    sources = Path(cfg["sources"])
    done: list[dict[str, Any]] = []
    samples: list[float] = []
    errors: list[str] = []
    busy = 0
    batch = 0
    barrier.wait()
    deadline = time.monotonic() + cfg["seconds"]
    while time.monotonic() < deadline:
        time.sleep(cfg["every"])
        batch += 1
        path = sources.parent / "visits" / f"visits_{cfg['seed']}_{batch:05d}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["visit_id", "forename", "surname", "dob", "visit_date", "team"])
            for row in range(cfg["rows"]):
                given, family, born = rng.choice(people)
                writer.writerow(
                    [
                        f"V{batch:05d}-{row:04d}",
                        given,
                        family,
                        born,
                        f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                        rng.choice(["north", "south", "east", "west"]),
                    ]
                )
        start = time.perf_counter()
        while True:
            try:
                with lock, open_warehouse(settings) as warehouse:
                    report = ingest(sources, settings, warehouse)
            except Exception as exc:
                if _busy(exc) and time.perf_counter() - start < 60:
                    busy += 1
                    time.sleep(0.05)
                    continue
                errors.append(f"{type(exc).__name__}: {exc}")
                report = None
            break
        samples.append((time.perf_counter() - start) * 1000)
        if report is not None:
            for result in report.results:
                if result.status == "ingested":
                    done.append(
                        {
                            "file": result.file,
                            "index": result.ledger_index,
                            "rows": result.rows_accepted,
                        }
                    )
    _write_json(out_path, {"done": done, "samples": samples, "errors": errors, "busy": busy})


# -- figures -----------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _unloaded(base: str, n: int = 50) -> float:
    """p50 (ms) of GET /log/checkpoint on the idle server."""
    times = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(n):
            start = time.perf_counter()
            client.get("/log/checkpoint").read()
            times.append((time.perf_counter() - start) * 1000)
    return _pct(times, 50)


def _verify(
    settings: Any, before: list[dict[str, Any]], outputs: dict[str, Any], use_id: str
) -> dict[str, Any]:
    """Lost and duplicated entries: counts per kind, and each known id exactly once."""
    from sqlalchemy import select

    from candour.store import transaction
    from candour.store.choices import ChoiceEvent
    from candour.store.gate import GateQuery

    after = _log_entries(settings)
    if [json.dumps(e, sort_keys=True) for e in after[: len(before)]] != [
        json.dumps(e, sort_keys=True) for e in before
    ]:
        raise RuntimeError("the log's earlier entries changed during the run")
    new = after[len(before) :]
    grew = Counter(e["kind"] for e in new)
    queries = [q for a in outputs["analysts"] for q in a["done"]]
    files = [f for f in outputs["ingest"]["done"]]
    posts = sum(r.get("choices", 0) for r in outputs["residents"]["residents"])
    expected = Counter({"query": len(queries), "ingest": len(files), "choice-change": posts})
    lost = sum(max(0, expected[k] - grew[k]) for k in expected)
    duplicated = sum(max(0, grew[k] - expected[k]) for k in set(grew) | set(expected))
    problems: list[str] = []
    # Queries: distinct indices, each a query entry of the use; each query_id once in the store.
    indices = [q["index"] for q in queries]
    if len(set(indices)) != len(indices):
        problems.append("two queries share a ledger index")
        duplicated += len(indices) - len(set(indices))
    for q in queries:
        entry = after[q["index"]] if q["index"] < len(after) else {}
        if entry.get("kind") != "query" or entry.get("use_id") != use_id:
            problems.append(f"query {q['query_id']}: index {q['index']} holds {entry.get('kind')}")
            lost += 1
    with transaction(settings) as session:
        stored = (
            Counter(
                session.scalars(
                    select(GateQuery.query_id).where(
                        GateQuery.query_id.in_([q["query_id"] for q in queries])
                    )
                ).all()
            )
            if queries
            else Counter()
        )
        rows = (
            {
                r.query_id: r.ledger_index
                for r in session.scalars(
                    select(GateQuery).where(
                        GateQuery.query_id.in_([q["query_id"] for q in queries])
                    )
                )
            }
            if queries
            else {}
        )
        events = session.scalars(select(ChoiceEvent).where(ChoiceEvent.channel == "portal")).all()
        event_indices = [e.ledger_index for e in events]
    for q in queries:
        if stored[q["query_id"]] != 1 or rows.get(q["query_id"]) != q["index"]:
            problems.append(
                f"query {q['query_id']} is in the store {stored[q['query_id']]} "
                "times or with another index"
            )
            lost += stored[q["query_id"]] == 0
            duplicated += max(0, stored[q["query_id"]] - 1)
    # Ingests: each file's hash in exactly one ingest entry, at the reported index.
    hashes = Counter(e["file_hash"] for e in new if e["kind"] == "ingest")
    for f in files:
        entry = after[f["index"]] if f["index"] is not None and f["index"] < len(after) else {}
        if entry.get("kind") != "ingest" or hashes[entry.get("file_hash", "")] != 1:
            problems.append(f"ingest of {f['file']}: entry {f['index']} missing or repeated")
            lost += entry.get("kind") != "ingest"
            duplicated += max(0, hashes[entry.get("file_hash", "")] - 1)
    # Choices: every portal event of the run has its own index holding a choice-change entry.
    if len(events) != posts:
        problems.append(f"{len(events)} portal choice events for {posts} successful POSTs")
    if len(set(event_indices)) != len(event_indices) or any(
        i is None or after[i]["kind"] != "choice-change" for i in event_indices
    ):
        problems.append("a portal choice event has no choice-change entry of its own")
    return {
        "lost": lost,
        "duplicated": duplicated,
        "grew": dict(grew),
        "expected": dict(expected),
        "problems": problems,
        "before": len(before),
        "after": len(after),
    }


def _cli(home: Path, *args: str) -> tuple[int, str]:
    candour = Path(sys.executable).parent / "candour"
    done = subprocess.run(
        [str(candour), *args, "--home", str(home)], capture_output=True, text=True, timeout=600
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def run(quick: bool) -> list[Result]:
    """Run the load test (5 minutes; quick: 15 s) and report per-route latency and integrity."""
    scale = QUICK if quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    home = workdir / "home"
    try:
        return _run(scale, quick, workdir, home)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(scale: Scale, quick: bool, workdir: Path, home: Path) -> list[Result]:
    started = time.perf_counter()
    settings, use_id = _build_home(home, scale)
    residents = _residents(settings, scale.residents)
    people = _people_for_batches(settings)
    built = time.perf_counter() - started
    lock = str(home / ".load-warehouse.lock")
    ctx = multiprocessing.get_context("spawn")
    with _provider() as issuer:
        for r in residents:
            reply = httpx.put(f"{issuer}/users/{r['sub']}", json=r["claims"], timeout=10)
            if reply.status_code != 204:
                raise RuntimeError(f"the OIDC provider refused a user: {reply.text}")
        port = _free_port()
        with _server(home, issuer, port, workdir / "serve.log") as base:
            idle_ms = _unloaded(base)
            before = _log_entries(settings)
            outs = {
                name: str(workdir / f"{name}.json")
                for name in ["residents", "ingest"] + [f"analyst{i}" for i in range(scale.analysts)]
            }
            barrier = ctx.Barrier(3 + scale.analysts)
            procs = [
                ctx.Process(
                    target=residents_worker,
                    args=(
                        {
                            "base": base,
                            "residents": residents,
                            "use_id": use_id,
                            "seconds": scale.seconds,
                            "choice_share": 0.05,
                        },
                        outs["residents"],
                        barrier,
                    ),
                ),
                ctx.Process(
                    target=ingest_worker,
                    args=(
                        {
                            "home": str(home),
                            "lock": lock,
                            "seed": 1,
                            "people": people,
                            "sources": str(home / "load" / "sources.yaml"),
                            "seconds": scale.seconds,
                            "every": scale.ingest_every,
                            "rows": scale.batch_rows,
                        },
                        outs["ingest"],
                        barrier,
                    ),
                ),
            ]
            for i in range(scale.analysts):
                procs.append(
                    ctx.Process(
                        target=analyst_worker,
                        args=(
                            {
                                "home": str(home),
                                "lock": lock,
                                "seed": 10 + i,
                                "use_id": use_id,
                                "user": ("ana", "bob")[i % 2],
                                "seconds": scale.seconds,
                            },
                            outs[f"analyst{i}"],
                            barrier,
                        ),
                    )
                )
            for proc in procs:
                proc.start()
            # Every worker has signed in or imported what it needs; the clock starts now.
            barrier.wait(timeout=900)
            load_started = time.perf_counter()
            load_before = os.getloadavg()[0]
            for proc in procs:
                proc.join(scale.seconds + 600)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(10)
            wall = time.perf_counter() - load_started
            load_after = os.getloadavg()[0]
            server_log = (workdir / "serve.log").read_text(errors="replace")
        failed = [p for p in procs if p.exitcode != 0]
        if failed:
            raise RuntimeError(
                f"{len(failed)} load worker(s) crashed; see above; server log "
                f"ends: {server_log[-2000:]}"
            )
    outputs: dict[str, Any] = {
        "residents": json.loads(Path(outs["residents"]).read_text()),
        "ingest": json.loads(Path(outs["ingest"]).read_text()),
        "analysts": [
            json.loads(Path(outs[f"analyst{i}"]).read_text()) for i in range(scale.analysts)
        ],
    }
    integrity = _verify(settings, before, outputs, use_id)
    verify_rc, verify_out = _cli(home, "ledger", "verify", "--full")
    check_rc, check_out = _cli(home, "check")
    return _results(
        scale,
        quick,
        outputs,
        integrity,
        verify_rc,
        verify_out,
        check_rc,
        check_out,
        idle_ms,
        wall,
        built,
        server_log,
        (load_before, load_after),
    )


def _results(
    scale: Scale,
    quick: bool,
    outputs: dict[str, Any],
    integrity: dict[str, Any],
    verify_rc: int,
    verify_out: str,
    check_rc: int,
    check_out: str,
    idle_ms: float,
    wall: float,
    built: float,
    server_log: str,
    loadavg: tuple[float, float],
) -> list[Result]:
    by_route: dict[str, list[float]] = defaultdict(list)
    route_errors: Counter[str] = Counter()
    error_texts: Counter[str] = Counter()
    residents = outputs["residents"]
    for sample in residents.get("probe_samples", []):
        by_route[sample[0]].append(sample[1])
        route_errors[sample[0]] += not sample[2]
    error_texts.update(residents.get("probe_errors", []))
    for r in residents["residents"]:
        for label, ms, ok in r.get("samples", []):
            by_route[label].append(ms)
            route_errors[label] += not ok
        error_texts.update(r.get("errors", []))
    if not by_route.get(REFERENCE_ROUTE):
        raise RuntimeError(
            "no GET /log/checkpoint sample: the residents' load did not run; errors: "
            + "; ".join(f"{n}x {t[:200]}" for t, n in error_texts.most_common(5))
            + f"; server log ends: {server_log[-1500:]}"
        )
    ref95 = _pct(by_route[REFERENCE_ROUTE], 95)
    ref50 = _pct(by_route[REFERENCE_ROUTE], 50)
    judge = not quick
    results: list[Result] = []
    http_errors = sum(route_errors.values()) + sum(
        1 for t in error_texts.elements() if not t.startswith(tuple(ROUTE_ORDER))
    )
    for label in sorted(by_route, key=lambda x: ROUTE_ORDER.index(x) if x in ROUTE_ORDER else 99):
        times = by_route[label]
        p50, p95, p99 = (_pct(times, q) for q in (50, 95, 99))
        results.append(
            Result(
                benchmark=f"load: {label} p95 ({len(times):,} requests)",
                figure=p95,
                unit="ms",
                target="0 errors under load; p50/p95/p99 reported",
                met=(route_errors[label] == 0) if judge else None,
                reference=f"{REFERENCE_ROUTE} (static file) p95, same run",
                reference_figure=ref95,
                ratio=p95 / ref95,
                notes=f"p50 {p50:.1f}, p99 {p99:.1f} ms; {route_errors[label]} errors",
                extra={
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "requests": len(times),
                    "errors": route_errors[label],
                },
            )
        )
    for who, data in [
        ("gated query (gate.run, analysts)", outputs["analysts"]),
        ("ingest of one 50-row file", [outputs["ingest"]]),
    ]:
        times = [t for d in data for t in d["samples"]]
        errs = sum(len(d["errors"]) for d in data)
        busy = sum(d["busy"] for d in data)
        for d in data:
            error_texts.update(d["errors"])
        if not times:
            continue
        p50, p95, p99 = (_pct(times, q) for q in (50, 95, 99))
        results.append(
            Result(
                benchmark=f"load: {who} p95 ({len(times):,} operations)",
                figure=p95,
                unit="ms",
                target="0 errors under load; p50/p95/p99 reported",
                met=(errs == 0) if judge else None,
                reference=f"{REFERENCE_ROUTE} (static file) p95, same run",
                reference_figure=ref95,
                ratio=p95 / ref95,
                notes=f"p50 {p50:.0f}, p99 {p99:.0f} ms, includes waiting for the writers' lock; "
                f"{errs} errors; {busy} busy retries (the server was reading the warehouse)",
                extra={
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "operations": len(times),
                    "errors": errs,
                    "busy_retries": busy,
                },
            )
        )
    op_errors = sum(len(a["errors"]) for a in outputs["analysts"]) + len(
        outputs["ingest"]["errors"]
    )
    errors = http_errors + op_errors
    requests = sum(len(v) for v in by_route.values())
    operations = (
        requests
        + sum(len(d["samples"]) for d in outputs["analysts"])
        + len(outputs["ingest"]["samples"])
    )
    ok = (
        errors == 0
        and integrity["lost"] == 0
        and integrity["duplicated"] == 0
        and not integrity["problems"]
        and verify_rc == 0
        and check_rc == 0
    )
    top = "; ".join(f"{n}x {t[:160]}" for t, n in error_texts.most_common(3))
    tracebacks = server_log.count("Traceback")
    # The exception each server traceback ends with, so the cause of a 500 is in the results.
    raised = Counter(
        line.strip()[:200]
        for line in server_log.splitlines()
        if re.match(r"^[\w.]+(Error|Exception): ", line.strip())
    )
    causes = "; ".join(f"{n}x {t}" for t, n in raised.most_common(2))
    results.insert(
        0,
        Result(
            benchmark=f"load: {scale.seconds:.0f} s, {scale.residents} residents, "
            f"{scale.analysts} analysts, 1 ingest ({scale.people:,} people)",
            figure=operations,
            unit="operations",
            target="0 errors, 0 lost, 0 duplicated log entries; verify --full and check pass",
            met=ok if judge else None,
            reference=f"{REFERENCE_ROUTE} p50 idle vs loaded (ms)",
            reference_figure=idle_ms,
            ratio=ref50 / idle_ms,
            notes=(
                f"{errors} errors ({http_errors} HTTP, {op_errors} gate/ingest); "
                f"lost {integrity['lost']}, duplicated {integrity['duplicated']}; log grew "
                f"{integrity['after'] - integrity['before']} entries "
                f"{json.dumps(integrity['grew'], sort_keys=True)}, expected "
                f"{json.dumps(integrity['expected'], sort_keys=True)}; "
                f"verify --full exit {verify_rc}, check exit {check_rc}; "
                f"{requests / wall:.1f} HTTP requests/s over {wall:.0f} s; setup {built:.0f} s; "
                f"server tracebacks {tracebacks}; machine load average {loadavg[0]:.1f} at the "
                f"start, {loadavg[1]:.1f} at the end (2 cores, shared)"
                + (f"; server raised: {causes}" if causes else "")
                + (
                    f"; problems: {'; '.join(integrity['problems'][:3])}"
                    if integrity["problems"]
                    else ""
                )
                + (f"; first errors: {top}" if top else "")
            ),
            extra={
                "errors": errors,
                "lost": integrity["lost"],
                "duplicated": integrity["duplicated"],
                "verify_rc": verify_rc,
                "check_rc": check_rc,
                "requests_per_s": requests / wall,
            },
        ),
    )
    if verify_rc or check_rc:
        print(
            f"ledger verify --full: {verify_out[-1500:]}\ncheck: {check_out[-1500:]}",
            file=sys.stderr,
        )
    return results
