"""Throughput: scans/s of `forensics score` as a user runs it, on every core, beside the models' own time.

Writes N scans of mixed size (MNIST test digits, dark ink on white, 56 to 168 px, PNG) and
times `forensics score DIR --format csv --output OUT.csv` in a fresh process:

- default options (every core, re-scans only where they could flip a verdict: --stability
  near), --stability all, and --no-stability; the defaults and --no-stability also with
  --workers 1; the defaults with --engine ray on every core (when Ray is installed);
- each run twice, on N/4 scans and on N, so that the *marginal* rate (N - N/4) / (t_N - t_N/4)
  leaves out start-up (torch, the bundle, the workers), reported apart. N = 8000 (N/4 = 2000,
  8 slabs of the default --batch-size, so both runs use the worker pool): at 2,000 the extra
  scans of the fast configurations took about as long as the start-up varies between runs;
- peak resident memory over the whole process tree (worker processes included).

The models' own time at their best configuration: the same model calls scoring makes
(detectors.score.score_images: the combiner's signals, the re-scans, the digit reader) on the
preprocessed frames held in memory, in one process per core, for each stability mode. The
ratio end to end / models is what the pipeline around the models costs.

    FORENSICS_DATA=/path/to/data python -m benchmarks.throughput           # N = 8000
    FORENSICS_DATA=/path/to/data python -m benchmarks.throughput --quick   # N = 24, two rows: a smoke test
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import log, machine_info, main, run_sampled, write_result

NAME = "throughput"
FULL_N, QUICK_N = 8000, 24
SIZES = (56, 84, 112, 168)  # scan sizes in pixels, in turn: 2x to 6x the 28 px frame


def write_mixed_scans(folder: Path, n: int) -> None:
    from PIL import Image

    from forensics.data import load_dataset

    frames = load_dataset("mnist", train=False).images[:, 0].numpy()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        size = SIZES[i % len(SIZES)]
        img = Image.fromarray(255 - frames[i % len(frames)]).resize((size, size), Image.Resampling.BICUBIC)
        img.save(folder / f"{i:05d}.png")


def _command(scans: Path, out: Path, options: list[str]) -> list[str]:
    from benchmarks.load import forensics_command

    return [*forensics_command(), "score", str(scans), "--format", "csv", "--output", str(out), "--quiet", *options]


def _rows(path: Path) -> tuple[int, float]:
    """Rows in a records CSV, and the share of them that were re-scanned."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return len(rows), sum(r["rescanned"] == "true" for r in rows) / max(len(rows), 1)


def end_to_end(small: Path, full: Path, n_small: int, n: int, options: list[str], tmp: Path,
               env: dict | None = None) -> dict:
    runs = {}
    for label, folder, k in (("small", small, n_small), ("full", full, n)):
        out = tmp / f"{label}.csv"
        r = run_sampled(_command(folder, out, options), interval=0.5, env=env)
        if r["returncode"] not in (0,):
            raise RuntimeError(f"forensics score {' '.join(options)} exited {r['returncode']}: {r['stderr_tail']}")
        count, rescanned = _rows(out)
        assert count == k, (out, k)
        runs[label] = {**r, "rescanned_share": rescanned}
    t_small, t_full = runs["small"]["seconds"], runs["full"]["seconds"]
    marginal = (n - n_small) / max(t_full - t_small, 1e-9)
    return {"options": " ".join(options) or "(defaults)", "n": n, "seconds": round(t_full, 2),
            "scans_per_second": round(n / t_full, 2), "marginal_scans_per_second": round(marginal, 2),
            "startup_seconds": round(max(t_small - n_small / marginal, 0.0), 2),
            "peak_rss_mb": round(runs["full"]["peak_rss_mb"], 1),
            "rescanned_share": round(runs["full"]["rescanned_share"], 4)}


def _mode(options: list[str] | str) -> str:
    """The --stability mode a row's options ask for."""
    text = options if isinstance(options, str) else " ".join(options)
    return "off" if "--no-stability" in text else "all" if "--stability all" in text else "near"


