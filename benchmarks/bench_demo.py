"""County-scale demo: ``candour demo --people 1500000 --no-serve`` end to end, as a user runs it.

The installed console script runs in a child process; every stage's time comes from its own
report (the ``✓ stage in N s`` lines), and memory is the peak, sampled every half second, of
the resident set of the whole process tree (the demo and its sealing, decryption and synth
workers together), which is what the machine has to hold. Quick mode runs the smallest
county the demo accepts.

The reference is the synthetic county on its own (``candour synth``, the same people and
seed), timed in the same run: the demo's total as a multiple of generating its input.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import Result

PEOPLE = 1_500_000
QUICK_PEOPLE = 500
TARGET_SECONDS = 45 * 60
TARGET_MB = 12 * 1024
_STAGE = re.compile(
    r"✓ (?P<name>.+?) in (?P<seconds>[0-9.]+) s \(peak memory (?P<mb>[0-9,]+) MB\)"
)


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and every descendant, in MB (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        pid, ppid = int(entry.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 2**20


class _PeakSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.peak = max(self.peak, _tree_rss_mb(self.pid))


def _candour(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("candour")), *args]


def _run_demo(
    home: Path, people: int
) -> tuple[float, float, dict[str, tuple[float, float]], str]:
    """Wall seconds, peak tree memory (MB), per stage (seconds, the demo process's peak MB
    after it), and the output's tail."""
    env = dict(os.environ, COLUMNS="200")
    started = time.perf_counter()
    proc = subprocess.Popen(
        _candour("demo", "--people", str(people), "--no-serve", "--home", str(home)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    sampler = _PeakSampler(proc.pid)
    sampler.start()
    assert proc.stdout is not None
    output = proc.stdout.read()
    code = proc.wait()
    wall = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    if code:
        raise RuntimeError(f"candour demo exited {code}: {output[-3000:]}")
    stages = {
        m["name"]: (float(m["seconds"]), float(m["mb"].replace(",", "")))
        for m in _STAGE.finditer(output)
    }
    return wall, sampler.peak, stages, output[-1500:]


def run(quick: bool) -> list[Result]:
    """Run the demo at county scale (quick: the smallest county) and the synth reference."""
    people = QUICK_PEOPLE if quick else PEOPLE
    root = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    try:
        start = time.perf_counter()
        subprocess.run(
            _candour("synth", "--people", str(people), "--seed", "1", "--out", str(root / "s")),
            check=True,
            capture_output=True,
        )
        synth_seconds = time.perf_counter() - start
        shutil.rmtree(root / "s", ignore_errors=True)
        wall, peak, stages, _tail = _run_demo(root / "home", people)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    judge = None if quick else True
    slowest = sorted(stages.items(), key=lambda kv: -kv[1][0])
    return [
        Result(
            benchmark=f"candour demo --people {people:,} --no-serve, end to end",
            figure=wall / 60,
            unit="min",
            target="<= 45 min on 2 cores, 24 GB",
            met=None if judge is None else wall <= TARGET_SECONDS,
            reference="candour synth alone, same people and seed",
            reference_figure=synth_seconds / 60,
            ratio=wall / synth_seconds,
            notes="stages (seconds, the demo process's peak memory after it): "
            + ", ".join(f"{name} {sec:,.0f} s ({mb:,.0f} MB)" for name, (sec, mb) in slowest),
            extra={"stages": stages, "wall_seconds": wall},  # type: ignore[dict-item]
        ),
        Result(
            benchmark=f"candour demo --people {people:,}, peak memory (whole process tree)",
            figure=peak,
            unit="MB",
            target="<= 12,288 MB",
            met=None if judge is None else peak <= TARGET_MB,
            notes="resident set of the demo and all its worker processes, sampled every 0.5 s",
        ),
    ]
