"""benchmarks/aligned_reconstructions.py: each autoencoder learns to rewrite digits (its
rewrites move towards the input as it trains), reproducibly for a seed."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.aligned_reconstructions import AUTOENCODERS, aligned_reconstructions, rewrite, train_autoencoder


def _digits(n: int = 64) -> np.ndarray:
    """Strokes on black: vertical bars and rings, jittered."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]
    out = []
    for i in range(n):
        c = 14 + rng.integers(-2, 3)
        img = (np.abs(xx - c) < 2) & (yy > 5) & (yy < 23) if i % 2 else np.abs(np.hypot(yy - 14, xx - c) - 7) < 1.5
        out.append((img * rng.integers(180, 256)).astype(np.uint8))
    return np.stack(out)


def _error(model, images: np.ndarray) -> float:
    return float(np.abs(rewrite(model, images).astype(np.float64) - images).mean())


@pytest.mark.parametrize("name", list(AUTOENCODERS))
def test_training_brings_rewrites_towards_the_input(name):
    images = _digits()
    untrained, trained = train_autoencoder(name, images, 0, seed=0), train_autoencoder(name, images, 150, seed=0)
    assert _error(trained, images) < 0.5 * _error(untrained, images)


def test_every_frame_is_rewritten_by_each_autoencoder_reproducibly():
    images = _digits(10)
    frames, kinds = aligned_reconstructions(images, _digits(), 3, seed=1)
    assert frames.shape == (len(AUTOENCODERS) * 10, 28, 28) and frames.dtype == np.uint8
    assert list(kinds) == [n for n in AUTOENCODERS for _ in range(10)]
    np.testing.assert_array_equal(frames, aligned_reconstructions(images, _digits(), 3, seed=1)[0])
    assert not np.array_equal(frames, aligned_reconstructions(images, _digits(), 3, seed=2)[0])


def test_an_unknown_autoencoder_is_named_in_the_error():
    with pytest.raises(ValueError, match="vae"):
        aligned_reconstructions(_digits(2), _digits(), 1, seed=0, names=("vae",))
