"""Detector robustness: how AUROC and TPR at 1% FPR hold up under what real scans go through.

human   = MNIST test[5000:] digits (calibration used test[:5000] only; detectors.calibrate.HUMAN_POOL)
machine = fresh samples of each of the bundle's three generators (torch seed 1234 + seed,
          not calibration's 0), N/3 per generator

Each 28x28 frame is rendered as a scan (detectors.printscan.render_scan, 3x, dark ink on white
paper), one transform at one strength is applied to the scan image, and the result goes
through forensics.preprocess and detectors.score.p_machine, exactly as a scanned file would.

    jpeg       JPEG quality                      95, 85, 70, 50
    blur       Gaussian blur sigma, frame pixels 0.5, 1.0, 1.5   (x3 on the scan)
    noise      additive Gaussian noise sigma     5, 10, 20 grey levels (clipped to 0..255)
    rescale    scan rescaled by                  0.5, 0.75, 1.5  (scored at that size)
    rotation   degrees (alternating sign)        5, 10, 15       (white paper fills the corners)
    contrast   paper-ink gap multiplied by       0.75, 0.5, 0.3  (paper stays white)

plus "none" (the scan as rendered), the baseline. A base image that preprocessing finds no
ink in even untransformed (a blank generator sample) is left out of every condition; a
transformed scan that loses its ink is left out of that condition only, and counted.

    FORENSICS_DATA=/path/to/data python -m benchmarks.robustness            # full: N = 240
    FORENSICS_DATA=/path/to/data python -m benchmarks.robustness --quick    # smoke: N = 6, 2 strengths

Writes OUT/robustness.json and OUT/robustness.png (AUROC vs strength, one panel per transform).
"""

from __future__ import annotations

import io
import time
from pathlib import Path


import numpy as np
from PIL import Image, ImageFilter

from benchmarks.common import save_figure, main, display_path, fmt, log, machine_info, set_threads, write_result

NAME = "robustness"
# 2N images x 20 conditions at ~13 scans/s (one thread, the v0 bundle) is ~14 min for N = 240.
FULL_N = 240
QUICK_N = 6
SCAN_SCALE = 3
SAMPLE_SEED = 1234  # + seed; calibration sampled with seed 0
GENERATORS = ("pixelcnn", "dcgan", "fcgan")
SAMPLE_BATCH = 100
SCORE_SLAB = 512  # scans per p_machine call (progress is logged between calls)

TRANSFORMS: dict[str, dict] = {
    "jpeg": {"label": "JPEG quality", "strengths": (95, 85, 70, 50), "quick": (85, 50), "identity": 100},
    "blur": {"label": "Gaussian blur sigma (frame px)", "strengths": (0.5, 1.0, 1.5), "quick": (0.5, 1.5), "identity": 0.0},
    "noise": {"label": "Gaussian noise sigma (grey levels)", "strengths": (5, 10, 20), "quick": (5, 20), "identity": 0},
    "rescale": {"label": "rescale factor", "strengths": (0.5, 0.75, 1.5), "quick": (0.5, 1.5), "identity": 1.0},
    "rotation": {"label": "rotation (degrees)", "strengths": (5, 10, 15), "quick": (5, 15), "identity": 0},
    "contrast": {"label": "paper-ink contrast factor", "strengths": (0.75, 0.5, 0.3), "quick": (0.75, 0.3), "identity": 1.0},
}


# --------------------------------------------------------------------------- the transforms


def transform(scan: Image.Image, name: str, strength: float, rng: np.random.Generator, index: int) -> Image.Image:
    """One transform of a grey scan (mode L, dark ink on white paper)."""
    if name == "none":
        return scan
    if name == "jpeg":
        buf = io.BytesIO()
        scan.save(buf, format="JPEG", quality=int(strength))
        buf.seek(0)
        return Image.open(buf).convert("L")
    if name == "blur":
        return scan.filter(ImageFilter.GaussianBlur(strength * SCAN_SCALE))
    if name == "noise":
        a = np.asarray(scan, dtype=np.float64) + rng.normal(0.0, strength, size=(scan.height, scan.width))
        return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
    if name == "rescale":
        size = (max(1, round(scan.width * strength)), max(1, round(scan.height * strength)))
        return scan.resize(size, Image.Resampling.BICUBIC)
    if name == "rotation":
        angle = strength if index % 2 == 0 else -strength
        return scan.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    if name == "contrast":
        paper = 255.0
        a = paper - (paper - np.asarray(scan, dtype=np.float64)) * strength
        return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
    raise ValueError(f"unknown transform {name!r}; choose from none, {', '.join(TRANSFORMS)}")


def conditions(quick: bool) -> list[tuple[str, float | None]]:
    out: list[tuple[str, float | None]] = [("none", None)]
    for name, spec in TRANSFORMS.items():
        out += [(name, s) for s in spec["quick" if quick else "strengths"]]
    return out


# --------------------------------------------------------------------------- the data


