"""Honest filers: how often the shipped bundle calls a human digit machine-made, on human digits
no part of it was fitted on, captured the ways real forms arrive.

- MNIST test[5000:] (calibration draws only from test[:5000]), N digits per capture of
  detectors.capture (low resolution, fax, thick and thin pens, phone photo, scanner, printed
  box lines), and the same digits as plain scans (3x, dark ink on white) for reference;
- scikit-learn's bundled ``load_digits`` (UCI, 8x8, other writers: an external test set, never
  trained, calibrated or tuned on), each upsampled 8x as a scan;
- and, not human digits at all, N Fashion-MNIST test items as plain scans: inputs unlike
  anything the bundle knows, which must come out ``uncertain`` / ``unfamiliar``, never machine.

Each scan is preprocessed and scored as `forensics score` does (detectors.score.score_images,
the bundle's thresholds and --stability near). Per set: the share called machine (the false
accusations), uncertain and human, the share found unfamiliar, the mean p_machine, and the
scans preprocessing found no ink in.

    FORENSICS_DATA=/path/to/data python -m benchmarks.human_variety           # N = 600
    FORENSICS_DATA=/path/to/data python -m benchmarks.human_variety --quick   # N = 20
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.common import log, machine_info, main, thresholds_text, write_result

NAME = "human_variety"
FULL_N, QUICK_N = 600, 20
HELD_OUT_START = 5000  # calibration uses MNIST test[:5000] only
SEED = 7
OUT_OF_DOMAIN = "Fashion-MNIST items (not digits: out of domain)"
STABLE_MOVE = 0.2  # issue 21: for >= 99% of human scans, no re-scan moves p_machine by more than this


def _score(images, bundle) -> dict:
    from detectors.score import score_images
    from forensics.errors import InputError
    from forensics.preprocess import preprocess_image

    frames, lost = [], 0
    for img in images:
        try:
            frames.append(preprocess_image(img))
        except InputError:
            lost += 1
    records, moves = [], []
    for start in range(0, len(frames), 256):
        batch = np.stack(frames[start : start + 256])
        records += score_images(batch, bundle)
        # Issue 21's stability target: how far any of the four re-scans moves p_machine.
        moves += [max(r["p_machine_max"] - r["p_machine"], r["p_machine"] - r["p_machine_min"])
                  for r in score_images(batch, bundle, stability="all")]
    n = max(len(records), 1)
    share = {v: sum(r["verdict"] == v for r in records) / n for v in ("machine", "uncertain", "human")}
    unfamiliar = [r["unfamiliar"] for r in records]
    return {"n": len(records), "no_ink": lost, "called_machine": share["machine"], "uncertain": share["uncertain"],
            "called_human": share["human"],
            "unfamiliar": None if None in unfamiliar else float(np.mean(unfamiliar)) if unfamiliar else None, "mean_p_machine": float(np.mean([r["p_machine"] for r in records])),
            "rescan_moves_at_most_0.2": float(np.mean(np.array(moves) <= STABLE_MOVE)) if moves else None}


def run(quick: bool, out_dir: Path, seed: int = SEED, n: int | None = None) -> dict:
    from PIL import Image
    from sklearn.datasets import load_digits

    from detectors import capture
    from detectors.bundle import DEFAULT_BUNDLE, describe_bundle, load_bundle
    from detectors.printscan import render_scan
    from forensics.data import load_dataset
    from forensics.threads import set_threads

    set_threads(1)
    started = time.perf_counter()
    n = n or (QUICK_N if quick else FULL_N)
    bundle = load_bundle(DEFAULT_BUNDLE)
    test = load_dataset("mnist", train=False).images[HELD_OUT_START:, 0].numpy()
    rng = np.random.default_rng(seed)
    digits = test[np.sort(rng.choice(len(test), n, replace=False))]
    sets = {"plain scan (reference)": [render_scan(f) for f in digits]}
    for name in capture.CAPTURES:
        sets[name] = [capture.capture(f, name, rng) for f in digits]
    uci = load_digits().images  # 0..16, ink high
    if quick:
        uci = uci[:n]
    sets["load_digits (UCI 8x8, other writers)"] = [
        Image.fromarray((255 - np.round(u * 255 / 16)).astype(np.uint8)).resize((64, 64), Image.Resampling.BICUBIC)
        for u in uci]
    fashion = load_dataset("fashion-mnist", train=False).images[:n, 0].numpy()
    sets[OUT_OF_DOMAIN] = [render_scan(f) for f in fashion]
    results = {}
    for name, images in sets.items():
        t = time.perf_counter()
        results[name] = _score(images, bundle)
        log(f"{NAME}: {name}: {100 * results[name]['called_machine']:.1f}% called machine "
            f"({time.perf_counter() - t:.0f} s)")
    result = {"benchmark": NAME, "quick": quick, "seed": seed, "n_per_capture": n,
              "mnist_split": f"test[{HELD_OUT_START}:]", "bundle": describe_bundle(bundle)["version"],
              "thresholds": bundle.thresholds.to_dict(), "stability": "near", "sets": results,
              "seconds": round(time.perf_counter() - started, 1), "machine": machine_info()}
    write_result(out_dir, NAME, result)
    return result


def markdown(result: dict) -> str:
    lines = [f"Human digits never fitted on: {result['n_per_capture']} of MNIST {result['mnist_split']} per capture "
             f"(detectors/capture.py), and scikit-learn's `load_digits`; bundle {result['bundle']}, thresholds "
             f"{thresholds_text(result)}, `--stability near`{'; quick mode' if result['quick'] else ''}.", "",
             "| human set | scans | called machine (false accusation) | uncertain | of them unfamiliar | called human | "
             "mean p_machine | no re-scan moves p_machine > 0.2 (target ≥ 99%) | no ink |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["sets"].items():
        stable = r.get("rescan_moves_at_most_0.2")
        stable_text = "–" if stable is None else f"{100 * stable:.1f}%"
        unfamiliar = r.get("unfamiliar")
        lines.append(f"| {name} | {r['n']} | **{100 * r['called_machine']:.1f}%** | {100 * r['uncertain']:.1f}% | "
                     f"{'–' if unfamiliar is None else f'{100 * unfamiliar:.1f}%'} | "
                     f"{100 * r['called_human']:.1f}% | {r['mean_p_machine']:.3f} | {stable_text} | {r['no_ink']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, markdown, __doc__, options=((("--n",), {"type": int, "help": f"digits per capture (default {FULL_N})"}),))
