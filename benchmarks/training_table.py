"""Collect a training run's figures and pictures for the README.

    python benchmarks/training_table.py runs/full --copy-to docs/training

Reads RUN_DIR/<model>/metrics.json and manifest.json, prints a Markdown table (time, steps,
final held-out figures, the command) and copies each model's last sample grid, evolution
GIF and loss curves to --copy-to, so the README can link them.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path


def row(metrics: dict) -> str:
    f = metrics.get("final", {})
    held = []
    if "test_nll_bits_per_dim" in f:
        if metrics["model_config"].get("head") == "bernoulli":
            held.append(f"test NLL {f['test_nll_nats_per_dim']:.4f} nats/pixel, {f['test_nll_nats_per_image']:.2f} nats/image")
        else:
            held.append(f"test NLL {f['test_nll_bits_per_dim']:.3f} bits/dim")
    if "d_test_x" in f:
        held.append(f"D(x) on MNIST test {f['d_test_x']:.2f}")
    return (f"| `{metrics['model']}` | {metrics['epochs_done']} | {metrics['steps']} | "
            f"{metrics['train_seconds'] / 60:.1f} | {'; '.join(held)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--copy-to", type=Path, default=None)
    args = ap.parse_args()
    lines = ["| model | epochs | steps | training minutes (1 CPU thread) | held-out result |", "|---|---:|---:|---:|---|"]
    total = 0.0
    commands = []
    for model_dir in sorted(p for p in args.run.iterdir() if (p / "metrics.json").is_file()):
        metrics = json.loads((model_dir / "metrics.json").read_text())
        manifest = json.loads((model_dir / "manifest.json").read_text())
        lines.append(row(metrics))
        total += metrics["train_seconds"]
        commands.append(f"{metrics['model']}: `{manifest.get('command', '?')}`")
        if args.copy_to:
            dest = args.copy_to / model_dir.name
            dest.mkdir(parents=True, exist_ok=True)
            last = sorted((model_dir / "samples").glob("epoch_*.png"))[-1]
            for src, name in ((last, "samples_final.png"), (model_dir / "evolution.gif", "evolution.gif"),
                              (model_dir / "losses.png", "losses.png"), (model_dir / "metrics.json", "metrics.json"),
                              (model_dir / "manifest.json", "manifest.json")):
                if src.is_file():
                    shutil.copyfile(src, dest / name)
    lines.append(f"\nTotal training time: {total / 60:.0f} CPU-thread minutes ({math.ceil(total / 3600 * 10) / 10} hours).")
    lines.append("\nCommands: " + "; ".join(commands))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
