"""The feature network of the generator-quality benchmarks: a small MNIST CNN classifier.

FID, the Inception score and precision/recall need a network that has learnt what digits
look like; on ImageNet that is Inception-v3, here it is this CNN, trained by the project
on the MNIST train split (never the test split, which the benchmarks compare against).

    OMP_NUM_THREADS=1 python benchmarks/featurenet.py --out benchmarks/featurenet --seed 0

trains it on one CPU thread (a few minutes) and writes OUT/model.pt (weights only, < 1 MB)
and OUT/manifest.json (the command, data checksums, seed, training time, test accuracy, the
weights' SHA-256). Training is deterministic for a given seed on one thread.

Use:
    net = load_featurenet()            # the committed weights in benchmarks/featurenet/
    f = features(net, images_uint8)    # [N, 128] penultimate activations, float64
    z = logits(net, images_uint8)      # [N, 10]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if __package__ in (None, ""):  # run as `python benchmarks/featurenet.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from forensics.checkpoint import atomic_save, load_checkpoint, read_manifest, write_manifest
from forensics.errors import CheckpointError

DEFAULT = Path(__file__).resolve().parent / "featurenet"
MODEL_FILE = "model.pt"
MANIFEST_FILE = "manifest.json"
FORMAT = "forensics-featurenet-v1"
FEATURE_DIM = 128
# The usual MNIST pixel mean and std (of x / 255): centred inputs make training less seed-sensitive.
MEAN, STD = 0.1307, 0.3081


class FeatureNet(nn.Module):
    """3 conv blocks (28 -> 14 -> 7 -> 3) then a 128-wide layer (the features) and a 10-way head.
    ~240k parameters: small enough to commit, enough for > 99% test accuracy in 3 epochs."""

    def __init__(self, feature_dim: int = FEATURE_DIM, num_classes: int = 10):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                                 nn.ReLU(), nn.MaxPool2d(2))

        self.body = nn.Sequential(block(1, 32), block(32, 64), block(64, 128), nn.Flatten(),
                                  nn.Linear(128 * 3 * 3, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, num_classes)

    @staticmethod
    def scale(x: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 28, 28] or [N, 1, 28, 28] -> normalised float [N, 1, 28, 28]."""
        if x.dtype != torch.uint8:
            raise TypeError(f"FeatureNet expects uint8 images, got {x.dtype}")
        if x.dim() == 3:
            x = x[:, None]
        return (x.float() / 255 - MEAN) / STD

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.scale(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


# --------------------------------------------------------------------------- use


def load_featurenet(path: str | os.PathLike = DEFAULT) -> FeatureNet:
    """The trained net from a folder (model.pt, checked against manifest.json) or a model.pt file.
    Weights only: the file is loaded with weights_only=True and holds no code."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    model_path = path / MODEL_FILE if path.is_dir() else path
    if (folder / MANIFEST_FILE).is_file():
        read_manifest(folder / MANIFEST_FILE, verify=True)  # CheckpointError if the weights were changed
    blob = load_checkpoint(model_path)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{model_path}: not a feature-net checkpoint (expected format {FORMAT!r})")
    net = FeatureNet(**blob["config"])
    net.load_state_dict(blob["weights"])
    return net.eval()


def _as_uint8_tensor(images) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images))
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {x.dtype}")
    return x


@torch.no_grad()
def _batched(fn, images, batch: int) -> np.ndarray:
    x = _as_uint8_tensor(images)
    parts = [fn(x[i : i + batch]).double().numpy() for i in range(0, len(x), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, 0))


def features(model: FeatureNet, images, batch: int = 500) -> np.ndarray:
    """Penultimate activations [N, 128] (float64) of uint8 images [N, 28, 28] or [N, 1, 28, 28]."""
    model.eval()
    return _batched(model.forward_features, images, batch)


def logits(model: FeatureNet, images, batch: int = 500) -> np.ndarray:
    """Class logits [N, 10] (float64) of uint8 images."""
    model.eval()
    return _batched(model, images, batch)


def features_and_probs(model: FeatureNet, images, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Both at once (one pass): penultimate features [N, 128] and softmax probabilities [N, 10]."""
    model.eval()
    feats = _batched(model.forward_features, images, batch)
    z = feats @ model.head.weight.detach().double().numpy().T + model.head.bias.detach().double().numpy()
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return feats, p / p.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- training


def accuracy(model: FeatureNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits(model, images).argmax(1) == labels.numpy()).mean())


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
