"""Find the printed character boxes on a form page and lift out what is written in each.

A form's amounts are written into rows of printed boxes (comb fields, box grids). On a grey
page (mode "L" as numpy, dark ink on light paper):

1. ink is what is darker than the paper by a quarter of the paper-to-darkest contrast;
2. the skew (up to SKEW_RANGE degrees) is the angle that makes the rows' ink profile sharpest,
   measured on vertical strips whose row profiles are shifted against each other (a shear, much
   cheaper than rotating the page per trial angle); the search copy (half size on wide pages)
   is then turned straight;
3. horizontal rules are runs of ink at least ``line_length`` long (allowing 10% gaps, for JPEG);
4. each rule is paired with the nearest rule below it that overlaps it and closes a row: the
   band between them is a row of boxes if columns of ink span the band from rule to rule (the box walls);
   a wall that splits a box in two narrow halves (a "1" written from rule to rule) is merged,
   and a band that lies inside another (a pen stroke's own rows and sides) is dropped;
5. a box is filled when its interior, inset from the printed lines, holds a connected
   stroke bigger than a speck; its crop is the box cut from the page at full resolution,
   trimmed inside its printed lines (and their halo).

Fields are numbered top to bottom (then left to right), boxes left to right, both from 1.
Box geometry is reported in the page's own pixels (the straightened page's corners mapped
back), ``[left, top, right, bottom]`` with right and bottom exclusive, as Pillow's crop.
Boxes with only a baseline and ticks (open combs) are not found: they have no walls to pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from .printed_lines import paper_and_threshold, trim_lines

SKEW_RANGE = 3.0  # degrees searched either way (forms arrive within about 2)
SKEW_STEP, SKEW_FINE = 0.2, 0.02  # coarse grid, then a fine one around its best
STRAIGHT_ENOUGH = 0.05  # degrees: below this the page is not rotated at all
STRIP = 32  # px: width of the vertical strips whose row profiles are sheared
RUN_DENSITY = 0.9  # share of ink a run of line_length must have to count as a printed rule
WALL_DENSITY = 0.9  # share of a column between two rules that must be ink to be a box wall
MAX_LINE = 6  # px: thicker than this is a filled area, not a printed line
DETECT_WIDTH = 1100  # px: a page much wider than this is searched for boxes at half size
MIN_BOX = 10  # px: a band between rules lower than this is not a row of boxes
BOX_ASPECT = (0.4, 2.5)  # box width over band height
INSET = 2  # px inside the printed lines where the empty-box test starts (JPEG and blur leave a halo)
CUT_RESAMPLE = Image.Resampling.BICUBIC  # keeps the scan's noise a little better than bilinear
SPECK = 0.004  # a filled box's largest stroke covers at least this share of its interior ...
MIN_STROKE_PIXELS = 8  # ... and at least this many pixels
MIN_STROKE_EXTENT = 0.15  # ... and spans this share of the interior's height or width


@dataclass(frozen=True)
class Box:
    field: int
    index: int
    bbox: tuple[int, int, int, int]  # left, top, right, bottom in the page's pixels (exclusive)
    filled: bool
    crop: np.ndarray | None  # the box inside its lines, uint8 grey; None when empty


@dataclass(frozen=True)
class Layout:
    angle: float  # degrees the page was turned (counter-clockwise) to straighten it
    boxes: list[Box]


@dataclass(frozen=True)
class _Rule:
    top: int
    bottom: int  # inclusive
    left: int
    right: int  # inclusive


def find_boxes(grey: np.ndarray, line_length: int | None = None) -> Layout:
    """Every printed character box on a page (see the module docstring); [] when none.

    A page much wider than DETECT_WIDTH is searched at half size (each pixel the darkest of its
    2x2 block, so a 1-px rule stays solid), and each filled box is cut straight from the page at
    full resolution with one affine transform: the page itself is never turned."""
    grey = np.asarray(grey, dtype=np.uint8)
    levels = paper_and_threshold(grey)
    if levels is None:
        return Layout(0.0, [])
    paper, threshold = levels
    f = min(2, max(1, round(grey.shape[1] / DETECT_WIDTH)))  # at 1/3, 300-dpi pages lost a tenth of their boxes
    small = _min_pool(grey, f)
    length = max(1, (line_length or default_line_length(grey.shape)) // f)
    angle = skew_angle(small < threshold)
    turned = abs(angle) >= STRAIGHT_ENOUGH
    ink = (rotate(small, angle, paper) if turned else small) < threshold
    max_line = MAX_LINE if f == 1 else math.ceil(MAX_LINE / f) + 1  # min-pooling widens a line by up to 1
    rules = _rules(run_mask(ink, length, axis=1), length, max_line)
    bands = _bands(rules, ink, small.shape[0], max(4, MIN_BOX // f), max_line)
    shape = (small.shape[0] * f, small.shape[1] * f)  # the page the small copy stands for
    page = Image.fromarray(grey)
    boxes = []
    for field, (top, bottom, walls) in enumerate(bands, start=1):
        for index, (left, right) in enumerate(walls, start=1):
            outer = (left[0] * f, top.top * f, (right[1] + 1) * f, (bottom.bottom + 1) * f)
            inset = INSET + 1  # in the small copy: a rule's edge there is up to f - 1 px off
            inner = (left[1] + inset, top.bottom + inset, right[0] - inset + 1, bottom.top - inset + 1)
            crop = None
            if _is_filled(ink, inner):
                crop = _cut(page, outer, angle if turned else 0.0, shape, paper)
                crop = trim_lines(crop, threshold)
            boxes.append(Box(field, index, _to_page(outer, angle if turned else 0.0, shape), crop is not None, crop))
    return Layout(angle, boxes)


def _min_pool(grey: np.ndarray, f: int) -> np.ndarray:
    if f == 1:
        return grey
    h, w = grey.shape[0] // f, grey.shape[1] // f
    out = grey[: h * f : f, : w * f : f].copy()
    for i in range(f):  # strided views: far faster than a reduction over a reshaped block axis
        for j in range(f):
            np.minimum(out, grey[i : h * f : f, j : w * f : f], out=out)
    return out


def _cut(page: Image.Image, rect: tuple[int, int, int, int], degrees: float, shape: tuple[int, int],
         paper: int) -> np.ndarray:
    """The straightened page's pixels in ``rect``, sampled from the page as it was scanned."""
    left, top, right, bottom = rect
    if not degrees:
        return np.asarray(page.crop(rect))
    cy, cx = shape[0] / 2, shape[1] / 2
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    # Output (u, v) is straightened (left + u, top + v); its source is the inverse of the turn.
    coeffs = (cos, -sin, cx + (left - cx) * cos - (top - cy) * sin,
              sin, cos, cy + (left - cx) * sin + (top - cy) * cos)
    out = page.transform((right - left, bottom - top), Image.Transform.AFFINE, coeffs,
                         resample=CUT_RESAMPLE, fillcolor=paper)
    return np.asarray(out)


