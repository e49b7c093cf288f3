"""Font forgeries (detectors/fonts.py): typed digits in disguise, seeded, framed like scans."""

from __future__ import annotations

import numpy as np

from detectors.fonts import FONT_FILES, font_forgeries, font_paths
from forensics.preprocess import CENTRE


def test_the_fonts_ship_with_matplotlib():
    paths = font_paths()
    assert len(paths) == len(FONT_FILES)  # every listed face is there, so seeds mean the same everywhere
    assert all(p.is_file() for p in paths)


def test_font_forgeries_are_seeded_mnist_style_frames():
    a = font_forgeries(20, np.random.default_rng(5))
    b = font_forgeries(20, np.random.default_rng(5))
    c = font_forgeries(20, np.random.default_rng(6))
    assert a.shape == (20, 28, 28) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert (a.reshape(20, -1).max(1) == 255).all()  # preprocessed: solid strokes reach full ink
    for frame in a:  # fitted into the 20x20 box, like MNIST (a pixel more from anti-aliasing)
        ys, xs = np.nonzero(frame)
        assert 16 <= max(np.ptp(ys), np.ptp(xs)) + 1 <= 21
    rows = np.arange(28)
    mass = a.astype(np.float64).sum((1, 2))
    centre_y = (a.sum(2) * rows).sum(1) / mass
    assert np.abs(centre_y - CENTRE).max() < 1.0


def test_font_forgeries_are_not_all_alike():
    a = font_forgeries(30, np.random.default_rng(0)).astype(np.float64)
    # the same digit (every 10th) comes out in different faces and disguises
    assert np.abs(a[0] - a[10]).mean() > 10 and np.abs(a[10] - a[20]).mean() > 10