def on_a_running_ray_cluster(tmp: Path, n_small: int, n: int, options: list[str], cores: int) -> dict:
    """The Ray row, the way a cluster is used: a head started once (`ray start --head` with every
    core here), each `forensics score --engine ray` connecting to it through RAY_ADDRESS. A
    fresh local instance per command would add a start-up of 15-25 s that varies from run to
    run by more than the scoring itself takes, and the marginal rate would be noise."""
    import subprocess
    import sys

    from benchmarks.common import child_env

    ray = str(Path(sys.executable).parent / "ray")
    subprocess.run([ray, "start", "--head", f"--num-cpus={cores}", "--include-dashboard=false"], check=True,
                   capture_output=True, env=child_env())
    try:
        row = end_to_end(tmp / "small", tmp / "full", n_small, n, options, tmp, env={**child_env(), "RAY_ADDRESS": "auto"})
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=child_env())
    row["options"] += " (a running local Ray head, RAY_ADDRESS=auto)"
    return row


def _model_worker(args) -> float:
    frames, stability, bundle_path = args
    from detectors.bundle import load_bundle
    from detectors.score import score_images
    from forensics.threads import worker_init

    worker_init()
    bundle = load_bundle(bundle_path)
    score_images(frames[:8], bundle, stability)  # warm-up
    t = time.perf_counter()
    for start in range(0, len(frames), 256):
        score_images(frames[start : start + 256], bundle, stability)
    return time.perf_counter() - t


