"""Probe (issue 21, item 4), second try: nearest neighbours instead of a Gaussian. The Gaussian of
research/novelty_probe.py failed because a classifier's features collapse an input it has no feature
for towards the mean, which is where a Gaussian is densest; but the mean of ten digit clusters is
empty space, so the distance to the k nearest *known* images (human digits under every capture, and
each machine source) might still see a Fashion-MNIST item as far from everything.
Thresholds: the 99.5th percentile of held-out human variety (and of held-out machine samples).
Results in docs/experiments.md. Run: FORENSICS_DATA=... PYTHONPATH=. python research/novelty_knn.py"""
import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.neighbors import NearestNeighbors

from detectors import capture, reader
from detectors.bundle import DEFAULT_BUNDLE, load_bundle
from detectors.calibrate import sample_generator
from detectors.fonts import font_forgeries
from detectors.printscan import render_scan
from forensics.data import load_dataset
from forensics.preprocess import preprocess_image

K = 5
b = load_bundle(DEFAULT_BUNDLE)
net = b.reader
test = load_dataset("mnist", train=False).images[:, 0].numpy()
fashion = load_dataset("fashion-mnist", train=False).images[:600, 0].numpy()
rng = np.random.default_rng(0)


def prep(imgs):
    out = []
    for im in imgs:
        try:
            out.append(preprocess_image(im))
        except Exception:
            pass
    return np.stack(out)


def scans(frames):
    return prep([render_scan(f) for f in frames])


def caps(frames):
    return prep([capture.capture(f, capture.CAPTURES[i % len(capture.CAPTURES)], rng) for i, f in enumerate(frames)])


def feats(x):
    f = reader.features(net, x)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-9)  # cosine geometry


ref_h = np.concatenate([scans(test[:2000]), caps(test[:2000])])
thr_h = np.concatenate([scans(test[2500:3500]), caps(test[2500:3500])])
mach = {g: scans(sample_generator(b.models, g, 1500, torch.Generator().manual_seed(5), 250)) for g in ("dcgan", "fcgan", "pixelcnn")}
mach["font"] = scans(font_forgeries(1500, rng))
nn_h = NearestNeighbors(n_neighbors=K).fit(feats(ref_h))
nn_m = {g: NearestNeighbors(n_neighbors=K).fit(feats(v[:1000])) for g, v in mach.items()}


def d_h(x):
    return nn_h.kneighbors(feats(x))[0].mean(1)


def d_m(x):
    f = feats(x)
    return np.min([m.kneighbors(f)[0].mean(1) for m in nn_m.values()], 0)


tau_h = np.percentile(d_h(thr_h), 99.5)
tau_m = np.percentile(np.concatenate([d_m(v[1000:]) for v in mach.values()]), 99.5)
print(f"k={K} tau_h {tau_h:.3f} tau_m {tau_m:.3f}")
uci = load_digits().images[:600]
sets = {"human plain test[5000:]": scans(test[5000:5600]), "human captures test[5000:]": caps(test[5000:5600]),
        "load_digits": prep([Image.fromarray((255 - np.round(u * 255 / 16)).astype(np.uint8)).resize((64, 64), Image.Resampling.BICUBIC) for u in uci]),
        "fashion": scans(fashion), **{f"machine {g} (held out)": v[1000:] for g, v in mach.items()}}
for name, x in sets.items():
    a, c = d_h(x), d_m(x)
    print(f"{name:32s} n={len(x)} far_from_human {np.mean(a > tau_h):.3f} far_from_machine {np.mean(c > tau_m):.3f} "
          f"unfamiliar {np.mean((a > tau_h) & (c > tau_m)):.3f}  median d_h {np.median(a):.3f}")
