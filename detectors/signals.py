"""Signals: what the forgers' own models say about a batch of preprocessed 28x28 images.

For uint8 images [B, 1, 28, 28] (the MNIST frame from forensics.preprocess) one call of
``compute_signals`` returns a dict of numpy arrays under stable names:

  dcgan_logit              DCGAN discriminator logit (real > 0)                        [B]
  fcgan_logit              FC-GAN discriminator logit (real > 0)                       [B]
  cnn_logit                the ScanCNN's logit (machine > 0), a small CNN trained on
                           human vs generator scans (detectors.cnn)                    [B]
  font_logit               the FontCNN's logit (typed > 0): the same small CNN, trained
                           on human digits vs font forgeries (detectors.fonts)         [B]
  either_cnn_logit         log(e^cnn_logit + e^font_logit): the two CNNs' odds added,
                           "generated OR typed". A linear combiner cannot make an OR
                           of the two logits itself: fed them apart it lost 0.025 AUROC
                           on generator samples (0.979 -> 0.954), fed this 0.002      [B]
  pixelcnn_bpd             PixelCNN NLL of the image, bits/dim, marginalised over
                           classes: log p(x) = logsumexp_y log p(x|y) + log(1/10)     [B]
  pixelcnn_best_class_bpd  min_y NLL(x | y), bits/dim                                  [B]
  complexity_bpd           pixelcnn_bpd - compressed_bpd (Serra et al. 2020): the NLL
                           less what a generic compressor already finds hard           [B]
  compressed_bpd           zlib (level 9) length of the 784 raw bytes, bits/dim        [B]
  class_entropy_bits       entropy of p(y | x) under the PixelCNN                      [B]
  peak_surprise_nats       mean of the 16 highest per-pixel NLLs (the odd strokes)     [B]
  heatmap                  per-pixel NLL of the marginal model, nats; sums to the
                           image's NLL (pixelcnn_bpd * 784 * ln 2)                     [B, 28, 28]
  digit                    most likely class, argmax_y p(x | y) (-1: no classes)       [B]

The compressor is zlib rather than PNG: PNG's IDAT *is* zlib of the rows, plus ~70 bytes
of headers and an encoder-chosen row filter; raw zlib drops the constant and the
encoder heuristics, so the figure depends on the pixels alone.

Only the signals asked for are computed (``names``): the combiner's, by default. The
PixelCNN signals (and its heatmap and digit) come from one forward pass per class, 10 in
all, several times the cost of every other model together; benchmarks/speed.py measures
each model and the bundle's ablation shows what each signal adds to the verdicts.

Every model runs on fixed-size chunks of ``CHUNK`` images (``GPU_CHUNK`` on a GPU, where large
batches pay; the last chunk padded with blank frames): kernels pick their algorithm (and so
their rounding) by tensor shape, so a fixed shape makes an image's signals bit-identical
whatever batch it came in, on a given device.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch

REQUIRED_SIGNALS = ("dcgan_logit", "fcgan_logit", "pixelcnn_bpd", "pixelcnn_best_class_bpd", "complexity_bpd")
EXTRA_SIGNALS = ("cnn_logit", "font_logit", "either_cnn_logit", "compressed_bpd", "class_entropy_bits",
                 "peak_surprise_nats")
CNN_SIGNALS = {"cnn_logit": "cnn", "font_logit": "font_cnn"}  # signal -> DetectorModels field
ALL_SIGNALS = REQUIRED_SIGNALS + EXTRA_SIGNALS
# Those that need the PixelCNN's 10 class forwards; FAST_SIGNALS are all the others.
PIXELCNN_SIGNALS = ("pixelcnn_bpd", "pixelcnn_best_class_bpd", "complexity_bpd", "class_entropy_bits",
                    "peak_surprise_nats")
FAST_SIGNALS = tuple(n for n in ALL_SIGNALS if n not in PIXELCNN_SIGNALS)
FRAME = 28
DIMS = FRAME * FRAME
CHUNK = 8  # images per model call on a CPU; see the module docstring
# On a GPU: large batches (the default --batch-size, so a slab is one call), still one fixed
# shape, so scores stay batch-independent there.
GPU_CHUNK = 256
PEAK_PIXELS = 16  # pixels averaged for peak_surprise_nats: about one stroke's worth of odd pixels
LN2 = math.log(2.0)


@dataclass
class DetectorModels:
    """The trained models the signals come from (all in eval mode, on one device)."""

    pixelcnn: torch.nn.Module  # generators.pixelcnn.PixelCNN
    dcgan: object  # generators.gan.GAN
    fcgan: object  # generators.gan.GAN
    cnn: torch.nn.Module | None = None  # detectors.cnn.ScanCNN; None while calibration trains it
    font_cnn: torch.nn.Module | None = None  # a ScanCNN trained on font forgeries; likewise
    familiar_cnn: torch.nn.Module | None = None  # a ScanCNN, known inputs vs not digits (detectors.outliers)

    @property
    def device(self) -> torch.device:
        return next(self.pixelcnn.parameters()).device


def as_batch(images) -> torch.Tensor:
    """uint8 images as [B, 1, 28, 28] (also accepts [B, 28, 28] and numpy arrays)."""
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {x.dtype}")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, FRAME, FRAME):
        raise ValueError(f"expected images [B, 1, {FRAME}, {FRAME}], got {tuple(x.shape)}")
    return x.contiguous()


@torch.no_grad()
def compute_signals(images, models: DetectorModels, names=ALL_SIGNALS) -> dict[str, np.ndarray]:
    """The signals ``names`` for a batch of preprocessed uint8 images (see the module docstring),
    in ALL_SIGNALS order, plus "heatmap" and "digit" whenever a PixelCNN signal is among them.

    A CNN that is None (as while calibration trains it) leaves its signal out.
    """
    unknown = sorted(set(names) - set(ALL_SIGNALS))
    if unknown:
        raise ValueError(f"unknown signals {unknown}; known: {', '.join(ALL_SIGNALS)}")
    x = as_batch(images)
    absent = {name for name, field in CNN_SIGNALS.items() if getattr(models, field) is None}
    if absent:
        absent.add("either_cnn_logit")
    wanted = [n for n in ALL_SIGNALS if n in names and n not in absent]
    need = set(wanted)
    if "either_cnn_logit" in need:
        need |= set(CNN_SIGNALS)
    pixelcnn = bool(need & set(PIXELCNN_SIGNALS))
    if "complexity_bpd" in need:
        need.add("compressed_bpd")
    out: dict[str, np.ndarray] = {}
    if x.shape[0] == 0:
        out = {name: np.zeros(0) for name in wanted}
        if pixelcnn:
            out.update(heatmap=np.zeros((0, FRAME, FRAME)), digit=np.zeros(0, dtype=np.int64))
        return out
    for name, gan in (("dcgan_logit", models.dcgan), ("fcgan_logit", models.fcgan)):
        if name in need:
            out[name] = chunked(gan.discriminate, x, models.device).astype(np.float64)
    for name, field in CNN_SIGNALS.items():
        if name in need:
            out[name] = chunked(getattr(models, field), x, models.device).astype(np.float64)
    if "either_cnn_logit" in need:
        out["either_cnn_logit"] = either_logit(out["cnn_logit"], out["font_logit"])
    if "compressed_bpd" in need:
        out["compressed_bpd"] = compressed_bpd(x)
    if pixelcnn:
        out.update(pixelcnn_signals(models.pixelcnn, x))
        out["complexity_bpd"] = out["pixelcnn_bpd"] - out["compressed_bpd"]
    return {k: out[k] for k in (*wanted, "heatmap", "digit") if k in out}


@torch.no_grad()
def familiarity_logit(images, models: DetectorModels) -> np.ndarray | None:
    """The familiarity CNN's logit [B] (unknown > 0), or None without one. Not a signal: the
    combiner never sees it, so novelty alone can never make an input look machine-made."""
    if models.familiar_cnn is None:
        return None
    return chunked(models.familiar_cnn, as_batch(images), models.device).astype(np.float64)


def either_logit(cnn_logit: np.ndarray, font_logit: np.ndarray) -> np.ndarray:
    """The logit of "machine by either route": odds add, so log(e^a + e^b)."""
    return np.logaddexp(cnn_logit, font_logit)


def chunk_size(device: torch.device) -> int:
    """Images per model call: small on a CPU (fastest there, and cache-friendly), large on a GPU."""
    return CHUNK if torch.device(device).type == "cpu" else GPU_CHUNK


def chunked(fn, x: torch.Tensor, device: torch.device) -> np.ndarray:
    """fn over fixed-size chunks of x (last one padded with blank frames); results for x only."""
    size = chunk_size(device)
    parts = []
    for start in range(0, x.shape[0], size):
        part = x[start : start + size]
        k = part.shape[0]
        if k < size:
            part = torch.cat([part, part.new_zeros((size - k, *part.shape[1:]))])
        parts.append(fn(part.to(device)).detach().cpu()[:k])
    return torch.cat(parts).numpy()


def class_log_probs(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """log p(x_i | x_<i, y) per class and pixel, nats, float64 [B, K, 784] (K = 1 if unconditional)."""
    model.eval()
    device = next(model.parameters()).device
    k = int(model.cfg.num_classes)
    if k == 0:
        return chunked(lambda c: model.log_prob_pixels(c).flatten(1), x, device)[:, None].astype(np.float64)
    per_class = []
    for y in range(k):
        fn = lambda c, y=y: model.log_prob_pixels(c, y=torch.full((c.shape[0],), y, device=device)).flatten(1)  # noqa: E731
        per_class.append(chunked(fn, x, device))
    return np.stack(per_class, axis=1).astype(np.float64)


def pixelcnn_signals(model: torch.nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """The PixelCNN's signals, its heatmap and its digit from one set of class forwards."""
    lp = class_log_probs(model, x)  # [B, K, D]
    b, k, d = lp.shape
    log_prior = -math.log(k)
    totals = lp.sum(axis=2)  # log p(x | y)  [B, K]
    log_px = _logsumexp(totals + log_prior, axis=1)  # log p(x)  [B]
    # Per-pixel NLL of the marginal model: p(x_i | x_<i) = sum_y p(y | x_<i) p(x_i | x_<i, y),
    # where p(y | x_<i) is the class posterior after the pixels before i. The terms
    # telescope, so the heatmap sums exactly to -log p(x).
    before = np.cumsum(lp, axis=2) - lp  # log p(x_<i | y)
    joint_before = before + log_prior
    per_pixel = _logsumexp(joint_before + lp, axis=1) - _logsumexp(joint_before, axis=1)  # [B, D]
    heatmap = -per_pixel
    posterior = np.exp(totals + log_prior - log_px[:, None])
    entropy = -(posterior * np.log2(np.clip(posterior, 1e-300, None))).sum(axis=1)
    peak = -np.sort(-heatmap, axis=1)[:, :PEAK_PIXELS].mean(axis=1)
    to_bpd = 1.0 / (d * LN2)
    return {
        "pixelcnn_bpd": -log_px * to_bpd,
        "pixelcnn_best_class_bpd": -totals.max(axis=1) * to_bpd,
        "class_entropy_bits": entropy,
        "peak_surprise_nats": peak,
        "heatmap": heatmap.reshape(b, FRAME, FRAME),
        "digit": totals.argmax(axis=1).astype(np.int64) if k > 1 else np.full(b, -1, dtype=np.int64),
    }


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return (np.log(np.exp(a - m).sum(axis=axis, keepdims=True)) + m).squeeze(axis)


def compressed_bits(frame: np.ndarray) -> int:
    """Bits zlib (level 9, the maximum) needs for the raw bytes of one uint8 28x28 frame."""
    return 8 * len(zlib.compress(np.ascontiguousarray(frame, dtype=np.uint8).tobytes(), 9))


def compressed_bpd(images) -> np.ndarray:
    """compressed_bits per image, divided by the 784 dimensions."""
    x = as_batch(images).numpy()
    return np.array([compressed_bits(f[0]) for f in x], dtype=np.float64) / DIMS
