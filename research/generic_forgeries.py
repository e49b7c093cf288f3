"""Generic forgeries: machine digits that need no trained generator, made from human digits.

The leave-one-out experiment (research/detector_experiments.py) asks whether a ScanCNN
that also sees these learns "not human" in general, and so catches a generator it never
saw. Each imitates a trait of some kind of machine output, not of any one model:

    pca      a per-class Gaussian in the top 30 principal components (a linear generator:
             smooth, averaged strokes with ghosting)
    blend    two human digits of one class cross-faded (ghost strokes, as GANs between modes)
    plotter  a human digit thresholded to one ink level, thickened or thinned by a pixel,
             softened: uniform pen pressure, as a pen plotter or a font has
    pixel    every pixel resampled around its value, noise largest on stroke edges (what
             sampling pixel by pixel, as an autoregressive model does, leaves)

They are frames like a generator's samples (uint8 [28, 28], ink bright on black), made with
detectors.fonts.as_frame, so the caller scans them as calibration scans everything.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from detectors.fonts import as_frame

KINDS = ("pca", "blend", "plotter", "pixel")
PCA_COMPONENTS = 30
PCA_FIT_PER_CLASS = 3000


def _pca(images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    fitted = {}
    for d in np.unique(labels):
        x = images[labels == d][:PCA_FIT_PER_CLASS].reshape(-1, images.shape[1] * images.shape[2]).astype(np.float64)
        mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        k = min(PCA_COMPONENTS, len(s))
        fitted[d] = (mean, vt[:k], s[:k] / np.sqrt(max(len(x) - 1, 1)))
    classes = sorted(fitted)
    out = []
    for i in range(n):
        mean, v, sd = fitted[classes[i % len(classes)]]
        out.append((mean + (rng.normal(size=len(sd)) * sd) @ v).reshape(images.shape[1:]))
    return out


def _blend(images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    classes = np.unique(labels)
    out = []
    for i in range(n):
        rows = np.flatnonzero(labels == classes[i % len(classes)])
        a, b = images[rng.choice(rows, 2, replace=len(rows) < 2)].astype(np.float64)
        w = rng.uniform(0.3, 0.7)
        out.append(w * a + (1 - w) * b)
    return out


def _plotter(images: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        big = Image.fromarray(images[rng.integers(len(images))]).resize((84, 84), Image.Resampling.BICUBIC)
        img = Image.fromarray(((np.asarray(big) > rng.uniform(60, 180)) * 255).astype(np.uint8))
        pen = int(rng.integers(-1, 2))  # thinner, as is, or thicker by a pixel at 3x
        if pen:
            img = img.filter(ImageFilter.MaxFilter(3) if pen > 0 else ImageFilter.MinFilter(3))
        out.append(np.asarray(img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5))), dtype=np.float64))
    return out


def _pixel(images: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        p = images[rng.integers(len(images))].astype(np.float64) / 255.0
        spread = rng.uniform(0.5, 1.0) * np.sqrt(p * (1 - p) + 0.02 * (p > 0.05))
        out.append(255.0 * np.clip(p + rng.normal(size=p.shape) * spread, 0, 1))
    return out


def generic_forgeries(images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator,
                      kinds: tuple[str, ...] = KINDS) -> tuple[np.ndarray, np.ndarray]:
    """About n of each kind, made from human frames ``images`` uint8 [N, 28, 28] with their
    ``labels``: (frames uint8 [M, 28, 28], kind of each). A forgery left without ink is dropped."""
    frames, names = [], []
    for kind in kinds:
        if kind == "pca":
            raw = _pca(images, labels, n, rng)
        elif kind == "blend":
            raw = _blend(images, labels, n, rng)
        elif kind == "plotter":
            raw = _plotter(images, n, rng)
        elif kind == "pixel":
            raw = _pixel(images, n, rng)
        else:
            raise ValueError(f"unknown generic forgery {kind!r}; choose from {KINDS}")
        for ink in raw:
            frame = as_frame(np.clip(ink, 0, 255))
            if frame is not None:
                frames.append(frame)
                names.append(kind)
    if not frames:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, dtype=str)
    return np.stack(frames).astype(np.uint8), np.array(names)