def default_line_length(shape: tuple[int, int]) -> int:
    """Shortest printed rule looked for: 1/60 of the page's width, at least 30 px (0.2 in at 150 dpi)."""
    return max(30, shape[1] // 60)


def skew_angle(ink: np.ndarray) -> float:
    """Degrees to turn the page counter-clockwise so its rows of ink are level."""
    height, width = ink.shape
    strips = width // STRIP
    if strips < 2:
        return 0.0
    profiles = ink[:, : strips * STRIP].reshape(height, strips, STRIP).sum(axis=2, dtype=np.int32)
    centres = (np.arange(strips) + 0.5) * STRIP - width / 2
    rows = np.arange(height)[:, None]
    cols = np.arange(strips)[None, :]

    def sharpness(degrees: float) -> float:
        # A rule at y = y0 + x tan(a) sits in strip k at row y0 + x_k tan(a): sampling each strip
        # at y + x_k tan(a) lines it up in row y0.
        shifted = rows + np.rint(centres * math.tan(math.radians(degrees))).astype(int)[None, :]
        inside = (shifted >= 0) & (shifted < height)
        profile = np.where(inside, profiles[shifted.clip(0, height - 1), cols], 0).sum(axis=1, dtype=np.int64)
        return float(np.dot(profile, profile))

    coarse = np.arange(-SKEW_RANGE, SKEW_RANGE + 1e-9, SKEW_STEP)
    best = max(coarse, key=sharpness)
    fine = np.arange(best - SKEW_STEP, best + SKEW_STEP + 1e-9, SKEW_FINE)
    # A rule going down to the right (tan(a) > 0) is straightened by turning the page counter-clockwise.
    return round(float(max(fine, key=sharpness)), 3)


def rotate(grey: np.ndarray, degrees: float, paper: int = 255) -> np.ndarray:
    """The page turned counter-clockwise about its centre, same size, new corners paper."""
    img = Image.fromarray(grey).rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=paper)
    return np.asarray(img)


