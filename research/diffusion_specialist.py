"""Probe (issue 21): is there a learnable trace of the corrected diffusion forger at all, and
does any input or training data bring it out?

A specialist ScanCNN (human vs diffusion only, nothing else to learn) bounds what the product's
ScanCNN could learn about this family. Trained on 2,000 MNIST train digits and 2,000 diffusion
samples (seed 100), each as a scan, a print-and-scan and a random capture, as calibration
makes them; measured on MNIST test[5000:5600] and 600 other samples (seed 7), per condition.
Variants:
  plain       the default ScanCNN (16, 32, 64; 64 units), 8 epochs
  clean only  trained and measured on the clean scans alone: the trace before any capture
  npr         a second input channel x - up(down(x)) (nearest, 2x): the upsampling residual of
              NPR (Tan et al. 2024), which exposes the local pixel correlations that a decoder's
              upsampling layers leave
  + rewrites  2,000 more fakes: the training digits denoised by the model from t = 300
              (aligned fakes, Rajan et al. 2025), so that content carries no label
  wide        (32, 64, 128; 128 units)
  raw frames  the generator's own 28x28 output against MNIST's, no scan at all: whether the model
              leaves a trace before scanning and preprocessing, the upper bound of the rest
Samples are cached in $CACHE (default /tmp/diffusion_specialist.npz). Run:
FORENSICS_DATA=../shared/data python -m research.diffusion_specialist"""
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import detectors.cnn as cnn_module
from detectors.bundle import DEFAULT_BUNDLE, load_bundle, load_forgers
from detectors.calibrate import CONDITIONS, DIFFUSION_REWRITE_T, _cnn_logits, metrics, rewrite_digits, \
    sample_generator, scan_sources
from detectors.cnn import CNNConfig, ScanCNN, train_cnn
from forensics.data import load_dataset

N_TRAIN, N_HELD = 2000, 600
CACHE = Path(os.environ.get("CACHE", "/tmp/diffusion_specialist.npz"))


class NPRScanCNN(ScanCNN):
    """ScanCNN with the upsampling residual as a second input channel."""

    def __init__(self, cfg: CNNConfig = CNNConfig()):
        super().__init__(cfg)
        self.conv1 = nn.Conv2d(2, cfg.channels[0], 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float() / 127.5 - 1.0
        resid = h - F.interpolate(F.interpolate(h, scale_factor=0.5, mode="nearest"), scale_factor=2, mode="nearest")
        h = torch.cat([h, 4 * resid], 1)
        h = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(h)))), 2)
        h = F.max_pool2d(F.relu(self.conv3(h)), 2)
        return self.out(F.relu(self.fc(h.flatten(1)))).squeeze(1)


def _rounded(m: dict) -> dict:
    return {"auroc": round(m["auroc"], 3), "tpr_at_1pct_fpr": round(m["tpr_at_1pct_fpr"], 3)}


def frames() -> dict[str, np.ndarray]:
    if CACHE.is_file():
        return dict(np.load(CACHE))
    models = load_bundle(DEFAULT_BUNDLE).models
    forgers = load_forgers(DEFAULT_BUNDLE)
    train = load_dataset("mnist", train=True)
    test = load_dataset("mnist", train=False)
    t = time.perf_counter()
    out = {"human_train": train.images[:N_TRAIN, 0].numpy(), "human_held": test.images[5000 : 5000 + N_HELD, 0].numpy(),
           "fake_train": sample_generator(models, "diffusion", N_TRAIN, torch.Generator().manual_seed(100), 100,
                                          forgers=forgers),
           "fake_held": sample_generator(models, "diffusion", N_HELD, torch.Generator().manual_seed(7), 100,
                                         forgers=forgers)}
    out["rewrite_train"] = rewrite_digits(forgers["diffusion"], "diffusion-rewrite", out["human_train"],
                                          train.labels[:N_TRAIN].numpy(), torch.Generator().manual_seed(101), 100)
    print(f"sampled and rewrote in {time.perf_counter() - t:.0f} s (rewrites from t = {DIFFUSION_REWRITE_T})",
          flush=True)
    np.savez_compressed(CACHE, **out)
    return out


def main() -> None:
    torch.set_num_threads(2)
    f = frames()
    train = scan_sources([("human", f["human_train"]), ("diffusion", f["fake_train"]),
                          ("diffusion-rewrite", f["rewrite_train"])], seed=1000, workers=2)
    held = scan_sources([("human", f["human_held"]), ("diffusion", f["fake_held"])], seed=11, workers=2)
    no_rw, clean = train.source != "diffusion-rewrite", train.condition == "clean"
    variants = {"plain": (no_rw, CNNConfig(), ScanCNN), "clean only": (no_rw & clean, CNNConfig(), ScanCNN),
                "npr": (no_rw, CNNConfig(), NPRScanCNN), "+ rewrites": (train.source != "", CNNConfig(), ScanCNN),
                "wide": (no_rw, CNNConfig(channels=(32, 64, 128), hidden=128), ScanCNN)}
    results = {}
    for name, (rows, cfg, cls) in variants.items():
        t = time.perf_counter()
        cnn_module.ScanCNN = cls  # train_cnn builds the module's ScanCNN
        try:
            model, log = train_cnn(train.images[rows], train.is_machine[rows], cfg, seed=0)
        finally:
            cnn_module.ScanCNN = ScanCNN
        z = _cnn_logits(model, held.images, torch.device("cpu"))
        y = held.is_machine
        conds = ("clean",) if name == "clean only" else CONDITIONS
        row = {c: metrics(y[held.condition == c], z[held.condition == c]) for c in conds}
        if name != "clean only":
            row["all"] = metrics(y, z)
        results[name] = {c: _rounded(m) for c, m in row.items()} | {"train_loss": log["epoch_loss"][-1],
                                                                    "seconds": round(time.perf_counter() - t)}
        print(name, json.dumps(results[name]), flush=True)
    model, log = train_cnn(np.concatenate([f["human_train"], f["fake_train"]]), np.r_[np.zeros(N_TRAIN), np.ones(N_TRAIN)],
                           CNNConfig(), seed=0)
    z = _cnn_logits(model, np.concatenate([f["human_held"], f["fake_held"]]), torch.device("cpu"))
    m = metrics(np.r_[np.zeros(N_HELD), np.ones(N_HELD)], z)
    results["raw frames"] = {"raw": _rounded(m), "train_loss": log["epoch_loss"][-1]}
    print("raw frames", json.dumps(results["raw frames"]), flush=True)
    Path("research/results/diffusion_specialist.json").write_text(json.dumps(
        {"n_train": N_TRAIN, "n_held": N_HELD, "rewrite_t": DIFFUSION_REWRITE_T, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
