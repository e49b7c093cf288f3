"""Run every benchmark in sequence, collect the results, and refresh the README's tables.

    FORENSICS_DATA=/path/to/data python benchmarks/run.py                  # full (about 130 min on one thread)
    FORENSICS_DATA=/path/to/data python benchmarks/run.py --quick          # smoke sizes (2-3 min)
    python benchmarks/run.py --quick --out /tmp/bench --no-readme          # touches nothing in the repository
    python benchmarks/run.py --only robustness --only speed                # a subset; the others' last results are reused
    python benchmarks/run.py --collect                                     # run nothing; rebuild README from the results

Modules, in order: generator_quality, nll, robustness, detector_experiments, new_forgers, speed,
load. Each exposes
``run(quick, out_dir, seed) -> dict`` (writing its JSON, and pictures, to out_dir) and
``markdown(result) -> str``; one that is not there yet is recorded as "missing", one that
raises as "failed" (with the error), and the others still run. Writes OUT/summary.json
(each module's status, seconds and files; the total wall time) and OUT/summary.md, then
rewrites the README between the markers below (added under "## Results" if absent) unless
--no-readme. Exit code 0 when no module failed, 1 otherwise.
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

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from benchmarks.benchutil import RESULTS, ROOT, display_path, log, machine_info, set_threads  # noqa: E402

MODULES = ("generator_quality", "nll", "robustness", "detector_experiments", "new_forgers", "speed", "load")
TITLES = {
    "generator_quality": "Generator quality",
    "nll": "Likelihood (NLL)",
    "robustness": "Detector robustness to scanning",
    "detector_experiments": "Detector experiments: a source left out",
    "new_forgers": "New forgers: the shipped detector on models it was not calibrated on",
    "speed": "Speed and memory",
    "load": "Load: one call, many scans",
}
README = ROOT / "README.md"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
SECTION_HEADING = "### Benchmarks (`python benchmarks/run.py`)"


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


def section(summary: dict, parts: dict[str, str | None]) -> str:
    mode = "--quick " if summary["quick"] else ""
    lines = [
        f"_Generated by `python benchmarks/run.py {mode}--seed {summary['seed']}` on {summary['finished_utc'][:10]} "
        f"({summary['total_seconds'] / 60:.0f} min{' of module time, modules run one by one and collected with --collect' if summary.get('collected') else ''} "
        f"on {summary['machine']['cpu_count']} shared CPU cores, torch on one "
        f"thread); the JSON behind every table is in `{summary['out_dir']}/`. Rewritten by each run: edit "
        f"`benchmarks/`, not this section._"
        + (" **Quick mode: smoke-test sizes; the figures are not results.**" if summary["quick"] else ""),
    ]
    for m in summary["modules"]:
        lines += ["", f"#### {TITLES.get(m['name'], m['name'])}", ""]
        md = parts.get(m["name"])
        if md:
            lines.append(md.strip())
        else:
            lines.append(f"_Not available ({m['status']}{': ' + m['error'] if m.get('error') else ''})._")
    return "\n".join(lines)


def update_readme(readme: Path, body: str) -> None:
    """Replace the text between the markers; add the markers (a new subsection at the end of
    "## Results") when the README has none."""
    from forensics.checkpoint import atomic_write_text

    text = readme.read_text()
    block = f"{START}\n{body}\n{END}"
    if START in text and END in text and text.index(START) < text.index(END):
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        lines = text.split("\n")
        try:
            i = lines.index("## Results")
        except ValueError:
            raise SystemExit(f"{readme}: no '## Results' heading to put the benchmarks section under")
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
        while j > i + 1 and not lines[j - 1].strip():
            j -= 1
        text = "\n".join(lines[:j] + ["", SECTION_HEADING, "", block] + lines[j:])
    atomic_write_text(readme, text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke-test sizes (a few minutes in all)")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {display_path(RESULTS)})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="append", choices=MODULES, help="run only this module (repeatable)")
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite the README section")
    ap.add_argument("--collect", action="store_true",
                    help="run nothing: rebuild summary and README from the results already in --out (for modules "
                         "run one by one, e.g. side by side on two cores)")
    ap.add_argument("--readme", type=Path, default=README, help=argparse.SUPPRESS)  # for testing the rewrite
    args = ap.parse_args()

    set_threads()
    import detectors.bundle  # noqa: F401  (import the detector package before any module moves sys.path)

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
        "command": shlex.join(["python", "benchmarks/run.py", *sys.argv[1:]]),
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
    body = section(summary, parts)
    atomic_write_text(out_dir / "summary.md", body + "\n")
    if not args.no_readme:
        update_readme(args.readme, body)
        log(f"run: README section rewritten ({display_path(args.readme)})")
    failed = [e["name"] for e in entries if e["status"] == "failed"]
    log(f"run: {summary['total_seconds']:.0f} s in all; " + ", ".join(f"{e['name']} {e['status']}" for e in entries))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
