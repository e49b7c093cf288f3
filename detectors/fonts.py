"""Font forgeries: a digit typed in a font, then disguised as a forger would (stroke
weight, shear, rotation, an elastic warp, sometimes a soft render). No trained generator
makes them, and the ScanCNN trained on the three generators alone let most of them through
(AUROC 0.66 against human digits), so calibration adds them as a fourth machine source.

They are frames like a generator's samples (uint8 [28, 28], ink bright on black) and go
through the same scan rendering and print-and-scan as every other image. Fonts come from
matplotlib's own font folder (a dependency already), so the same faces exist wherever the
package is installed and a seed gives the same forgeries everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from forensics.errors import ForensicsError

from .printscan import preprocess_or_none

CANVAS = 96  # fonts are drawn and warped at this size, then preprocessed down to a frame

# Text faces in matplotlib's font folder that have ordinary digits (the symbol and
# "Display" faces do not).
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
    "cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmti10.ttf",
)


def font_paths() -> list[Path]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return [folder / name for name in FONT_FILES if (folder / name).is_file()]


# --------------------------------------------------------------------------- font


def _elastic(img: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    """Warp by a smooth random displacement field (Simard et al. 2003), bilinear."""
    import torch
    from torch.nn import functional as F

    side = img.shape[0]
    field = torch.as_tensor(rng.uniform(-1, 1, size=(1, 2, side, side)), dtype=torch.float32)
    radius = int(3 * sigma)
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    k = k / k.sum()
    field = F.conv2d(field, k.view(1, 1, 1, -1).repeat(2, 1, 1, 1), padding=(0, radius), groups=2)
    field = F.conv2d(field, k.view(1, 1, -1, 1).repeat(2, 1, 1, 1), padding=(radius, 0), groups=2)
    field = field / field.abs().amax().clamp_min(1e-6) * alpha  # peak displacement in pixels
    ys, xs = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                            indexing="ij")
    grid = torch.stack(((xs + field[0, 0]) / (side - 1) * 2 - 1, (ys + field[0, 1]) / (side - 1) * 2 - 1), -1)
    src = torch.as_tensor(img, dtype=torch.float32)[None, None]
    return F.grid_sample(src, grid[None], mode="bilinear", padding_mode="zeros", align_corners=True)[0, 0].numpy()


def font_digit(digit: int, rng: np.random.Generator, fonts: list[Path]) -> np.ndarray | None:
    """One typed-and-disguised digit as a frame; None if the warp left no ink."""
    return font_glyph(str(digit), rng, fonts)


def font_glyph(text: str, rng: np.random.Generator, fonts: list[Path]) -> np.ndarray | None:
    """Any character typed and disguised as font_digit does a digit, as a frame; None if no ink."""
    font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), int(rng.integers(48, 72)))
    img = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(img)
    weight = int(rng.integers(0, 4))  # stroke weight: thin to bold
    draw.text((CANVAS / 2, CANVAS / 2), text, fill=255, font=font, anchor="mm", stroke_width=weight,
              stroke_fill=255)
    shear = rng.uniform(-0.35, 0.35)
    c = CANVAS / 2
    img = img.transform(img.size, Image.Transform.AFFINE, (1, shear, -shear * c, 0, 1, 0), Image.Resampling.BILINEAR)
    img = img.rotate(rng.uniform(-15, 15), Image.Resampling.BILINEAR)
    warped = _elastic(np.asarray(img, dtype=np.float32), rng, alpha=rng.uniform(0, 6), sigma=rng.uniform(6, 12))
    if rng.random() < 0.5:  # a soft pen or a low-resolution render
        warped = np.asarray(Image.fromarray(np.clip(warped, 0, 255).astype(np.uint8))
                            .filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0))), dtype=np.float32)
    return as_frame(warped)


# --------------------------------------------------------------------------- helpers


def as_frame(ink: np.ndarray) -> np.ndarray | None:
    """Any bright-on-black picture -> a preprocessed frame (dark-on-white scan first, so the
    forgery is framed exactly as a scanned digit is); None if there is no ink."""
    scan = 255 - np.clip(np.round(ink), 0, 255).astype(np.uint8)
    return preprocess_or_none(np.pad(scan, 8, constant_values=255))  # paper around it, as a scan has


def font_forgeries(n: int, rng: np.random.Generator) -> np.ndarray:
    """n typed-and-disguised digits as frames uint8 [n, 28, 28], the digits 0-9 in turn."""
    fonts = font_paths()
    if not fonts:
        raise ForensicsError(f"none of the fonts {FONT_FILES[0]}, ... found in matplotlib's font folder; "
                             "reinstall matplotlib (a dependency)")
    frames: list[np.ndarray] = []
    i = 0
    while len(frames) < n:
        out = font_digit(i % 10, rng, fonts)
        i += 1
        if out is not None:
            frames.append(out)
    return np.stack(frames).astype(np.uint8) if frames else np.zeros((0, 28, 28), np.uint8)
