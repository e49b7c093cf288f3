"""How fast the reports render, and how big they are: N synthetic records, no models.

Writes N synthetic scans (a drawn digit, dark ink on white, 84x84 PNG with paper noise) to
a temporary folder, then streams N synthetic score records (28x28 frame, heatmap, every
signal) through ``reports.write_reports`` twice: HTML only, then HTML + CSV + JSON + the
terminal summary, as `forensics report --csv --json` does after scoring. Records are made
lazily, one at a time, so the memory figure is the reports' own.

    python benchmarks/report_speed.py -n 2000

Results go to benchmarks/results/report_speed.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.signals import ALL_SIGNALS  # noqa: E402
from forensics.checkpoint import atomic_write_text  # noqa: E402
from reports import Grouping, report_meta, write_reports  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "report_speed.json"
FORMS = 100  # scans are spread over this many form folders (documents)


def digit_frame(digit: int, rng: np.random.Generator, font) -> np.ndarray:
    """A 28x28 MNIST-like frame (ink bright) of a drawn digit."""
    img = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(img).text((8 + int(rng.integers(-2, 3)), 2 + int(rng.integers(-2, 3))), str(digit), fill=255, font=font)
    return np.asarray(img)


def write_scans(folder: Path, n: int, seed: int = 0) -> list[tuple[str, np.ndarray, int]]:
    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=22)
    items = []
    for i in range(n):
        digit = int(rng.integers(0, 10))
        frame = digit_frame(digit, rng, font)
        scan = 255 - np.asarray(Image.fromarray(frame).resize((84, 84), Image.BILINEAR), dtype=np.float64)
        scan = np.clip(scan * 0.85 + 20 + rng.normal(0, 6, scan.shape), 0, 255).astype(np.uint8)
        path = folder / f"form_{i % FORMS:04d}" / f"box_{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scan).save(path)
        items.append((str(path), frame, digit))
    return items


def records(items, seed: int = 1, failed_every: int = 50):
    """Score-record-shaped dicts, made one at a time; every ``failed_every``-th is a failure."""
    rng = np.random.default_rng(seed)
    for i, (file, frame, digit) in enumerate(items):
        if failed_every and i % failed_every == failed_every - 1:
            yield {"file": file, "status": "error", "error": "no ink found (blank or nearly blank scan)",
                   **dict.fromkeys(("verdict", "p_machine", "p_machine_min", "p_machine_max", "stable", "digit",
                                    "signals", "top_signals", "heatmap", "preprocessed"))}
            continue
        p = float(rng.beta(0.5, 0.5))
        lo, hi = max(0.0, p - rng.uniform(0, 0.1)), min(1.0, p + rng.uniform(0, 0.1))
        verdict = "machine" if p >= 0.8 else "human" if p <= 0.2 else "uncertain"
        heat = (frame / 255.0) * rng.gamma(2.0, 0.8, frame.shape) + rng.gamma(1.0, 0.05, frame.shape)
        yield {
            "file": file, "status": "ok", "error": None, "verdict": verdict, "p_machine": p,
            "p_machine_min": lo, "p_machine_max": hi, "stable": bool(rng.random() > 0.1), "digit": digit,
            "signals": {n: {"value": float(rng.normal()), "human_percentile": round(float(rng.uniform(0, 100)), 2)}
                        for n in ALL_SIGNALS},
            "top_signals": [str(s) for s in rng.choice(ALL_SIGNALS, 3, replace=False)],
            "heatmap": np.round(heat, 4).tolist(), "preprocessed": frame.tolist(),
        }


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2000, help="records (default 2000)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        items = write_scans(tmp / "scans", args.n)
        write_scans_s = time.perf_counter() - t0
        meta = report_meta(command=f"python benchmarks/report_speed.py -n {args.n}", grouping=Grouping.parse("auto"),
                           stability=True)
        rss_before = max_rss_mb()

        t0 = time.perf_counter()
        summary = write_reports(records(items), meta, html=tmp / "report.html")
        html_s = time.perf_counter() - t0
        html_bytes = (tmp / "report.html").stat().st_size
        rss_html = max_rss_mb()

        console = Console(file=io.StringIO(), width=140)
        t0 = time.perf_counter()
        write_reports(records(items), meta, html=tmp / "all.html", csv=tmp / "all.csv", json=tmp / "all.json",
                      console=console, top=20)
        all_s = time.perf_counter() - t0
        sizes = {name: (tmp / name).stat().st_size for name in ("all.html", "all.csv", "all.documents.csv", "all.json")}
        rss_all = max_rss_mb()

    n = args.n
    result = {
        "n": n,
        "scored": summary["inputs"] - summary["failed"],
        "failed": summary["failed"],
        "documents": summary["documents"],
        "scan_size_px": 84,
        "write_scans_seconds": round(write_scans_s, 3),
        "html_seconds": round(html_s, 3),
        "html_ms_per_row": round(1000 * html_s / n, 3),
        "html_bytes": html_bytes,
        "html_bytes_per_row": round(html_bytes / n),
        "all_outputs_seconds": round(all_s, 3),
        "csv_bytes_per_row": round(sizes["all.csv"] / n),
        "json_bytes_per_row": round(sizes["all.json"] / n),
        "max_rss_mb_before": round(rss_before, 1),
        "max_rss_mb_after_html": round(rss_html, 1),
        "max_rss_mb_after_all": round(rss_all, 1),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
