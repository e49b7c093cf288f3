"""Latent-space walks for the GANs, written as an image strip.

    z0, z1 = torch.randn(2, gan.cfg.z_dim)
    save_strip(gan.generate(slerp(z0, z1, 10)), "walk.png")

Prefer slerp for Gaussian z: in high dimensions samples sit near a sphere of radius
sqrt(z_dim), and lerp's midpoints cut inside it, where G saw no training inputs.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from torchvision.utils import make_grid

from forensics.checkpoint import atomic_write_bytes


def _ts(steps: int, like: torch.Tensor) -> torch.Tensor:
    if steps < 2:
        raise ValueError(f"a walk needs at least 2 steps (both ends), got {steps}")
    return torch.linspace(0.0, 1.0, steps, dtype=like.dtype, device=like.device)


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Straight line from z0 to z1: [steps, *z0.shape], ends included."""
    t = _ts(steps, z0).view(-1, *([1] * z0.dim()))
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int, eps: float = 1e-4) -> torch.Tensor:
    """Great-circle walk from z0 to z1 (over the last dim): [steps, *z0.shape], ends included.

    Where z0 and z1 are nearly parallel (or opposite) the arc is undefined or numerically
    unstable (sin(omega) -> 0), and the walk falls back to lerp.
    """
    t = _ts(steps, z0).view(-1, *([1] * z0.dim()))
    a, b = z0 / z0.norm(dim=-1, keepdim=True), z1 / z1.norm(dim=-1, keepdim=True)
    # The angle via atan2 stays accurate near 0 and pi, where acos(cos) loses half its digits.
    omega = 2 * torch.atan2((a - b).norm(dim=-1, keepdim=True), (a + b).norm(dim=-1, keepdim=True))
    sin = torch.sin(omega)
    safe = sin.abs() > eps
    sin = torch.where(safe, sin, torch.ones_like(sin))  # no 0/0 in the branch we discard
    arc = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / sin
    return torch.where(safe, arc, lerp(z0, z1, steps))


def along_dim(z: torch.Tensor, dim: int, values: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Copies of z [z_dim] with z[dim] set to each value in turn: [len(values), z_dim]."""
    if z.dim() != 1:
        raise ValueError(f"along_dim expects one latent vector [z_dim], got shape {tuple(z.shape)}")
    values = torch.as_tensor(values, dtype=z.dtype, device=z.device)
    out = z.repeat(len(values), 1)
    out[:, dim] = values
    return out


def strip(images: torch.Tensor, rows: int = 1, padding: int = 2) -> Image.Image:
    """uint8 images [n, C, H, W] (C = 1 or 3) -> one PIL image, ``rows`` rows (grey stays grey)."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise TypeError(f"expected uint8 images [n, C, H, W], got {images.dtype} {tuple(images.shape)}")
    n, c = images.shape[:2]
    grid = make_grid(images.detach().cpu(), nrow=math.ceil(n / rows), padding=padding)
    if c == 1:
        grid = grid[:1]  # make_grid repeats grey to 3 channels
    arr = grid.permute(1, 2, 0).numpy()
    return Image.fromarray(arr[..., 0] if c == 1 else arr)


def save_strip(images: torch.Tensor, path: str | os.PathLike, rows: int = 1) -> Path:
    """Write ``strip(images, rows)`` atomically; the format follows the suffix (PNG if none)."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    buf = io.BytesIO()
    strip(images, rows).save(buf, format=fmt)
    return atomic_write_bytes(path, buf.getvalue())
