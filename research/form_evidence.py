"""Probe (issue 21): does evidence across a form catch what one character cannot?

A tax form holds many characters written by one filer, or made by one forger. One diffusion
character is nearly an MNIST digit to the shipped bundle (AUROC ~0.62), but a form of ten gives
ten weak pieces of evidence. This measures, on held-out data only, how well a form's characters
together separate human forms from machine forms, and whether the naive combination (multiply
the characters' likelihood ratios, as if they were independent) over-states the evidence
against an honest filer whose whole form came through one unusual capture.

Forms: K characters of one source (human: MNIST test[5000:], never fitted; machine: fresh samples
of the bundle's generators, seeds the bundle never drew, and font forgeries), all captured the
same way (one condition and one set of its parameters per form: a plain scan, a print-and-scan,
or one of detectors.capture's eight), then preprocessed and scored as `forensics score` does
(the combiner's log likelihood ratio, no re-scans). Human forms come two ways: random digits,
and digits grouped by stroke mass (similar pens and hands on one form, a harsher test of the
independence assumption than random digits from many writers).

Form scores of the per-character natural-log LRs l_1..l_K:
  max       the largest (today's document rule: any machine box makes the page machine)
  mean      their mean
  sum       their sum: the form LR if characters were independent given the source
  fitted    logistic regression on the mean, one per K, fitted on the even-numbered forms and
            measured on the odd ones: a form LR calibrated on forms
Also the document rule as `forensics report` applies it to a page (any box whose verdict is
machine, with the bundle's thresholds, re-scan check and unfamiliar rule). Reported on the odd forms: AUROC and TPR at 1% FPR (all machine forms, and per family), the
Cllr of the sum and of the fitted LR, and the share of human forms whose form p_machine (prior
0.5) reaches the bundle's t_machine.

    FORENSICS_DATA=../shared/data python -m research.form_evidence
Diffusion samples come from research.diffusion_specialist's cache when it is there ($CACHE);
otherwise they are drawn (0.7 s each on 2 threads)."""
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from detectors import capture, evidence
from detectors.bundle import DEFAULT_BUNDLE, load_bundle, load_forgers
from detectors.calibrate import metrics, sample_generator
from detectors.fonts import font_forgeries
from detectors.printscan import preprocess_or_none, print_and_scan, render_scan
from detectors.score import score_images
from forensics.data import load_dataset

KS = (5, 10, 20)
N_MACHINE = 2000  # characters per generator (the cached diffusion set has 2,600)
N_PIXELCNN = 1000  # its sampling is 784 network passes
CONDITIONS = ("plain", "printscan", *capture.CAPTURES)
CACHE = Path(os.environ.get("CACHE", "/tmp/diffusion_specialist.npz"))
OUT = Path(__file__).parent / "results" / "form_evidence.json"


def machine_frames() -> dict[str, np.ndarray]:
    bundle = load_bundle(DEFAULT_BUNDLE)
    forgers = load_forgers(DEFAULT_BUNDLE)
    out = {}
    for i, name in enumerate(("dcgan", "fcgan", "vae", "pixelcnn")):
        t = time.perf_counter()
        n = N_PIXELCNN if name == "pixelcnn" else N_MACHINE
        out[name] = sample_generator(bundle.models, name, n, torch.Generator().manual_seed(500 + i), 100,
                                     forgers=forgers)
        print(f"sampled {n} {name} in {time.perf_counter() - t:.0f} s", flush=True)
    if CACHE.is_file():
        cached = np.load(CACHE)
        out["diffusion"] = np.concatenate([cached["fake_train"], cached["fake_held"]])
    else:
        out["diffusion"] = sample_generator(bundle.models, "diffusion", 1000, torch.Generator().manual_seed(100), 100,
                                            forgers=forgers)
    out["fonts"] = font_forgeries(N_MACHINE, np.random.default_rng(600))
    # Blank samples carry no ink to score; a form holds only written boxes.
    return {k: v[v.reshape(len(v), -1).max(axis=1) > 0] for k, v in out.items()}


