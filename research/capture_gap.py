"""Probe (issue 21): why does a bundle call `load_digits`' honest writers machine-made?

Bundle v7 gives `load_digits` (UCI 8x8) a mean p_machine of 0.82 while MNIST test digits at the
lowest resolution its low_res capture makes stay near 0.4: the ScanCNN's logit is what moves. Two
explanations: the writers (their 1s, 7s and 4s are not MNIST's), or the capture (optdigits is
NIST's form-reader pipeline: a binary 32x32 bitmap of a digit size-normalised to fill it, ink
counted in 4x4 blocks, so 8x8 of 17 levels with little margin). This puts MNIST test digits
(test[5000:], never fitted) through each capture and prints the ScanCNN logit's spread beside
load_digits'. If the UCI-like captures of *MNIST* digits land where load_digits does, the gap is
the capture, which a capture in training can close; if they stay near plain scans, it is the
writers.

load_digits is only measured here, as everywhere: nothing is fitted on it.

    FORENSICS_DATA=... python -m research.capture_gap [--n 300] [--bundle detectors/bundle]

Writes research/results/capture_gap.json; findings in docs/experiments.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from detectors import capture
from detectors.bundle import DEFAULT_BUNDLE, describe_bundle, load_bundle
from detectors.calibrate import HUMAN_POOL
from detectors.printscan import preprocess_or_none, render_scan
from detectors.signals import compute_signals
from forensics.data import load_dataset

OUT = Path(__file__).parent / "results" / "capture_gap.json"


def uci_render(counts: np.ndarray) -> Image.Image:
    """An 8x8 grid of 0..16 ink counts as the human_variety benchmark renders load_digits."""
    return Image.fromarray((255 - np.round(counts * 255 / 16)).astype(np.uint8)).resize(
        (64, 64), Image.Resampling.BICUBIC)


def optdigits(frame: np.ndarray) -> Image.Image:
    """The optdigits recipe itself on an MNIST frame: binarised, fitted (aspect kept) into 32x32
    with no margin, 4x4 block counts: block_grid's harshest setting, always."""
    return uci_render(capture.grid_counts(frame > 127, blocks=8, margin=0))


def low_res(frame: np.ndarray, side: int) -> Image.Image:
    small = Image.fromarray(255 - frame).resize((side, side), Image.Resampling.BOX)
    return small.resize((side * 5, side * 5), Image.Resampling.BICUBIC)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    args = ap.parse_args()
    from sklearn.datasets import load_digits

    bundle = load_bundle(args.bundle)
    digits = load_dataset("mnist", train=False).images[HUMAN_POOL : HUMAN_POOL + args.n, 0].numpy()
    rng = np.random.default_rng(0)
    sets = {
        "MNIST plain scan": [render_scan(f) for f in digits],
        "MNIST low_res, 8-9 px frame": [low_res(f, int(rng.integers(8, 10))) for f in digits],
        "MNIST low_res, 13-16 px frame": [low_res(f, int(rng.integers(13, 17))) for f in digits],
        "MNIST block_grid capture": [capture.capture(f, "block_grid", rng) for f in digits],
        "MNIST as optdigits (8 blocks, no margin)": [optdigits(f) for f in digits],
        "load_digits (UCI 8x8)": [uci_render(u) for u in load_digits().images[: args.n]],
    }
    rows = {}
    for name, images in sets.items():
        frames = [f for f in (preprocess_or_none(np.asarray(im.convert("L"))) for im in images) if f is not None]
        logit = compute_signals(np.stack(frames)[:, None], bundle.models, names=("cnn_logit",))["cnn_logit"]
        q = np.percentile(logit, [10, 50, 90])
        rows[name] = {"n": len(frames), "no_ink": len(images) - len(frames),
                      "cnn_logit_p10": float(q[0]), "cnn_logit_median": float(q[1]), "cnn_logit_p90": float(q[2])}
        print(f"{name:40s} n={len(frames):4d}  ScanCNN logit p10 {q[0]:6.2f}  median {q[1]:6.2f}  p90 {q[2]:6.2f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"bundle": describe_bundle(bundle)["version"], "n": args.n, "rows": rows}, indent=2)
                   + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
