"""Detector experiments: how well the detector catches a source it never saw, and what helps.

Issue 6 asks for TPR >= 0.9 at 1% FPR with any generator left out. The ScanCNN learns the
sources it trains on; this benchmark measures, on one scale and one split, what the
alternatives buy when one source is left out of everything that is fitted:

    ScanCNN, trained with it        the reference: the source was in the training set
    ScanCNN without it              trained on human vs the other generators only
    ... + generic forgeries         also on research.generic_forgeries (pca, blend,
                                    plotter, pixel: made from human digits, no generator)
    ... + the new forgers           also on samples of benchmarks.new_forgers' models (DCGAN
                                    and FC-GAN seed 1, a 1-epoch DCGAN, the PixelCNN
                                    autoencoder), leaving out the runs of the left-out family:
                                    does variety within and across families teach "machine"?
    ... + aligned reconstructions   also on the CNN's own human digits rewritten by three small
                                    autoencoders (research.aligned_reconstructions; Rajan et
                                    al. 2025): content matched pair by pair, so only a decoder's
                                    trace tells them apart
    reader signals alone            forger-independent, fitted to no machine image at all:
                                    the distance from the scan to the nearest MNIST *train*
                                    digit (cosine, in the feature space of detectors.reader; a
                                    forger's model is fitted to public digits like these, a
                                    human writer is not one of them), the reader's class
                                    entropy and its feature norm
    ScanCNN without it + reader     a logistic regression over both

Data, as `forensics calibrate` builds it (detectors.calibrate.build_calibration_set, the
bundle's generators): the CNNs train on MNIST train digits and generator samples drawn with
seed + 1000; the evaluation set is MNIST test[:5000] digits, fresh samples (seed) and font
forgeries, each clean and printed-and-scanned, split 50/50 by base image. Logistic
regressions are fitted on the fit half without the left-out source (human vs the other
generators); every figure is on the held-out half, human vs the left-out source. Fonts are
in no CNN's training set, so their column's "without it" model is the reference model.

    FORENSICS_DATA=/path/to/data python -m research.detector_experiments            # full (~100 min, one thread)
    FORENSICS_DATA=/path/to/data python -m research.detector_experiments --quick    # smoke sizes (~1 min)

Writes OUT/detector_experiments.json.
"""

from __future__ import annotations

import time
from pathlib import Path


import numpy as np

from benchmarks.common import fmt, main, log, machine_info, set_threads, write_result

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "detector_experiments"
SIZES = {  # per generator: CNN training samples, evaluation samples; generic forgeries per kind; reader refs
    "full": {"train_per_generator": 3000, "eval_per_generator": 500, "epochs": 8, "generic_per_kind": 1000,
             "reader_refs": 60000, "shift_humans": 1000, "aligned_steps": 940},  # 940 batches: 2 epochs
    "quick": {"train_per_generator": 40, "eval_per_generator": 30, "epochs": 1, "generic_per_kind": 20,
              "reader_refs": 500, "shift_humans": 20, "aligned_steps": 3},
}
SOURCES = ("pixelcnn", "dcgan", "fcgan", "font")  # the columns: each in turn left out
ROWS = ("with_it", "without", "without_generic", "without_forgers", "without_aligned", "reader", "without_reader", "without_or_reader",
        "without_generic_reader")
ROW_TITLES = {
    "with_it": "ScanCNN, trained with it (reference)",
    "without": "ScanCNN without it",
    "without_generic": "ScanCNN without it, + generic forgeries",
    "without_forgers": "ScanCNN without it, + the new forgers' samples (other runs and families; not its own family's)",
    "without_aligned": "ScanCNN without it, + aligned reconstructions (its human digits rewritten by three autoencoders)",
    "reader": "reader signals alone (no machine image fitted)",
    "without_reader": "ScanCNN without it + reader signals",
    "without_or_reader": "ScanCNN without it OR reader signals (the higher of the two human quantiles)",
    "without_generic_reader": "ScanCNN without it + generic forgeries + reader signals",
}
SAMPLE_BATCH = 100


# --------------------------------------------------------------------------- data


