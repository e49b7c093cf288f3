"""A small CNN that tells human from machine digits directly: the `cnn_logit` signal.

The generators' own models (two discriminators, the PixelCNN's likelihood) were trained
for something else; this one is trained for the question the product asks, on preprocessed
scans: human = MNIST *train* digits, machine = fresh samples of the three generators, each
rendered as a scan or put through a random print-and-scan exactly as calibration does, so
it cannot learn "scanner artefacts = human". Its training images are disjoint from the
calibration set (MNIST test[:5000] and samples drawn with another seed), so the combiner
and the held-out metrics see it on images it never trained on.

    ScanCNN: 3 conv layers (3x3) with two 2x2 max-pools, a hidden layer, one logit
    (machine > 0). The default width (16, 32, 64 channels, 64 units: 0.22 M parameters,
    ~8 M multiply-adds per image) trains in reasonable time on a CPU; the shipped bundle
    uses 32, 64, 128 and 128 units (0.9 M parameters, ~30 M multiply-adds; on one CPU
    thread 1.5 ms an image, about 1% of the PixelCNN's 10 class passes), trained on a GPU,
    because at 2-4x more data the small one had stopped improving.

Training is one plain loop (Adam, balanced binary cross-entropy, a fixed number of epochs).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from forensics.checkpoint import atomic_save, load_checkpoint
from forensics.errors import CheckpointError

FORMAT = "forensics-scancnn-v1"


@dataclass
class CNNConfig:
    channels: tuple[int, int, int] = (16, 32, 64)
    hidden: int = 64
    epochs: int = 8
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    early_pool: bool = False


class ScanCNN(nn.Module):
    def __init__(self, cfg: CNNConfig = CNNConfig()):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.fc = nn.Linear(c3 * 7 * 7, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit [B] (machine > 0) for uint8 images [B, 1, 28, 28]."""
        h = x.float() / 127.5 - 1.0
        if self.conv2.weight.is_contiguous(memory_format=torch.channels_last):  # see for_inference
            h = h.contiguous(memory_format=torch.channels_last)
        h = F.relu(self.conv1(h))
        if self.cfg.early_pool:
            h = F.max_pool2d(h, 2)  # pool before conv2 instead of after it (a variant tried, not the default)
            h = F.relu(self.conv2(h))
        else:
            h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # 14x14
        h = F.max_pool2d(F.relu(self.conv3(h)), 2)  # 7x7
        h = F.relu(self.fc(h.flatten(1)))
        return self.out(h).squeeze(1)


def train_cnn(images: np.ndarray, is_machine: np.ndarray, cfg: CNNConfig = CNNConfig(), seed: int = 0,
              progress: Callable[[int, int], None] | None = None,
              device: str | torch.device = "cpu") -> tuple[ScanCNN, dict]:
    """Fit a ScanCNN on uint8 frames [N, 28, 28] with labels (1 = machine); returns it (on the
    CPU) and a log.

    Classes are weighted equally whatever their counts, as the combiner weights them.
    ``progress(done, total)`` is called after every batch. On a GPU the whole set is moved
    there once (uint8: 0.8 kB an image) and cuDNN is kept to deterministic kernels, so a seed
    still gives the same model on the same machine.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    g = torch.Generator().manual_seed(seed)  # batch order and shifts: drawn on the CPU, as on any device
    torch.manual_seed(seed)
    model = ScanCNN(cfg).to(device)
    x = torch.as_tensor(np.asarray(images, dtype=np.uint8)).unsqueeze(1).to(device)
    y = torch.as_tensor(np.asarray(is_machine), dtype=torch.float32).to(device)
    n_pos = float(y.sum())
    pos_weight = torch.tensor((len(y) - n_pos) / max(n_pos, 1.0), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = (len(x) + cfg.batch_size - 1) // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 1))
    start, done, losses = time.perf_counter(), 0, []
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x), generator=g).to(device)
        epoch_loss = torch.zeros((), device=device)  # summed on the device: no sync per batch
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            batch = x[idx]
            # A random 0-1 px shift: preprocessing centres by mass, which still wobbles by a pixel.
            dy, dx = (int(v) for v in torch.randint(-1, 2, (2,), generator=g))
            batch = torch.roll(batch, (dy, dx), dims=(2, 3))
            loss = F.binary_cross_entropy_with_logits(model(batch), y[idx], pos_weight=pos_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            epoch_loss += loss.detach() * len(idx)
            done += 1
            if progress:
                progress(done, total)
        losses.append(float(epoch_loss) / len(x))
    model = model.cpu().eval()
    log = {"epochs": cfg.epochs, "train_images": int(len(x)), "train_machine": int(n_pos),
           "epoch_loss": [round(v, 5) for v in losses], "train_seconds": round(time.perf_counter() - start, 1),
           "seed": seed}
    return model, log


@torch.no_grad()
def cnn_logits(model: ScanCNN, x: torch.Tensor) -> torch.Tensor:
    return model.eval()(x)


def save_cnn(model: ScanCNN, path: str | Path) -> None:
    atomic_save({"format": FORMAT, "config": asdict(model.cfg), "state_dict": model.state_dict()}, path)


def for_inference(model: ScanCNN, device: str | torch.device = "cpu") -> ScanCNN:
    """The model on ``device`` in eval mode, weights channels-last: on a CPU its convolutions then
    run much faster (benchmarks/speed.py, "costs"), with logits within float rounding of the
    default layout's; scoring and calibration both use it."""
    return model.to(device, memory_format=torch.channels_last).eval()


def load_cnn(path: str | Path, device: str = "cpu") -> ScanCNN:
    """A ScanCNN from save_cnn's file, weights only (CheckpointError if missing or not one)."""
    ckpt = load_checkpoint(path, map_location=device)
    try:
        if ckpt.get("format") != FORMAT:
            raise ValueError(f"format is {ckpt.get('format')!r}, expected {FORMAT!r}")
        fields = dict(ckpt["config"])
        fields["channels"] = tuple(fields["channels"])
        model = ScanCNN(CNNConfig(**fields))
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: not a ScanCNN checkpoint ({type(exc).__name__}: {exc})") from None
    return for_inference(model, device)
