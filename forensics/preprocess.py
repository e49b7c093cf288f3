"""Scan -> MNIST frame: the 28x28 picture the models were trained on.

MNIST was made by fitting each binary NIST digit into a 20x20 box (aspect kept, grey
levels from anti-aliasing), pasting it into 28x28 and shifting it by whole pixels so its
intensity-weighted centre of mass lands on pixel (14, 14) (measured on the MNIST test
set: mean 13.99 / 14.01, spread +-0.29, exactly what rounding a shift gives). A scan
gets the same treatment after we find its paper, its ink polarity and its ink:

0. printed box lines at the scan's edges (a character cropped from a form) are cut off;
1. paper level and noise come from the image border (median and MAD; a plane fitted to the
   border where the light falls off across it, as in a phone photo);
2. ink is whatever departs from the paper by more than the noise floor, on the side
   (darker or brighter) where most of that departure is, so light-on-dark works too;
3. ink strength is scaled so solid strokes reach 255, the paper becomes 0;
4. connected specks far smaller than the main strokes are dropped;
5. the ink's bounding box is fitted into 20x20 (anti-aliased) and centred by mass.

The paper is read from the border rather than split off with Otsu's threshold: Otsu
assumes two classes of comparable weight and drifts into the paper's noise when the ink
is a few percent of the page, which also makes its polarity guess a coin toss.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from PIL import Image

from .errors import InputError
from .imageload import load_scan, to_grey
from .inputs import expand_inputs
from .printed_lines import paper_and_threshold, trim_lines

FRAME = 28  # MNIST image side
BOX = 20  # MNIST fits the digit's bounding box into BOX x BOX
CENTRE = 14.0  # where MNIST puts the centre of mass (row and column index)

MIN_NOISE_FLOOR = 12  # grey levels: below this, a departure from the paper is paper texture
NOISE_FLOOR_SIGMAS = 4  # ... or below this many noise standard deviations
MIN_CONTRAST = 40  # grey levels between paper and solid ink, or there is no ink
MIN_CONTRAST_SIGMAS = 6  # ... nor when the "ink" is barely above the noise
MIN_INK_PIXELS = 10  # the largest connected stroke must have at least this many pixels
SPECK_FRACTION = 0.05  # components smaller than this share of the largest are specks
CC_MAX_SIDE = 1024  # label components on a grid at most this big (bounds the work)
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)  # diagonal neighbours belong to the same stroke
SCAN_LINE_SHARE = 0.9  # a single scan's edge row that is this much ink is a printed box line
MIN_TRIMMED_SHARE = 0.25  # keep the scan whole if cutting its "lines" would leave less than this
UNEVEN_LIGHT_GAIN = 0.5  # a plane must halve the border's noise to count as uneven light


# --------------------------------------------------------------------------- the algorithm


def preprocess_image(img: Image.Image, source: str = "<image>") -> np.ndarray:
    """A grey scan (mode "L"; others are converted) as a uint8 (28, 28) MNIST-style frame.

    Raises ``InputError(source, "no ink found ...")`` for a blank, black or uniform page.
    """
    if img.mode != "L":
        img = to_grey(img)
    grey = np.asarray(img, dtype=np.float32)
    ink = ink_strength(without_box_lines(grey), source)
    top, bottom, left, right = _bounding_box(ink > 0)
    patch = _fit_in_box(ink[top:bottom, left:right])
    return _centre_by_mass(patch)


def without_box_lines(grey: np.ndarray) -> np.ndarray:
    """The scan cut inside any printed box lines at its edges (a character cropped from a form)."""
    levels = paper_and_threshold(np.clip(np.round(grey), 0, 255).astype(np.uint8))
    if levels is None:
        return grey
    trimmed = trim_lines(grey, levels[1], share=SCAN_LINE_SHARE)
    return trimmed if trimmed.size >= MIN_TRIMMED_SHARE * grey.size else grey


def ink_strength(grey: np.ndarray, source: str = "<image>") -> np.ndarray:
    """Per-pixel ink in [0, 1] (1 = solid stroke, 0 = paper), specks removed.

    A character cropped tight (its strokes touching the edge, as a form reader stores it) puts
    ink on the border, and the border's spread then reads as paper noise high enough to hide
    the ink. Only where that finds none is the noise read again from the steps between
    neighbouring border pixels, which a smooth ink edge hardly moves; an image whose ink the
    border's spread does not hide gets exactly the frame it always did."""
    paper, noise = _paper_level(grey)
    try:
        return _ink(grey, paper, noise, source)
    except InputError:
        steps = _border_step_noise(grey)
        if steps >= noise:
            raise
        return _ink(grey, paper, steps, source)


