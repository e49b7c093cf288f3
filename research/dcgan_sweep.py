"""Experiment (issue 20, item 5): which of the seed's balance tricks bring the DCGAN to FID <= 60?

Trains one DCGAN variant of the `full` preset epoch by epoch (the product's own `train`, resumed
after each epoch, so the run is the one `forensics train-generators` gives), keeps G's weights
after every epoch, and measures each epoch's FID on the benchmark's meter: N samples against the
whole MNIST test set in the digit reader's features (generator_quality's FID, seed 0).

    OMP_NUM_THREADS=1 FORENSICS_DATA=... python -m research.dcgan_sweep --name dcap05 \
        --set d_capacity=0.5 --epochs 20 --out /work/runs/sweep

Writes OUT/NAME/fid_per_epoch.json; findings in docs/experiments.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from detectors import reader as fnet
from forensics.data import load_dataset
from generators.load import load_generator
from generators.presets import preset_config
from generators.quality import fid
from generators.train import TrainConfig, train


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def measure(model_dir: Path, real_feats: np.ndarray, net, n: int, seed: int = 0) -> float:
    g = load_generator(model_dir)
    gen = torch.Generator().manual_seed(seed)
    images = np.concatenate([g.sample(min(500, n - i), gen)[:, 0].numpy() for i in range(0, n, 500)])
    feats, _ = fnet.features_and_probs(net, images)
    return fid(feats, real_feats)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", default="runs/sweep")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--first-fid", type=int, default=8, help="measure FID from this epoch on")
    ap.add_argument("--set", action="append", default=[], help="model setting KEY=VALUE (GANConfig)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()

    overrides = {k: _value(v) for k, v in (s.split("=", 1) for s in args.set)}
    recipe = preset_config("full", "dcgan")
    recipe["model_config"] = {**recipe["model_config"], **overrides}
    if args.lr is not None:
        recipe["lr"] = args.lr
    out = Path(args.out) / args.name
    net = fnet.load_reader()
    test = load_dataset("mnist", train=False).images[:, 0].numpy()
    real_feats, _ = fnet.features_and_probs(net, test)
    result_path = out / "fid_per_epoch.json"
    rows = json.loads(result_path.read_text())["epochs"] if result_path.exists() else []
    done = {r["epoch"] for r in rows}
    for epoch in range(1, args.epochs + 1):
        cfg = TrainConfig(model="dcgan", out=str(out), seed=0, device="cpu",
                          command=f"research.dcgan_sweep {args.name} {overrides}", **{**recipe, "epochs": epoch})
        t = time.perf_counter()
        metrics = train(cfg, resume=True, log=print)
        snap = out / "dcgan" / f"model_epoch_{epoch:03d}.pt"
        if not snap.exists():
            shutil.copyfile(out / "dcgan" / "model.pt", snap)
        if epoch >= args.first_fid and epoch not in done:
            with_snap = out / "measure"
            with_snap.mkdir(exist_ok=True)
            shutil.copyfile(snap, with_snap / "model.pt")
            score = measure(with_snap, real_feats, net, args.n)
            final = metrics.get("final", {})
            rows.append({"epoch": epoch, "fid": round(score, 2), "train_seconds": metrics.get("train_seconds"),
                         "test_d_real": final.get("test_d_real"), "seconds": round(time.perf_counter() - t, 1)})
            result_path.write_text(json.dumps({"name": args.name, "overrides": overrides, "lr": recipe["lr"],
                                               "n": args.n, "epochs": rows}, indent=2) + "\n")
            print(f"{args.name} epoch {epoch}: FID {score:.2f}", flush=True)


if __name__ == "__main__":
    main()
