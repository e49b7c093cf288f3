"""Load test: 20,000 scans through ONE call of the real CLI, its memory sampled as it runs.

    forensics score SCANS_DIR --format csv --output OUT.csv --no-stability

runs in a child process (with its worker processes: every core) while this script reads
/proc/PID/status of the whole process tree every 0.5 s (VmRSS summed: resident memory now;
the main process's VmHWM: the kernel's peak). The same call on a twentieth of the scans
(1,000) first gives the memory to compare: flat means within 10%. Recorded: wall time, characters/s, peak RSS,
RSS at 10%, 50% and 90% of the run, the RSS curve, the exit code, and whether the CSV holds
exactly one ok record per scan.

The scans are MNIST test digits as dark ink on white, 84x84 PNG (benchmarks.common.write_scans,
scans); test has 10,000 digits, so for n > 10,000 scan i is test[i % 10000] and each digit
appears twice: identical files cost the scorer the same as distinct ones.

    FORENSICS_DATA=/path/to/data python -m benchmarks.load              # n = 20,000 (~25 min at 13 chars/s)
    FORENSICS_DATA=/path/to/data python -m benchmarks.load --quick      # n = 100
    FORENSICS_DATA=/path/to/data python -m benchmarks.load --n 5000

Writes OUT/load.json.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path


from benchmarks.common import (main, log, machine_info, rss_at, run_sampled, set_threads,
                                  write_result, write_scans)

NAME = "load"
FULL_N = 20000
QUICK_N = 100  # keeps `python -m benchmarks.run --quick` near 2 minutes at 6-13 chars/s
INTERVAL = 0.5
MAX_CURVE_POINTS = 200  # the RSS curve kept in the JSON, thinned evenly


def forensics_command() -> list[str]:
    """The installed `forensics` console script next to this Python, else `python -m forensics`."""
    script = Path(sys.executable).parent / "forensics"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "forensics"]


def count_csv(path: Path) -> tuple[int, int]:
    """(records, ok records) in a `forensics score --format csv` file."""
    if not path.is_file():
        return 0, 0
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return len(rows), sum(r.get("status") == "ok" for r in rows)


def run(quick: bool, out_dir: Path, seed: int = 0, n: int | None = None) -> dict:
    """Score n scans (default 20,000; 300 when quick) with one `forensics score` call. The
    seed is unused (scoring draws no random numbers; the scans are fixed) but recorded."""
    set_threads()
    n = n or (QUICK_N if quick else FULL_N)
    tmp = Path(tempfile.mkdtemp(prefix="forensics-load-"))
    try:
        scans, out_csv = tmp / "scans", tmp / "scores.csv"
        t = time.perf_counter()
        write_scans(scans, n)
        write_seconds = time.perf_counter() - t
        def command(folder: Path, out: Path) -> list[str]:
            return [*forensics_command(), "score", str(folder), "--format", "csv", "--output", str(out), "--no-stability"]

        cmd = command(scans, out_csv)
        n_small = max(n // 20, 1)
        small = tmp / "small"
        small.mkdir()
        for f in sorted(scans.iterdir())[:n_small]:
            (small / f.name).symlink_to(f)
        r_small = run_sampled(command(small, tmp / "small.csv"), interval=INTERVAL)
        if r_small["returncode"] != 0 or count_csv(tmp / "small.csv") != (n_small, n_small):
            raise RuntimeError(f"the {n_small}-scan run failed (exit {r_small['returncode']}): {r_small['stderr_tail']}")
        log(f"load: {n} scans written in {write_seconds:.0f} s; {n_small} scored (peak "
            f"{r_small['peak_rss_mb']:.0f} MB); running {' '.join(cmd[-6:])}")
        r = run_sampled(cmd, interval=INTERVAL)
        records, ok = count_csv(out_csv)
        csv_bytes = out_csv.stat().st_size if out_csv.is_file() else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wall, samples = r["seconds"], r["samples"]
    step = max(1, len(samples) // MAX_CURVE_POINTS)
    result = {
        "benchmark": NAME,
        "quick": quick,
        "seed": seed,
        "n": n,
        "scans": "MNIST test digits (test[i % 10000]), dark ink on white, 84x84 PNG"
                 + ("; every digit twice" if n > 10000 else ""),
        "command": "forensics score SCANS_DIR --format csv --output OUT.csv --no-stability",
        "exit_code": r["returncode"],
        "records_written": records,
        "records_ok": ok,
        "all_records_written": records == n and ok == n,
        "wall_seconds": round(wall, 2),
        "chars_per_second": round(n / wall, 2),
        "peak_rss_mb": round(r["peak_rss_mb"], 1),
        "small_run": {"n": n_small, "exit_code": r_small["returncode"], "peak_rss_mb": round(r_small["peak_rss_mb"], 1),
                      "wall_seconds": round(r_small["seconds"], 2)},
        "peak_rss_ratio_to_small": round(r["peak_rss_mb"] / max(r_small["peak_rss_mb"], 1e-9), 3),
        "rss_mb_at_10pct": rss_at(samples, 0.1 * wall),
        "rss_mb_at_50pct": rss_at(samples, 0.5 * wall),
        "rss_mb_at_90pct": rss_at(samples, 0.9 * wall),
        "rss_samples": len(samples),
        "rss_interval_seconds": INTERVAL,
        "rss_curve": samples[::step],  # [seconds, MB]
        "csv_bytes": csv_bytes,
        "write_scans_seconds": round(write_seconds, 2),
        "stderr_tail": r["stderr_tail"][-600:] if r["returncode"] != 0 else "",
        "machine": machine_info(),
    }
    write_result(out_dir, NAME, result)
    log(f"load: exit {result['exit_code']}, {records}/{n} records, {result['chars_per_second']} chars/s, "
        f"peak RSS {result['peak_rss_mb']} MB")
    return result


def markdown(result: dict) -> str:
    r = result
    return "\n".join([
        f"One `forensics score DIR --format csv --output OUT.csv --no-stability` call on {r['n']:,} scans "
        f"({r['scans']}){'; quick mode' if r['quick'] else ''}; memory read every {r['rss_interval_seconds']:g} s.",
        "",
        "| scans | exit code | records written | wall time | chars/s | peak RSS | RSS at 10% / 50% / 90% of the run |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {r['n']:,} | {r['exit_code']} | {r['records_written']:,} ({r['records_ok']:,} ok) | "
        f"{r['wall_seconds'] / 60:.1f} min | {r['chars_per_second']:.1f} | {r['peak_rss_mb']:.0f} MB | "
        f"{r['rss_mb_at_10pct']} / {r['rss_mb_at_50pct']} / {r['rss_mb_at_90pct']} MB |",
        *([""] + [f"The same call on {r['small_run']['n']:,} scans peaked at {r['small_run']['peak_rss_mb']:.0f} MB: "
                  f"{r['n']:,} scans took {r['peak_rss_ratio_to_small']:.2f}x that (flat: within 1.10x). Memory is "
                  f"summed over the command and its worker processes."] if "small_run" in r else []),
    ])


if __name__ == "__main__":
    main(run, markdown, __doc__, options=(
        (("--n",), {"type": int, "help": f"number of scans (default {FULL_N}; {QUICK_N} with --quick)"}),))
