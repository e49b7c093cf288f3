"""The generator-quality metrics (generators/quality.py) against cases with known
answers, and the committed feature network (detectors/reader_net/, trained by forensics train-reader)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from generators.quality import fid, frechet_distance, inception_score, precision_recall


def _with_exact_stats(rng, mean: np.ndarray, cov: np.ndarray, n: int = 400) -> np.ndarray:
    """n points whose sample mean and (unbiased) covariance are exactly mean and cov: random
    points, whitened to mean 0 and covariance I, then coloured."""
    x = rng.standard_normal((n, len(mean)))
    x -= x.mean(0)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T
    return x @ np.linalg.cholesky(cov).T + mean


def _random_cov(rng, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_fid_of_a_set_with_itself_is_zero():
    feats = np.random.default_rng(0).standard_normal((300, 16))
    assert fid(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_fid_matches_the_closed_form_for_diagonal_covariances():
    # Commuting covariances: FID = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(8), rng.standard_normal(8)
    a, b = rng.uniform(0.5, 3, 8), rng.uniform(0.5, 3, 8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    x, y = _with_exact_stats(rng, mu1, np.diag(a)), _with_exact_stats(rng, mu2, np.diag(b))
    assert fid(x, y) == pytest.approx(expected, rel=1e-8)


def test_fid_matches_a_general_matrix_square_root():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    s1, s2 = _random_cov(rng, 10), _random_cov(rng, 10)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert fid(_with_exact_stats(rng, mu1, s1), _with_exact_stats(rng, mu2, s2)) == pytest.approx(expected, rel=1e-8)


def test_fid_stays_real_and_finite_with_singular_covariances():
    # Fewer points than dimensions and dead units, as with small N and ReLU features.
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((20, 64)), rng.standard_normal((20, 64)) + 1
    a[:, :10] = b[:, :10] = 0
    d = fid(a, b)
    assert math.isfinite(d) and d > 0


def test_inception_score_extremes():
    confident_spread = np.eye(10)[np.arange(100) % 10]
    assert inception_score(confident_spread) == pytest.approx(10.0)
    same = np.tile(np.random.default_rng(4).dirichlet(np.ones(10)), (50, 1))
    assert inception_score(same) == pytest.approx(1.0)
    assert inception_score(np.full((50, 10), 0.1)) == pytest.approx(1.0)


def test_precision_recall_extremes():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((200, 8))
    assert precision_recall(a, a.copy(), k=3) == (1.0, 1.0)
    assert precision_recall(a, a + 100.0, k=3) == (0.0, 0.0)
    # Fakes from a tight sub-cluster of the reals: all plausible (precision 1), poor coverage.
    p, r = precision_recall(a, 0.05 * rng.standard_normal((200, 8)), k=3)
    assert p == 1.0 and r < 0.5


def test_featurenet_loads_as_weights_only_and_gives_features():
    from detectors.reader import DEFAULT, FEATURE_DIM, features, features_and_probs, logits
    from detectors.reader import load_reader as load_featurenet

    # The committed file must load with weights_only=True (data, no code) ...
    blob = torch.load(DEFAULT / "model.pt", map_location="cpu", weights_only=True)
    assert blob["format"] == "forensics-featurenet-v1"
    net = load_featurenet()  # ... and load_featurenet also checks it against manifest.json
    images = np.random.default_rng(6).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    f = features(net, images)
    assert f.shape == (7, FEATURE_DIM) and np.isfinite(f).all()
    assert features(net, images[:, None]).shape == (7, FEATURE_DIM)  # [N, 1, 28, 28] too
    feats, probs = features_and_probs(net, images)
    np.testing.assert_allclose(feats, f)
    z = logits(net, images)
    np.testing.assert_allclose(probs, np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=1e-6, atol=1e-9)


def test_featurenet_classifies_mnist_test_digits():
    if not os.environ.get("FORENSICS_DATA"):
        pytest.skip("set FORENSICS_DATA to the MNIST folder")
    from detectors.reader import load_reader as load_featurenet, logits
    from forensics.data import load_dataset

    test = load_dataset("mnist", train=False, download=False)
    x, y = test.images[-1000:], test.labels[-1000:].numpy()
    assert (logits(load_featurenet(), x).argmax(1) == y).mean() >= 0.98