def build_sets(models, sizes: dict, seed: int, quick: bool = False):
    """(training set, evaluation set, generic forgeries as scanned frames, new forgers' scanned
    frames and names, aligned reconstructions as scanned frames), as calibrate builds them."""
    from detectors.calibrate import CNN_SEED_OFFSET, HUMAN_POOL, build_calibration_set
    from forensics.data import load_dataset

    from research.aligned_reconstructions import aligned_reconstructions
    from research.generic_forgeries import generic_forgeries

    train = load_dataset("mnist", train=True)
    test = load_dataset("mnist", train=False)
    rng = np.random.default_rng(seed)
    n_train, n_eval = 3 * sizes["train_per_generator"], min(HUMAN_POOL, 4 * sizes["eval_per_generator"])
    order = rng.permutation(len(train))
    human_train = train.images[np.sort(order[:n_train]), 0].numpy()
    human_eval = test.images[np.sort(rng.choice(HUMAN_POOL, n_eval, replace=False)), 0].numpy()
    t = time.perf_counter()
    train_set = build_calibration_set(models, human_train, sizes["train_per_generator"], seed + CNN_SEED_OFFSET,
                                      SAMPLE_BATCH)
    eval_set = build_calibration_set(models, human_eval, sizes["eval_per_generator"], seed, SAMPLE_BATCH)
    log(f"{NAME}: {len(train_set.images)} training and {len(eval_set.images)} evaluation frames "
        f"({time.perf_counter() - t:.0f} s)")
    # Generic forgeries from train digits the CNN's human class does not hold, scanned as every image is.
    rest = order[n_train:]
    frames, _ = generic_forgeries(train.images[rest, 0].numpy(), train.labels[rest].numpy(),
                                  sizes["generic_per_kind"], np.random.default_rng([seed, 7]))
    generic = _scanned("generic", frames, [seed, 7, 1])
    # The CNN's own human digits, rewritten: each autoencoder trains on all of MNIST train.
    t = time.perf_counter()
    rewrites, _ = aligned_reconstructions(human_train, train.images[:, 0].numpy(), sizes["aligned_steps"], seed)
    aligned = np.concatenate([_scanned("aligned", rewrites[i : i + 500], [seed, 29, i])
                              for i in range(0, len(rewrites), 500)])
    log(f"{NAME}: {len(aligned)} aligned reconstruction frames ({time.perf_counter() - t:.0f} s)")
    # The autoencoder rewrites other train digits the human class does not hold (the last of the order).
    rewrite = train.images[np.sort(rest[-sizes["train_per_generator"]:]), 0].numpy()
    forgers = forger_frames(sizes["train_per_generator"], rewrite, quick, seed)
    return train_set, eval_set, generic, forgers, aligned


def _scanned(name: str, frames: np.ndarray, key: list[int]) -> np.ndarray:
    """Frames scanned as every training image is: clean and printed-and-scanned, inkless ones dropped."""
    from detectors.calibrate import scan_chunk

    got = [f for pair in scan_chunk((name, frames, key)) for f in pair if f is not None]
    return np.stack(got).astype(np.uint8) if got else np.zeros((0, 28, 28), np.uint8)


# The forgers these experiments measured (docs/experiments.md); benchmarks.new_forgers has since
# added the VAE and the diffusion model, which these figures predate.
MEASURED_FORGERS = ("dcgan-seed1", "fcgan-seed1", "dcgan-epoch1", "autoencoder")


