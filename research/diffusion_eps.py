"""Probe (issue 21): is the diffusion forger's own noise-prediction error evidence against it?

No signal of bundle v11 reaches AUROC 0.65 on the corrected diffusion forger's samples (the
ScanCNN 0.638). A guided sample sits where the model's own score field points (Ho & Salimans
2022 trade diversity for exactly that), so the model should predict the noise added to its own
samples better than the noise added to a human digit: the idea behind DIRE (Wang et al. 2023)
and likelihood-based detectors, with the bundle's diffusion model as the PixelCNN is used now.

Measured: held-out human digits (MNIST test[5000:5000+N], never seen by any bundle model) and N
fresh diffusion samples (seed 7), each as a scan, a print-and-scan and a random capture, as
calibration makes them. Per frame, the unconditional eps-MSE at fixed timesteps with one fixed
noise field (so a score does not depend on the batch), and the best class's conditional eps-MSE
at t = 200 minus the unconditional one. AUROC per condition, oriented so that > 0.5 means the
sign the idea predicts (lower error = machine). Run:
FORENSICS_DATA=../shared/data python -m research.diffusion_eps [--quick]"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from detectors.bundle import DEFAULT_BUNDLE, load_bundle, load_forgers
from detectors.calibrate import CONDITIONS, sample_generator, scan_sources
from forensics.data import load_dataset

TIMESTEPS = (20, 50, 100, 200, 300, 500)
CLASS_T = 200


@torch.no_grad()
def eps_errors(net, frames: np.ndarray, noise: dict[int, torch.Tensor], batch: int = 200) -> dict[str, np.ndarray]:
    """Per frame: unconditional eps-MSE at each of TIMESTEPS, and min over classes of the
    conditional eps-MSE at CLASS_T minus the unconditional one there."""
    out: dict[str, list] = {f"t{t}": [] for t in TIMESTEPS} | {"class_gain": []}
    k = net.cfg.num_classes
    for s in range(0, len(frames), batch):
        x0 = net.scale(torch.as_tensor(frames[s : s + batch])[:, None])
        n = len(x0)
        null = torch.full((n,), k, dtype=torch.long)
        for t in TIMESTEPS:
            tt = torch.full((n,), t, dtype=torch.long)
            eps = noise[t].expand_as(x0)
            err = (net.net(net.noised(x0, tt, eps), tt, null) - eps).pow(2).mean((1, 2, 3))
            out[f"t{t}"].append(err.numpy())
        tt = torch.full((n,), CLASS_T, dtype=torch.long)
        eps = noise[CLASS_T].expand_as(x0)
        xt = net.noised(x0, tt, eps)
        unc = torch.as_tensor(out[f"t{CLASS_T}"][-1])  # CLASS_T is one of TIMESTEPS: its error is computed above
        best = torch.stack([(net.net(xt, tt, torch.full((n,), c, dtype=torch.long)) - eps).pow(2).mean((1, 2, 3))
                            for c in range(k)]).min(0).values
        out["class_gain"].append((best - unc).numpy())
    return {key: np.concatenate(v) for key, v in out.items()}


def main(quick: bool = False) -> None:
    torch.set_num_threads(2)
    n = 150 if quick else 600
    t0 = time.perf_counter()
    models = load_bundle(DEFAULT_BUNDLE).models
    forgers = load_forgers(DEFAULT_BUNDLE)
    net = forgers["diffusion"].network.eval()
    human = load_dataset("mnist", train=False).images[5000 : 5000 + n, 0].numpy()
    fake = sample_generator(models, "diffusion", n, torch.Generator().manual_seed(7), 100, forgers=forgers)
    print(f"sampled {n} in {time.perf_counter() - t0:.0f} s", flush=True)
    cal = scan_sources([("human", human), ("diffusion", fake)], seed=11, workers=2)
    g = torch.Generator().manual_seed(0)
    noise = {t: torch.randn((1, 1, 28, 28), generator=g) for t in TIMESTEPS}
    # the raw frames too: what the forger handed over, before any scan
    raw = eps_errors(net, np.concatenate([human, fake]), noise)
    raw_y = np.r_[np.zeros(n), np.ones(n)]
    sig = eps_errors(net, cal.images, noise)
    y = cal.is_machine
    table = {"raw": {k: round(float(roc_auc_score(raw_y, -v)), 3) for k, v in raw.items()}}
    for c in CONDITIONS:
        rows = cal.condition == c
        table[c] = {k: round(float(roc_auc_score(y[rows], -v[rows])), 3) for k, v in sig.items()}
    table["all conditions"] = {k: round(float(roc_auc_score(y, -v)), 3) for k, v in sig.items()}
    print(f"{'frames':16s}" + "".join(f"{k:>11s}" for k in sig))
    for name, row in table.items():
        print(f"{name:16s}" + "".join(f"{row[k]:11.3f}" for k in sig))
    print(f"{time.perf_counter() - t0:.0f} s")
    out = Path("research/results/diffusion_eps.json")
    out.write_text(json.dumps({"n_per_class": n, "quick": quick, "timesteps": TIMESTEPS,
                               "auroc_lower_error_is_machine": table}, indent=2) + "\n")


if __name__ == "__main__":
    main("--quick" in sys.argv)
