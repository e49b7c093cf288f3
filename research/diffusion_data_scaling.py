"""Probe (issue 21): does more training data lift the specialist ScanCNN against the corrected
diffusion forger, and how fast?

research.diffusion_specialist trained on 2,000 human digits and 2,000 diffusion samples and
reached AUROC ~0.62. The open question it left: is that the limit of the family's trace, or of
the data? This trains the same specialist (human vs diffusion only; each image as a scan, a
print-and-scan and a random capture, as calibration makes them) on n = 500, 1,000, 2,000 and
4,000 of each, and the wide variant on 4,000, measured on the same held-out set as before
(MNIST test[5000:5600] and 600 samples, seed 7). The diffusion samples are the specialist's
cache ($CACHE) and 2,000 more (seed 101, cached in $EXTRA, about 25 min on 2 threads).

    FORENSICS_DATA=../shared/data python -m research.diffusion_data_scaling"""
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from detectors.bundle import DEFAULT_BUNDLE, load_bundle, load_forgers
from detectors.calibrate import CONDITIONS, _cnn_logits, metrics, sample_generator, scan_sources
from detectors.cnn import CNNConfig, train_cnn
from forensics.data import load_dataset
from research.diffusion_specialist import frames

N_EXTRA = 2000
SIZES = (500, 1000, 2000, 4000)
EXTRA = Path(os.environ.get("EXTRA", "/tmp/diffusion_extra.npz"))
OUT = Path(__file__).parent / "results" / "diffusion_data_scaling.json"


def extra_samples() -> np.ndarray:
    if EXTRA.is_file():
        return np.load(EXTRA)["fake"]
    t = time.perf_counter()
    fake = sample_generator(load_bundle(DEFAULT_BUNDLE).models, "diffusion", N_EXTRA, torch.Generator().manual_seed(101),
                            100, forgers=load_forgers(DEFAULT_BUNDLE))
    np.savez_compressed(EXTRA, fake=fake)
    print(f"sampled {N_EXTRA} more in {time.perf_counter() - t:.0f} s", flush=True)
    return fake


def _rounded(m: dict) -> dict:
    return {"auroc": round(m["auroc"], 3), "tpr_at_1pct_fpr": round(m["tpr_at_1pct_fpr"], 3)}


def main() -> None:
    if os.environ.get("SAMPLE_ONLY"):
        torch.set_num_threads(1)
        extra_samples()
        return
    torch.set_num_threads(2)
    f = frames()
    fake = np.concatenate([f["fake_train"], extra_samples()])
    human = load_dataset("mnist", train=True).images[: len(fake), 0].numpy()
    held = scan_sources([("human", f["human_held"]), ("diffusion", f["fake_held"])], seed=11, workers=2)
    train = scan_sources([("human", human), ("diffusion", fake)], seed=1000, workers=2)
    # A base image's rows share its group: a size-n subset takes the first n groups of each source.
    rank = np.zeros(len(train.group), dtype=np.int64)
    for source in ("human", "diffusion"):
        rows = train.source == source
        _, rank[rows] = np.unique(train.group[rows], return_inverse=True)
    runs = [(n, "plain", CNNConfig()) for n in SIZES] + [(SIZES[-1], "wide", CNNConfig(channels=(32, 64, 128), hidden=128))]
    results = []
    for n, name, cfg in runs:
        t = time.perf_counter()
        rows = rank < n
        model, log = train_cnn(train.images[rows], train.is_machine[rows], cfg, seed=0)
        z = _cnn_logits(model, held.images, torch.device("cpu"))
        row = {c: _rounded(metrics(held.is_machine[held.condition == c], z[held.condition == c])) for c in CONDITIONS}
        row["all"] = _rounded(metrics(held.is_machine, z))
        results.append({"n_per_class": n, "variant": name, **row, "train_loss": round(log["epoch_loss"][-1], 4),
                        "seconds": round(time.perf_counter() - t)})
        print(json.dumps(results[-1]), flush=True)
    OUT.write_text(json.dumps({"n_held": len(f["fake_held"]), "results": results}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
