"""Capture variety (detectors.capture): every capture gives a plausible, seeded scan of the digit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from detectors.capture import CAPTURES, capture


def frame() -> np.ndarray:
    f = np.zeros((28, 28), np.uint8)
    f[5:23, 12:16] = 255  # a "1"
    return f


@pytest.mark.parametrize("name", CAPTURES)
def test_each_capture_is_a_seeded_scan_with_dark_ink_on_paper(name):
    a = capture(frame(), name, np.random.default_rng(3))
    b = capture(frame(), name, np.random.default_rng(3))
    assert isinstance(a, Image.Image) and a.width >= 28 and np.array_equal(np.asarray(a), np.asarray(b))
    grey = np.asarray(a.convert("L"), dtype=np.float64)
    assert grey.max() - grey.min() > 60  # there is ink, and it stands out
    assert np.median(grey) > grey.min() + 60  # mostly paper: dark ink on a light page
    if name == "fax":
        assert set(np.unique(grey).tolist()) <= {0.0, 255.0}
    if name == "phone":
        assert a.mode == "RGB"


def test_an_unknown_capture_is_refused():
    with pytest.raises(ValueError, match="unknown capture"):
        capture(frame(), "polaroid", np.random.default_rng(0))


@pytest.mark.parametrize("name", CAPTURES)
def test_a_blank_sample_is_captured_as_a_page_without_ink(name):
    # A generator can draw nothing; calibration then counts it as dropped, it must not crash.
    from detectors.printscan import preprocess_or_none

    page = capture(np.zeros((28, 28), np.uint8), name, np.random.default_rng(0))
    assert preprocess_or_none(np.asarray(page.convert("L"))) is None