def base_images(bundle, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """N human frames (a seeded random subset of MNIST test[5000:]) and N/3 samples of each
    generator; frames [M, 28, 28] uint8 and their source names."""
    import torch

    from detectors.calibrate import HUMAN_POOL, sample_generator
    from forensics.data import load_dataset

    test = load_dataset("mnist", train=False).images[:, 0].numpy()
    pool = test[HUMAN_POOL:]
    idx = np.random.default_rng(seed).permutation(len(pool))[:n]
    per_gen = max(1, n // len(GENERATORS))
    g = torch.Generator().manual_seed(SAMPLE_SEED + seed)
    frames, source = [pool[idx]], ["human"] * len(idx)
    for name in GENERATORS:
        x = sample_generator(bundle.models, name, per_gen, g, SAMPLE_BATCH)
        frames.append(x)
        source += [name] * len(x)
    info = {"human_test_indices_first": [int(i) + HUMAN_POOL for i in idx[:10]], "per_generator": per_gen}
    return np.concatenate(frames).astype(np.uint8), np.array(source), info


def preprocess_condition(frames: np.ndarray, name: str, strength: float | None, seed: int,
                         cond_index: int) -> tuple[list[int], np.ndarray]:
    """(indices kept, preprocessed frames) for every base frame rendered as a scan and transformed."""
    from detectors.printscan import render_scan
    from forensics.errors import InputError
    from forensics.preprocess import preprocess_image

    rng = np.random.default_rng([seed, cond_index])
    kept, out = [], []
    for i, frame in enumerate(frames):
        scan = transform(render_scan(frame, SCAN_SCALE), name, strength, rng, i)
        try:
            out.append(preprocess_image(scan))
        except InputError:
            continue
        kept.append(i)
    return kept, (np.stack(out).astype(np.uint8) if out else np.zeros((0, 28, 28), np.uint8))


def _metrics(source: np.ndarray, p: np.ndarray) -> dict:
    from detectors.calibrate import metrics

    y = (source != "human").astype(np.int64)
    m = metrics(y, p)
    row = {"auroc": m["auroc"], "tpr_at_1pct_fpr": m["tpr_at_1pct_fpr"], "n_human": m["n_human"],
           "n_machine": m["n_machine"],
           "mean_p_human": float(p[y == 0].mean()) if (y == 0).any() else None,
           "mean_p_machine": float(p[y == 1].mean()) if (y == 1).any() else None,
           "per_generator": {}}
    for g in GENERATORS:
        sel = (source == "human") | (source == g)
        mg = metrics(y[sel], p[sel])
        row["per_generator"][g] = {"auroc": mg["auroc"], "tpr_at_1pct_fpr": mg["tpr_at_1pct_fpr"]}
    return row


# --------------------------------------------------------------------------- run


def run(quick: bool, out_dir: Path, seed: int = 0, n: int | None = None) -> dict:
    from detectors.bundle import DEFAULT_BUNDLE, load_bundle
    from detectors.score import p_machine

    set_threads()
    t_start = time.perf_counter()
    n = n or (QUICK_N if quick else FULL_N)
    out_dir = Path(out_dir)
    bundle = load_bundle(DEFAULT_BUNDLE)

    t = time.perf_counter()
    frames, source, info = base_images(bundle, n, seed)
    sample_seconds = time.perf_counter() - t

    # A base image whose untransformed scan has no ink (a blank sample) is left out everywhere.
    kept0, _ = preprocess_condition(frames, "none", None, seed, 0)
    dropped_base = {s: int((source == s).sum() - (source[kept0] == s).sum()) for s in ("human", *GENERATORS)}
    frames, source = frames[kept0], source[kept0]

    # Preprocess every condition first, then score them all in one p_machine stream (a few
    # big calls cost less than one small call per condition).
    conds = conditions(quick)
    prepared, pre_seconds = [], []
    for k, (name, strength) in enumerate(conds):
        t = time.perf_counter()
        prepared.append(preprocess_condition(frames, name, strength, seed, k))
        pre_seconds.append(time.perf_counter() - t)
    allx = np.concatenate([x for _, x in prepared])
    t = time.perf_counter()
    parts = []
    for i in range(0, len(allx), SCORE_SLAB):
        parts.append(p_machine(allx[i : i + SCORE_SLAB], bundle))
        done = min(i + SCORE_SLAB, len(allx))
        rate = done / (time.perf_counter() - t)
        log(f"robustness: scored {done}/{len(allx)} scans ({rate:.1f}/s, ~{(len(allx) - done) / rate / 60:.1f} min left)")
    score_seconds = time.perf_counter() - t
    p_all = np.concatenate(parts) if parts else np.zeros(0)

    rows, at = [], 0
    for (name, strength), (kept, x), t_pre in zip(conds, prepared, pre_seconds):
        p = p_all[at : at + len(x)]
        at += len(x)
        src = source[kept]
        row = {"transform": name, "strength": strength, **_metrics(src, p),
               "dropped_human": int((source == "human").sum() - (src == "human").sum()),
               "dropped_machine": int((source != "human").sum() - (src != "human").sum()),
               "preprocess_seconds": round(t_pre, 2)}
        rows.append(row)
        log(f"robustness: {name} {'' if strength is None else strength}: AUROC {fmt(row['auroc'])}, "
            f"TPR@1%FPR {fmt(row['tpr_at_1pct_fpr'])} ({len(x)} scans)")
    scored = len(allx)

    result = {
        "benchmark": NAME,
        "quick": quick,
        "seed": seed,
        "n": n,
        "n_human": int((source == "human").sum()),
        "n_machine": int((source != "human").sum()),
        "n_per_generator": {g: int((source == g).sum()) for g in GENERATORS},
        "human_source": "MNIST test[5000:] (calibration used test[:5000]), a random subset drawn with numpy seed `seed`",
        "machine_source": f"fresh samples of the bundle's generators, torch seed {SAMPLE_SEED + seed} (calibration used 0)",
        "human_test_indices_first": info["human_test_indices_first"],
        "scan": f"detectors.printscan.render_scan at {SCAN_SCALE}x, transform, forensics.preprocess, detectors.score.p_machine",
        "dropped_base_images": dropped_base,
        "transforms": {name: {"label": s["label"], "identity": s["identity"],
                              "strengths": list(s["quick" if quick else "strengths"])} for name, s in TRANSFORMS.items()},
        "results": rows,
        "scans_scored": scored,
        "scans_per_second": round(scored / score_seconds, 2) if score_seconds else None,
        "preprocess_seconds": round(sum(pre_seconds), 2),
        "score_seconds": round(score_seconds, 2),
        "sample_seconds": round(sample_seconds, 2),
        "seconds": None,
        "bundle": str(DEFAULT_BUNDLE),
        "machine": machine_info(),
    }
    plot_path = out_dir / f"{NAME}.png"
    plot(result, plot_path)
    result["plot"] = display_path(plot_path)
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    write_result(out_dir, NAME, result)
    return result


# --------------------------------------------------------------------------- outputs


def _series(result: dict, name: str) -> tuple[list[float], list[dict]]:
    spec = result["transforms"][name]
    base = next(r for r in result["results"] if r["transform"] == "none")
    rows = [r for r in result["results"] if r["transform"] == name]
    return [spec["identity"]] + [r["strength"] for r in rows], [base] + rows


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["transforms"])
    fig, axes = plt.subplots(2, 3, figsize=(12, 7), sharey=True)
    for ax, name in zip(axes.flat, names):
        xs, rows = _series(result, name)
        order = np.argsort(xs, kind="stable")
        xs, rows = [xs[i] for i in order], [rows[i] for i in order]
        ax.plot(xs, [_nan(r["auroc"]) for r in rows], "o-", color="black", lw=2, label="all generators")
        for g, style in zip(GENERATORS, ("s--", "^--", "v--")):
            ax.plot(xs, [_nan(r["per_generator"][g]["auroc"]) for r in rows], style, lw=1, alpha=0.7, label=g)
        ax.axvline(result["transforms"][name]["identity"], color="tab:red", lw=0.8, ls=":")
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_title(name)
        ax.set_xlabel(result["transforms"][name]["label"])
        if name in ("jpeg", "contrast"):  # lower values are stronger: strength grows to the right
            ax.invert_xaxis()
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("AUROC (human vs machine)")
    axes.flat[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"Detector robustness: {result['n_human']} human vs {result['n_machine']} machine scans"
                 f"{' (quick)' if result['quick'] else ''}; red dotted line: untransformed scan")
    save_figure(fig, path)


def _nan(v):
    return float("nan") if v is None else v


def markdown(result: dict) -> str:
    per = ", ".join(f"{v} {g}" for g, v in result["n_per_generator"].items())
    lines = [
        f"{result['n_human']} human scans (MNIST test[5000:], never calibrated on) vs {result['n_machine']} machine "
        f"scans ({per}; fresh samples, seed {SAMPLE_SEED + result['seed']}), each rendered at {SCAN_SCALE}x, "
        f"transformed, preprocessed and scored by the shipped bundle"
        f"{' (quick mode: smoke-test sizes, figures meaningless)' if result['quick'] else ''}. "
        f"AUROC / TPR at 1% FPR, human vs all generators; per-generator AUROC; mean p_machine per class. "
        f"{result['seconds'] / 60:.1f} min ({result['scans_per_second']} scans/s).",
        "",
        "| transform | strength | AUROC | TPR @ 1% FPR | AUROC PixelCNN / DCGAN / FC-GAN | mean p human | mean p machine | lost scans |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in result["results"]:
        pg = " / ".join(fmt(r["per_generator"][g]["auroc"]) for g in GENERATORS)
        lost = r["dropped_human"] + r["dropped_machine"]
        lines.append(f"| {r['transform']} | {fmt(r['strength'], 2) if r['strength'] is not None else '-'} | "
                     f"{fmt(r['auroc'])} | {fmt(r['tpr_at_1pct_fpr'])} | {pg} | {fmt(r['mean_p_human'])} | "
                     f"{fmt(r['mean_p_machine'])} | {lost} |")
    lines += ["", f"![AUROC vs strength]({result['plot']})"]
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, markdown, __doc__, options=(
        (("--n",), {"type": int, "help": f"human scans, and machine scans (N/3 per generator); default {FULL_N}"}),))
