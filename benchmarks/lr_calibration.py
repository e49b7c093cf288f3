"""Is the likelihood ratio a record reports a likelihood ratio? Cllr and a reliability plot on
held-out data, as forensic LR systems are judged (detectors/evidence.py).

- human: MNIST test[5000:] digits (calibration draws from test[:5000] only), as plain scans;
- machine: fresh samples of the shipped bundle's PixelCNN, DCGAN and FC-GAN (seeds the
  calibration never drew) and font forgeries, as plain scans;

each scored as `forensics score --no-stability` scores it. Reports Cllr (bits; 0 perfect, 1 an
LR that says nothing), Cllr_min (after the best monotone recalibration, PAV: the discrimination
alone), their difference (the cost of miscalibration), the expected calibration error of the
50/50 posterior, and how often an LR's verbal band points to the wrong side, per band.
Writes OUT/lr_calibration.json and OUT/lr_calibration.png (reliability diagram and the
distribution of log10 LR for each class).

    FORENSICS_DATA=/path/to/data python -m benchmarks.lr_calibration           # N = 1000 a class
    FORENSICS_DATA=/path/to/data python -m benchmarks.lr_calibration --quick   # N = 60
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from benchmarks.common import save_figure, log, machine_info, main, write_result

NAME = "lr_calibration"
FULL_N, QUICK_N = 1000, 60
HELD_OUT_START = 5000
SEED = 2101  # sampling seeds far from calibration's
BINS = 10


def _frames(n: int, seed: int, bundle, data_dir: str | None):
    import torch

    from detectors.calibrate import sample_generator
    from detectors.fonts import font_forgeries
    from forensics.data import load_dataset

    rng = np.random.default_rng(seed)
    test = load_dataset("mnist", train=False, data_dir=data_dir).images[HELD_OUT_START:, 0].numpy()
    human = test[np.sort(rng.choice(len(test), n, replace=False))]
    k = n // 4
    machine = [sample_generator(bundle.models, g, k, torch.Generator().manual_seed(seed + i), 250)
               for i, g in enumerate(("pixelcnn", "dcgan", "fcgan"))]
    machine.append(font_forgeries(n - 3 * k, rng))
    return human, np.concatenate(machine)


def _scores(frames: np.ndarray, bundle) -> tuple[np.ndarray, int]:
    """(natural-log LRs, how many frames had no ink to score: a blank sample is not evidence)."""
    from detectors.printscan import render_scan
    from detectors.score import score_images
    from forensics.errors import InputError
    from forensics.preprocess import preprocess_image

    frames_in, blank = [], 0
    for f in frames:
        try:
            frames_in.append(preprocess_image(render_scan(f)))
        except InputError:
            blank += 1
    out = []
    for start in range(0, len(frames_in), 256):
        out += [r["log10_lr"] for r in score_images(np.stack(frames_in[start : start + 256]), bundle, stability="off")]
    return np.array(out) * math.log(10.0), blank


def run(quick: bool, out_dir: Path, seed: int = SEED, n: int | None = None, data_dir: str | None = None) -> dict:
    from detectors import evidence
    from detectors.bundle import DEFAULT_BUNDLE, describe_bundle, load_bundle

    started = time.perf_counter()
    n = n or (QUICK_N if quick else FULL_N)
    bundle = load_bundle(DEFAULT_BUNDLE)
    human, machine = _frames(n, seed, bundle, data_dir)
    (lh, blank_h), (lm, blank_m) = _scores(human, bundle), _scores(machine, bundle)
    y = np.concatenate([np.zeros(len(lh)), np.ones(len(lm))])
    p = evidence.posterior(np.concatenate([lh, lm]), 0.5)
    edges = np.linspace(0, 1, BINS + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, BINS - 1)
    bins = [{"p_low": float(edges[b]), "p_high": float(edges[b + 1]), "n": int((which == b).sum()),
             "mean_p": float(p[which == b].mean()) if (which == b).any() else None,
             "machine_share": float(y[which == b].mean()) if (which == b).any() else None} for b in range(BINS)]
    ece = sum(b["n"] * abs(b["mean_p"] - b["machine_share"]) for b in bins if b["n"]) / len(p)
    # How often the verbal band points to the wrong side, band by band.
    bands = {}
    for log_lr, truth in ((lh, "human"), (lm, "machine")):
        for v in log_lr / math.log(10.0):
            words = evidence.verbal(float(v))
            row = bands.setdefault(words, {"human": 0, "machine": 0})
            row[truth] += 1
    result = {
        "benchmark": NAME, "quick": quick, "seed": seed, "n_per_class": n, "bundle": describe_bundle(bundle)["version"],
        "cllr_bits": evidence.cllr(lm, lh), "cllr_min_bits": evidence.cllr_min(lm, lh),
        "ece": float(ece), "reliability": bins, "blank": {"human": blank_h, "machine": blank_m}, "verbal_bands": bands,
        "median_log10_lr": {"human": float(np.median(lh) / math.log(10)), "machine": float(np.median(lm) / math.log(10))},
        "seconds": round(time.perf_counter() - started, 1), "machine": machine_info(),
    }
    result["miscalibration_bits"] = result["cllr_bits"] - result["cllr_min_bits"]
    _plot(result, lh, lm, out_dir / f"{NAME}.png")
    log(f"{NAME}: Cllr {result['cllr_bits']:.3f} bits, Cllr_min {result['cllr_min_bits']:.3f}, ECE {ece:.3f}")
    write_result(out_dir, NAME, result)
    return result


def _plot(result: dict, lh: np.ndarray, lm: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    pts = [(r["mean_p"], r["machine_share"], r["n"]) for r in result["reliability"] if r["n"]]
    a.plot([0, 1], [0, 1], ":", color="grey")
    a.scatter([q[0] for q in pts], [q[1] for q in pts], s=[max(8, 200 * q[2] / sum(x[2] for x in pts)) for q in pts])
    a.plot([q[0] for q in pts], [q[1] for q in pts])
    a.set_xlabel("p_machine at prior 0.5 (bin mean)")
    a.set_ylabel("share that is machine-made")
    a.set_title(f"Reliability (ECE {result['ece']:.3f})")
    lo, hi = np.percentile(np.concatenate([lh, lm]) / math.log(10), [0.5, 99.5])
    grid = np.linspace(lo, hi, 50)
    b.hist(np.clip(lh / math.log(10), lo, hi), bins=grid, alpha=0.6, label="human (held out)")
    b.hist(np.clip(lm / math.log(10), lo, hi), bins=grid, alpha=0.6, label="machine (fresh samples, fonts)")
    b.set_xlabel("log10 LR, machine over human")
    b.set_title(f"Cllr {result['cllr_bits']:.3f} bits, Cllr_min {result['cllr_min_bits']:.3f}")
    b.legend(fontsize=8)
    save_figure(fig, path)


def markdown(result: dict) -> str:
    lines = [f"{result['n_per_class']} held-out human digits (MNIST test[5000:]) and {result['n_per_class']} machine "
             f"digits (fresh PixelCNN, DCGAN, FC-GAN samples, font forgeries), plain scans, bundle "
             f"{result['bundle']}{', quick mode' if result['quick'] else ''}. Plot: `benchmarks/results/lr_calibration.png`.",
             "", "| measure | value |", "|---|---:|",
             f"| Cllr (bits; 0 perfect, 1 says nothing) | **{result['cllr_bits']:.3f}** |",
             f"| Cllr_min (after PAV: discrimination alone) | {result['cllr_min_bits']:.3f} |",
             f"| miscalibration (Cllr - Cllr_min) | {result['miscalibration_bits']:.3f} |",
             f"| expected calibration error of p_machine at 0.5 | {result['ece']:.3f} |",
             f"| median log10 LR: human / machine | {result['median_log10_lr']['human']:.1f} / "
             f"{result['median_log10_lr']['machine']:.1f} |", "",
             "| verbal band (ENFSI) | human digits | machine digits |", "|---|---:|---:|"]
    from detectors.evidence import ENFSI_SCALE, NEUTRAL

    order = ([f"{w} for a machine" for _, w in ENFSI_SCALE] + [NEUTRAL]
             + [f"{w} for a human hand" for _, w in reversed(ENFSI_SCALE)])
    for words in order:
        row = result["verbal_bands"].get(words, {"human": 0, "machine": 0})
        lines.append(f"| {words} | {row['human']} | {row['machine']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, markdown, __doc__, options=((("--n",), {"type": int, "help": f"digits per class (default {FULL_N})"}),))
