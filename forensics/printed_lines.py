"""Printed lines around a written character: the paper, the ink threshold, and cutting the lines off.

A form's boxes are printed; a character cut from a form (by `forensics.boxes`, or by whoever
cropped the scan) arrives with some of its box's lines at the crop's edges. Those lines are
not handwriting: left in, they become part of "the ink" and the frame is a box, not a digit.
"""

from __future__ import annotations

import numpy as np

INK_LEVEL = 0.25  # ink threshold as a share of the way from paper to the darkest ink
MIN_CONTRAST = 60  # grey levels between paper and darkest ink, or there is no printed line to find
LINE_SHARE = 0.8  # a row or column of a box that is this much ink is a printed line
HALO = 2  # px of grey beside a printed line trimmed with it
EDGE_ZONE = 5  # lines sit in the outer 1/EDGE_ZONE of each side; a stroke's bar further in is not one


def paper_and_threshold(grey: np.ndarray) -> tuple[int, float] | None:
    """(paper grey level, level below which a pixel is ink) of dark ink on light paper;
    None where nothing is MIN_CONTRAST darker than the paper."""
    counts = np.bincount(grey[::4, ::4].ravel(), minlength=256).cumsum()
    paper = int(np.searchsorted(counts, counts[-1] / 2))
    dark = int(np.searchsorted(counts, counts[-1] * 0.001))
    if paper - dark < MIN_CONTRAST:
        return None
    return paper, paper - INK_LEVEL * (paper - dark)


def trim_lines(crop: np.ndarray, threshold: float, share: float = LINE_SHARE) -> np.ndarray:
    """The crop without its printed lines: cut from each edge inwards through the last row
    (column) near that edge that is ink across ``share`` of the crop, and HALO pixels of blur
    beyond it. Strokes that touch a line keep everything up to it. Cut, not painted over: a
    flat painted border would read as noise-free paper and lower the preprocessing's ink
    threshold, thickening every stroke."""
    ink = crop < threshold
    h, w = crop.shape
    cuts = []
    for line_share, n in ((ink.mean(axis=1), h), (ink.mean(axis=0), w)):
        zone = max(3, n // EDGE_ZONE)
        near = np.flatnonzero(line_share[:zone] >= share)
        far = np.flatnonzero(line_share[n - zone :] >= share)
        start = near[-1] + 1 + HALO if near.size else 0
        stop = n - zone + far[0] - HALO if far.size else n
        cuts.append((start, stop) if stop - start >= 4 else (0, n))
    (top, bottom), (left, right) = cuts
    return crop[top:bottom, left:right]
