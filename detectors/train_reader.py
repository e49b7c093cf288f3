"""Training of the digit reader (detectors/reader.py), the command `forensics train-reader`.

A small MNIST CNN classifier: the reader of the `digit` in every score record and the feature
space of the generator-quality benchmark. It trains on the MNIST train split only (never the
test split, which the benchmarks compare against), and writes OUT/model.pt (weights only) and
OUT/manifest.json (command, data checksums, seed, training time, test accuracy on the MNIST
frames and on the same digits as scans, the weights' SHA-256). Deterministic for a given seed
on one thread: the shipped detectors/reader_net/ is

    forensics train-reader --out detectors/reader_net --seed 0
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from forensics.checkpoint import atomic_save, write_manifest
from forensics.data import ImageData, data_checksums, load_dataset

from .reader import FEATURE_DIM, FORMAT, MANIFEST_FILE, MODEL_FILE, FeatureNet, logits


def accuracy(model: FeatureNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits(model, images).argmax(1) == labels.numpy()).mean())


def scan_accuracy(model: FeatureNet, frames: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy on frames rendered as scans and preprocessed, as the reader meets digits in use."""
    from detectors.printscan import preprocess_or_none, render_scan

    scans = [preprocess_or_none(np.asarray(render_scan(f, 3))) for f in frames]
    keep = [i for i, f in enumerate(scans) if f is not None]  # an MNIST digit always has ink; a guard only
    return float((logits(model, np.stack([scans[i] for i in keep])).argmax(1) == labels[keep]).mean())


def train_reader(out: Path, seed: int = 0, epochs: int = 3, batch_size: int = 128, lr: float = 2e-3,
                 data_dir: str | None = None, command: str | None = None, train_limit: int | None = None,
                 log=print) -> dict:
    """Train the reader on MNIST train (the first ``train_limit`` images if given) and write
    OUT/model.pt and OUT/manifest.json; returns the manifest's information."""
    torch.manual_seed(seed)
    train_set = load_dataset("mnist", train=True, data_dir=data_dir, download=False)
    if train_limit is not None:
        train_set = ImageData(train_set.images[:train_limit], train_set.labels[:train_limit], train_set.num_classes,
                              train_set.name)
    test_set = load_dataset("mnist", train=False, data_dir=data_dir, download=False)
    model = FeatureNet()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (len(train_set) // batch_size)
    # Linear decay to zero: a short run still ends with small, settled steps.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    per_epoch = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_set), generator=g)
        total, seen = 0.0, 0
        for i in range(len(train_set) // batch_size):  # drop the ragged last batch: BatchNorm dislikes tiny ones
            idx = order[i * batch_size : (i + 1) * batch_size]
            loss = F.cross_entropy(model(train_set.images[idx]), train_set.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        acc = accuracy(model, test_set.images, test_set.labels)
        per_epoch.append({"epoch": epoch + 1, "train_loss": round(total / seen, 5), "test_accuracy": acc,
                          "seconds": round(time.perf_counter() - t0, 1)})
        log(f"epoch {epoch + 1}/{epochs}: train loss {total / seen:.4f}, test accuracy {acc:.4f}, "
              f"{time.perf_counter() - t0:.0f} s")
    train_seconds = time.perf_counter() - t0
    scan_acc = scan_accuracy(model, test_set.images[:, 0].numpy(), test_set.labels.numpy())
    log(f"test accuracy on the test digits as scans: {scan_acc:.4f}")

    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    config = {"feature_dim": FEATURE_DIM, "num_classes": 10}
    atomic_save({"format": FORMAT, "config": config, "weights": model.state_dict()}, out / MODEL_FILE)
    info = {
        "kind": "forensics/featurenet",
        "command": command,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "data": {"dataset": "mnist", "train_split": f"train ({len(train_set)})", "sha256": data_checksums("mnist", data_dir)},
        "train_config": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": "adam",
                         "schedule": "linear decay to 0", "augmentation": None},
        "parameters": sum(p.numel() for p in model.parameters()),
        "feature_dim": FEATURE_DIM,
        "train_seconds": round(train_seconds, 1),
        "test_accuracy": per_epoch[-1]["test_accuracy"],
        "scan_test_accuracy": scan_acc,
        "scan_test": "the MNIST test digits rendered as scans (3x, dark ink on white) and preprocessed by "
                     "forensics.preprocess, as forensics score sees a scan",
        "per_epoch": per_epoch,
    }
    write_manifest(out / MANIFEST_FILE, [out / MODEL_FILE], **info)
    return info
