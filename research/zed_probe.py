"""Probe (issue 21, item 3): human-only evidence from a PixelCNN, ZED-style (Cozzolino et al. 2024).

A likelihood model trained on human digits codes a human digit at about the cost it expects
(its own predictive entropy); a generated image is often *too* predictable, or surprising in
odd places. ZED's statistic is the coding cost minus its expectation:

    zed_bpd = (NLL(x | y*) - sum_i H[p(. | x_<i, y*)]) / (784 ln 2)      y* = the best class

fitted on human data alone (the PixelCNN never saw a machine digit). Beside it: the NLL itself
(the signal the bundle already computes, AUROC 0.53 with v6's PixelCNN) and the expected cost.
Each is scored against held-out human scans (MNIST test[5000:]) for every machine source of the
shipped bundle, as scans (render_scan + preprocess, the way they reach the detector), with the
shipped PixelCNN and, if given, a better one (--pixelcnn RUN/pixelcnn: issue 20's streams model).
AUROC is oriented on nothing: > 0.5 means "higher = machine", < 0.5 the other way round, so a
figure far from 0.5 either side carries signal (orient it on fit data before using it).

    FORENSICS_DATA=... python -m research.zed_probe [--n 300] [--pixelcnn runs/v7/pixelcnn]

Writes research/results/zed_probe.json; findings in docs/experiments.md.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from detectors.bundle import DEFAULT_BUNDLE, load_bundle, load_forgers
from detectors.calibrate import HUMAN_POOL, sample_generator, rewrite_digits
from detectors.fonts import font_forgeries
from detectors.printscan import preprocess_or_none, render_scan
from forensics.data import load_dataset

OUT = Path(__file__).parent / "results" / "zed_probe.json"
BATCH = 50


@torch.no_grad()
def costs(model, frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: best-class NLL and expected cost (sum of per-pixel entropies there), bits/dim."""
    model.eval()
    k = max(1, int(model.cfg.num_classes))
    d = frames.shape[1] * frames.shape[2]
    nll = np.zeros((len(frames), k))
    ent = np.zeros((len(frames), k))
    for start in range(0, len(frames), BATCH):
        x = torch.as_tensor(frames[start : start + BATCH])[:, None]
        for y in range(k):
            labels = torch.full((len(x),), y) if model.cfg.num_classes else None
            logits = model(x, labels).float()  # [B, 256, 1, 28, 28]
            logp = torch.log_softmax(logits, dim=1)
            nll[start : start + len(x), y] = -logp.gather(1, x.long()[:, None]).flatten(1).sum(1).double().numpy()
            ent[start : start + len(x), y] = -(logp.exp() * logp).sum(1).flatten(1).sum(1).double().numpy()
    best = nll.argmin(1)
    rows = np.arange(len(frames))
    scale = 1.0 / (d * math.log(2))
    return {"nll_bpd": nll[rows, best] * scale, "expected_bpd": ent[rows, best] * scale,
            "zed_bpd": (nll[rows, best] - ent[rows, best]) * scale}


def as_scans(frames: np.ndarray) -> np.ndarray:
    out = [preprocess_or_none(np.asarray(render_scan(f))) for f in frames]
    return np.stack([f for f in out if f is not None])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--pixelcnn", action="append", default=[], help="a PixelCNN run folder to probe as well")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    bundle = load_bundle(DEFAULT_BUNDLE)
    forgers = load_forgers(DEFAULT_BUNDLE)
    test = load_dataset("mnist", train=False)
    pool, digits = test.images[HUMAN_POOL:, 0].numpy(), test.labels[HUMAN_POOL:].numpy()
    n = args.n
    g = torch.Generator().manual_seed(777)
    sets = {"human": as_scans(pool[:n])}
    for name in ("pixelcnn", "dcgan", "fcgan", *forgers):
        sets[name] = as_scans(sample_generator(bundle.models, name, n, g, BATCH, forgers=forgers))
    for name, fam in (("vae-rewrite", "vae"), ("diffusion-rewrite", "diffusion")):
        if fam in forgers:
            sets[name] = as_scans(rewrite_digits(forgers[fam], name, pool[n : 2 * n], digits[n : 2 * n], g, BATCH))
    sets["font"] = as_scans(font_forgeries(n, np.random.default_rng(777)))
    sets["fashion"] = as_scans(load_dataset("fashion-mnist", train=False).images[:n, 0].numpy())
    from generators.load import load_generator

    models = {"shipped (v6 gated)": bundle.models.pixelcnn}
    for folder in args.pixelcnn:
        models[folder] = load_generator(folder).network
    result = {"n": n, "counts": {k: int(len(v)) for k, v in sets.items()}, "auroc": {}, "human_mean": {}}
    for label, model in models.items():
        per = {name: costs(model, x) for name, x in sets.items()}
        h = per["human"]
        result["human_mean"][label] = {s: float(v.mean()) for s, v in h.items()}
        result["auroc"][label] = {
            name: {s: float(roc_auc_score(np.r_[np.zeros(len(h[s])), np.ones(len(v[s]))], np.r_[h[s], v[s]]))
                   for s in h} for name, v in per.items() if name != "human"}
        print(label, json.dumps(result["auroc"][label], indent=1))
    result["seconds"] = round(time.time() - t0, 1)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT} in {result['seconds']} s")


if __name__ == "__main__":
    main()
