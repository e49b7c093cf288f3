"""How fast the reports render, and how big they are: N synthetic records, no models.

Writes N synthetic scans (a drawn digit, dark ink on white, 84x84 PNG with paper noise) to
a temporary folder, then streams N synthetic score records (28x28 frame, heatmap, every
signal) through ``reports.write_reports`` twice: HTML only, then HTML + CSV + JSON + the
terminal summary, as `forensics report --csv --json` does after scoring. Records are made
lazily, one at a time, so the memory figure is the reports' own.

    python -m benchmarks.report_speed            # N = 2000
    python -m benchmarks.report_speed --quick    # N = 50

Writes OUT/report_speed.json.
"""

from __future__ import annotations

import io
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rich.console import Console

from benchmarks.common import machine_info, main, write_result
from detectors.signals import ALL_SIGNALS
from reports import Grouping, report_meta, write_reports

NAME = "report_speed"
FULL_N, QUICK_N = 2000, 50
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


def run(quick: bool, out_dir: Path, seed: int = 0, n: int | None = None) -> dict:
    n = n or (QUICK_N if quick else FULL_N)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        items = write_scans(tmp / "scans", n, seed)
        write_scans_s = time.perf_counter() - t0
        meta = report_meta(command=f"python -m benchmarks.report_speed --n {n}", grouping=Grouping.parse("auto"),
                           stability=True, signals=ALL_SIGNALS)
        rss_before = max_rss_mb()

        t0 = time.perf_counter()
        summary = write_reports(records(items, seed + 1), meta, html=tmp / "report.html")
        html_s = time.perf_counter() - t0
        html_bytes = (tmp / "report.html").stat().st_size
        rss_html = max_rss_mb()

        console = Console(file=io.StringIO(), width=140)
        t0 = time.perf_counter()
        write_reports(records(items, seed + 1), meta, html=tmp / "all.html", csv=tmp / "all.csv", json=tmp / "all.json",
                      console=console, top=20)
        all_s = time.perf_counter() - t0
        sizes = {name: (tmp / name).stat().st_size for name in ("all.html", "all.csv", "all.documents.csv", "all.json")}
        rss_all = max_rss_mb()

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
        "quick": quick,
        "machine": machine_info(),
    }
    write_result(out_dir, NAME, result)
    return result


def markdown(result: dict) -> str:
    r = result
    return (f"{r['n']:,} synthetic score records ({r['failed']} failed, {r['documents']} documents), no models: "
            f"the HTML report renders in {r['html_seconds']:.1f} s ({r['html_ms_per_row']:.1f} ms per row), "
            f"{r['html_bytes_per_row'] / 1000:.1f} KB per row ({r['html_bytes'] / 1e6:.1f} MB in all); CSV "
            f"{r['csv_bytes_per_row']} B and JSON {r['json_bytes_per_row'] / 1000:.1f} KB per row; HTML + CSV + JSON + "
            f"terminal together {r['all_outputs_seconds']:.1f} s. Peak memory {r['max_rss_mb_before']:.0f} MB before, "
            f"{r['max_rss_mb_after_all']:.0f} MB after (records are streamed, rows spooled to disk).")


if __name__ == "__main__":
    main(run, markdown, __doc__, options=((("--n",), {"type": int, "help": f"records (default {FULL_N})"}),))
