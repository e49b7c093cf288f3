"""Run every benchmark in sequence, collect the results, and write docs/results.md.

    FORENSICS_DATA=/path/to/data python -m benchmarks.run                  # full (about 3 h on one thread)
    FORENSICS_DATA=/path/to/data python -m benchmarks.run --quick          # smoke sizes (a few minutes)
    python -m benchmarks.run --quick --out /tmp/bench --no-docs            # touches nothing in the repository
    python -m benchmarks.run --only robustness --only speed                # a subset; the others' last results are reused
    python -m benchmarks.run --collect                                     # run nothing; rebuild docs/results.md

Each module in MODULES exposes ``run(quick, out_dir, seed) -> dict`` (writing its JSON, and
pictures, to out_dir) and ``markdown(result) -> str``, and runs alone as
``python -m benchmarks.NAME``. One that cannot be imported is recorded as "missing" or
"failed", one that raises as "failed" (with the error), and the others still run. Writes
OUT/summary.json (each module's status, seconds and files; the total wall time) and
OUT/summary.md, then docs/results.md (unless --no-docs). Exit code 0 when no module failed,
1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported anywhere


from benchmarks.common import RESULTS, ROOT, display_path, log, machine_info, set_threads

MODULES = ("generator_quality", "nll", "training", "robustness", "new_forgers", "human_variety", "lr_calibration",
           "page_evidence", "forms", "speed", "throughput", "load", "report_speed")
TITLES = {
    "generator_quality": "Generator quality",
    "nll": "Likelihood (NLL)",
    "robustness": "Detector robustness to scanning",
    "training": "Training (the shipped generators, 2 CPU cores)",
    "new_forgers": "New forgers: the shipped detector on models it was not calibrated on",
    "human_variety": "Honest filers: human digits captured the ways forms arrive",
    "lr_calibration": "Likelihood ratios: Cllr and reliability on held-out data",
    "page_evidence": "Page verdicts: a page's boxes together, on held-out forms",
    "forms": "Form pages: boxes found, verdicts from pages vs the same characters alone",
    "speed": "Speed and memory",
    "throughput": "Throughput: every core, as a user runs it",
    "load": "Load: one call, many scans",
    "report_speed": "Reports: rendering speed and size",
}
RESULTS_DOC = ROOT / "docs" / "results.md"


def _snapshot(folder: Path) -> dict[str, int]:
    if not folder.is_dir():
        return {}
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")}


def _load_module(name: str):
    """(module, None) or (None, (status, reason))."""
    try:
        return importlib.import_module(f"benchmarks.{name}"), None
    except ModuleNotFoundError as exc:
        if exc.name == f"benchmarks.{name}":
            return None, ("missing", f"benchmarks/{name}.py not found")
        return None, ("failed", f"import: {type(exc).__name__}: {exc}")
    except Exception as exc:
        return None, ("failed", f"import: {type(exc).__name__}: {exc}")


def run_module(name: str, quick: bool, out_dir: Path, seed: int) -> tuple[dict, str | None]:
    """Run one module; (summary entry, its markdown or None)."""
    before = _snapshot(out_dir)
    t = time.perf_counter()
    entry: dict = {"name": name, "status": "ok", "seconds": None, "files": [], "error": None}
    md = None
    mod, problem = _load_module(name)
    if problem:
        entry["status"], entry["error"] = problem
    else:
        log(f"run: {name} ({'quick' if quick else 'full'})")
        try:
            result = mod.run(quick=quick, out_dir=out_dir, seed=seed)
            md = mod.markdown(result)
        except Exception as exc:
            entry["status"] = "failed"
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback_tail"] = traceback.format_exc()[-3000:]
            log(f"run: {name} FAILED: {entry['error']}")
    entry["seconds"] = round(time.perf_counter() - t, 1)
    after = _snapshot(out_dir)
    entry["files"] = sorted(display_path(p) for p, m in after.items() if before.get(p) != m)
    log(f"run: {name}: {entry['status']} in {entry['seconds']} s")
    return entry, md


def reuse_module(name: str, out_dir: Path) -> tuple[dict, str | None]:
    """A module left out with --only: its last result in out_dir, if there is one."""
    entry: dict = {"name": name, "status": "not run", "seconds": None, "files": [], "error": None}
    path = out_dir / f"{name}.json"
    mod, problem = _load_module(name)
    if problem or not path.is_file():
        return entry, None
    try:
        md = mod.markdown(json.loads(path.read_text()))
    except Exception as exc:
        entry["error"] = f"could not render the last result: {type(exc).__name__}: {exc}"
        return entry, None
    entry.update(status="reused", files=[display_path(path)])
    return entry, md


def _recorded_seconds(out_dir: Path) -> float:
    """The modules' own wall times, added up (what a sequential run would have taken)."""
    total = 0.0
    for name in MODULES:
        path = out_dir / f"{name}.json"
        if path.is_file():
            result = json.loads(path.read_text())
            total += float(result.get("wall_seconds") or result.get("seconds") or 0.0)
    return round(total, 1)


