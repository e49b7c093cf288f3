"""Form pages end to end: synthetic letter pages (benchmarks/make_forms.py) with comb fields of
varied box size and line width, skew up to 2 degrees, noise, blur and JPEG, filled half with
held-out human digits (MNIST test[5000:]) and half with machine digits (the bundle's DCGAN and
FC-GAN, and distorted font digits), some boxes left empty.

The pages are scored as `forensics score` scores them (detectors.engine.score_paths, every core,
default options), and the same characters again as scans of their own (the same ink and capture,
no box lines, no skew), to measure:

- boxes: the share of filled boxes found (a record whose box overlaps it with IoU >= 0.5), and
  the share of records on empty boxes or elsewhere;
- verdicts: AUROC (machine vs human) from the pages and from the lone scans, and how often the
  two verdicts agree;
- speed: characters scored per second from pages, page reading included: the marginal rate
  between a run on a quarter of the pages and a run on all (worker start-up left out), and
  whole-run rates for pages and for the lone scans.

    FORENSICS_DATA=/path/to/data python -m benchmarks.forms           # 40 pages
    FORENSICS_DATA=/path/to/data python -m benchmarks.forms --quick   # 3 pages
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import log, machine_info, main, write_result

NAME = "forms"
FULL_PAGES, QUICK_PAGES = 40, 3
SEED = 11
IOU_MATCH = 0.5


def _iou(a, b) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def run(quick: bool, out_dir: Path, seed: int = SEED, pages: int | None = None, data_dir: str | None = None) -> dict:
    from sklearn.metrics import roc_auc_score

    from benchmarks.make_forms import lone_scan, make_form, mixed_digits
    from detectors.bundle import DEFAULT_BUNDLE, describe_bundle, load_bundle
    from detectors.engine import default_workers, score_paths

    started = time.perf_counter()
    n_pages = pages or (QUICK_PAGES if quick else FULL_PAGES)
    rng = np.random.default_rng(seed)
    bundle = load_bundle(DEFAULT_BUNDLE)
    frames, labels = mixed_digits(100 * n_pages, bundle, rng, data_dir)
    workers = default_workers()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        truths, page_files, lone_files, lone_truth, used = {}, [], [], [], 0
        for p in range(n_pages):
            image, truth = make_form(frames[used:], labels[used:], rng)
            for b in truth["boxes"]:
                if b["filled"]:
                    b["frame"] += used
                    path = tmp / f"lone_{len(lone_files):05d}.png"
                    lone_scan(frames[b["frame"]], b, truth["capture"], rng).save(path)
                    lone_files.append(str(path))
                    lone_truth.append((str(tmp / f"page_{p:03d}.png"), b))
            used += truth["frames_used"]
            path = tmp / f"page_{p:03d}.png"
            image.save(path)
            page_files.append(str(path))
            truths[str(path)] = truth
        log(f"{NAME}: {n_pages} pages, {len(lone_files)} filled boxes; scoring with {workers} workers")
        # Speed as the throughput benchmark measures it: the marginal rate between a run on a
        # quarter of the pages and a run on all of them, so worker start-up is left out.
        t = time.perf_counter()
        first = sum(1 for r in score_paths(page_files[: max(1, n_pages // 4)], bundle, workers=workers) if r["status"] == "ok")
        first_seconds = time.perf_counter() - t
        t = time.perf_counter()
        page_records = list(score_paths(page_files, bundle, workers=workers))
        page_seconds = time.perf_counter() - t
        t = time.perf_counter()
        lone_records = list(score_paths(lone_files, bundle, workers=workers))
        lone_seconds = time.perf_counter() - t

    # Boxes: each filled truth box matched by at most one record.
    by_page: dict[str, list[dict]] = {}
    for rec in page_records:
        by_page.setdefault(rec.get("page") or rec["file"], []).append(rec)
    matched: dict[tuple[str, int], dict] = {}
    elsewhere = 0
    for page, recs in by_page.items():
        filled = [(i, b) for i, b in enumerate(truths[page]["boxes"]) if b["filled"]]
        for rec in recs:
            if not rec.get("box"):
                elsewhere += 1
                continue
            best = max(filled, key=lambda ib: _iou(rec["box"], ib[1]["box"]), default=None)
            if best is None or _iou(rec["box"], best[1]["box"]) < IOU_MATCH or (page, best[0]) in matched:
                elsewhere += 1
            else:
                matched[(page, best[0])] = rec
    n_filled = len(lone_files)
    n_boxes = sum(len(t["boxes"]) for t in truths.values())

    # Verdicts: the same characters, from the page and alone.
    pairs = []
    for (page, b), lone in zip(lone_truth, lone_records):
        i = truths[page]["boxes"].index(b)
        rec = matched.get((page, i))
        if rec is not None and rec["status"] == "ok" and lone["status"] == "ok":
            pairs.append((b["source"] != "human", rec["p_machine"], lone["p_machine"], rec["verdict"], lone["verdict"]))
    y = np.array([p[0] for p in pairs])
    p_page, p_lone = np.array([p[1] for p in pairs]), np.array([p[2] for p in pairs])
    both = len(set(y.tolist())) == 2
    auroc_page = float(roc_auc_score(y, p_page)) if both else None
    auroc_lone = float(roc_auc_score(y, p_lone)) if both else None
    ok_pages = [r for r in page_records if r["status"] == "ok"]
    human_page = [p for p in pairs if not p[0]]
    result = {
        "benchmark": NAME, "quick": quick, "seed": seed, "pages": n_pages, "boxes": n_boxes, "filled_boxes": n_filled,
        "bundle": describe_bundle(bundle)["version"], "workers": workers,
        "found_share": len(matched) / max(n_filled, 1),
        "records": len(page_records), "records_elsewhere": elsewhere,
        "elsewhere_share": elsewhere / max(len(page_records), 1),
        "failed_in_page": sum(r["status"] != "ok" for r in page_records),
        "compared": len(pairs), "auroc_page": auroc_page, "auroc_lone": auroc_lone,
        "auroc_gap": None if not both else abs(auroc_page - auroc_lone),
        "verdict_agreement": float(np.mean([p[3] == p[4] for p in pairs])) if pairs else None,
        "false_machine_page": float(np.mean([p[3] == "machine" for p in human_page])) if human_page else None,
        "false_machine_lone": float(np.mean([p[4] == "machine" for p in human_page])) if human_page else None,
        "page_seconds": round(page_seconds, 2), "lone_seconds": round(lone_seconds, 2),
        "characters_per_second_pages": len(ok_pages) / page_seconds,
        "characters_per_second_lone": len(lone_records) / lone_seconds,
        "marginal_characters_per_second_pages": (len(ok_pages) - first) / max(page_seconds - first_seconds, 1e-9),
        "seconds_per_60_box_page": 60 * (page_seconds - first_seconds) / max(len(ok_pages) - first, 1),
        "dpi": sorted({t["capture"]["dpi"] for t in truths.values()}),
        "seconds": round(time.perf_counter() - started, 1), "machine": machine_info(),
    }
    log(f"{NAME}: found {100 * result['found_share']:.2f}% of filled boxes, {elsewhere} records elsewhere; "
        f"AUROC page {auroc_page} vs alone {auroc_lone}; {result['characters_per_second_pages']:.0f} chars/s")
    write_result(out_dir, NAME, result)
    return result


def markdown(result: dict) -> str:
    def pct(v):
        return "–" if v is None else f"{100 * v:.2f}%"

    def num(v):
        return "–" if v is None else f"{v:.4f}"

    lines = [f"{result['pages']} synthetic letter pages at {', '.join(map(str, result['dpi']))} dpi "
             f"(`python -m benchmarks.forms`{', quick mode' if result['quick'] else ''}): {result['boxes']} boxes, "
             f"{result['filled_boxes']} filled (half held-out human, half DCGAN / FC-GAN / font), skew up to 2 degrees, "
             f"noise, blur, JPEG; bundle {result['bundle']}, {result['workers']} workers.", "",
             "| measure | target | measured |", "|---|---|---:|",
             f"| filled boxes found (IoU ≥ 0.5) | ≥ 99% | **{pct(result['found_share'])}** |",
             f"| records on empty boxes or elsewhere | ≤ 1% | **{pct(result['elsewhere_share'])}** "
             f"({result['records_elsewhere']} of {result['records']}) |",
             f"| AUROC from pages vs the same characters alone | within 0.01 | {num(result['auroc_page'])} vs "
             f"{num(result['auroc_lone'])} (gap **{num(result['auroc_gap'])}**) |",
             f"| same verdict from page and alone | | {pct(result['verdict_agreement'])} of {result['compared']} |",
             f"| human characters called machine: page / alone | | {pct(result['false_machine_page'])} / "
             f"{pct(result['false_machine_lone'])} |",
             f"| characters per second from pages, marginal (page reading included, start-up not) | ≥ 300 | "
             f"**{result['marginal_characters_per_second_pages']:.0f}** |",
             f"| characters per second, whole run with start-up: pages / the same characters alone | | "
             f"{result['characters_per_second_pages']:.0f} / {result['characters_per_second_lone']:.0f} |",
             f"| seconds for a page of 60 boxes (marginal) | ≤ 0.2 | {result['seconds_per_60_box_page']:.3f} |"]
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, markdown, __doc__, options=((("--pages",), {"type": int, "help": f"pages (default {FULL_PAGES})"}),))
