"""Time PixelCNN sampling, naive vs fast, and check both draw the same images.

An untrained model with seeded random weights is enough: sampling cost does not depend on
the weights. Naive sampling runs the full network once per pixel (H*W forwards), so on a
small CPU it takes tens of minutes for 64 digits; --naive-rows k times only the first k rows
and extrapolates linearly (every naive step is the same full forward), labelled as such in
the JSON. The direct identity check then covers those k rows.

A second check covers every pixel at the cost of one forward pass ("teacher forced"): run
the network once on the fast sample and redraw every pixel from those logits with the same
uniforms. Logits at pixel i depend only on pixels before i, which are the same as when the
naive sampler drew pixel i, and are computed by the same full-size forward pass (direct
convolutions never mix other positions into an output), so if every redrawn pixel equals
the fast sample, the naive sampler would have drawn exactly that image.

    python benchmarks/pixelcnn_sampling.py                     # default config, 64 images
    python benchmarks/pixelcnn_sampling.py --naive-rows 0      # time naive on every row
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from generators.pixelcnn import PixelCNN, PixelCNNConfig


def measure(model: PixelCNN, n: int = 64, naive_rows: int = 2, seed: int = 0) -> dict:
    """Time fast vs naive sampling of ``model`` (any weights) and check they draw the same images.

    Naive sampling is timed on the first ``naive_rows`` rows (0 = all) and extrapolated.
    Returns the figures as a JSON-ready dict (the same keys the CLI writes).
    """
    model = model.eval()
    cfg = model.cfg
    dtype = next(model.parameters()).dtype
    y = torch.arange(n) % cfg.num_classes if cfg.num_classes else None
    height = cfg.image_size
    rows = height if naive_rows <= 0 else min(naive_rows, height)

    t = time.perf_counter()
    fast = model.sample(n, y=y, generator=torch.Generator().manual_seed(seed), method="fast")
    fast_s = time.perf_counter() - t

    # The same uniforms sample() draws; the private helper lets naive stop after `rows` rows.
    u = torch.rand(fast.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    t = time.perf_counter()
    with torch.no_grad():
        naive = model._sample_naive(u, model.condition(y, None, n), rows=rows)
    naive_measured_s = time.perf_counter() - t
    naive_s = naive_measured_s * height / rows

    differ = (fast[:, :, :rows] != naive[:, :, :rows]).flatten(1).any(1)
    with torch.no_grad():
        redrawn = model._draw(model(fast, y), u)
    forced_differ = int((redrawn != fast).sum())
    return {
        "config": vars(cfg),
        "n_images": n,
        "dtype": str(dtype).replace("torch.", ""),
        "torch_threads": torch.get_num_threads(),  # naive runs on these
        "fast_threads": 1,  # the fast sampler pins itself to one thread on CPU (see pixelcnn.py)
        "cpu": platform.processor() or platform.machine(),
        "fast_seconds": round(fast_s, 3),
        "naive_rows_timed": rows,
        "naive_seconds_measured": round(naive_measured_s, 3),
        "naive_seconds": round(naive_s, 3),
        "naive_seconds_extrapolated": rows < height,
        "speedup": round(naive_s / fast_s, 1),
        "identical": not bool(differ.any()),
        "identical_checked_rows": rows,
        "images_differing": int(differ.sum()),
        "teacher_forced_identical": forced_differ == 0,  # every pixel of every image
        "teacher_forced_pixels_differing": forced_differ,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=PixelCNNConfig.channels)
    ap.add_argument("--layers", type=int, default=PixelCNNConfig.n_layers)
    ap.add_argument("--head", default="softmax", choices=["softmax", "bernoulli"])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--naive-rows", type=int, default=2, help="time naive on the first k rows only (0 = all)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/pixelcnn_sampling.json")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    cfg = PixelCNNConfig(channels=args.channels, n_layers=args.layers, head=args.head)
    model = PixelCNN(cfg).to(getattr(torch, args.dtype)).eval()
    result = measure(model, n=args.n, naive_rows=args.naive_rows, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