def document(summary: dict, parts: dict[str, str | None]) -> str:
    """docs/results.md: every module's tables, with how and when they were made."""
    mode = "--quick " if summary["quick"] else ""
    collected = " of module time, modules run one by one and collected with --collect" if summary.get("collected") else ""
    lines = [
        "# Results",
        "",
        f"_Written by `python -m benchmarks.run {mode}--seed {summary['seed']}` on {summary['finished_utc'][:10]} "
        f"({summary['total_seconds'] / 60:.0f} min{collected} on {summary['machine']['cpu_count']} shared CPU "
        f"cores, torch on one thread); the JSON behind every table is in `{summary['out_dir']}/`. Rewritten by "
        f"each run: edit `benchmarks/`, not this file. Experiments that measured an idea once are in "
        f"[experiments.md](experiments.md); the shipped models are described in [models.md](models.md)._"
        + (" **Quick mode: smoke-test sizes; the figures are not results.**" if summary["quick"] else ""),
    ]
    for m in summary["modules"]:
        lines += ["", f"## {TITLES.get(m['name'], m['name'])}", ""]
        md = parts.get(m["name"])
        if md:
            lines.append(md.strip().replace("](benchmarks/", "](../benchmarks/").replace("](docs/", "]("))
        else:
            lines.append(f"_Not available ({m['status']}{': ' + m['error'] if m.get('error') else ''})._")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke-test sizes (a few minutes in all)")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {display_path(RESULTS)})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="append", choices=MODULES, help="run only this module (repeatable)")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/results.md")
    ap.add_argument("--collect", action="store_true",
                    help="run nothing: rebuild summary and docs/results.md from the results already in --out (for modules "
                         "run one by one, e.g. side by side on two cores)")
    ap.add_argument("--docs", type=Path, default=RESULTS_DOC, help=argparse.SUPPRESS)  # for testing the rewrite
    args = ap.parse_args()

    set_threads()

    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    entries, parts = [], {}
    for name in MODULES:
        if args.collect or (args.only and name not in args.only):
            entry, md = reuse_module(name, out_dir)
        else:
            entry, md = run_module(name, args.quick, out_dir, args.seed)
        entries.append(entry)
        parts[name] = md
    summary = {
        "quick": args.quick,
        "seed": args.seed,
        "command": shlex.join(["python", "-m", "benchmarks.run", *sys.argv[1:]]),
        "out_dir": display_path(out_dir),
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "total_seconds": round(time.perf_counter() - t0, 1) if not args.collect else _recorded_seconds(out_dir),
        "collected": args.collect,
        "modules": entries,
        "machine": machine_info(),
    }
    from forensics.checkpoint import atomic_write_text

    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    body = document(summary, parts)
    atomic_write_text(out_dir / "summary.md", body)
    if not args.no_docs:
        atomic_write_text(args.docs, body)
        log(f"run: {display_path(args.docs)} rewritten")
    failed = [e["name"] for e in entries if e["status"] == "failed"]
    log(f"run: {summary['total_seconds']:.0f} s in all; " + ", ".join(f"{e['name']} {e['status']}" for e in entries))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