def captured(frame: np.ndarray, condition: str, seed: int) -> np.ndarray | None:
    """The frame through ``condition`` with the form's parameters (the same rng seed per form)."""
    rng = np.random.default_rng(seed)
    if condition == "plain":
        return preprocess_or_none(render_scan(frame, scale=int(rng.integers(2, 5))))
    if condition == "printscan":
        return preprocess_or_none(print_and_scan(frame, rng))
    return preprocess_or_none(capture.capture(frame, condition, rng))


def forms(frames: np.ndarray, k: int, seed: int) -> list[tuple[str, int, list[np.ndarray]]]:
    """Consecutive runs of k frames as forms, each with one capture condition and seed."""
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, len(frames) - k + 1, k):
        condition = CONDITIONS[int(rng.integers(len(CONDITIONS)))]
        form_seed = int(rng.integers(2**31))
        chars = [c for c in (captured(f, condition, form_seed) for f in frames[start : start + k]) if c is not None]
        out.append((condition, form_seed, chars))
    return out


def score_forms(bundle, fs: list[tuple[str, int, list[np.ndarray]]]) -> tuple[list[np.ndarray], list[bool]]:
    """Per form: its characters' natural-log LRs, and whether any of them gets the verdict
    ``machine`` from `forensics score` (thresholds, re-scan check and unfamiliar rule included)."""
    fs = [f for f in fs if f[2]]
    x = np.stack([c for _, _, chars in fs for c in chars])
    log_lr, machine = [], []
    for i in range(0, len(x), 256):
        records = score_images(x[i : i + 256], bundle)
        log_lr += [r["log10_lr"] * math.log(10) for r in records]
        machine += [r["verdict"] == "machine" for r in records]
    bounds = np.cumsum([0] + [len(chars) for _, _, chars in fs])
    return ([np.array(log_lr[a:b]) for a, b in zip(bounds[:-1], bounds[1:])],
            [any(machine[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])


def form_scores(per_form: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {"max": np.array([f.max() for f in per_form]), "mean": np.array([f.mean() for f in per_form]),
            "sum": np.array([f.sum() for f in per_form])}


def _rounded(m: dict) -> dict:
    return {"auroc": round(m["auroc"], 3), "tpr_at_1pct_fpr": round(m["tpr_at_1pct_fpr"], 3),
            "n_human": m["n_human"], "n_machine": m["n_machine"]}


def evaluate(bundle, human: dict[str, list], machine: dict[str, list], k: int) -> dict:
    """human[kind] / machine[family]: per-form arrays of character log LRs."""
    from sklearn.linear_model import LogisticRegression

    t_machine = bundle.thresholds.t_machine
    result = {"k": k}
    for kind, h_forms in human.items():
        h = form_scores(h_forms)
        m_all = {fam: form_scores(f) for fam, f in machine.items()}
        fit_h = np.arange(len(h_forms)) % 2 == 0
        # The fitted form LR: logistic regression on the mean log LR, even forms, all families pooled,
        # reweighted to the 50/50 calibration prior so its log-odds are a likelihood ratio.
        xm = np.concatenate([m["mean"][::2] for m in m_all.values()])
        xh = h["mean"][fit_h]
        x = np.concatenate([xh, xm])[:, None]
        y = np.concatenate([np.zeros(len(xh)), np.ones(len(xm))])
        w = np.where(y == 1, len(y) / (2 * len(xm)), len(y) / (2 * len(xh)))
        lr_fit = LogisticRegression(C=1e4).fit(x, y, sample_weight=w)

        def fitted(mean: np.ndarray) -> np.ndarray:
            return lr_fit.decision_function(mean[:, None])

        per = {}
        h_held = {a: v[~fit_h] for a, v in h.items()}
        h_held["fitted"] = fitted(h_held["mean"])
        m_held_all = {a: [] for a in ("max", "mean", "sum", "fitted")}
        for fam, m in m_all.items():
            mh = {a: v[1::2] for a, v in m.items()}
            mh["fitted"] = fitted(mh["mean"])
            per[fam] = {}
            for a in m_held_all:
                m_held_all[a].append(mh[a])
                y2 = np.r_[np.zeros(len(h_held[a])), np.ones(len(mh[a]))]
                per[fam][a] = _rounded(metrics(y2, np.r_[h_held[a], mh[a]]))
        overall = {}
        for a, parts in m_held_all.items():
            mm = np.concatenate(parts)
            overall[a] = _rounded(metrics(np.r_[np.zeros(len(h_held[a])), np.ones(len(mm))], np.r_[h_held[a], mm]))
            overall[a]["cllr"] = (round(evidence.cllr(mm, h_held[a]), 3) if a in ("sum", "fitted") else None)
            if a in ("sum", "fitted", "max"):
                # Form p_machine at prior 0.5 against the bundle's t_machine (max: the document rule).
                overall[a]["human_forms_called_machine"] = round(float(np.mean(
                    evidence.posterior(h_held[a]) >= t_machine)), 4)
                overall[a]["machine_forms_called_machine"] = round(float(np.mean(evidence.posterior(mm) >= t_machine)), 4)
        result[kind] = {"all": overall, "per_family": per,
                        "fitted_slope": round(float(lr_fit.coef_[0, 0]), 3),
                        "fitted_intercept": round(float(lr_fit.intercept_[0]), 3)}
    return result


def main() -> None:
    torch.set_num_threads(2)
    started = time.perf_counter()
    bundle = load_bundle(DEFAULT_BUNDLE)
    test = load_dataset("mnist", train=False).images[5000:, 0].numpy()
    rng = np.random.default_rng(0)
    human_random = test[rng.permutation(len(test))]
    human_grouped = test[np.argsort((test > 127).sum(axis=(1, 2)), kind="stable")]  # stroke mass: pen and hand
    made = machine_frames()
    print(f"frames: human {len(test)}, " + ", ".join(f"{k} {len(v)}" for k, v in made.items()), flush=True)
    results, char_level = [], {}
    for k in KS:
        t = time.perf_counter()
        scored_h, any_machine = {}, {}
        for kind, frames in (("random", human_random), ("grouped by stroke mass", human_grouped)):
            fs = forms(frames, k, seed=10 + k)
            scored_h[kind], any_machine[kind] = score_forms(bundle, fs)
        scored_m = {}
        for i, (fam, frames) in enumerate(made.items()):
            fs = forms(frames[np.random.default_rng(20 + i).permutation(len(frames))], k, seed=30 + 7 * i + k)
            scored_m[fam], any_machine[fam] = score_forms(bundle, fs)
        if k == KS[0]:
            # One character alone, on the odd forms' characters: the baseline forms must beat.
            h = np.concatenate(scored_h["random"][1::2])
            for fam, f in scored_m.items():
                m = np.concatenate(f[1::2])
                char_level[fam] = _rounded(metrics(np.r_[np.zeros(len(h)), np.ones(len(m))], np.r_[h, m]))
        results.append(evaluate(bundle, scored_h, scored_m, k))
        # The document rule as `forensics report` applies it: any box with the verdict machine.
        results[-1]["document_rule_any_machine_box"] = {
            kind: round(float(np.mean(flags[1::2])), 4) for kind, flags in any_machine.items()}
        print(f"K = {k}: {time.perf_counter() - t:.0f} s; " + json.dumps(results[-1]["random"]["all"]), flush=True)
    out = {"probe": "form_evidence", "human": "MNIST test[5000:]", "conditions": list(CONDITIONS),
           "machine_characters": {k: int(len(v)) for k, v in made.items()},
           "t_machine": bundle.thresholds.t_machine, "character_alone": char_level, "forms": results,
           "seconds": round(time.perf_counter() - started)}
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(char_level), flush=True)
    print(f"wrote {OUT} ({out['seconds']} s)")


if __name__ == "__main__":
    main()
