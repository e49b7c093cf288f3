"""What the benchmark modules share: paths, threads, machine facts, JSON out, scan folders,
and a subprocess runner that samples the child's memory while it runs.

Every benchmark module (robustness, speed, load, ...) exposes

    run(quick: bool, out_dir: Path, seed: int = 0) -> dict   # measures, writes out_dir/<name>.json
    markdown(result: dict) -> str                             # the README table(s)

and `python -m benchmarks.run` runs them all; each also runs alone as `python -m benchmarks.<name>`
from the repository root.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
THREADS = 1  # every benchmark runs torch on one thread (2 shared cores; scores are thread-independent)


def set_threads(n: int = THREADS) -> None:
    from forensics.threads import set_threads as _set

    _set(n)  # torch and the child processes we start


def child_env() -> dict[str, str]:
    """The environment for a child process: ours (FORENSICS_DATA, PYTHONPATH...) on one thread."""
    return {**os.environ, "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}


def machine_info() -> dict[str, Any]:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": platform.machine(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def write_result(out_dir: str | os.PathLike, name: str, result: dict) -> Path:
    """out_dir/<name>.json, atomically (temp file, fsync, rename)."""
    from forensics.checkpoint import atomic_write_text

    path = Path(out_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return path


def display_path(path: str | os.PathLike) -> str:
    """A path relative to the repository root when it is inside it (as README links want)."""
    p = Path(path).resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        return str(p)


def write_scans(folder: Path, n: int) -> None:
    """n PNG scans in folder: MNIST test digits (test[i % 10000], so repeated past 10,000), dark
    ink on white, 84x84 (3x)."""
    from PIL import Image

    from forensics.data import load_dataset

    frames = load_dataset("mnist", train=False).images[:, 0].numpy()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(255 - frames[i % len(frames)]).resize((84, 84), Image.Resampling.BICUBIC).save(folder / f"{i:05d}.png")


class Timer:
    """Wraps a module function and adds up the seconds spent inside it."""

    def __init__(self, module, name: str):
        self.module, self.name, self.seconds = module, name, 0.0
        self.original = getattr(module, name)

    def __enter__(self):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        setattr(self.module, self.name, timed)
        return self

    def __exit__(self, *exc):
        setattr(self.module, self.name, self.original)


def save_figure(fig, path: Path) -> None:
    """A matplotlib figure as a PNG, atomically (a temporary file renamed into place), then closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


# --------------------------------------------------------------------------- a child's memory


def proc_status_mb(pid: int | str = "self") -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in MB; {} once it is gone.

    VmHWM belongs to the process's own address space, so it starts afresh at exec. (wait4's
    and getrusage's ru_maxrss do not: Linux carries the pre-exec peak over, and a child that
    subprocess started with vfork inherits its parent's peak that way.)
    """
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return {}
    return out


def process_tree(pid: int) -> list[int]:
    """pid and every process descended from it (worker processes, Ray's raylets and actors)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def run_sampled(cmd: list[str], interval: float = 0.5, cwd: str | os.PathLike | None = None,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run cmd to the end, reading the resident memory of it and every process it started
    (/proc/PID/status, summed over the tree: worker processes count) every ``interval``
    seconds. Returns exit code, wall seconds, the summed VmRSS samples [(seconds, MB)], the
    peak RSS (the largest of: the summed samples, and the command's own VmHWM, the kernel's
    high-water mark, so a spike of the main process between two samples still counts), and
    the tail of its stdout and stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, env=env or child_env())
        samples: list[tuple[float, float]] = []
        peak = 0.0
        try:
            while True:
                pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                mems = [proc_status_mb(p) for p in process_tree(proc.pid)]
                rss = sum(m.get("VmRSS", 0.0) for m in mems)
                if rss:
                    samples.append((round(time.perf_counter() - t0, 2), round(rss, 1)))
                peak = max(peak, rss, mems[0].get("VmHWM", 0.0) if mems else 0.0)
                time.sleep(interval)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return {
        "returncode": proc.returncode,
        "seconds": wall,
        "samples": samples,
        "peak_rss_mb": peak,
        "stdout": stdout,
        "stderr_tail": stderr[-2000:],
    }


def rss_at(samples: list[tuple[float, float]], t: float) -> float | None:
    """The sampled RSS nearest in time to t."""
    if not samples:
        return None
    return min(samples, key=lambda s: abs(s[0] - t))[1]


def main(run, markdown, doc: str | None, options: tuple = (), results: Path = RESULTS) -> None:
    """The command line every benchmark module shares: ``python -m benchmarks.NAME [--quick]
    [--out DIR] [--seed N] [--threads N]`` plus its own ``options``, each ``(flags, argparse
    keywords)``; an option left unset is not passed to ``run``. Prints ``markdown(result)``."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke-test sizes: the figures are not results")
    ap.add_argument("--out", type=Path, default=results, help=f"results folder (default {display_path(results)})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=THREADS, help="torch CPU threads (default 1)")
    for flags, kwargs in options:
        ap.add_argument(*flags, **kwargs)
    args = vars(ap.parse_args())
    quick, out, seed = args.pop("quick"), args.pop("out"), args.pop("seed")
    set_threads(args.pop("threads"))
    print(markdown(run(quick, out, seed, **{k: v for k, v in args.items() if v is not None})))


def thresholds_text(result: dict) -> str:
    """The verdict thresholds a result was measured at (0.8 / 0.2 for results from before bundles carried them)."""
    t = result.get("thresholds")
    if not t:
        return "machine >= 0.8, human <= 0.2: measured before bundles carried fitted thresholds"
    return f"machine >= {t['t_machine']:g}, human <= {t['t_human']:g}"
