"""Probe (issue 21): is bundle v7's ScanCNN weak because capture variety hides the generators'
trace, or because the network is small? The same training set as `forensics calibrate` builds
for it (4,000 samples a generator of bundle v7's generators, 12,000 MNIST train digits, every
image as a scan, a print-and-scan and a capture; seed 1000), the default small ScanCNN (16, 32,
64; 64 units) and v6's width (32, 64, 128; 128 units), 8 epochs each, one thread; both scored on
a calibration-style held-out set (MNIST test[:4000] and 1,000 samples a generator, seed 0).
Results in docs/experiments.md. Run: FORENSICS_DATA=... PYTHONPATH=. python research/scancnn_capacity.py"""
import time

import torch

from detectors.bundle import DEFAULT_BUNDLE, load_bundle
from detectors.calibrate import CNN_SEED_OFFSET, _cnn_logits, build_calibration_set, metrics
from detectors.cnn import CNNConfig, train_cnn
from forensics.data import load_dataset

torch.set_num_threads(1)
models = load_bundle(DEFAULT_BUNDLE).models
train_human = load_dataset("mnist", train=True).images[:12000, 0].numpy()
test_human = load_dataset("mnist", train=False).images[:4000, 0].numpy()
train = build_calibration_set(models, train_human, 4000, seed=CNN_SEED_OFFSET, workers=1)
held = build_calibration_set(models, test_human, 1000, seed=0, workers=1)
rows, hrows = train.source != "font", held.source != "font"
for name, cfg in {"small (16, 32, 64; 64)": CNNConfig(epochs=8),
                  "v6 width (32, 64, 128; 128)": CNNConfig(channels=(32, 64, 128), hidden=128, epochs=8, batch_size=256)}.items():
    t = time.perf_counter()
    cnn, log = train_cnn(train.images[rows], train.is_machine[rows], cfg, seed=0)
    z = _cnn_logits(cnn, held.images[hrows], torch.device("cpu"))
    y, cond = held.is_machine[hrows], held.condition[hrows]
    per = {c: metrics(y[cond == c], z[cond == c]) for c in ("clean", "printscan", "capture")}
    m = metrics(y, z)
    print(f"{name}: {time.perf_counter() - t:.0f} s, final train loss {log['epoch_loss'][-1]:.3f}; held-out AUROC "
          f"{m['auroc']:.3f} / TPR@1%FPR {m['tpr_at_1pct_fpr']:.3f}; " +
          ", ".join(f"{c} {v['auroc']:.3f} / {v['tpr_at_1pct_fpr']:.3f}" for c, v in per.items()), flush=True)
