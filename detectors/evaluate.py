"""Evaluate a bundle on two folders of scans: one human-written, one machine-made.

Every file goes through the same path as ``forensics score`` (preprocess -> signals ->
p_machine); files that fail are counted and listed, not scored.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from forensics.checkpoint import atomic_write_bytes
from forensics.errors import ForensicsError

from .bundle import Bundle
from .calibrate import metrics
from .engine import score_paths
from .score import Thresholds


def evaluate_dirs(human_dir: str | Path, machine_dir: str | Path, bundle: Bundle, roc_path: str | Path | None = None,
                  t_machine: float | None = None, batch_size: int = 256, stability: bool = False) -> dict[str, Any]:
    """AUROC, average precision, TPR at 1% FPR, FPR and TPR at ``t_machine`` (default: the
    bundle's); a ROC PNG if asked.

    Stability is off by default: the metrics use p_machine alone, which re-scans do not change.
    """
    t_machine = bundle.thresholds.t_machine if t_machine is None else t_machine
    thresholds = Thresholds(t_machine=t_machine, t_human=min(bundle.thresholds.t_human, t_machine / 2))
    p, failed = {}, []
    for label, folder in (("human", human_dir), ("machine", machine_dir)):
        values = []
        for rec in score_paths([str(folder)], bundle, batch_size=batch_size, stability=stability,
                               thresholds=thresholds):
            if rec["status"] == "ok":
                values.append(rec["p_machine"])
            else:
                failed.append({"file": rec["file"], "error": rec["error"], "class": label})
        if not values:
            raise ForensicsError(f"{folder}: no {label} scan could be scored ({len(failed)} failed)")
        p[label] = np.array(values)
    y = np.concatenate([np.zeros(len(p["human"]), np.int64), np.ones(len(p["machine"]), np.int64)])
    score = np.concatenate([p["human"], p["machine"]])
    out: dict[str, Any] = metrics(y, score)
    out["threshold"] = t_machine
    out["fpr_at_threshold"] = float((p["human"] >= t_machine).mean())
    out["tpr_at_threshold"] = float((p["machine"] >= t_machine).mean())
    out["failed"] = failed
    if roc_path is not None:
        out["roc"] = str(write_roc_png(y, score, roc_path, t_machine))
    return out


def write_roc_png(y: np.ndarray, score: np.ndarray, path: str | Path, threshold: float | None = None) -> Path:
    """The ROC curve as a PNG, written atomically (readers never see half a file)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and no GUI toolkit imported
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, score)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    try:
        ax.plot(fpr, tpr, lw=2, label=f"detector (AUROC {roc_auc_score(y, score):.3f})")
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
        if threshold is not None:
            h, m = score[y == 0], score[y == 1]
            ax.scatter([(h >= threshold).mean()], [(m >= threshold).mean()], c="red", zorder=3,
                       label=f"p_machine >= {threshold:g}")
        ax.set_xlabel("false positive rate (human called machine)")
        ax.set_ylabel("true positive rate (machine caught)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title(f"{int((y == 0).sum())} human, {int((y == 1).sum())} machine scans", fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
