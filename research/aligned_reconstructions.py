"""Aligned reconstructions: human digits rewritten by small autoencoders, as machine examples.

Rajan et al. (ICLR 2025, "Aligned Datasets Improve Detection of Latent Diffusion-Generated
Images") train a detector on real images vs the same images passed through a generator's
autoencoder. Content is matched pair by pair, so what the detector can learn is the decoder's
trace, and that trace is shared by generators the detector never saw. The leave-one-out
experiment (research/detector_experiments.py) asks whether the ScanCNN generalises the same
way here. Three decoders, each the kind of output stage one family of generator has:

    conv     strided convolutions down to a 32-number code, transposed convolutions up (DCGAN)
    spatial  a 7x7x8 spatial code, transposed convolutions up: near-perfect rewrites, so the
             difference is the decoder's texture alone
    fc       fully connected, through a 32-number code (the fully-connected GAN)

Each is trained on MNIST train digits, then rewrites the digits it is given; the rewrites
are frames like a generator's samples (uint8 [28, 28], ink bright on black).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 128
LR = 1e-3


class ConvAE(nn.Module):
    def __init__(self, code: int = 32):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                                  nn.Flatten(), nn.Linear(64 * 7 * 7, code))
        self.up = nn.Sequential(nn.Linear(code, 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                                nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


class SpatialAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 8, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(8, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FCAE(nn.Module):
    def __init__(self, code: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, code),
                                 nn.Linear(code, 512), nn.ReLU(), nn.Linear(512, 784), nn.Unflatten(1, (1, 28, 28)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


AUTOENCODERS = {"conv": ConvAE, "spatial": SpatialAE, "fc": FCAE}


def train_autoencoder(name: str, train_images: np.ndarray, steps: int, seed: int) -> nn.Module:
    """One autoencoder (logits out; sigmoid gives the image), trained ``steps`` batches of
    BATCH random train frames uint8 [N, 28, 28] on binary cross-entropy."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = AUTOENCODERS[name]()
    opt = torch.optim.Adam(model.parameters(), LR)
    x_all = torch.as_tensor(np.asarray(train_images, dtype=np.uint8)).unsqueeze(1)
    for _ in range(steps):
        x = x_all[torch.randint(len(x_all), (BATCH,), generator=g)].float() / 255.0
        loss = F.binary_cross_entropy_with_logits(model(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def rewrite(model: nn.Module, images: np.ndarray, batch: int = 500) -> np.ndarray:
    """Frames uint8 [N, 28, 28] -> the autoencoder's rewrites, uint8 [N, 28, 28]."""
    x = torch.as_tensor(np.asarray(images, dtype=np.uint8)).unsqueeze(1).float() / 255.0
    out = [torch.sigmoid(model(x[i : i + batch])) for i in range(0, len(x), batch)]
    y = torch.cat(out) if out else x
    return (y[:, 0] * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


def aligned_reconstructions(images: np.ndarray, train_images: np.ndarray, steps: int, seed: int,
                            names: tuple[str, ...] = tuple(AUTOENCODERS)) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of ``images`` rewritten by each autoencoder (trained ``steps`` batches on
    ``train_images``): (frames uint8 [len(names) * N, 28, 28], autoencoder name per frame)."""
    frames, kinds = [], []
    for k, name in enumerate(names):
        if name not in AUTOENCODERS:
            raise ValueError(f"unknown autoencoder {name!r}; choose from {tuple(AUTOENCODERS)}")
        frames.append(rewrite(train_autoencoder(name, train_images, steps, seed + k), images))
        kinds += [name] * len(images)
    if not frames:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, dtype=str)
    return np.concatenate(frames), np.array(kinds)
