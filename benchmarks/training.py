"""Training: each shipped generator's recorded training run, as a table.

Training is measured where it happens: `forensics train-generators` writes each model's
metrics.json and manifest.json (command, time, held-out figures). This module reads them from
a run folder (default docs/training/, where the shipped run's files are kept; --run-dir
runs/full after a new training run) and, with --copy-to, copies each model's last sample
grid, evolution GIF, loss curves, metrics and manifest there for the docs to link.

    python -m benchmarks.training                                      # the kept run
    python -m benchmarks.training --run-dir runs/full --copy-to docs/training
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from benchmarks.common import RESULTS, ROOT, display_path, main, write_result

NAME = "training"
KEPT = ROOT / "docs" / "training"
PICTURES = (("samples_final.png", None), ("evolution.gif", "evolution.gif"), ("losses.png", "losses.png"),
            ("metrics.json", "metrics.json"), ("manifest.json", "manifest.json"))


def _held_out(metrics: dict) -> str:
    f = metrics.get("final", {})
    held = []
    if "test_nll_bits_per_dim" in f:
        if metrics["model_config"].get("head") == "bernoulli":
            data = metrics.get("train_config", {}).get("binarize", "threshold")
            held.append(f"test NLL {f['test_nll_nats_per_dim']:.4f} nats/pixel, {f['test_nll_nats_per_image']:.2f} "
                        f"nats/image ({'stochastically binarized' if data == 'stochastic' else 'thresholded at 128'})")
        else:
            held.append(f"test NLL {f['test_nll_bits_per_dim']:.3f} bits/dim")
    if "d_test_x" in f:
        held.append(f"mean D(x) on MNIST test {f['d_test_x']:.2f}")
    return "; ".join(held)


def _copy(model_dir: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    grids = sorted((model_dir / "samples").glob("epoch_*.png"))
    for name, src_name in PICTURES:
        src = (grids[-1] if grids else None) if src_name is None else model_dir / src_name
        if src is not None and src.is_file() and src.resolve() != (dest / name).resolve():
            shutil.copyfile(src, dest / name)


def run(quick: bool, out_dir: Path, seed: int = 0, run_dir: str | None = None, copy_to: str | None = None) -> dict:
    """Read the run's per-model metrics (quick and full read the same files: nothing is trained here)."""
    import json

    folder = Path(run_dir) if run_dir else KEPT
    rows = []
    for model_dir in sorted(p for p in folder.iterdir() if (p / "metrics.json").is_file()):
        metrics = json.loads((model_dir / "metrics.json").read_text())
        manifest = json.loads((model_dir / "manifest.json").read_text()) if (model_dir / "manifest.json").is_file() else {}
        rows.append({"model": metrics["model"], "folder": model_dir.name, "epochs": metrics["epochs_done"], "steps": metrics["steps"],
                     "train_seconds": metrics["train_seconds"], "threads": metrics.get("threads"),
                     "held_out": _held_out(metrics),
                     "final": metrics.get("final", {}), "command": manifest.get("command")})
        if copy_to:
            _copy(model_dir, Path(copy_to) / model_dir.name)
    if not rows:
        raise FileNotFoundError(f"{folder}: no <model>/metrics.json (a train-generators run folder)")
    result = {"name": NAME, "run_dir": display_path(folder), "seed": seed, "quick": quick, "models": rows,
              "total_train_seconds": round(sum(r["train_seconds"] for r in rows), 1)}
    write_result(out_dir, NAME, result)
    return result


def markdown(result: dict) -> str:
    lines = ["| model | epochs | steps | training minutes | CPU threads | held-out result (MNIST test) |",
             "|---|---:|---:|---:|---:|---|"]
    for r in result["models"]:
        name = r["model"] if r.get("folder", r["model"]) == r["model"] else f"{r['model']} ({r['folder']}/)"
        lines.append(f"| `{name}` | {r['epochs']} | {r['steps']:,} | {r['train_seconds'] / 60:.1f} | "
                     f"{r.get('threads') or '?'} | {r['held_out']} |")
    total = result["total_train_seconds"]
    lines.append(f"\nRead from `{result['run_dir']}/`. Total: {total / 60:.0f} training minutes, summed over models "
                 f"({math.ceil(total / 3600 * 10) / 10} hours). Commands: "
                 + "; ".join(f"{r['model']}: `{r['command']}`" for r in result["models"] if r["command"]))
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, markdown, __doc__, options=(
        (("--run-dir",), {"help": "run folder written by train-generators (default docs/training)"}),
        (("--copy-to",), {"help": "copy each model's pictures, metrics and manifest here"}),), results=RESULTS)
