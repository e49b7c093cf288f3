"""The digit reader: a small MNIST CNN classifier that says which digit a scan shows.

It is trained by `forensics train-reader --out detectors/reader_net` on the MNIST
train split only, with its command, data checksums and test accuracy in
detectors/reader_net/manifest.json. It has two jobs:
- the `digit` field of a score record. The PixelCNN's most likely class, used before, was
  right for 83% of 600 held-out test digits; the reader is right for 99.3% of all 10,000
  test digits as scans;
- the feature space of the generator-quality benchmarks (FID, Inception-style score,
  precision/recall), as Inception-v3 is on ImageNet.

    net = load_reader()                  # the committed weights, checked against the manifest
    digit, p = read_digits(net, frames)  # uint8 [N, 28, 28] preprocessed frames
    f = features(net, frames)            # [N, 128] penultimate activations, float64
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from forensics.checkpoint import load_checkpoint, read_manifest
from forensics.errors import CheckpointError

DEFAULT = Path(__file__).resolve().parent / "reader_net"
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


def load_reader(path: str | os.PathLike = DEFAULT) -> FeatureNet:
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




def read_digits(model: FeatureNet, images, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(most likely digit int64 [N], its probability float64 [N]) for uint8 frames."""
    _, probs = features_and_probs(model, images, batch)
    if len(probs) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    digit = probs.argmax(axis=1)
    return digit.astype(np.int64), probs[np.arange(len(probs)), digit]
