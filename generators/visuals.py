"""What a person looks at during training: sample grids, the evolution GIF, loss curves."""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch
from PIL import Image

from forensics.checkpoint import atomic_write_bytes


def grid_image(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> Image.Image:
    """uint8 [N, C, H, W] → one PIL image, roughly square."""
    from torchvision.utils import make_grid

    n = images.shape[0]
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    grid = make_grid(images.float() / 255.0, nrow=nrow, padding=padding, pad_value=0.5)
    arr = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr[..., 0] if images.shape[1] == 1 else arr)


def _png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 1) -> Path:
    img = grid_image(images, nrow=nrow)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return atomic_write_bytes(path, _png_bytes(img))


def save_pngs(images: torch.Tensor, folder: str | Path, digits: list[int | None] | None = None) -> list[Path]:
    """One PNG per image, at its own size (uint8 [N, C, H, W]), named ``sample_0000_digit7.png``
    (or ``sample_0000.png`` where the digit is unknown), each written atomically."""
    folder = Path(folder)
    digits = digits if digits is not None else [None] * images.shape[0]
    width = max(4, len(str(images.shape[0] - 1)))
    paths = []
    for i, (img, d) in enumerate(zip(images.cpu(), digits)):
        arr = img.permute(1, 2, 0).numpy()
        name = f"sample_{i:0{width}d}" + (f"_digit{d}" if d is not None else "") + ".png"
        paths.append(atomic_write_bytes(folder / name, _png_bytes(Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr))))
    return paths


def save_evolution_gif(frames: list[str | Path], path: str | Path, ms_per_frame: int = 400) -> Path | None:
    """One GIF frame per epoch grid; the last frame is held longer so the result is readable."""
    if not frames:
        return None
    images = [Image.open(f).convert("P", palette=Image.ADAPTIVE) for f in frames]
    durations = [ms_per_frame] * (len(images) - 1) + [ms_per_frame * 5]
    data = _png_bytes(images[0], "GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return atomic_write_bytes(path, data)


def save_loss_plot(history: list[dict], path: str | Path, title: str = "") -> Path | None:
    """Curves of every numeric metric in the step history, smoothed; D(x)/D(G(z)) get their own panel."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers or CI
    import matplotlib.pyplot as plt

    if not history:
        return None
    keys = sorted({k for h in history for k, v in h.items() if k not in ("step", "epoch") and isinstance(v, (int, float))})
    probs = [k for k in keys if k in ("d_x", "d_g_z")]
    losses = [k for k in keys if k not in probs and k != "warmup"]
    panels = [p for p in (losses, probs) if p]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)), squeeze=False)
    window = max(1, len(history) // 200)
    for ax, group in zip(axes[:, 0], panels):
        for k in group:
            pts = [(h["step"], h[k]) for h in history if k in h]
            xs = [p[0] for p in pts]
            ys = _smooth([p[1] for p in pts], window)
            ax.plot(xs, ys, label=k, linewidth=1)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[0, 0].set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def save_d_histograms(epochs: list[dict], path: str | Path, title: str = "") -> Path | None:
    """The discriminator's outputs per epoch (``d_hist_real`` / ``d_hist_fake`` counts over [0, 1]),
    drawn as density slices stacked front to back by epoch, as TensorBoard's histogram view
    draws them: real digits in blue, generated ones in orange. None if no epoch has them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [e for e in epochs if e.get("d_hist_real") and e.get("d_hist_fake")]
    if not rows:
        return None
    bins = len(rows[0]["d_hist_real"])
    centres = (np.arange(bins) + 0.5) / bins
    fig, ax = plt.subplots(figsize=(7, 1.6 + 0.35 * len(rows)))
    step = 1.0
    for k, e in enumerate(rows):  # the first epoch at the top; each later one drawn in front, lower down
        base = (len(rows) - 1 - k) * step
        for key, colour in (("d_hist_real", "tab:blue"), ("d_hist_fake", "tab:orange")):
            counts = np.asarray(e[key], dtype=float)
            density = counts / max(counts.max(), 1.0) * 2.5 * step  # slices overlap, as in TensorBoard
            ax.fill_between(centres, base, base + density, color=colour, alpha=0.45, linewidth=0)
            ax.plot(centres, base + density, color=colour, linewidth=0.8)
    ax.set_yticks([(len(rows) - 1 - k) * step for k in range(len(rows))])
    ax.set_yticklabels([f"epoch {e.get('epoch', k + 1)}" for k, e in enumerate(rows)], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("D output (1 = real)")
    ax.set_title(title + "  (blue: D(x) on held-out real digits, orange: D(G(z)))", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _smooth(values: list[float], window: int) -> list[float]:
    if window <= 1:
        return values
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out