def _ink(grey: np.ndarray, paper: float | np.ndarray, noise: float, source: str) -> np.ndarray:
    floor = max(MIN_NOISE_FLOOR, NOISE_FLOOR_SIGMAS * noise)
    departure = _ink_departure(grey, paper, floor)
    candidates = departure > floor
    if not candidates.any():
        raise InputError(source, "no ink found (nothing stands out from the paper beyond its noise)")
    solid = float(np.percentile(departure[candidates], 90))  # a solid stroke, not a stray peak
    needed = max(MIN_CONTRAST, MIN_CONTRAST_SIGMAS * noise)
    if solid < needed:
        raise InputError(source, f"no ink found (ink contrast {solid:.0f} grey levels, need {needed:.0f})")
    strokes, largest = _drop_specks(candidates)
    if largest < MIN_INK_PIXELS:
        raise InputError(source, f"no ink found (only specks, the largest {largest} pixels)")
    return np.where(strokes, np.clip(departure / solid, 0.0, 1.0), 0.0).astype(np.float32)


def _border_step_noise(grey: np.ndarray) -> float:
    """Paper noise from the differences of neighbouring pixels along the image's outer rows and
    columns (robust SD / sqrt 2: the difference of two independent noisy pixels)."""
    steps = np.concatenate([np.diff(grey[0]), np.diff(grey[-1]), np.diff(grey[:, 0]), np.diff(grey[:, -1])])
    return _robust_sd(steps) / np.sqrt(2.0)


def _paper_level(grey: np.ndarray) -> tuple[float | np.ndarray, float]:
    """The paper's grey level and its noise (robust standard deviation, from the MAD), read
    from the border: a scan's margin is paper. Flat paper gives the border's median; paper
    lit unevenly (a phone photo: light falling off across the sheet) gives a plane fitted to
    the border, one level per pixel, where that plane explains most of the border's spread."""
    ring = max(1, min(grey.shape) // 32)
    on_border = np.ones(grey.shape, dtype=bool)
    on_border[ring:-ring, ring:-ring] = False
    border = grey[on_border]
    median = float(np.median(border))
    noise = _robust_sd(border - median)
    if noise <= MIN_NOISE_FLOOR / NOISE_FLOOR_SIGMAS:
        return median, noise  # already below the floor: a plane could not change the threshold
    rows, cols = np.nonzero(on_border)
    design = np.column_stack([np.ones(rows.size), rows / grey.shape[0], cols / grey.shape[1]])
    coef, *_ = np.linalg.lstsq(design, border - median, rcond=None)
    residual = border - median - design @ coef
    keep = np.abs(residual) <= 3 * _robust_sd(residual)  # refit without stray ink on the border
    coef, *_ = np.linalg.lstsq(design[keep], border[keep] - median, rcond=None)
    plane_noise = _robust_sd(border - median - design @ coef)
    if plane_noise > UNEVEN_LIGHT_GAIN * noise:
        return median, noise
    yy, xx = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]]
    return median + coef[0] + coef[1] * yy / grey.shape[0] + coef[2] * xx / grey.shape[1], plane_noise


