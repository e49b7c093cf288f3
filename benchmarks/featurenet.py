"""Training of the feature network / digit reader (detectors/reader.py): a small MNIST CNN
classifier, the feature space of the generator-quality benchmarks and the reader of the
`digit` in every score record. It trains on the MNIST train split only (never the test
split, which the benchmarks compare against).

    OMP_NUM_THREADS=1 python benchmarks/featurenet.py --out detectors/reader_net --seed 0

trains it on one CPU thread (a few minutes) and writes OUT/model.pt (weights only, < 1 MB)
and OUT/manifest.json (the command, data checksums, seed, training time, test accuracy on
the MNIST frames and on the same digits as scans, the weights' SHA-256). Training is
deterministic for a given seed on one thread.

Use (the names the benchmarks know it by):
    net = load_featurenet()            # the committed weights in detectors/reader_net/
    f = features(net, images_uint8)    # [N, 128] penultimate activations, float64
    z = logits(net, images_uint8)      # [N, 10]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

if __package__ in (None, ""):  # run as `python benchmarks/featurenet.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.reader import (  # noqa: F401  (the network lives with the product; re-exported here)
    DEFAULT, FEATURE_DIM, FORMAT, MANIFEST_FILE, MODEL_FILE, FeatureNet, features, features_and_probs, logits,
)
from detectors.reader import load_reader as load_featurenet  # noqa: F401
from forensics.checkpoint import atomic_save, write_manifest


# --------------------------------------------------------------------------- training


def accuracy(model: FeatureNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits(model, images).argmax(1) == labels.numpy()).mean())


def scan_accuracy(model: FeatureNet, frames: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy on frames rendered as scans and preprocessed, as the reader meets digits in use."""
    from detectors.printscan import preprocess_or_none, render_scan

    scans = [preprocess_or_none(np.asarray(render_scan(f, 3))) for f in frames]
    keep = [i for i, f in enumerate(scans) if f is not None]  # an MNIST digit always has ink; a guard only
    return float((logits(model, np.stack([scans[i] for i in keep])).argmax(1) == labels[keep]).mean())


def train(out: Path, seed: int = 0, epochs: int = 3, batch_size: int = 128, lr: float = 2e-3,
          data_dir: str | None = None, command: str | None = None) -> dict:
    from detectors.calibrate import data_checksums
    from forensics.data import load_dataset

    torch.manual_seed(seed)
    train_set = load_dataset("mnist", train=True, data_dir=data_dir, download=False)
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
        print(f"epoch {epoch + 1}/{epochs}: train loss {total / seen:.4f}, test accuracy {acc:.4f}, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    train_seconds = time.perf_counter() - t0
    scan_acc = scan_accuracy(model, test_set.images[:, 0].numpy(), test_set.labels.numpy())
    print(f"test accuracy on the test digits as scans: {scan_acc:.4f}", flush=True)

    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    config = {"feature_dim": FEATURE_DIM, "num_classes": 10}
    atomic_save({"format": FORMAT, "config": config, "weights": model.state_dict()}, out / MODEL_FILE)
    info = {
        "kind": "forensics/featurenet",
        "command": command,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "data": {"dataset": "mnist", "train_split": "train (60000)", "sha256": data_checksums("mnist", data_dir)},
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data-dir", default=None, help="MNIST root (default: $FORENSICS_DATA)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 = deterministic and fastest on a shared box)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    info = train(args.out, seed=args.seed, epochs=args.epochs, data_dir=args.data_dir,
                 command=shlex.join(["python", *sys.argv]))
    print(f"test accuracy {info['test_accuracy']:.4f} after {info['train_seconds']:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