def models_only(frames: np.ndarray, stability: str, workers: int) -> dict:
    """The model calls of scoring on in-memory frames, split over ``workers`` processes; the
    time of the slowest (they run side by side)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from detectors.bundle import DEFAULT_BUNDLE

    parts = np.array_split(frames, workers)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        seconds = max(pool.map(_model_worker, [(p, stability, str(DEFAULT_BUNDLE)) for p in parts]))
    return {"stability": stability, "workers": workers, "n": len(frames), "seconds": round(seconds, 2),
            "scans_per_second": round(len(frames) / seconds, 2)}


def startup(scan: Path, repeats: int = 5) -> dict:
    """Median wall seconds of `python -c "import torch"` and of `forensics score ONE_SCAN` (fresh
    processes, alternated): what the first scored scan costs beyond importing torch."""
    import statistics
    import subprocess
    import sys

    from benchmarks.load import forensics_command

    times: dict[str, list[float]] = {"import_torch": [], "score_one_scan": []}
    for _ in range(repeats):
        for key, cmd in (("import_torch", [sys.executable, "-c", "import torch"]),
                         ("score_one_scan", [*forensics_command(), "score", str(scan), "--quiet"])):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times[key].append(time.perf_counter() - t)
    med = {k: round(statistics.median(v), 3) for k, v in times.items()}
    return {**med, "after_import_torch": round(med["score_one_scan"] - med["import_torch"], 3), "repeats": repeats,
            "target_after_import_torch": 1.0}


def run(quick: bool, out_dir: Path, seed: int = 0, n: int | None = None) -> dict:
    """Time scoring at every configuration above. The seed is unused (scoring draws no random
    numbers) but recorded."""
    from detectors.engine import default_workers
    from forensics.preprocess import preprocess_file

    started = time.perf_counter()
    n = n or (QUICK_N if quick else FULL_N)
    n_small = max(n // 4, 4)
    cores = default_workers()
    tmp = Path(tempfile.mkdtemp(prefix="forensics-throughput-"))
    try:
        write_mixed_scans(tmp / "small", n_small)
        write_mixed_scans(tmp / "full", n)
        configs = [[], ["--workers", "1"], ["--stability", "all"], ["--no-stability"],
                   ["--no-stability", "--workers", "1"]]
        if quick:  # a smoke test of the measurement, not a result: the two default rows only
            configs = [[], ["--no-stability"]]
        try:
            import ray  # noqa: F401

            if not quick:
                configs += [["--engine", "ray"]]
        except ImportError:
            log("throughput: Ray not installed; no Ray row")
        rows = []
        for options in configs:
            log(f"throughput: forensics score {' '.join(options) or '(defaults)'} on {n} scans")
            if "ray" in options:
                rows.append(on_a_running_ray_cluster(tmp, n_small, n, options, cores))
            else:
                rows.append(end_to_end(tmp / "small", tmp / "full", n_small, n, options, tmp))
            log(f"throughput: {rows[-1]['marginal_scans_per_second']} scans/s marginal")
        first = startup(sorted((tmp / "small").glob("*.png"))[0], 2 if quick else 5)
        log(f"throughput: first scan {first['after_import_torch']} s after import torch")
        frames = np.stack([preprocess_file(p) for p in sorted((tmp / "full").glob("*.png"))])
        models = [models_only(frames, mode, cores) for mode in ("near", "all", "off")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    best = {m["stability"]: m["scans_per_second"] for m in models}
    for r in rows:
        r["ratio_to_models"] = round(best[_mode(r["options"])] / r["marginal_scans_per_second"], 2)
        # Faster than the models alone cannot be: the difference of the two runs was smaller
        # than the run-to-run variation of their start-up (Ray's, mostly), and the figure is noise.
        r["marginal_is_noise"] = r["ratio_to_models"] < 0.95
    result = {"benchmark": NAME, "quick": quick, "seed": seed, "n": n, "n_small": n_small, "cores": cores,
              "scan_sizes_px": list(SIZES), "end_to_end": rows, "models_only": models, "startup": first, "target_scans_per_second": 300,
              "target_ratio": 1.3, "wall_seconds": round(time.perf_counter() - started, 1), "machine": machine_info()}
    write_result(out_dir, NAME, result)
    return result


def markdown(result: dict) -> str:
    r = result
    lines = [f"`forensics score DIR --format csv --output OUT.csv` on {r['n']:,} PNG scans of mixed size "
             f"({'/'.join(map(str, r['scan_sizes_px']))} px), {r['cores']} cores; marginal = scans/s between a run on "
             f"{r['n_small']} scans and one on {r['n']:,} (start-up left out){'; quick mode' if r['quick'] else ''}. "
             f"Target: {r['target_scans_per_second']} scans/s with default options, within "
             f"{r['target_ratio']}x of the models' own time.",
             "",
             "| options | scans/s marginal | scans/s overall | start-up s | x the models' time | re-scanned | "
             "peak RSS MB (all processes) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    noisy = []
    for e in r["end_to_end"]:
        flag = e.get("marginal_is_noise")
        if flag:
            noisy.append(e["options"])
        lines.append(f"| `{e['options']}` | {e['marginal_scans_per_second']:.1f}{' (noise)' if flag else ''} | "
                     f"{e['scans_per_second']:.1f} | {e['startup_seconds']:.1f}{'' if flag else ''} | "
                     f"{'n/a' if flag else format(e['ratio_to_models'], '.2f')} | "
                     f"{100 * e.get('rescanned_share', 0):.1f}% | {e['peak_rss_mb']:.0f} |")
    if noisy:
        lines += ["", "(noise): faster than the models alone, which cannot be: between the two runs of "
                      + ", ".join(f"`{o}`" for o in noisy) + " the start-up varied by more than the extra scans "
                      "took, so only the overall rate, start-up included, means anything there. Peak RSS of the "
                      "Ray row leaves out the Ray head's processes, which are not children of the command."]
    st = r.get("startup")
    if st:
        lines += ["", f"Start-up (median of {st['repeats']} fresh processes): `import torch` {st['import_torch']:.2f} s, "
                      f"`forensics score ONE_SCAN` {st['score_one_scan']:.2f} s, so the first scan is scored "
                      f"{st['after_import_torch']:.2f} s after torch is imported (target <= {st['target_after_import_torch']:g} s)."]
    lines += ["", "| models only (score_images on in-memory frames, one process per core) | scans/s |", "|---|---:|"]
    for m in r["models_only"]:
        lines.append(f"| --stability {m['stability']}, {m['workers']} processes | "
                     f"{m['scans_per_second']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, markdown, __doc__, options=((("--n",), {"type": int, "help": f"scans (default {FULL_N})"}),))
