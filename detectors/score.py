"""Scoring: preprocessed images -> signals -> calibrated p_machine -> one record each.

The record (``forensics.record.Record``) is defined with the plumbing, so that reports can
render it without importing the detectors. The same image gets the same p_machine in any
batch (see detectors.signals on fixed-size chunks) and with any torch thread count (the
models run in forensics.threads.one_thread).
"""

from __future__ import annotations

import numpy as np

from forensics.record import LOCATION_KEYS, RECORD_KEYS, Record, Stability  # noqa: F401  (RECORD_KEYS: re-exported)
from forensics.threads import one_thread

from . import evidence, printscan, signals
from .bundle import DEFAULT_T_HUMAN, DEFAULT_T_MACHINE, Bundle, Thresholds  # noqa: F401  (re-exported)
from .reader import read_digits
from .signals import ALL_SIGNALS, as_batch

TOP_SIGNALS = 3
HEATMAP_DECIMALS = 4  # nats; finer than any colour map shows, and keeps JSON small


def _model_signals(images, bundle: Bundle, names) -> dict[str, np.ndarray]:
    """signals.compute_signals on one thread (forensics.threads), so the result never depends on the
    caller's thread count (as signals' fixed-size chunks make it independent of the batch)."""
    with one_thread():
        return signals.compute_signals(images, bundle.models, names)


def p_machine(images, bundle: Bundle) -> np.ndarray:
    """Calibrated p_machine [B] for preprocessed uint8 images, nothing else."""
    comb = bundle.combiner
    return comb.predict_proba(comb.matrix(_model_signals(images, bundle, comb.signals)))


def record_signals(bundle: Bundle, all_signals: bool = False) -> list[str]:
    """The signals records carry: the combiner's, or every signal; in ALL_SIGNALS order."""
    return list(ALL_SIGNALS) if all_signals else [n for n in ALL_SIGNALS if n in bundle.combiner.signals]


def to_check(p: np.ndarray, bundle: Bundle, stability: Stability, thresholds: Thresholds) -> np.ndarray:
    """Boolean [B]: which scans get the re-scan check (see forensics.record.Stability)."""
    if stability is Stability.off:
        return np.zeros(len(p), dtype=bool)
    if stability is Stability.all or bundle.stability is None:
        return np.ones(len(p), dtype=bool)
    return bundle.stability.could_flip(p, thresholds.t_machine, thresholds.t_human)


def score_images(images, bundle: Bundle, stability: Stability | bool = Stability.near,
                 thresholds: Thresholds | None = None, files: list[str | None] | None = None,
                 all_signals: bool = False, prior: float = evidence.DEFAULT_PRIOR) -> list[Record]:
    """Records for preprocessed uint8 images [B, 1, 28, 28] (or [B, 28, 28]).

    The signals are the combiner's, or every signal (the PixelCNN's too, with its heatmap)
    with ``all_signals``; p_machine is the same either way. p_machine is the posterior at
    ``prior`` (the expected share of forgeries) from the model's likelihood ratio, which the
    record also carries (detectors.evidence); verdicts and the re-scan check use p_machine, at
    ``thresholds`` (default: the bundle's)."""
    stability = Stability.of(stability)
    thresholds = thresholds or bundle.thresholds
    x = as_batch(images).numpy()[:, 0]
    b = len(x)
    if b == 0:
        return []
    comb = bundle.combiner
    names = record_signals(bundle, all_signals)
    sig = _model_signals(x, bundle, names)
    matrix = comb.matrix(sig)
    log_lr = comb.log_lr(matrix)
    p = evidence.posterior(log_lr, prior)
    log10_lr = evidence.log10_lr(log_lr)
    verdicts = thresholds.verdict(p)
    check = to_check(p, bundle, stability, thresholds)
    p_min, p_max = p.copy(), p.copy()
    stable: list[bool | None] = [None] * b
    idx = np.flatnonzero(check)
    if idx.size:
        # Every checked image's re-scans go through the models in one batch.
        rescanned = np.stack([np.stack(printscan.rescans(x[i])) for i in idx])  # [k, R, 28, 28]
        r = rescanned.shape[1]
        p_re = evidence.posterior(comb.log_lr(comb.matrix(_model_signals(rescanned.reshape(-1, *x.shape[1:]), bundle,
                                                                         comb.signals))), prior).reshape(-1, r)
        flips = (thresholds.verdict(p_re) != verdicts[idx, None]).any(axis=1)
        p_min[idx] = np.minimum(p[idx], p_re.min(axis=1))
        p_max[idx] = np.maximum(p[idx], p_re.max(axis=1))
        verdicts[idx] = np.where(flips, "uncertain", verdicts[idx])
        for i, flip in zip(idx, flips):
            stable[i] = not bool(flip)
    with one_thread():
        digits, _ = read_digits(bundle.reader, x)
        familiarity = signals.familiarity_logit(x, bundle.models) if bundle.familiarity is not None else None
    unfamiliar = bundle.familiarity.unfamiliar(familiarity) if familiarity is not None else np.zeros(b, dtype=bool)
    reasons = [reason(str(v), bool(u), s) for v, u, s in zip(verdicts, unfamiliar, stable)]
    verdicts[unfamiliar] = "uncertain"  # never machine (nor human) on novelty alone
    contrib = comb.contributions(matrix)
    percentiles = {n: bundle.reference.percentile(n, sig[n]) for n in names}
    heatmap = sig.get("heatmap")
    files = files or [None] * b
    records = []
    for i in range(b):
        records.append({
            "file": files[i],
            "status": "ok",
            "error": None,
            "verdict": str(verdicts[i]),
            "reason": reasons[i],
            "unfamiliar": None if familiarity is None else bool(unfamiliar[i]),
            "familiarity_logit": None if familiarity is None else float(familiarity[i]),
            "p_machine": float(p[i]),
            "p_machine_min": float(p_min[i]),
            "p_machine_max": float(p_max[i]),
            "stable": stable[i],
            "rescanned": None if stability is Stability.off else bool(check[i]),
            "digit": int(digits[i]),
            "signals": {n: {"value": float(sig[n][i]), "human_percentile": round(float(percentiles[n][i]), 2)}
                        for n in names},
            "top_signals": _top_signals(comb.signals, contrib[i], str(verdicts[i]), float(p[i])),
            "heatmap": None if heatmap is None else np.round(heatmap[i], HEATMAP_DECIMALS).tolist(),
            "preprocessed": x[i].tolist(),
            "prior": float(prior),
            "likelihood_ratio": float(10.0 ** log10_lr[i]),
            "log10_lr": float(log10_lr[i]),
            "lr_verbal": evidence.verbal(float(log10_lr[i])),
            **dict.fromkeys(LOCATION_KEYS),
        })
    return records


def reason(verdict: str, unfamiliar: bool, stable: bool | None) -> str:
    """What drove a verdict (one of REASONS), from the verdict before the unfamiliar check."""
    if unfamiliar:
        return "unfamiliar"
    if verdict == "machine":
        return "looks machine-made"
    if verdict == "human":
        return "looks unlike the machine sources"
    return "a re-scan changes it" if stable is False else "between the thresholds"


def _top_signals(names: list[str], contrib: np.ndarray, verdict: str, p: float) -> list[str]:
    """The signals pushing hardest towards the verdict (towards the nearer side if uncertain)."""
    towards_machine = verdict == "machine" or (verdict == "uncertain" and p >= 0.5)
    push = contrib if towards_machine else -contrib
    order = np.argsort(-push, kind="stable")
    return [names[j] for j in order[:TOP_SIGNALS] if push[j] > 0]
