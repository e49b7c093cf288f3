"""The ways a real form reaches us: capture variety applied to a 28x28 frame, as scans.

Each named capture turns one uint8 frame (bright ink on black, the MNIST frame) into the image
a reviewer would receive (dark ink on paper, any size, grey or colour), with its parameters
drawn from the numpy Generator given:

    low_res     written small: captured at 8-16 px across, then upsampled 4-6x
    fax         1-bit: thresholded at 2-3x, with a few flipped specks
    thick_pen   strokes widened by 1-2 px at 3x (a felt pen)
    thin_pen    strokes thinned by 1 px at 3x (a fine ballpoint)
    phone       a phone photo: coloured ink (blue, black, dark red), light falling off across
                the page, a slight perspective, JPEG q55-85
    scanner     soft optics and sensor noise: blur 0.6-1.5 frame px, noise sigma 4-12
    box_lines   the printed box of a form's comb field around the digit, 1-3 px lines,
                partly inside the crop
    block_grid  a form reader's grid (the NIST/UCI optdigits pipeline): binarised at 4x,
                cropped to the ink, size-normalised with aspect kept into a 6-10 block grid
                (0-1 block of margin), ink counted per 4x4 block (17 grey levels), upsampled
                5-8x: few, coarse levels and a digit that fills its crop

They serve two uses (issue 21): held-out *human* variety sets made from MNIST test digits that
no part of the detector was fitted on, to measure false "machine" rates; and, applied with
the same distribution to human and machine images alike, training data in which capture
carries no label.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from .printscan import jpeg

CAPTURES = ("low_res", "fax", "thick_pen", "thin_pen", "phone", "scanner", "box_lines", "block_grid")
BLOCK = 4  # a block_grid cell is BLOCK x BLOCK binary pixels, so it holds 0..16 ink


def capture(frame: np.ndarray, name: str, rng: np.random.Generator) -> Image.Image:
    """One capture of a uint8 (28, 28) frame (see the module docstring)."""
    frame = np.asarray(frame, dtype=np.uint8)
    if name == "low_res":
        side = int(rng.integers(8, 17))
        small = Image.fromarray(255 - frame).resize((side, side), Image.Resampling.BOX)
        up = side * int(rng.integers(4, 7))
        return small.resize((up, up), Image.Resampling.BICUBIC)
    if name == "fax":
        scale = int(rng.integers(2, 4))
        ink = _ink(frame, scale)
        on = ink > rng.uniform(0.35, 0.6)
        on ^= rng.random(on.shape) < 0.002  # specks
        return Image.fromarray(np.where(on, 0, 255).astype(np.uint8)).convert("1").convert("L")
    if name in ("thick_pen", "thin_pen"):
        ink = _ink(frame, 3)
        if name == "thick_pen":
            ink = ndimage.grey_dilation(ink, size=int(rng.integers(2, 4)))
        else:
            ink = ndimage.grey_erosion(ink, size=2)
        return _paper(ink, rng)
    if name == "phone":
        return _phone(frame, rng)
    if name == "scanner":
        img = _paper(_ink(frame, 3), rng)
        img = img.filter(ImageFilter.GaussianBlur(3 * rng.uniform(0.6, 1.5)))
        noisy = np.asarray(img, dtype=np.float64) + rng.normal(0, rng.uniform(4, 12), (img.height, img.width))
        return Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    if name == "box_lines":
        return _boxed(frame, rng)
    if name == "block_grid":
        return _block_grid(frame, rng)
    raise ValueError(f"unknown capture {name!r}; choose from {', '.join(CAPTURES)}")


def _ink(frame: np.ndarray, scale: int) -> np.ndarray:
    """Ink coverage in [0, 1] at ``scale`` x the frame, with a 3-frame-pixel paper margin."""
    side = frame.shape[0] * scale
    ink = np.asarray(Image.fromarray(frame).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float64) / 255
    return np.pad(np.clip(ink, 0, 1), 3 * scale)


def _paper(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    paper, solid = rng.uniform(200, 250), rng.uniform(0, 60)
    return Image.fromarray(np.clip(paper - (paper - solid) * ink, 0, 255).astype(np.uint8))


def _phone(frame: np.ndarray, rng: np.random.Generator) -> Image.Image:
    ink = _ink(frame, 3)
    h, w = ink.shape
    colour = np.array([(30, 40, 150), (20, 20, 25), (120, 20, 30)][int(rng.integers(0, 3))], dtype=np.float64)
    # Light falls off across the page: a linear ramp from one side to the other.
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    light = 1.0 - rng.uniform(0.1, 0.35) * (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
    paper = np.array([235, 230, 220], dtype=np.float64) * light[..., None]
    rgb = paper * (1 - ink[..., None]) + colour * ink[..., None]
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    # A slight perspective: each corner moved by up to 6% of the side.
    d = 0.06 * w
    # PIL's QUAD takes the source corners upper-left, lower-left, lower-right, upper-right.
    src = [(rng.uniform(0, d), rng.uniform(0, d)), (rng.uniform(0, d), h - rng.uniform(0, d)),
           (w - rng.uniform(0, d), h - rng.uniform(0, d)), (w - rng.uniform(0, d), rng.uniform(0, d))]
    img = img.transform((w, h), Image.Transform.QUAD, [c for p in src for c in p], Image.Resampling.BICUBIC,
                        fillcolor=(225, 220, 210))
    return jpeg(img, int(rng.integers(55, 86)))


def _boxed(frame: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """The digit in a printed box: lines 1-3 px, the box 1.1-1.5x the digit, cropped with a
    little of the neighbouring boxes' lines showing."""
    img = _paper(_ink(frame, 3), rng)
    w, h = img.size
    grow = rng.uniform(1.1, 1.5)
    side = int(round(w * grow))
    page = Image.new("L", (side, side), int(np.asarray(img).max()))
    page.paste(img, ((side - w) // 2, (side - h) // 2))
    draw = ImageDraw.Draw(page)
    width, grey = int(rng.integers(1, 4)), int(rng.uniform(40, 120))
    inset = int(rng.integers(0, 4))
    draw.rectangle([inset, inset, side - 1 - inset, side - 1 - inset], outline=grey, width=width)
    return page


def _block_grid(frame: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """The digit as a form reader stores it: binary, normalised into a coarse grid, ink counted
    per block (see the module docstring); dark ink on white, upsampled as a viewer would."""
    ink = _ink(frame, BLOCK)
    on = ink > rng.uniform(0.3, 0.6)
    if not on.any():  # a faint digit: keep whatever ink there is
        on = ink > 0
    blocks, margin = int(rng.integers(6, 11)), int(rng.integers(0, 2))
    if not on.any():  # a blank sample: a blank grid, which preprocessing reports as no ink
        return Image.new("L", (blocks * BLOCK * 5, blocks * BLOCK * 5), 255)
    grey = (255 - np.round(grid_counts(on, blocks, margin) * 255 / BLOCK**2)).astype(np.uint8)
    up = blocks * int(rng.integers(5, 9))
    return Image.fromarray(grey).resize((up, up), Image.Resampling.BICUBIC)


def grid_counts(on: np.ndarray, blocks: int, margin: int) -> np.ndarray:
    """A binary ink mask (some ink) cropped to its ink, fitted with aspect kept inside a margin of
    ``margin`` blocks of a ``blocks`` x ``blocks`` grid, ink pixels counted per BLOCK x BLOCK cell."""
    rows, cols = np.nonzero(on)
    crop = on[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    inner = (blocks - 2 * margin) * BLOCK
    h, w = crop.shape
    th, tw = max(1, round(inner * h / max(h, w))), max(1, round(inner * w / max(h, w)))
    fitted = np.asarray(Image.fromarray(crop.astype(np.uint8) * 255).resize((tw, th), Image.Resampling.NEAREST)) > 127
    grid = np.zeros((blocks * BLOCK, blocks * BLOCK), dtype=bool)
    top, left = margin * BLOCK + (inner - th) // 2, margin * BLOCK + (inner - tw) // 2
    grid[top : top + th, left : left + tw] = fitted
    return grid.reshape(blocks, BLOCK, blocks, BLOCK).sum(axis=(1, 3))
