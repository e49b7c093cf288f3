"""Simulated print-and-scan of 28x28 frames, and the fixed re-scans used for stability.

Two uses:
(a) ``print_and_scan``: a random print-and-scan (upsampled as a printer would, dark ink on
    paper, contrast and gamma, blur, a 1-2 px shift, down- and up-scaling, sensor noise,
    JPEG at a random quality). Calibration applies it to human AND machine images, so the
    combiner cannot learn "no scanning artefacts = machine".
(b) ``rescans``: a fixed, small set of realistic re-scans of one frame (JPEG q=75, slight
    blur, 0.8x and back, 1 px shift), made on the frame rendered as a scan and each
    preprocessed again. A verdict that flips under one of them is not a verdict.

Frames are the MNIST frame (uint8, ink bright on black); a "scan" is a grey image of any
size, as forensics.preprocess takes it. Randomness comes only from the numpy Generator
passed in, so a seed gives the same scans.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from forensics.errors import InputError
from forensics.preprocess import preprocess_image

RESCANS = ("jpeg_q75", "blur_0.5px", "rescale_0.8x", "shift_1px")
SCAN_SCALE = 3  # re-scans are made on the frame rendered at 3x, as dark ink on white paper


# --------------------------------------------------------------------------- (a) random


def print_and_scan(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random print-and-scan of a uint8 (28, 28) frame: a grey scan, dark ink on paper."""
    frame = np.asarray(frame, dtype=np.uint8)
    # Printer/scanner resolution relative to the frame; from 1x, where JPEG blocks and blur act
    # at the models' own scale (as the stability re-scans do), to 4x, where preprocessing
    # averages them away.
    scale = rng.uniform(1.0, 4.0)
    side = int(round(frame.shape[0] * scale))
    ink = np.asarray(Image.fromarray(frame).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float64) / 255.0
    ink = np.clip(ink, 0.0, 1.0) ** rng.uniform(0.7, 1.4)  # toner spread / fading
    margin = int(round(3 * scale))  # a paper margin, as a cut-out of a form has
    ink = np.pad(ink, margin)
    dy, dx = (int(round(v * scale)) for v in rng.integers(-2, 3, size=2))  # 1-2 px in frame pixels
    ink = np.roll(ink, (dy, dx), axis=(0, 1))  # the margin is blank, so nothing wraps visibly
    paper, solid = rng.uniform(185, 250), rng.uniform(0, 80)  # contrast: paper and toner levels
    grey = paper - (paper - solid) * ink
    img = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    # Optics, ink bleed, a soft or fax-quality scan: up to 1.5 frame px, mostly under 0.6
    # (a ScanCNN that never saw a soft scan called blurred human digits machine-made).
    img = img.filter(ImageFilter.GaussianBlur(1.5 * rng.uniform(0.0, 1.0) ** 2 * scale))
    # Scanned at a lower resolution, then viewed back up; never below 0.8x the frame's own.
    shrink = rng.uniform(max(0.5, 0.8 / scale), 1.0)
    small = (max(8, int(round(img.width * shrink))), max(8, int(round(img.height * shrink))))
    img = img.resize(small, Image.Resampling.BILINEAR).resize(img.size, Image.Resampling.BILINEAR)
    noisy = np.asarray(img, dtype=np.float64) + rng.normal(0.0, rng.uniform(0.0, 6.0), size=(img.height, img.width))
    img = Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    return _jpeg(img, int(rng.integers(30, 96)))


def augment(frames: np.ndarray, rng: np.random.Generator) -> list[np.ndarray | None]:
    """print_and_scan + preprocess for each frame; None where the scan lost its ink."""
    out: list[np.ndarray | None] = []
    for frame in frames:
        out.append(preprocess_or_none(print_and_scan(frame, rng)))
    return out


# --------------------------------------------------------------------------- (b) fixed


def render_scan(frame: np.ndarray, scale: int = SCAN_SCALE) -> Image.Image:
    """A frame as a scanner would deliver it: ``scale`` x larger, dark ink on white paper."""
    frame = np.asarray(frame, dtype=np.uint8)
    size = (frame.shape[1] * scale, frame.shape[0] * scale)
    return Image.fromarray(255 - frame).resize(size, Image.Resampling.BICUBIC)


def rescan(frame: np.ndarray, name: str) -> np.ndarray:
    """One named re-scan of a uint8 (28, 28) frame: a grey scan, before preprocessing.

    The change is made on the frame rendered as a scan (render_scan), not on the 28x28
    frame itself: re-preprocessing a bare frame drops its faint anti-aliased edge pixels,
    a change no real re-scan makes, and the models' likelihoods are sensitive to exactly
    those pixels.
    """
    img = render_scan(frame)
    if name == "jpeg_q75":
        return _jpeg(img, 75)
    if name == "blur_0.5px":  # half a frame pixel
        return np.asarray(img.filter(ImageFilter.GaussianBlur(0.5 * SCAN_SCALE)))
    if name == "rescale_0.8x":
        small = (round(img.width * 0.8), round(img.height * 0.8))
        return np.asarray(img.resize(small, Image.Resampling.BILINEAR).resize(img.size, Image.Resampling.BILINEAR))
    if name == "shift_1px":  # one frame pixel to the right, paper coming in on the left
        scan = np.asarray(img)
        shifted = np.full_like(scan, 255)
        shifted[:, SCAN_SCALE:] = scan[:, :-SCAN_SCALE]
        return shifted
    raise ValueError(f"unknown re-scan {name!r}; choose from {RESCANS}")


def rescans(frame: np.ndarray) -> list[np.ndarray]:
    """Every re-scan in RESCANS, preprocessed again (as a new scan of the page would be).

    If preprocessing finds no ink in a re-scan (it cannot for any frame that passed it once,
    but a bug must not cost the verdict) the frame itself stands in for it.
    """
    out = []
    for name in RESCANS:
        frame2 = preprocess_or_none(rescan(frame, name))
        out.append(frame2 if frame2 is not None else np.asarray(frame, dtype=np.uint8))
    return out


# --------------------------------------------------------------------------- helpers


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    """``img`` saved as JPEG at ``quality`` and read back, in its own mode (grey or RGB)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert(img.mode)


def _jpeg(img: Image.Image, quality: int) -> np.ndarray:
    return np.asarray(jpeg(img, quality).convert("L"))


def preprocess_or_none(scan: np.ndarray | Image.Image) -> np.ndarray | None:
    """forensics.preprocess of a scan (a grey array, or an image of any mode); None where it
    finds no ink (e.g. a blank sample)."""
    try:
        img = scan if isinstance(scan, Image.Image) else Image.fromarray(np.asarray(scan, dtype=np.uint8))
        return preprocess_image(img)
    except InputError:
        return None
