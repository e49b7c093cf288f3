"""All the extras at once: does the leave-one-out ScanCNN improve when it trains on every kind
of extra machine data that `detector_experiments` tries one at a time?

Each row of detector_experiments adds one kind (generic forgeries, the new forgers' samples,
aligned reconstructions). This trains one ScanCNN per left-out source on human vs the other
generators plus all three together (the new forgers of the left-out family excepted), on the
same data, split, seeds and network, so its figures sit beside that table's "without it" row.
Run alone, not by run.py: the full run is about an hour on one thread, on top of
detector_experiments' 104 minutes.

    FORENSICS_DATA=/path/to/data python -m research.all_extras            # full (~56 min, one thread)
    FORENSICS_DATA=/path/to/data python -m research.all_extras --quick    # smoke sizes (~1 min)

Writes OUT/all_extras.json.
"""

from __future__ import annotations

import time
from pathlib import Path


import numpy as np

from research import detector_experiments as de
from benchmarks.common import fmt, main, log, machine_info, set_threads, write_result

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "all_extras"


def run(quick: bool, out_dir: Path, seed: int = 0) -> dict:
    from detectors.bundle import DEFAULT_BUNDLE, load_models
    from detectors.calibrate import GENERATORS, metrics, split_fit

    set_threads()
    t_start = time.perf_counter()
    sizes = de.SIZES["quick" if quick else "full"]
    train_set, ev, generic, (forgers, forger_names), aligned = de.build_sets(load_models(DEFAULT_BUNDLE), sizes,
                                                                             seed, quick)
    y, src = ev.is_machine, ev.source
    held = ~split_fit(ev, seed)
    results, frames = {}, {}
    for s in de.SOURCES:
        left_out = s if s in GENERATORS else None  # fonts: in no ScanCNN's training set anyway
        other_families = np.array([de.FORGER_FAMILY[f] != left_out for f in forger_names], dtype=bool)
        extra = np.concatenate([generic, forgers[other_families], aligned])
        logits = de._cnn_logits(train_set, extra, "all extras", left_out, sizes["epochs"], ev.images, seed)
        test = held & np.isin(src, ["human", s])
        results[s] = metrics(y[test], logits[test])
        frames[s] = int(((train_set.source != "font") & (train_set.source != left_out)).sum() + len(extra))
        log(f"{NAME}: {s} left out: {fmt(results[s]['auroc'])} / {fmt(results[s]['tpr_at_1pct_fpr'])}")
    result = {
        "benchmark": NAME,
        "quick": quick,
        "seed": seed,
        "sizes": sizes,
        "training_frames": frames,
        "results": results,
        "seconds": round(time.perf_counter() - t_start, 1),
        "bundle": str(DEFAULT_BUNDLE),
        "machine": machine_info(),
    }
    write_result(out_dir, NAME, result)
    return result


def markdown(result: dict) -> str:
    cells = [f"{fmt(m['auroc'])} / {fmt(m['tpr_at_1pct_fpr'])}" for m in result["results"].values()]
    return "\n".join([
        f"ScanCNN without it + generic forgeries + the new forgers + aligned reconstructions, all at once "
        f"(AUROC / TPR at 1% FPR, held-out half; {result['seconds'] / 60:.0f} min):", "",
        "| | " + " | ".join(result["results"]) + " |", "|---|" + "---|" * len(cells),
        "| all extras | " + " | ".join(cells) + " |"])


if __name__ == "__main__":
    main(run, markdown, __doc__, results=RESULTS)
