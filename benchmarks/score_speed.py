"""How fast `score_paths` scores scans: characters per second, stability on and off.

Writes N scans (MNIST test digits, dark ink on white, 84x84 PNG) to a temporary folder,
scores them through the same streaming path as `forensics score`, and splits the time into
the models (detectors.signals.compute_signals: PixelCNN x 10 classes, both discriminators),
the re-scans (detectors.printscan.rescans, stability only) and the rest (reading, decoding
and preprocessing files, building records).

    FORENSICS_DATA=/path/to/data python benchmarks/score_speed.py --models BUNDLE -n 2000

Results go to benchmarks/results/score_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from detectors import printscan, score, signals
from detectors.bundle import DEFAULT_BUNDLE, load_bundle
from forensics.checkpoint import atomic_write_text
from forensics.data import load_dataset

RESULTS = Path(__file__).parent / "results" / "score_speed.json"


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


def write_scans(folder: Path, n: int) -> None:
    frames = load_dataset("mnist", train=False).images[:, 0].numpy()
    for i in range(n):
        Image.fromarray(255 - frames[i % len(frames)]).resize((84, 84), Image.Resampling.BICUBIC).save(folder / f"{i:05d}.png")


def measure(folder: Path, bundle, stability: bool, batch_size: int) -> dict:
    with Timer(signals, "compute_signals") as models, Timer(printscan, "rescans") as rescans:
        t0 = time.perf_counter()
        records = list(score.score_paths([str(folder)], bundle, batch_size=batch_size, stability=stability))
        total = time.perf_counter() - t0
    n = sum(r["status"] == "ok" for r in records)
    rest = total - models.seconds - rescans.seconds
    return {
        "stability": stability,
        "scored": n,
        "failed": len(records) - n,
        "seconds": round(total, 3),
        "chars_per_second": round(n / total, 2),
        "model_seconds": round(models.seconds, 3),
        "rescan_seconds": round(rescans.seconds, 3),
        "io_preprocess_other_seconds": round(rest, 3),
        "share_models": round(models.seconds / total, 3),
        "share_rescans": round(rescans.seconds / total, 3),
        "share_io_preprocess_other": round(rest / total, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=DEFAULT_BUNDLE, help="bundle folder (default: the shipped one)")
    ap.add_argument("-n", type=int, default=2000, help="number of scans (default 2000)")
    ap.add_argument("--batch-size", type=int, default=256, help="score_paths batch size (default 256)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--stability", choices=("off", "on", "both"), default="both",
                    help="score without re-scans, with them, or both (default both)")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON (default {RESULTS})")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.models)
    cfg = bundle.models.pixelcnn.cfg
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        write_scans(folder, args.n)
        write_seconds = time.perf_counter() - t0
        modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.stability]
        runs = [measure(folder, bundle, stability, args.batch_size) for stability in modes]
    result = {
        "n": args.n,
        "batch_size": args.batch_size,
        "bundle": str(args.models),
        "pixelcnn": {"channels": cfg.channels, "n_layers": cfg.n_layers, "head_channels": cfg.head_channels,
                     "num_classes": cfg.num_classes},
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "write_scans_seconds": round(write_seconds, 3),
        "runs": runs,
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    for r in runs:
        print(f"stability {'on ' if r['stability'] else 'off'}: {r['chars_per_second']:8.1f} chars/s "
              f"(models {100 * r['share_models']:.0f}%, re-scans {100 * r['share_rescans']:.0f}%, "
              f"I/O + preprocessing + records {100 * r['share_io_preprocess_other']:.0f}%)")
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
