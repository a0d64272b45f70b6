"""Run every benchmark and rewrite the results table in docs/benchmarks.md.

    make bench              # full scale: the figures the issues' targets are judged by
    make bench-quick        # small scale: checks the benchmark code still works (CI runs it)
    python -m benchmarks.run --only ledger --quick --no-write

Each benchmark module is ``benchmarks/bench_<name>.py`` with ``run(quick: bool) -> list[Result]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import Result

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
# Every module's latest full run, so running one benchmark keeps the others' figures.
RESULTS = ROOT / "docs" / "benchmarks.json"
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"


def discover(only: list[str] | None = None) -> list[str]:
    """The names of the benchmark modules, e.g. ``["ledger", "synth"]``."""
    names = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))
    if only:
        missing = sorted(set(only) - set(names))
        if missing:
            raise SystemExit(f"no such benchmark: {', '.join(missing)} (have {', '.join(names)})")
        names = [n for n in names if n in only]
    return names


def machine() -> str:
    """A one-line description of this machine, for the record."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}){memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(results: list[Result]) -> str:
    """The Markdown table of results."""
    rows = [
        "| benchmark | figure | target | met | reference | ratio | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        met = {True: "yes", False: "**no**", None: "n/a (quick)"}[r.met]
        reference = r.reference
        if r.reference_figure is not None:
            reference += f" ({_fmt(r.reference_figure)})"
        rows.append(
            f"| {r.benchmark} | {_fmt(r.figure)} {r.unit} | {r.target} | {met} | {reference} "
            f"| {_fmt(r.ratio)} | {r.notes} |"
        )
    return "\n".join(rows)


def rewrite_doc(text: str, block: str) -> str:
    """Replace the results block in docs/benchmarks.md, keeping the prose around it."""
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} lacks the {BEGIN} / {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small scale; do not judge targets")
    parser.add_argument("--only", action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="print, do not rewrite the doc")
    args = parser.parse_args(argv)

    ran: dict[str, dict[str, object]] = {}
    results: list[Result] = []
    for name in discover(args.only):
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.perf_counter()
        module_results = list(module.run(quick=args.quick))
        for result in module_results:
            print(
                f"   {result.benchmark}: {_fmt(result.figure)} {result.unit} "
                f"(target {result.target}; ratio {_fmt(result.ratio)})",
                flush=True,
            )
        results.extend(module_results)
        ran[name] = {
            "run_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "seconds": round(time.perf_counter() - started, 1),
            "machine": machine(),
            "command": f"python -m benchmarks.run --only {name}",
            "results": [dataclasses.asdict(r) for r in module_results],
        }
    if args.no_write or args.quick:
        print(table(results))
    else:
        stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        stored.update(ran)
        RESULTS.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
        DOC.write_text(rewrite_doc(DOC.read_text(), render(stored)))
        print(f"wrote {DOC.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    failed = [r for r in results if r.met is False]
    return 1 if failed and not args.quick else 0


def render(stored: dict[str, dict[str, object]]) -> str:
    """The results block of docs/benchmarks.md: one table per benchmark module."""
    parts = ["All figures come from `make bench` (or the per-benchmark command shown)."]
    for name in sorted(stored):
        run = stored[name]
        rows = [Result(**r) for r in run["results"]]  # type: ignore[arg-type, attr-defined]
        parts += [
            "",
            f"### {name}",
            "",
            f"Run {run['run_at']} with `{run['command']}` ({run['seconds']} s) on "
            f"{run['machine']}.",
            "",
            table(rows),
        ]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
