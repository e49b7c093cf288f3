"""Outliers (detectors.outliers): the familiarity CNN's "not a digit" class is seeded, varied and inked."""

from __future__ import annotations

import numpy as np

from detectors.outliers import GLYPHS, KINDS, not_digits


def test_outliers_are_seeded_frames_with_ink_of_every_kind():
    a = not_digits(2 * len(KINDS), np.random.default_rng(4))
    b = not_digits(2 * len(KINDS), np.random.default_rng(4))
    assert a.shape == (2 * len(KINDS), 28, 28) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert all(f.max() > 100 for f in a)  # each has ink, framed as a preprocessed scan is
    assert len({f.tobytes() for f in a}) == len(a)
    assert not np.array_equal(a, not_digits(2 * len(KINDS), np.random.default_rng(5)))


def test_no_glyph_is_a_digit_or_reads_as_one():
    assert not set(GLYPHS) & set("0123456789OoIlSsZzBbGgqDdaCcTry")
