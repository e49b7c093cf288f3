"""Sample-quality metrics on feature vectors: FID, the Inception score, precision and recall.

Pure numpy, no network: benchmarks/generator_quality.py feeds them features and softmax
outputs of the digit reader (detectors/reader.py). All inputs are float arrays, one row per image.

* fid(a, b): Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017).
* inception_score(probs): exp E_x KL(p(y|x) || p(y)) (Salimans et al. 2016).
* precision_recall(real, fake, k=3): the share of fake samples inside the real manifold and of
  real samples inside the fake manifold, a manifold being the union of balls reaching each
  point's k-th nearest neighbour in its own set (Kynkaanniemi et al. 2019).
"""

from __future__ import annotations

import numpy as np


def gaussian_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (unbiased, as the reference FID code uses)."""
    x = np.asarray(feats, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need a [N >= 2, D] feature array, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    tr (S1 S2)^(1/2) is computed as the sum of square roots of the eigenvalues of the symmetric
    matrix S1^(1/2) S2 S1^(1/2), which has the same eigenvalues as S1 S2. This needs only eigh
    (no scipy), and stays real and exact when the covariances are singular (dead ReLU units,
    small N), where a general matrix sqrt of the non-symmetric S1 S2 returns complex noise.
    """
    r = _psd_sqrt(s1)
    eig = np.linalg.eigvalsh(r @ s2 @ r)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    d = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
    return max(d, 0.0)  # rounding can leave -1e-12 for identical sets


def fid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Frechet distance between the two feature sets' fitted Gaussians."""
    return frechet_distance(*gaussian_stats(feats_a), *gaussian_stats(feats_b))


def inception_score(probs: np.ndarray) -> float:
    """exp(mean_i KL(p(y|x_i) || p(y))), p(y) the mean prediction: from 1 (all predictions
    alike, or all uniform) to the number of classes (confident and evenly spread)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"need a [N, classes] probability array, got shape {p.shape}")
    marginal = p.mean(axis=0)
    # 0 * log 0 = 0: a class a prediction rules out contributes nothing.
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(marginal)), 0.0)
    return float(np.exp(terms.sum(axis=1).mean()))


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.clip(d, 0, None)


def knn_radii(feats: np.ndarray, k: int = 3, chunk: int = 1000) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point of the same set."""
    x = np.asarray(feats, dtype=np.float64)
    if not 1 <= k < len(x):
        raise ValueError(f"k must be in [1, N), got k={k} for N={len(x)}")
    out = np.empty(len(x))
    for start in range(0, len(x), chunk):
        d = _sq_dists(x[start : start + chunk], x)
        # Column k of the sorted row: column 0 is the point itself (distance 0).
        out[start : start + chunk] = np.partition(d, k, axis=1)[:, k]
    return out


def _share_inside(ref: np.ndarray, radii: np.ndarray, queries: np.ndarray, chunk: int = 1000) -> float:
    """Share of queries within radius of at least one reference point."""
    inside = np.zeros(len(queries), dtype=bool)
    for start in range(0, len(queries), chunk):
        d = _sq_dists(queries[start : start + chunk], ref)
        inside[start : start + chunk] = (d <= radii[None, :]).any(axis=1)
    return float(inside.mean())


def precision_recall(real_feats: np.ndarray, fake_feats: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): precision = share of fake
    samples inside the real manifold (fidelity), recall = share of real samples inside the
    fake manifold (coverage)."""
    real = np.asarray(real_feats, dtype=np.float64)
    fake = np.asarray(fake_feats, dtype=np.float64)
    precision = _share_inside(real, knn_radii(real, k), fake)
    recall = _share_inside(fake, knn_radii(fake, k), real)
    return precision, recall