def run_mask(ink: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Ink pixels inside a run along ``axis`` of ``length`` px that is at least RUN_DENSITY ink."""
    a = ink if axis == 1 else ink.T
    n = a.shape[1]
    if n < length:
        return np.zeros_like(ink)
    counts = np.cumsum(a, axis=1, dtype=np.int32)
    counts = np.pad(counts, ((0, 0), (1, 0)))
    dense = (counts[:, length:] - counts[:, :-length]) >= math.ceil(RUN_DENSITY * length)  # window starting at s
    # Pixel x is covered when some dense window starts in [x - length + 1, x].
    starts = np.pad(np.cumsum(dense, axis=1, dtype=np.int32), ((0, 0), (1, length - 1)), mode="edge")
    starts[:, 0] = 0
    x = np.arange(n)
    covered = starts[:, x + 1] - starts[:, np.maximum(x + 1 - length, 0)] > 0
    out = covered & a
    return out if axis == 1 else out.T


def _rules(h_lines: np.ndarray, length: int, max_line: int = MAX_LINE) -> list[_Rule]:
    labels, _ = ndimage.label(h_lines, structure=np.ones((3, 3), dtype=bool))
    rules = []
    for sl in ndimage.find_objects(labels):
        top, bottom, left, right = sl[0].start, sl[0].stop - 1, sl[1].start, sl[1].stop - 1
        width = right - left + 1
        thickness = np.count_nonzero(h_lines[sl]) / width
        if width >= length and thickness <= max_line:
            rules.append(_Rule(top, bottom, left, right))
    return sorted(rules, key=lambda r: (r.top, r.left))


def _bands(rules: list[_Rule], ink: np.ndarray, page_height: int, min_box: int = MIN_BOX,
           max_line: int = MAX_LINE) -> list[tuple[_Rule, _Rule, list]]:
    """(upper rule, lower rule, its boxes as wall pairs) for every row of boxes."""
    bands = []
    max_box = max(min_box + 1, page_height // 6)
    for upper in rules:
        # The nearest rule below that closes a row of boxes: a stroke written inside a box can
        # look like a rule too, but no two walls a box apart fit between it and a real rule.
        for lower in rules:
            gap = lower.top - upper.bottom - 1
            if gap < min_box or _overlap(upper, lower) < 0.5 * min(upper.right - upper.left, lower.right - lower.left):
                continue
            if gap > max_box:
                break
            left, right = max(upper.left, lower.left), min(upper.right, lower.right)
            # A printed wall runs from rule to rule; a pen stroke seldom touches both.
            columns = ink[upper.bottom + 1 : lower.top, left : right + 1].mean(axis=0)
            walls = _walls(columns >= WALL_DENSITY, left, gap, max_line)
            if walls:
                bands.append((upper, lower, walls))
                break
    # A pen stroke's rows and sides can pass all of the above inside a real box: drop a band
    # that lies within another.
    return sorted((b for b in bands if not any(_inside(b, o) for o in bands if o is not b)),
                  key=lambda b: (b[0].top, b[0].left))


def _inside(band, other) -> bool:
    (u, lo, walls), (ou, olo, owalls) = band, other
    return (ou.top <= u.top and lo.bottom <= olo.bottom and owalls[0][0][0] <= walls[0][0][0]
            and walls[-1][1][1] <= owalls[-1][1][1] and (u, lo) != (ou, olo))


def _overlap(a: _Rule, b: _Rule) -> int:
    return min(a.right, b.right) - max(a.left, b.left)


def _walls(is_wall: np.ndarray, offset: int, gap: int, max_line: int = MAX_LINE) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The boxes of a band as (left wall, right wall), each wall its (first, last) page column.

    Only neighbouring walls a box's shape apart bound a box: the wide gap between two groups
    of boxes (DD | MM) or a narrow sliver is not one."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], is_wall.astype(np.int8), [0]])))
    walls = [(offset + s, offset + e - 1) for s, e in zip(edges[::2], edges[1::2]) if e - s <= max_line]
    if len(walls) < 2:
        return []
    walls = _merge_split_boxes(walls)
    low, high = BOX_ASPECT[0] * gap, BOX_ASPECT[1] * gap
    return [(a, b) for a, b in zip(walls[:-1], walls[1:]) if low <= b[0] - a[1] - 1 <= high]


def _merge_split_boxes(walls: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop a wall that cuts a box into two halves each well under the row's typical width:
    a "1" written from rule to rule looks like a wall."""
    while len(walls) >= 4:
        widths = np.array([b[0] - a[1] - 1 for a, b in zip(walls[:-1], walls[1:])])
        typical = float(np.median(widths))
        narrow = [i for i in range(1, len(walls) - 1)
                  if widths[i - 1] < 0.7 * typical and widths[i] < 0.7 * typical
                  and abs(widths[i - 1] + widths[i] - typical) < 0.35 * typical]
        if not narrow:
            break
        walls = walls[: narrow[0]] + walls[narrow[0] + 1 :]
    return walls


def _is_filled(ink: np.ndarray, inner: tuple[int, int, int, int]) -> bool:
    left, top, right, bottom = inner
    if right - left < 3 or bottom - top < 3:
        return False
    crop_ink = ink[top:bottom, left:right]
    labels, n = ndimage.label(crop_ink, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return False
    sizes = np.bincount(labels.ravel())[1:]
    biggest = int(np.argmax(sizes))
    rows, cols = ndimage.find_objects(labels)[biggest]
    height, width = crop_ink.shape
    extent = max((rows.stop - rows.start) / height, (cols.stop - cols.start) / width)
    return sizes[biggest] >= max(MIN_STROKE_PIXELS, SPECK * crop_ink.size) and extent >= MIN_STROKE_EXTENT


def _to_page(outer: tuple[int, int, int, int], degrees: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box on the straightened page back in the page's pixels: the bounding box of its corners."""
    left, top, right, bottom = outer
    if abs(degrees) < STRAIGHT_ENOUGH:
        return (int(left), int(top), int(right), int(bottom))
    height, width = shape
    cx, cy = width / 2, height / 2
    a = math.radians(degrees)
    xs, ys = [], []
    for x, y in ((left, top), (right, top), (left, bottom), (right, bottom)):
        # Inverse of Pillow's counter-clockwise turn about the centre (y grows downwards).
        dx, dy = x - cx, y - cy
        xs.append(cx + dx * math.cos(a) - dy * math.sin(a))
        ys.append(cy + dx * math.sin(a) + dy * math.cos(a))
    return (max(0, math.floor(min(xs))), max(0, math.floor(min(ys))),
            min(width, math.ceil(max(xs))), min(height, math.ceil(max(ys))))