def forger_frames(n: int, rewrite: np.ndarray, quick: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(scanned frames, forger name per frame): n samples of each of benchmarks.new_forgers' models
    (trained there on first use; in quick mode smoke models in a temporary folder), drawn with
    seed + CNN_SEED_OFFSET and scanned as every training image is."""
    import tempfile

    from benchmarks.new_forgers import FORGERS, forger_dir, forger_samples
    from detectors.calibrate import CNN_SEED_OFFSET

    frames, names = [], []
    with tempfile.TemporaryDirectory(prefix="forgers-") as tmp:
        for k, name in enumerate(MEASURED_FORGERS):
            assert name in FORGERS, name
            folder, _ = forger_dir(name, Path(tmp) if quick else None, quick)
            # (the autoencoder rewrites without labels; the digits are only for conditional rewriters)
            x = forger_samples(name, folder, n, seed + CNN_SEED_OFFSET, rewrite, np.zeros(len(rewrite), np.int64))
            frames.append(_scanned(name, x, [seed, 17, k]))
            names += [name] * len(frames[-1])
    return np.concatenate(frames) if frames else np.zeros((0, 28, 28), np.uint8), np.array(names, dtype=str)


# The new forgers' family, so that leaving a family out leaves out all its runs (the
# autoencoder's decoder is a PixelCNN).
FORGER_FAMILY = {"dcgan-seed1": "dcgan", "fcgan-seed1": "fcgan", "dcgan-epoch1": "dcgan", "autoencoder": "pixelcnn"}


def reader_reference(refs: int, seed: int):
    """(FeatureNet, unit feature vectors of ``refs`` MNIST train digits rendered as scans and
    preprocessed, so both sides of a distance are preprocessed alike)."""
    import torch

    from detectors.reader import features_and_probs, load_reader
    from detectors.printscan import preprocess_or_none, render_scan
    from forensics.data import load_dataset

    net = load_reader()
    train = load_dataset("mnist", train=True).images[:, 0].numpy()
    rows = np.sort(np.random.default_rng([seed, 3]).permutation(len(train))[:refs])
    frames = [preprocess_or_none(np.asarray(render_scan(train[i], 3))) for i in rows]
    frames = np.stack([f for f in frames if f is not None])
    return net, torch.nn.functional.normalize(torch.as_tensor(features_and_probs(net, frames)[0]).float(), dim=1)


def reader_signals(images: np.ndarray, net, ref) -> dict[str, np.ndarray]:
    """Forger-independent signals of preprocessed frames from the digit reader (detectors.reader,
    trained on MNIST train only)."""
    import torch

    from detectors.reader import features_and_probs

    feats, probs = features_and_probs(net, images)
    q = torch.nn.functional.normalize(torch.as_tensor(feats).float(), dim=1)
    nearest = torch.cat([torch.cdist(q[i : i + 500], ref).min(dim=1).values for i in range(0, len(q), 500)])
    return {"nearest_train_distance": nearest.double().numpy(),
            "reader_entropy": -(probs * np.log(probs + 1e-12)).sum(axis=1),
            "feature_norm": np.linalg.norm(feats, axis=1)}


SHIFTS = (("blur", 1.0), ("blur", 1.5), ("rotation", 15), ("noise", 20))


def reader_shift(net, ref, directions: dict[str, float], n: int, seed: int) -> dict:
    """How far each reader signal moves human scans under what real scans go through: of n
    MNIST test[5000:] digits, the fraction past the untransformed digits' 99th percentile in
    the machine direction (the false-positive rate of a 1%-FPR threshold set on clean scans)."""
    from benchmarks.robustness import SCAN_SCALE, preprocess_condition
    from detectors.calibrate import HUMAN_POOL
    from forensics.data import load_dataset

    frames = load_dataset("mnist", train=False).images[HUMAN_POOL : HUMAN_POOL + n, 0].numpy()
    values = {}
    for k, (name, strength) in enumerate((("none", None), *SHIFTS)):
        _, x = preprocess_condition(frames, name, strength, seed, k)
        values[f"{name} {strength}" if strength is not None else name] = {
            s: directions[s] * v for s, v in reader_signals(x, net, ref).items()}
    clean = values.pop("none")
    return {"n_human": int(n), "scan_scale": SCAN_SCALE,
            "fpr_at_clean_1pct": {cond: {s: float(np.mean(v[s] > np.quantile(clean[s], 0.99))) for s in v}
                                  for cond, v in values.items()}}


# --------------------------------------------------------------------------- models


def _cnn_logits(train_set, extra: np.ndarray | None, what: str, leave_out: str | None, epochs: int,
                eval_images: np.ndarray, seed: int) -> np.ndarray:
    """ScanCNN logits on eval_images, trained on human vs the generators but leave_out, plus
    ``extra`` machine frames (named ``what``) when given."""
    import torch

    from detectors.cnn import CNNConfig, train_cnn
    from detectors.signals import as_batch, chunked

    rows = (train_set.source != "font") & (train_set.source != leave_out)
    x, y = train_set.images[rows], train_set.is_machine[rows]
    if extra is not None:
        x, y = np.concatenate([x, extra]), np.concatenate([y, np.ones(len(extra), np.int64)])
    t = time.perf_counter()
    model, _ = train_cnn(x, y, CNNConfig(epochs=epochs), seed=seed)
    log(f"{NAME}: ScanCNN {'without ' + leave_out if leave_out else 'on every generator'}"
        f"{' + ' + what if extra is not None else ''}: "
        f"{len(x)} frames, {time.perf_counter() - t:.0f} s")
    with torch.no_grad():
        return chunked(model.eval(), as_batch(eval_images), torch.device("cpu")).astype(np.float64)


def _lr(columns: list[np.ndarray], y: np.ndarray, fit_rows: np.ndarray):
    """A balanced logistic regression over the columns, fitted on fit_rows: rows -> decision values."""
    from sklearn.linear_model import LogisticRegression

    x = np.stack(columns, axis=1)
    mean, scale = x[fit_rows].mean(0), x[fit_rows].std(0) + 1e-12
    lr = LogisticRegression(class_weight="balanced", max_iter=5000).fit((x[fit_rows] - mean) / scale, y[fit_rows])
    return lambda rows: lr.decision_function((x[rows] - mean) / scale)


def _human_quantile(values: np.ndarray, human: np.ndarray) -> np.ndarray:
    """The fraction of human values at or below each value: scores on one scale, human-calibrated."""
    return np.searchsorted(np.sort(human), values, side="right") / max(len(human), 1)


# --------------------------------------------------------------------------- run


def run(quick: bool, out_dir: Path, seed: int = 0) -> dict:
    from detectors.bundle import DEFAULT_BUNDLE, load_models
    from detectors.calibrate import GENERATORS, direction, metrics, split_fit

    set_threads()
    t_start = time.perf_counter()
    sizes = SIZES["quick" if quick else "full"]
    models = load_models(DEFAULT_BUNDLE)
    train_set, ev, generic, (forgers, forger_names), aligned = build_sets(models, sizes, seed, quick)
    y, src = ev.is_machine, ev.source
    fit = split_fit(ev, seed)
    held = ~fit

    t = time.perf_counter()
    net, ref = reader_reference(sizes["reader_refs"], seed)
    reader = reader_signals(ev.images, net, ref)
    directions = {name: direction(y[fit], v[fit]) for name, v in reader.items()}
    shift = reader_shift(net, ref, directions, sizes["shift_humans"], seed)
    reader_seconds = time.perf_counter() - t
    reader_cols = list(reader.values())
    human_fit = fit & (src == "human")

    logits = {}
    for g in (None, *GENERATORS):
        other_families = np.array([FORGER_FAMILY[f] != g for f in forger_names], dtype=bool)
        for extra, what in ((None, ""), (generic, "generic forgeries"), (forgers[other_families], "new forgers"),
                            (aligned, "aligned reconstructions")):
            logits[(g, what)] = _cnn_logits(train_set, extra, what, g, sizes["epochs"], ev.images, seed)

    table: dict[str, dict[str, dict]] = {row: {} for row in ROWS}
    for s in SOURCES:
        test = held & np.isin(src, ["human", s])
        fit_s = fit & np.isin(src, ["human", *[g for g in GENERATORS if g != s]])
        out_key = s if s in GENERATORS else None  # fonts: no CNN trained on them, so "without" = reference
        without, without_generic = logits[(out_key, "")], logits[(out_key, "generic forgeries")]
        reader_lr = _lr(reader_cols, y, fit_s)
        scores = {
            "with_it": logits[(None, "")][test] if s in GENERATORS else None,
            "without": without[test],
            "without_generic": without_generic[test],
            "without_forgers": logits[(out_key, "new forgers")][test],
            "without_aligned": logits[(out_key, "aligned reconstructions")][test],
            "reader": reader_lr(test),
            "without_reader": _lr([without, *reader_cols], y, fit_s)(test),
            "without_or_reader": np.maximum(_human_quantile(without[test], without[human_fit]),
                                            _human_quantile(reader_lr(test), reader_lr(human_fit))),
            "without_generic_reader": _lr([without_generic, *reader_cols], y, fit_s)(test),
        }
        for row, score in scores.items():
            table[row][s] = None if score is None else metrics(y[test], score)
    for s in SOURCES:
        log(f"{NAME}: {s} left out: " + ", ".join(f"{row} {fmt(table[row][s] and table[row][s]['auroc'])}/"
                                                  f"{fmt(table[row][s] and table[row][s]['tpr_at_1pct_fpr'])}"
                                                  for row in ROWS))
    tests = {s: held & np.isin(src, ["human", s]) for s in SOURCES}
    alone = {name: {s: metrics(y[rows], directions[name] * v[rows]) for s, rows in tests.items()}
             for name, v in reader.items()}
    result = {
        "benchmark": NAME,
        "quick": quick,
        "seed": seed,
        "sizes": sizes,
        "counts": {"train": {s: int((train_set.source == s).sum()) for s in np.unique(train_set.source)},
                   "generic_forgeries": int(len(generic)),
                   "new_forgers": {f: int((forger_names == f).sum()) for f in FORGER_FAMILY},
                   "aligned_reconstructions": int(len(aligned)),
                   "eval_fit": {s: int((src[fit] == s).sum()) for s in np.unique(src)},
                   "eval_heldout": {s: int((src[held] == s).sum()) for s in np.unique(src)}},
        "rows": {row: ROW_TITLES[row] for row in ROWS},
        "results": table,
        "reader_signals_alone": alone,
        "reader_directions": directions,
        "reader_shift": shift,
        "reader_seconds": round(reader_seconds, 1),
        "seconds": round(time.perf_counter() - t_start, 1),
        "bundle": str(DEFAULT_BUNDLE),
        "machine": machine_info(),
    }
    write_result(out_dir, NAME, result)
    return result


# --------------------------------------------------------------------------- outputs


def markdown(result: dict) -> str:
    sizes = result["sizes"]
    lines = [f"Each column leaves one source out of every fitted part; AUROC / TPR at 1% FPR on the held-out half, "
             f"human vs that source. ScanCNNs: 16/32/64 channels, {sizes['epochs']} epochs, "
             f"{sizes['train_per_generator']} samples per generator (plus "
             f"{result['counts']['generic_forgeries']} scanned generic forgeries, or up to "
             f"{sum(result['counts'].get('new_forgers', {}).values())} frames of the new forgers, or "
             f"{result['counts'].get('aligned_reconstructions', 0)} of aligned reconstructions, where named); "
             f"{sizes['reader_refs']} MNIST train digits as the reader's reference. {result['seconds'] / 60:.0f} min.",
             "", "| | " + " | ".join(SOURCES) + " |", "|---|" + "---|" * len(SOURCES)]
    for row in result["rows"]:
        cells = []
        for s in SOURCES:
            m = result["results"][row].get(s)
            cells.append("-" if not m else f"{fmt(m['auroc'])} / {fmt(m['tpr_at_1pct_fpr'])}")
        lines.append(f"| {result['rows'][row]} | " + " | ".join(cells) + " |")
    lines += ["", "Reader signals one at a time (oriented on the fit half): " + "; ".join(
        f"{name} " + ", ".join(f"{s} {fmt(m[s]['auroc'])}" for s in SOURCES)
        for name, m in result["reader_signals_alone"].items()) + "."]
    shift = result["reader_shift"]
    lines += ["", f"Reader signals on {shift['n_human']} human scans (MNIST test[5000:]) transformed as in the "
              "robustness benchmark: the fraction past the untransformed scans' 99th percentile, towards machine (the "
              "false-positive rate of a 1% threshold set on clean scans): " + "; ".join(
                  f"{cond}: " + ", ".join(f"{name} {fmt(v)}" for name, v in per.items())
                  for cond, per in shift["fpr_at_clean_1pct"].items()) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, markdown, __doc__, results=RESULTS)
