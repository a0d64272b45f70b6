"""Web benchmark: the public register under load, served by ``candour serve`` and driven by wrk.

Issue 6's target: the public register serves >= 300 requests/s on this 2-core machine with 0
errors. The home holds a realistic register (200 data uses from several organisations and
purposes, in every public status, each with its lifecycle in the log, and 100 logged queries
under the use whose detail page is measured). ``candour serve`` runs as it would for the public
(uvicorn, :data:`WORKERS` worker processes) and wrk, from Debian (scripts/setup-web.sh), loads it
from the same machine, so server and load tool share the two cores. Figures:

- ``/register`` (the list, as anonymous visitors see it) and ``/register/{use_id}`` (one use's
  detail page): requests/s over :data:`SECONDS` s; errors are socket errors plus non-2xx/3xx
  answers, as wrk counts them; latency p50 and p99 from wrk's ``--latency`` distribution.
- The reference, in the same run with the same uvicorn, workers and wrk settings: a bare ASGI
  "hello" app, the most a Python server can do here; the ratio is the page's requests/s over it.

Quick mode: 30 uses and 3 s per measurement, to check the code still works.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.common import Result
from candour.config import Settings

SECONDS = 30
QUICK_SECONDS = 3
USES = 200
QUICK_USES = 30
WORKERS = 2
CONNECTIONS = 32
TARGET_RPS = 300.0
ORGANISATIONS = (
    "Wealdshire County Council",
    "Wealdshire Public Health",
    "Wealdshire and Downs NHS Trust",
    "Wealdshire Fire and Rescue Service",
    "Wealdshire Constabulary",
    "University of Wealdshire",
)
PURPOSES = ("service-evaluation", "service-planning", "research")

USE_YAML = """\
title: {title}
summary: Did home safety visits reduce falls among older people in {area}?
public_benefit: Fewer older people hurt by falls at home
organisation: {organisation}
team: Intelligence and analysis
senior_responsible_owner: Director of Public Health
purpose: {purpose}
legal_basis:
  article_6: "6(1)(e) public task"
  common_law: "de-identified data; no duty of confidence breached"
applicant: ana
analysts: [ana]
grants:
  ae_attendances: "*"
  fire_home_safety_visits: [visit_date]
output: aggregate
disclosure: {{threshold: 10, rounding: 5}}
starts: 2026-01-01
ends: 2099-12-31
"""

HELLO_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})
"""


@dataclass
class Load:
    """What wrk measured against one address."""

    rps: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float


def build_register(root: Path, uses: int) -> tuple[Settings, str]:
    """A data home with ``uses`` data uses in the register; returns it and a busy use's id."""
    from candour import ledger, register
    from candour.choices import load_purposes
    from candour.initialise import initialise_home
    from candour.ledger import entries

    settings = Settings(home=root, web_secure_cookies=False)
    initialise_home(settings)
    register.add_user("ana", "analyst", settings=settings)
    register.add_user("ian", "ig", settings=settings)
    purposes = load_purposes(settings)
    ids = []
    for n in range(uses):
        spec = register.parse_use(
            USE_YAML.format(
                title=f"Falls prevention evaluation {n + 1}",
                area=f"district {n % 12 + 1}",
                organisation=ORGANISATIONS[n % len(ORGANISATIONS)],
                purpose=PURPOSES[n % len(PURPOSES)],
            )
        )
        use_id = register.apply_use(spec, purposes=purposes, settings=settings).use_id
        ids.append(use_id)
        # Every public status: mostly active, some waiting, some rejected, a few drafts (hidden).
        kind = n % 10
        if kind == 9:
            continue
        register.submit(use_id, "ana", settings=settings)
        if kind == 8:
            register.reject(use_id, "ian", settings=settings)
        elif kind != 7:
            register.approve(use_id, "ian", purposes=purposes, settings=settings)
    busy = ids[0]
    digest = "ab" * 32
    ledger.record_many(
        [
            (
                "query",
                {
                    "time": entries.now(),
                    "use_id": busy,
                    "sql_hash": digest,
                    "choices_hash": digest,
                    "cohort_hash": digest,
                    "output_hash": digest,
                },
            )
            for _ in range(100)
        ],
        settings=settings,
    )
    return settings, busy


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    # Generous: on a machine shared with other work, importing and building the app in each
    # worker process can take minutes.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        # An answer, not an open port: uvicorn's parent binds the port before its workers
        # are ready, and load sent then would measure the start-up.
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")


