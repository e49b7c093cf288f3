"""Things that are not digits: the "unknown" class the familiarity CNN learns against.

The detector's own question (human or machine?) has an answer only for digits like those it
was calibrated on. An input unlike all of them (a clothing item, a logo, a smudge, a letter)
must not be called machine for being strange (issue 21: "never machine on novelty alone").
The familiarity CNN (detectors.cnn.ScanCNN, trained in detectors.calibrate) learns known
inputs (human digits under every capture, every machine source) against these, an outlier
exposure (Hendrycks et al. 2019) made from nothing but code, so a real out-of-domain set
(Fashion-MNIST) stays a test set:

    glyph     a letter or symbol unlike any digit, typed and disguised as font forgeries are
    blob      a filled irregular silhouette: smoothed noise, thresholded
    shape     filled ellipses, rectangles and polygons, one to three, with shading
    texture   stripes, checks or noise filling most of the frame, inside a silhouette

Each is a frame (uint8 [28, 28], bright on black) made as a scan is preprocessed, so it goes
through the same capture conditions as every other source.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .fonts import CANVAS, as_frame, font_glyph, font_paths

KINDS = ("glyph", "blob", "shape", "texture")
# Letters and symbols no handwritten digit is mistaken for: not O, o, l, I, i, J, S, s, Z, z, B, b,
# G, g, q, D, d, a, C, c, T, r, y, nor ? $ & § ! or brackets (each reads as some digit, or a
# stroke of one, in someone's hand).
GLYPHS = "AEFHKLMNPRUVWXYefhkmnptuvwx#%@*+=~¶£€"


def not_digits(n: int, rng: np.random.Generator) -> np.ndarray:
    """n outlier frames uint8 [n, 28, 28], the KINDS in turn."""
    fonts = font_paths()
    frames: list[np.ndarray] = []
    i = 0
    while len(frames) < n:
        kind = KINDS[i % len(KINDS)]
        i += 1
        if kind == "glyph" and not fonts:
            continue
        frame = (font_glyph(GLYPHS[int(rng.integers(len(GLYPHS)))], rng, fonts) if kind == "glyph"
                 else as_frame(_DRAW[kind](rng)))
        if frame is not None:
            frames.append(frame)
    return np.stack(frames).astype(np.uint8) if frames else np.zeros((0, 28, 28), np.uint8)


def _blob(rng: np.random.Generator, fill: bool = True) -> np.ndarray:
    """A silhouette: low-pass noise above a level, its largest piece, holes filled; ink 0..255."""
    noise = ndimage.gaussian_filter(rng.normal(size=(CANVAS, CANVAS)), rng.uniform(6, 14))
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS] / CANVAS - 0.5
    noise -= rng.uniform(1.0, 3.0) * noise.std() * (xx ** 2 + yy ** 2) * 4  # keep it near the middle
    mask = noise > np.percentile(noise, rng.uniform(45, 80))
    labels, count = ndimage.label(mask)
    if count:
        mask = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    mask = ndimage.binary_fill_holes(mask)
    shade = rng.uniform(0.5, 1.0) + rng.uniform(-0.3, 0.3) * (xx + yy)  # a little light and shadow
    return 255 * mask * np.clip(shade, 0.3, 1.0) if fill else 255.0 * mask


def _shape(rng: np.random.Generator) -> np.ndarray:
    img = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 4))):
        box = sorted(rng.uniform(8, CANVAS - 8, 2)), sorted(rng.uniform(8, CANVAS - 8, 2))
        (x0, x1), (y0, y1) = box
        if x1 - x0 < 12 or y1 - y0 < 12:
            x0, x1, y0, y1 = 20, CANVAS - 20, 20, CANVAS - 20
        grey = int(rng.integers(120, 256))
        kind = int(rng.integers(3))
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=grey)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=grey)
        else:
            points = [tuple(p) for p in rng.uniform(10, CANVAS - 10, (int(rng.integers(3, 7)), 2))]
            draw.polygon(points, fill=grey)
    return np.asarray(img, dtype=np.float64)


def _texture(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float64)
    period, angle = rng.uniform(4, 14), rng.uniform(0, np.pi)
    u = np.cos(angle) * xx + np.sin(angle) * yy
    kind = int(rng.integers(3))
    if kind == 0:  # stripes
        pattern = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * u / period))
    elif kind == 1:  # checks
        v = -np.sin(angle) * xx + np.cos(angle) * yy
        pattern = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float64)
    else:  # a knit or print: smoothed noise
        pattern = ndimage.gaussian_filter(rng.random((CANVAS, CANVAS)), rng.uniform(0.8, 2.5))
        pattern = (pattern - pattern.min()) / max(np.ptp(pattern), 1e-9)
    base = rng.uniform(0.2, 0.6)
    return _blob(rng, fill=False) * (base + (1 - base) * pattern)


_DRAW = {"blob": _blob, "shape": _shape, "texture": _texture}