def _robust_sd(values: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def _ink_departure(grey: np.ndarray, paper: float | np.ndarray, floor: float) -> np.ndarray:
    """How far each pixel departs from the paper towards the ink's side (negative: away)."""
    darker = paper - grey
    lighter = -darker
    # Ink is on the side with the most departure beyond the noise: dark ink on light paper,
    # or light ink on dark (a negative, a chalk board, MNIST itself).
    return darker if darker[darker > floor].sum() >= lighter[lighter > floor].sum() else lighter


def _drop_specks(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The mask without components much smaller than the largest one, and that one's area."""
    labels = _component_labels(mask)
    areas = np.bincount(labels.ravel())
    areas[0] = 0  # label 0 is the background
    keep = areas >= SPECK_FRACTION * areas.max()
    keep[0] = False
    return keep[labels], int(areas.max())


def _component_labels(mask: np.ndarray) -> np.ndarray:
    """8-connected component labels of ``mask`` (0 = background), full size.

    Big scans are labelled on a coarser grid (a cell is ink if any pixel in it is) so the
    work stays bounded; that can only merge nearby pieces, never split a stroke.
    """
    step = -(-max(mask.shape) // CC_MAX_SIDE)  # ceil
    if step == 1:
        return _label_runs(mask)
    h, w = mask.shape
    padded = np.zeros((-(-h // step) * step, -(-w // step) * step), dtype=bool)
    padded[:h, :w] = mask
    coarse = padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).any(axis=(1, 3))
    coarse_labels = _label_runs(coarse)
    return coarse_labels[np.ix_(np.arange(h) // step, np.arange(w) // step)] * mask


def _label_runs(mask: np.ndarray) -> np.ndarray:
    """8-connected components (SciPy's ndimage.label: compiled, and well tested)."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask, structure=EIGHT_CONNECTED)
    return labels


def _bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _fit_in_box(ink: np.ndarray) -> np.ndarray:
    """Scale the cropped ink so its longer side is BOX pixels; 0..255 float, anti-aliased."""
    h, w = ink.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Resampling the grey ink (not a binary mask) with Lanczos gives the soft edges MNIST
    # has; Pillow widens the filter when shrinking, so it also anti-aliases.
    resized = Image.fromarray(ink * 255.0).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 255.0)  # Lanczos rings a little


def _centre_by_mass(patch: np.ndarray) -> np.ndarray:
    """Paste ``patch`` into a FRAME x FRAME canvas with its centre of mass on pixel CENTRE."""
    h, w = patch.shape
    mass = patch.sum()
    com_row = (patch.sum(axis=1) @ np.arange(h)) / mass
    com_col = (patch.sum(axis=0) @ np.arange(w)) / mass
    top, left = round(CENTRE - com_row), round(CENTRE - com_col)
    canvas = np.zeros((FRAME, FRAME), dtype=np.float32)
    # Clip where the shift pushes a (faint) edge out of the frame, as MNIST's shift did.
    r0, r1 = max(0, top), min(FRAME, top + h)
    c0, c1 = max(0, left), min(FRAME, left + w)
    canvas[r0:r1, c0:c1] = patch[r0 - top : r1 - top, c0 - left : c1 - left]
    return np.round(canvas).astype(np.uint8)


# --------------------------------------------------------------------------- files and tensors


def preprocess_file(path: str | os.PathLike) -> np.ndarray:
    """load_scan + preprocess_image: a scan file as a uint8 (28, 28) frame, or InputError."""
    return preprocess_image(load_scan(path), source=str(path))


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """A uint8 (28, 28) frame as float32 [1, 28, 28] in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(arr)).to(torch.float32).div_(255.0).unsqueeze(0)


def to_uint8_batch(frames: Iterable[np.ndarray]) -> torch.Tensor:
    """Frames as the uint8 [B, 1, 28, 28] batch the models take."""
    return torch.from_numpy(np.stack([np.asarray(f, dtype=np.uint8) for f in frames])).unsqueeze(1)


def iter_preprocessed(args: list[str]) -> Iterator[tuple[str, np.ndarray | InputError]]:
    """(file, frame or InputError) for every input named by ``args``, one file at a time."""
    for item in expand_inputs(args):
        if isinstance(item, InputError):
            yield item.path, item
        else:
            yield str(item), preprocess_or_error(item)


def preprocess_or_error(path: Path) -> np.ndarray | InputError:
    """The frame of one file, or the InputError that says why it has none (never raises)."""
    try:
        return preprocess_file(path)
    except InputError as exc:
        return exc
    except Exception as exc:  # a bug on one odd file must not end a batch of thousands
        return InputError(str(path), f"internal error ({type(exc).__name__}: {exc})")