class Server:
    """A server process on a free port, stopped (and waited for) on exit."""

    def __init__(self, command: list[str], log: Path, cwd: Path | None = None) -> None:
        self.port = _free_port()
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.log = log
        self.cwd = cwd

    def __enter__(self) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CANDOUR_")}
        with self.log.open("wb") as out:
            # Its own process group, so the workers stop with it.
            self.process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        _wait_for(self.port, self.process, self.log)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not found:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def parse_wrk(output: str) -> Load:
    """Requests/s, requests, errors and latency percentiles from wrk's ``--latency`` output."""
    rps = re.search(r"Requests/sec:\s*([0-9.]+)", output)
    total = re.search(r"([0-9]+) requests in", output)
    if not rps or not total:
        raise ValueError(f"unexpected wrk output:\n{output}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*([0-9]+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(
        r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)",
        output,
    )
    if sockets:
        errors += sum(int(g) for g in sockets.groups())
    p50 = re.search(r"^\s*50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s*99%\s+(\S+)", output, re.MULTILINE)
    return Load(
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        errors=errors,
        p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
    )


def wrk(url: str, seconds: int) -> Load:
    """Load ``url`` with wrk (one thread, :data:`CONNECTIONS` connections) for ``seconds``."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: run scripts/setup-web.sh")
    # One load thread: the server, not wrk, should have the lion's share of the two cores.
    command = [binary, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


def run(quick: bool) -> list[Result]:
    """Build a register, serve it with ``candour serve`` and load it with wrk."""
    seconds = QUICK_SECONDS if quick else SECONDS
    uses = QUICK_USES if quick else USES
    work = Path(tempfile.mkdtemp(prefix="candour-bench-web-"))
    candour = str(Path(sys.executable).parent / "candour")
    try:
        settings, busy = build_register(work / "home", uses)
        from candour.store import dispose

        dispose(settings)
        serve = [
            candour,
            "serve",
            "--home",
            str(settings.home),
            "--port",
            "{port}",
            "--workers",
            str(WORKERS),
        ]
        with Server(serve, work / "serve.log") as base:
            # A first request of each page fills the caches, as any visitor would.
            warm = [wrk(base + path, 1) for path in ("/register", f"/register/{busy}")]
            assert all(w.errors == 0 for w in warm), warm
            listing = wrk(base + "/register", seconds)
            detail = wrk(f"{base}/register/{busy}", seconds)
        (work / "hello.py").write_text(HELLO_APP)
        hello_command = [
            sys.executable,
            "-m",
            "uvicorn",
            "hello:app",
            "--port",
            "{port}",
            "--workers",
            str(WORKERS),
            "--log-level",
            "warning",
        ]
        with Server(hello_command, work / "hello.log", cwd=work) as base:
            wrk(base + "/", 1)
            hello = wrk(base + "/", seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def result(name: str, load: Load, what: str) -> Result:
        met = None if quick else (load.rps >= TARGET_RPS and load.errors == 0)
        return Result(
            benchmark=name,
            figure=load.rps,
            unit="requests/s",
            target=">= 300 requests/s, 0 errors",
            met=met,
            reference=f"bare uvicorn ASGI hello, {WORKERS} workers",
            reference_figure=hello.rps,
            ratio=load.rps / hello.rps,
            notes=f"{what}; {uses} uses; {load.requests:,} requests in {seconds} s, "
            f"{load.errors} errors; p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms; "
            f"wrk -t1 -c{CONNECTIONS} on the same 2 cores; candour serve --workers {WORKERS}",
            extra={
                "errors": float(load.errors),
                "p50_ms": load.p50_ms,
                "p99_ms": load.p99_ms,
                "requests": float(load.requests),
                "hello_p50_ms": hello.p50_ms,
                "hello_p99_ms": hello.p99_ms,
            },
        )

    return [
        result("web /register (anonymous list)", listing, "the list page"),
        result("web /register/{use_id} (detail)", detail, "a use with 100 logged queries"),
    ]
