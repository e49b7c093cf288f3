"""benchmarks/generic_forgeries.py: each kind is made, as frames, reproducibly, and is not
just the human digit it was made from."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.generic_forgeries import KINDS, generic_forgeries


def _digits(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Strokes on black, two classes: a vertical bar (1) and a ring (0), jittered."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]
    images, labels = [], []
    for i in range(n):
        c = 14 + rng.integers(-2, 3)
        if i % 2:
            img = (np.abs(xx - c) < 2) & (yy > 5) & (yy < 23)
        else:
            img = np.abs(np.hypot(yy - 14, xx - c) - 7) < 1.5
        images.append((img * rng.integers(180, 256)).astype(np.uint8))
        labels.append(i % 2)
    return np.stack(images), np.array(labels)


def test_every_kind_makes_frames_reproducibly():
    images, labels = _digits()
    frames, kinds = generic_forgeries(images, labels, 6, np.random.default_rng(1))
    again, _ = generic_forgeries(images, labels, 6, np.random.default_rng(1))
    assert frames.dtype == np.uint8 and frames.shape[1:] == (28, 28)
    assert sorted(set(kinds)) == sorted(KINDS)
    assert np.array_equal(frames, again)
    assert not np.array_equal(frames, generic_forgeries(images, labels, 6, np.random.default_rng(2))[0])


def test_forgeries_differ_from_every_source_digit():
    from detectors.fonts import as_frame

    images, labels = _digits()
    sources = np.stack([as_frame(im.astype(np.float64)) for im in images]).astype(np.float64)
    frames, _ = generic_forgeries(images, labels, 5, np.random.default_rng(3))
    nearest = np.abs(frames[:, None].astype(np.float64) - sources[None]).mean(axis=(2, 3)).min(axis=1)
    assert (nearest > 1.0).all(), nearest  # mean absolute difference in grey levels to the closest source


def test_unknown_kind_is_named():
    images, labels = _digits(4)
    with pytest.raises(ValueError, match="unknown generic forgery 'gan'"):
        generic_forgeries(images, labels, 1, np.random.default_rng(0), kinds=("gan",))
