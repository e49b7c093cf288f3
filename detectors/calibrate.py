"""Calibration: a labelled set of human and machine digits, the combiner fitted on half of
it, and an ablation of every signal measured on the other half.

human   = held-out MNIST test images (the generators train on the train split only)
machine = images of every generator family: class-conditional PixelCNN samples of every
          digit in turn, DCGAN and FC-GAN samples, and where the run has them the VAE's and
          the diffusion model's, half samples and half aligned fakes (REWRITES: the VAE's
          reconstructions and the DDPM's rewrites of the human digits); and font forgeries
          (detectors.fonts), typed digits in disguise, as many as of one generator
Each image also gets a random print-and-scan twin (detectors.printscan), human and machine
alike, and every image, twin or not, goes through forensics.preprocess exactly as a scan
would at scoring time. The split is 50/50, stratified by source, and an image and its
twin always land on the same side (otherwise the held-out half would hold near-copies of
fitted images).

The ScanCNN (detectors.cnn, the cnn_logit signal) is trained first, on a separate set built
the same way from MNIST *train* digits and generator samples drawn with another seed, so no
calibration image, fit or held-out, is one it trained on. For the leave-one-family-out
rows of the ablation a ScanCNN is trained again without that family's images, rewrites
included: a held-out family must be unseen by every part of the detector, not only by the
combiner. The
FontCNN (font_logit) is the same network trained on the same human digits vs font forgeries;
with fonts left out there is no FontCNN at all.

The combiner (standardise -> logistic regression -> Platt) sees the fit half only; Platt's
two numbers are fitted on out-of-fold decision values, not on the values the regression
was fitted to, which would be over-confident. Classes are weighted equally, so p_machine
is calibrated for a 50/50 prior.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from forensics.checkpoint import read_manifest, sha256_file
from forensics.data import BUILTIN, data_checksums, load_dataset
from forensics.errors import CheckpointError, ForensicsError
from forensics.threads import worker_init

from . import capture, printscan
from .fonts import font_forgeries
from .outliers import not_digits
from .cnn import CNNConfig, ScanCNN, for_inference, train_cnn
from .bundle import (CNN_NAMES, FAMILIAR_NAME, FORGER_NAMES, MODEL_NAMES, Combiner, Familiarity, HumanReference,
                     StabilityBound, Thresholds, describe_bundle, load_bundle, load_forgers, load_models, logit,
                     write_bundle)
from .signals import (ALL_SIGNALS, FAST_SIGNALS, REQUIRED_SIGNALS, DetectorModels, as_batch, chunked, compute_signals,
                      either_logit)

GENERATORS = (*MODEL_NAMES, *FORGER_NAMES)  # the trained generator families (forgers only where the run has them)
# Aligned fakes (issue 21, Rajan et al. 2025): machine digits made *from* human digits, so the
# content is a human's and only the generator's trace tells them apart. A family with a
# rewriter gives half its images as samples and half as rewrites of calibration's own human digits.
REWRITES = {"vae-rewrite": "vae", "diffusion-rewrite": "diffusion"}  # source -> the family that makes it
DIFFUSION_REWRITE_T = 300  # of 1000 steps: the digit's shape survives, every pixel is redrawn
FORGERIES = ("font",)  # machine sources that need no trained model
FAMILIES = (*GENERATORS, *FORGERIES)  # what leave-one-family-out leaves out, a family's rewrites included
MACHINE_SOURCES = (*GENERATORS, *REWRITES, *FORGERIES)
SOURCES = ("human", *MACHINE_SOURCES)

# Every base image, human or machine, is seen as a scan, a print-and-scan and one capture
# drawn from detectors.capture with the same distribution for every source (issue 21): a
# low-resolution, faxed or phone-photographed digit then carries no label of its own.
CONDITIONS = ("clean", "printscan", "capture")
LR_C = 1.0  # L2 strength of the logistic regression; the inputs are standardised
CV_FOLDS = 5
EXTRA_SIGNALS_MIN_GAIN = 0.01  # the PixelCNN's signals must cut cross-validated log-loss by 1% to be kept
MAX_FPR = 0.01
# Signal sets a combiner can be fitted on. "required" is the original design (both
# discriminators and the PixelCNN likelihood); "fast" leaves out the PixelCNN signals, whose
# 10 class forwards cost several times every other model together; "all" is every signal.
SIGNAL_SETS = {"required": REQUIRED_SIGNALS, "fast": FAST_SIGNALS, "all": ALL_SIGNALS}
STABILITY_QUANTILE = 0.999  # of the fit half's largest re-scan move: the bound Stability.near uses

# Calibration draws its human images from the first half of the MNIST test split only; the
# second half (test[5000:]) is never seen by the generators or the combiner, so tests and
# benchmarks can evaluate the shipped bundle on it honestly.
HUMAN_POOL = 5000
CNN_SEED_OFFSET = 1000  # the ScanCNN's generator samples use seed + this, calibration's use seed
OUTLIER_SEED_OFFSET = 2000  # the familiarity CNN's outliers (detectors.outliers)
THRESHOLD_BUDGET = 0.005  # the fitted t_machine calls at most this share of any one capture's fit-half human scans
# machine: half of issue 21's 1% target, so that a held-out set of 600 has room for chance
THRESHOLD_SEED_OFFSET = 3000  # the captures the threshold is fitted on
THRESHOLD_DECIMALS = 3
FAMILIAR_QUANTILE = 0.995  # of human calibration images' familiarity logits: above it, "unfamiliar"


def family(source: np.ndarray) -> np.ndarray:
    """The family of each source (a rewrite's generator; any other source is its own family)."""
    return np.array([REWRITES.get(str(s), str(s)) for s in source])


@dataclass
class CalibrationSet:
    """Preprocessed frames with where each came from. Rows of one base image share a group."""

    images: np.ndarray  # uint8 [N, 28, 28]
    source: np.ndarray  # str [N], one of SOURCES
    condition: np.ndarray  # str [N], one of CONDITIONS
    group: np.ndarray  # int [N]
    dropped: dict  # "source/condition" -> frames preprocessing found no ink in

    @property
    def is_machine(self) -> np.ndarray:
        return (self.source != "human").astype(np.int64)


# --------------------------------------------------------------------------- the data


def _progress(console: Console | None) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, disable=console is None, transient=False)


def sample_generator(models: DetectorModels, name: str, n: int, generator: torch.Generator, batch: int,
                     progress: Progress | None = None, forgers: dict | None = None) -> np.ndarray:
    """n samples of one generator as uint8 [n, 28, 28]; a class-conditional one draws every
    digit in turn. ``forgers`` holds the FORGER_NAMES models (generators.load.Generator)."""
    task = progress.add_task(f"sampling {name}", total=n) if progress else None
    parts, done = [], 0
    while done < n:
        k = min(batch, n - done)
        if name == "pixelcnn":
            model = models.pixelcnn.eval()
            classes = int(model.cfg.num_classes)
            y = (torch.arange(done, done + k) % classes).to(models.device) if classes else None
            x = model.sample(k, y=y, generator=generator)
        elif name in FORGER_NAMES:
            forger = forgers[name]
            y = (torch.arange(done, done + k) % forger.num_classes).to(models.device) if forger.conditional else None
            x = forger.network.eval().sample(k, y=y, generator=generator)
        else:
            x = getattr(models, name).sample(k, generator=generator)
        parts.append(x.cpu()[:, 0].numpy())
        done += k
        if progress:
            progress.advance(task, k)
    return np.concatenate(parts) if parts else np.zeros((0, 28, 28), np.uint8)


@torch.no_grad()
def rewrite_digits(forger, name: str, frames: np.ndarray, digits: np.ndarray, generator: torch.Generator,
                   batch: int, progress: Progress | None = None) -> np.ndarray:
    """Source ``name`` (one of REWRITES) made from human frames uint8 [n, 28, 28] whose labels
    are ``digits``: the VAE's reconstruction, or the DDPM's denoising from DIFFUSION_REWRITE_T."""
    task = progress.add_task(f"rewriting with {REWRITES[name]}", total=len(frames)) if progress else None
    net = forger.network.eval()
    device = forger.network.head_weight.device
    parts = []
    for start in range(0, len(frames), batch):
        x = torch.as_tensor(frames[start : start + batch])[:, None].to(device)
        y = torch.as_tensor(digits[start : start + batch]).long().to(device) if forger.conditional else None
        if name == "vae-rewrite":
            out = net.reconstruct(x, y)
        else:
            out = net.rewrite(x, y, t=DIFFUSION_REWRITE_T, generator=generator)
        parts.append(out.cpu()[:, 0].numpy())
        if progress:
            progress.advance(task, len(x))
    return np.concatenate(parts) if parts else np.zeros((0, 28, 28), np.uint8)


MADE_IN_CHUNK = {"font": font_forgeries, "outlier": not_digits}  # sources made from a count, not sampled
PREP_CHUNK = 500  # base images per task; each chunk draws from its own seeded generator, so the
# frames are the same whatever the number of workers that made them


def scan_chunk(task: tuple[str, np.ndarray | int, list[int]]) -> list[tuple[np.ndarray | None, ...]]:
    """One chunk of base images -> (clean, print-and-scan, capture) preprocessed frames (one per
    CONDITIONS), None where no ink.

    A task is (source, frames, seed key), or (a MADE_IN_CHUNK source, count, seed key): font
    forgeries and outliers are made in the chunk too, since typing and warping them costs as
    much as scanning."""
    name, frames, key = task
    rng = np.random.default_rng(key)
    if name in MADE_IN_CHUNK:
        frames = MADE_IN_CHUNK[name](int(frames), np.random.default_rng([*key, 1]))
    out = []
    for frame in frames:
        # Even the "clean" version is rendered as a scan (dark ink on white, 2-4x) and
        # preprocessed back: a raw MNIST frame is exactly what the models trained on, so a
        # combiner fitted on raw frames learns "pristine MNIST = human" and calls every real
        # scan of a human digit machine-made.
        clean = printscan.render_scan(frame, scale=int(rng.integers(2, 5)))
        captured = capture.capture(frame, capture.CAPTURES[int(rng.integers(len(capture.CAPTURES)))], rng)
        out.append((printscan.preprocess_or_none(np.asarray(clean)), printscan.augment([frame], rng)[0],
                    printscan.preprocess_or_none(captured)))
    return out


def _map(fn, tasks: list, workers: int):
    """fn over tasks in order, in ``workers`` processes (spawned: forking a process that has
    started torch's thread pool can hang), or inline for one."""
    if workers <= 1:
        yield from map(fn, tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=worker_init) as pool:
        yield from pool.map(fn, tasks)


def build_calibration_set(models: DetectorModels, human: np.ndarray, per_generator: int, seed: int = 0,
                          sample_batch: int = 100, progress: Progress | None = None,
                          workers: int = 1, forgers: dict | None = None,
                          human_digits: np.ndarray | None = None, aligned_fakes: bool = False) -> CalibrationSet:
    """Human frames (as given), per_generator images of each generator family and as many font
    forgeries, each preprocessed as a scan, a print-and-scan and a random capture.

    With ``aligned_fakes`` a family with a rewriter (REWRITES; ``forgers`` holds its model) gives
    half its images as samples, half as rewrites of the human frames (whose labels are
    ``human_digits``): the VAE rewrites the first of them, the diffusion model the next, wrapping
    round if there are few.
    Scanning and preprocessing run in ``workers`` processes; the result does not depend on
    how many."""
    forgers = forgers or {}
    human = np.asarray(human, dtype=np.uint8)
    digits = np.zeros(len(human), np.int64) if human_digits is None else np.asarray(human_digits, np.int64)
    g = torch.Generator(device=models.device).manual_seed(seed)
    bases: list[tuple[str, np.ndarray | int]] = [("human", human)]
    rewrites, offset = [], 0
    for name in (*MODEL_NAMES, *(f for f in FORGER_NAMES if f in forgers)):
        rewriter = next((r for r, fam in REWRITES.items() if fam == name), None) if aligned_fakes else None
        n_rewrites = per_generator // 2 if rewriter else 0
        bases.append((name, sample_generator(models, name, per_generator - n_rewrites, g, sample_batch, progress,
                                             forgers)))
        if rewriter:
            rows = (offset + np.arange(n_rewrites)) % len(human)
            offset += n_rewrites
            rewrites.append((rewriter, rewrite_digits(forgers[name], rewriter, human[rows], digits[rows], g,
                                                      sample_batch, progress)))
    bases += [*rewrites, ("font", per_generator)]
    return scan_sources(bases, seed, progress, workers)


def scan_sources(bases: list[tuple[str, np.ndarray | int]], seed: int, progress: Progress | None = None,
                 workers: int = 1) -> CalibrationSet:
    """Each source's base frames (or, for a MADE_IN_CHUNK source, a count) under every condition."""
    tasks, total = [], 0
    for si, (name, frames) in enumerate(bases):
        count = frames if isinstance(frames, int) else len(frames)
        total += count
        for ci, start in enumerate(range(0, count, PREP_CHUNK)):
            k = min(PREP_CHUNK, count - start)
            tasks.append((name, k if name in MADE_IN_CHUNK else frames[start : start + k], [seed, si, ci]))
    task = progress.add_task("preprocess + print-and-scan", total=total) if progress else None
    images, source, condition, group = [], [], [], []
    dropped = {f"{s}/{c}": 0 for s in dict.fromkeys(name for name, _ in bases) for c in CONDITIONS}
    gid = 0
    for (name, _, _), views in zip(tasks, _map(scan_chunk, tasks, workers)):
        for base in views:
            for cond, out in zip(CONDITIONS, base):
                if out is None:
                    dropped[f"{name}/{cond}"] += 1
                    continue
                images.append(out)
                source.append(name)
                condition.append(cond)
                group.append(gid)
            gid += 1
        if progress:
            progress.advance(task, len(views))
    return CalibrationSet(np.stack(images).astype(np.uint8), np.array(source), np.array(condition),
                          np.array(group, dtype=np.int64), dropped)


def signal_table(images: np.ndarray, models: DetectorModels, batch: int = 256, progress: Progress | None = None,
                 names=ALL_SIGNALS, what: str = "signals") -> dict[str, np.ndarray]:
    """compute_signals over many frames in batches; scalar signals only."""
    task = progress.add_task(what, total=len(images)) if progress else None
    parts: dict[str, list] = {name: [] for name in names}
    for start in range(0, len(images), batch):
        sig = compute_signals(images[start : start + batch], models, names)
        for name in names:
            parts[name].append(sig[name])
        if progress:
            progress.advance(task, min(batch, len(images) - start))
    return {name: np.concatenate(v) if v else np.zeros(0) for name, v in parts.items()}


def rescan_chunk(frames: np.ndarray) -> np.ndarray:
    """printscan.rescans of each frame: uint8 [n, R, 28, 28]."""
    return np.stack([np.stack(printscan.rescans(f)) for f in frames]).astype(np.uint8)


def measure_stability(cal: CalibrationSet, p: np.ndarray, models: DetectorModels, combiner: Combiner,
                      fit: np.ndarray, batch: int = 256, progress: Progress | None = None,
                      workers: int = 1, thresholds: Thresholds = Thresholds()) -> StabilityBound:
    """How far the fixed re-scans move p_machine towards the other side (in logits), from every
    calibration image.

    Each bound is the STABILITY_QUANTILE, over the fit half's images with that verdict (default
    thresholds), of the largest move towards the other threshold; the held-out half says what
    Stability.near does with them: the share of scans it re-scans, and the machine or human
    verdicts that a full re-scan would have flipped but that it skipped."""
    chunks = [cal.images[i : i + PREP_CHUNK] for i in range(0, len(cal.images), PREP_CHUNK)]
    rescanned = np.concatenate(list(_map(rescan_chunk, chunks, workers)))  # [N, R, 28, 28]
    r = rescanned.shape[1]
    sig = signal_table(rescanned.reshape(-1, *rescanned.shape[2:]), models, batch, progress, combiner.signals,
                       "re-scans")
    p_re = combiner.predict_proba(combiner.matrix(sig)).reshape(-1, r)
    z, z_re = logit(p), logit(p_re)
    up, down = z_re.max(axis=1) - z, z - z_re.min(axis=1)  # towards machine, towards human
    t = thresholds
    verdict = t.verdict(p)
    human, machine = verdict == "human", verdict == "machine"

    def bound(moves: np.ndarray, rows: np.ndarray) -> float:
        if not rows.any():  # no such verdict to learn from (a tiny calibration): the largest move of any kind
            return float(np.maximum(up, down)[fit].max())
        return float(np.quantile(moves[rows], STABILITY_QUANTILE))

    result = StabilityBound(bound(up, fit & human), bound(down, fit & machine))
    # A flip that matters: a machine or human verdict that some re-scan changes.
    flips = (t.verdict(p_re) != verdict[:, None]).any(axis=1) & (human | machine)
    checked = result.could_flip(p, t.t_machine, t.t_human)
    held = ~fit
    y = cal.is_machine

    def outcome(rows: np.ndarray) -> dict:
        n = int(rows.sum())
        missed = int((flips & ~checked & rows).sum())
        return {"rows": n, "re_scanned_share": float(checked[rows].mean()) if n else None,
                "flipped_by_a_rescan": int((flips & rows).sum()), "flips_missed": missed,
                "flips_missed_share": missed / n if n else None}

    result.info = {
        "quantile": STABILITY_QUANTILE, "fit_rows": int(fit.sum()), "rescans": list(printscan.RESCANS),
        "thresholds": t.to_dict(), "combiner_signals": list(combiner.signals),
        "move_fit": {"toward_machine_from_human": _spread(up[fit & human]),
                     "toward_human_from_machine": _spread(down[fit & machine])},
        "heldout": {"all": outcome(held), "human": outcome(held & (y == 0)), "machine": outcome(held & (y == 1))},
    }
    return result


def capture_chunk(task: tuple[str, np.ndarray, list[int]]) -> list[np.ndarray | None]:
    """One chunk of human base frames through one capture, preprocessed (None where no ink)."""
    name, frames, key = task
    rng = np.random.default_rng(key)
    return [printscan.preprocess_or_none(capture.capture(f, name, rng)) for f in frames]


def smallest_threshold(p: np.ndarray, budget: float, floor: float) -> float:
    """The smallest t >= ``floor`` on a 10^-THRESHOLD_DECIMALS grid with share(p >= t) <= budget."""
    k = int(np.floor(budget * len(p)))  # this many may reach t
    if k >= len(p):
        return floor
    above = np.sort(p)[::-1][k]  # the (k+1)-th largest must stay below t
    step = 10.0 ** -THRESHOLD_DECIMALS
    return max(floor, round((np.floor(above / step) + 1) * step, THRESHOLD_DECIMALS))


def fit_thresholds(cal: CalibrationSet, p: np.ndarray, human: np.ndarray, fit: np.ndarray, models: DetectorModels,
                   combiner: Combiner, seed: int, batch: int = 256, progress: Progress | None = None,
                   workers: int = 1) -> Thresholds:
    """The verdict thresholds: t_machine is the smallest value >= the default at which no
    condition of the fit half's human digits (clean, print-and-scan, and every capture of
    detectors.capture applied to each of them) has more than THRESHOLD_BUDGET called machine.

    No capture is known at scoring time, so one threshold must hold for the worst of them. The
    re-scan check is left out (it only turns verdicts uncertain), so the fit errs towards fewer
    machine verdicts. ``info`` has each condition's share on the fit half and, on the held-out
    half, the share of human and of each machine source called machine at the fitted value and
    at the default: what the higher threshold costs."""
    human_fit = fit & (cal.source == "human")
    bases = np.unique(cal.group[human_fit])  # a human image's group is its index in ``human``
    per_condition = {c: p[human_fit & (cal.condition == c)] for c in ("clean", "printscan")}
    tasks = [(name, human[bases[i : i + PREP_CHUNK]], [seed + THRESHOLD_SEED_OFFSET, ci, i])
             for ci, name in enumerate(capture.CAPTURES) for i in range(0, len(bases), PREP_CHUNK)]
    frames: dict[str, list] = {name: [] for name in capture.CAPTURES}
    for (name, _, _), out in zip(tasks, _map(capture_chunk, tasks, workers)):
        frames[name] += [f for f in out if f is not None]
    for name, f in frames.items():
        sig = signal_table(np.stack(f), models, batch, progress, combiner.signals, f"thresholds: {name}")
        per_condition[name] = combiner.predict_proba(combiner.matrix(sig))
    default = Thresholds()
    wanted = {c: smallest_threshold(v, THRESHOLD_BUDGET, default.t_machine) for c, v in per_condition.items()}
    t_machine = min(max(wanted.values()), 1.0)
    held = ~fit

    def called(t: float) -> dict:
        return {s: float((p[held & (cal.source == s)] >= t).mean()) for s in SOURCES if (held & (cal.source == s)).any()}

    info = {"rule": f"smallest t_machine >= {default.t_machine} with at most {THRESHOLD_BUDGET:.1%} of each "
                    "condition's fit-half human scans at or above it (no re-scan check)",
            "budget": THRESHOLD_BUDGET, "needed_by_condition": wanted,
            "fit_human_rows": {c: int(len(v)) for c, v in per_condition.items()},
            "fit_human_called_machine": {c: float((v >= t_machine).mean()) for c, v in per_condition.items()},
            "heldout_called_machine": {"fitted": called(t_machine), "default": called(default.t_machine)},
            "default_t_machine": default.t_machine}
    return Thresholds(t_machine, default.t_human, info)


def _spread(moves: np.ndarray) -> dict:
    return {"rows": int(len(moves)), "median": float(np.median(moves)) if len(moves) else None,
            "largest": float(moves.max()) if len(moves) else None}


def split_fit(cal: CalibrationSet, seed: int = 0, fraction: float = 0.5) -> np.ndarray:
    """Boolean mask of the fit rows: ``fraction`` of each source's groups, the rest held out."""
    rng = np.random.default_rng(seed + 1)
    fit_groups = []
    for name in SOURCES:
        groups = np.unique(cal.group[cal.source == name])
        rng.shuffle(groups)
        fit_groups.append(groups[: int(round(len(groups) * fraction))])
    return np.isin(cal.group, np.concatenate(fit_groups))


# --------------------------------------------------------------------------- the combiner


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(scale > 1e-12, scale, 1.0)


def _fit_lr(x: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    mean, scale = _standardiser(x)
    lr = LogisticRegression(C=LR_C, class_weight="balanced", max_iter=5000)
    lr.fit(np.clip((x - mean) / scale, -20, 20), y)
    return mean, scale, lr


def _oof_decision(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Out-of-fold logistic-regression decision values (folds keep a group together)."""
    from sklearn.model_selection import GroupKFold

    folds = min(CV_FOLDS, len(np.unique(groups)))
    out = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        mean, scale, lr = _fit_lr(x[train], y[train])
        out[test] = lr.decision_function(np.clip((x[test] - mean) / scale, -20, 20))
    return out


def _balanced_weights(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=2).astype(np.float64)
    return (len(y) / (2 * np.maximum(counts, 1)))[y]


def _log_loss(y: np.ndarray, decision: np.ndarray) -> float:
    p = 1.0 / (1.0 + np.exp(-decision))
    eps = 1e-12
    losses = -(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    return float(np.average(losses, weights=_balanced_weights(y)))


def fit_combiner(signals: dict[str, np.ndarray], y: np.ndarray, groups: np.ndarray,
                 names: tuple[str, ...] | list[str], info: dict | None = None) -> Combiner:
    """standardise -> logistic regression on all rows; Platt on out-of-fold decisions."""
    from sklearn.linear_model import LogisticRegression

    names = list(names)
    x = np.stack([signals[n] for n in names], axis=1).astype(np.float64)
    oof = _oof_decision(x, y, groups)
    platt = LogisticRegression(C=1e6, max_iter=5000)  # two free numbers: no need to regularise
    platt.fit(oof[:, None], y, sample_weight=_balanced_weights(y))
    mean, scale, lr = _fit_lr(x, y)
    return Combiner(names, mean, scale, lr.coef_[0].astype(np.float64), float(lr.intercept_[0]),
                    float(platt.coef_[0, 0]), float(platt.intercept_[0]), dict(info or {}))


def choose_signals(signals: dict[str, np.ndarray], y: np.ndarray, groups: np.ndarray,
                   forced: str = "auto") -> tuple[str, dict]:
    """"fast", or "all" if the PixelCNN's signals cut cross-validated log-loss by
    EXTRA_SIGNALS_MIN_GAIN (they cost several times every other model); or the set ``forced``."""
    losses = {}
    for key, names in SIGNAL_SETS.items():
        x = np.stack([signals[n] for n in names], axis=1)
        losses[key] = _log_loss(y, _oof_decision(x, y, groups))
    if forced != "auto":
        if forced not in SIGNAL_SETS:
            raise ForensicsError(f"unknown signal set {forced!r}; choose auto or one of {', '.join(SIGNAL_SETS)}")
        chosen = forced
    else:
        chosen = "all" if losses["all"] < losses["fast"] * (1 - EXTRA_SIGNALS_MIN_GAIN) else "fast"
    return chosen, {"cv_log_loss": losses, "min_relative_gain": EXTRA_SIGNALS_MIN_GAIN, "chosen": chosen,
                    "rule": "forced" if forced != "auto" else "fast unless all cuts the log-loss by the gain"}


# --------------------------------------------------------------------------- metrics


def tpr_at_fpr(y: np.ndarray, score: np.ndarray, max_fpr: float = MAX_FPR) -> float:
    """The highest true-positive rate at a threshold whose false-positive rate is <= max_fpr."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, score)
    return float(tpr[fpr <= max_fpr].max())


def metrics(y: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """AUROC, average precision and TPR at 1% FPR of ``score`` (higher = machine)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y).astype(np.int64)
    out: dict[str, Any] = {"n_human": int((y == 0).sum()), "n_machine": int((y == 1).sum())}
    if out["n_human"] == 0 or out["n_machine"] == 0:
        return {**out, "auroc": None, "average_precision": None, "tpr_at_1pct_fpr": None}
    score = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=0.0, posinf=1e300, neginf=-1e300)
    return {**out, "auroc": float(roc_auc_score(y, score)), "average_precision": float(average_precision_score(y, score)),
            "tpr_at_1pct_fpr": tpr_at_fpr(y, score)}


def direction(y: np.ndarray, values: np.ndarray) -> float:
    """+1 if higher values mean machine on these rows, else -1."""
    from sklearn.metrics import roc_auc_score

    return 1.0 if roc_auc_score(y, values) >= 0.5 else -1.0


def ablation(sig: dict[str, np.ndarray], cal: CalibrationSet, fit: np.ndarray, combiners: dict[str, Combiner],
             chosen: str, selection: dict, logo_signals: dict[str, dict[str, np.ndarray]] | None = None,
             carried: dict | None = None, thresholds: Thresholds = Thresholds()) -> dict:
    """Held-out metrics of each signal alone and of each ensemble, over all generators and per
    generator; leave-one-generator-out for the chosen ensemble; both conditions separately;
    how many verdicts each signal set changes against the chosen one.

    ``logo_signals[g]`` replaces signals for the generator-g-left-out rows (the cnn_logit of
    a ScanCNN trained without g); those signals are also reported alone there, unless constant
    (a model left out entirely). A source without an entry cannot be left out honestly (its
    ScanCNN saw it): its rows come from ``carried`` ({"from": label, "leave_one_generator_out":
    {...}, "leave_one_generator_out_alone": {...}}, an earlier bundle's measurement), marked so."""
    logo_signals = logo_signals or {}
    carried = carried or {}
    y = cal.is_machine
    held = ~fit
    directions = {n: direction(y[fit], sig[n][fit]) for n in ALL_SIGNALS}
    scores = {n: directions[n] * sig[n] for n in ALL_SIGNALS}
    for key, comb in combiners.items():
        scores[f"ensemble_{key}"] = comb.predict_proba(comb.matrix(sig))
    fam = family(cal.source)
    subsets = {"all_generators": held & ((cal.source == "human") | np.isin(fam, GENERATORS))}
    subsets.update({g: held & np.isin(cal.source, ["human", g]) for g in MACHINE_SOURCES if (cal.source == g).any()})
    table = {sub: {name: metrics(y[mask], s[mask]) for name, s in scores.items()} for sub, mask in subsets.items()}
    gens = subsets["all_generators"]  # by condition, like the headline figure: generators only
    by_condition = {c: metrics(y[gens & (cal.condition == c)], scores[f"ensemble_{chosen}"][gens & (cal.condition == c)])
                    for c in CONDITIONS}
    names = combiners[chosen].signals
    logo = {}
    logo_alone = {}
    logo_from = {}
    for g in [g for g in FAMILIES if (fam == g).any()]:
        if g not in logo_signals:
            if g in carried.get("leave_one_generator_out", {}):
                logo[g] = carried["leave_one_generator_out"][g]
                logo_from[g] = carried["from"]
                for n, per_g in carried.get("leave_one_generator_out_alone", {}).items():
                    if g in per_g:
                        logo_alone.setdefault(n, {})[g] = per_g[g]
            continue
        logo_from[g] = "measured"
        sig_g = {**sig, **logo_signals[g]}
        train = fit & (fam != g)
        comb = fit_combiner({n: sig_g[n][train] for n in names}, y[train], cal.group[train], names)
        test = held & ((cal.source == "human") | (fam == g))
        logo[g] = metrics(y[test], comb.predict_proba(comb.matrix({n: sig_g[n][test] for n in names})))
        for n in logo_signals.get(g, {}):
            if np.ptp(sig_g[n]) == 0:  # a model left out entirely: nothing to report alone
                continue
            logo_alone.setdefault(n, {})[g] = metrics(y[test], directions[n] * sig_g[n][test])
    counts = {f"{s}/{part}": int(((cal.source == s) & mask).sum()) for s in SOURCES
              for part, mask in (("fit", fit), ("heldout", held))}
    return {
        "note": "metrics on the held-out half; single signals are oriented on the fit half "
                "(direction +1: higher means machine)",
        "directions": directions,
        "selected": chosen,
        "selected_signals": list(names),
        "selection": selection,
        "counts": counts,
        "dropped_no_ink": cal.dropped,
        "heldout": table,
        "heldout_by_condition": by_condition,
        "leave_one_generator_out": logo,
        "leave_one_generator_out_alone": logo_alone,
        "leave_one_generator_out_from": logo_from,
        "verdict_changes": verdict_changes(scores, chosen, list(combiners), held, y, thresholds),
    }


def verdict_changes(scores: dict[str, np.ndarray], chosen: str, keys: list[str], held: np.ndarray,
                    y: np.ndarray, t: Thresholds = Thresholds()) -> dict:
    """Held-out rows whose verdict (at ``t``, no re-scans) differs between each ensemble and the
    chosen one, and each ensemble's false-machine and caught rates: what a signal set adds is
    the verdicts it changes, not only its AUROC."""
    base = t.verdict(scores[f"ensemble_{chosen}"][held])
    out = {}
    for key in keys:
        v = t.verdict(scores[f"ensemble_{key}"][held])
        out[key] = {"rows": int(held.sum()), "changed": int((v != base).sum()),
                    "changed_share": float((v != base).mean()),
                    "human_called_machine": float((v[y[held] == 0] == "machine").mean()),
                    "machine_called_machine": float((v[y[held] == 1] == "machine").mean())}
    return out


def thresholds_markdown(th: dict | None) -> list[str]:
    """The fitted verdict thresholds: what each condition needed, and what the fitted value costs
    on the held-out half against the default."""
    if not th or not th.get("info"):
        return []
    info = th["info"]
    lines = ["## Verdict thresholds", "",
             f"t_machine **{th['t_machine']:.3f}**, t_human {th['t_human']:.3f}: {info['rule']}.", "",
             "| fit-half condition | human rows | t_machine it needs | called machine at the fitted value |",
             "|---|---|---|---|"]
    for c, t in info["needed_by_condition"].items():
        lines.append(f"| {c} | {info['fit_human_rows'][c]} | {t:.3f} | "
                     f"{100 * info['fit_human_called_machine'][c]:.2f}% |")
    fitted, default = info["heldout_called_machine"]["fitted"], info["heldout_called_machine"]["default"]
    lines += ["", f"Held-out half, called machine (no re-scan check): fitted {th['t_machine']:.3f} "
                  f"vs default {info['default_t_machine']}:", "",
              "| source | fitted | default |", "|---|---|---|"]
    lines += [f"| {s} | {100 * fitted[s]:.1f}% | {100 * default[s]:.1f}% |" for s in fitted]
    return lines + [""]


def ablation_markdown(ab: dict) -> str:
    """The ablation as Markdown tables (one per metric) for humans."""
    subsets = list(ab["heldout"])
    rows = list(ab["heldout"][subsets[0]])
    lines = ["# Detector ablation (held-out half)", "",
             f"Combiner uses the **{ab['selected']}** signal set: {', '.join(ab['selected_signals'])}.",
             "Cross-validated log-loss on the fit half: " +
             ", ".join(f"{k} {v:.4f}" for k, v in ab["selection"]["cv_log_loss"].items()) + ".", ""]
    for key, title in (("auroc", "AUROC"), ("average_precision", "Average precision"),
                       ("tpr_at_1pct_fpr", "TPR at 1% FPR")):
        lines += [f"## {title}", "", "| signal | dir | " + " | ".join(f"human vs {s}" for s in subsets) + " |",
                  "|---|---|" + "---|" * len(subsets)]
        for row in rows:
            d = ab["directions"].get(row)
            cells = [_fmt(ab["heldout"][s][row][key]) for s in subsets]
            lines.append(f"| {row} | {'' if d is None else ('+' if d > 0 else '-')} | " + " | ".join(cells) + " |")
        lines.append("")
    changes = ab.get("verdict_changes") or {}
    if changes:
        lines += [f"## Verdicts against the chosen ensemble ({ab['selected']}), held-out half, the bundle's thresholds", "",
                  "| ensemble | verdicts changed | human called machine | machine called machine |", "|---|---|---|---|"]
        for key, c in changes.items():
            lines.append(f"| {key} | {c['changed']} of {c['rows']} ({100 * c['changed_share']:.2f}%) | "
                         f"{100 * c['human_called_machine']:.2f}% | {100 * c['machine_called_machine']:.2f}% |")
        lines.append("")
    lines += thresholds_markdown(ab.get("thresholds"))
    origin = ab.get("leave_one_generator_out_from") or {}
    lines += ["## Leave one family out (chosen ensemble and ScanCNN fitted without it, its rewrites included)", "",
              "| held-out family | AUROC | AP | TPR at 1% FPR | measured |", "|---|---|---|---|---|"]
    for g, m in ab["leave_one_generator_out"].items():
        lines.append(f"| {g} | {_fmt(m['auroc'])} | {_fmt(m['average_precision'])} | {_fmt(m['tpr_at_1pct_fpr'])} "
                     f"| {origin.get(g, 'measured')} |")
    for n, per_g in ab.get("leave_one_generator_out_alone", {}).items():
        lines += ["", f"{n} alone, from a model trained without the held-out family:", "",
                  "| held-out family | AUROC | AP | TPR at 1% FPR |", "|---|---|---|---|"]
        for g, m in per_g.items():
            lines.append(f"| {g} | {_fmt(m['auroc'])} | {_fmt(m['average_precision'])} | {_fmt(m['tpr_at_1pct_fpr'])} |")
    lines += ["", "## Chosen ensemble by condition", "", "| condition | AUROC | AP | TPR at 1% FPR | human | machine |",
              "|---|---|---|---|---|---|"]
    for c, m in ab["heldout_by_condition"].items():
        lines.append(f"| {c} | {_fmt(m['auroc'])} | {_fmt(m['average_precision'])} | {_fmt(m['tpr_at_1pct_fpr'])} "
                     f"| {m['n_human']} | {m['n_machine']} |")
    st = ab.get("stability")
    if st:
        mv = st["move_fit"]
        lines += ["", "## Re-scan bounds (Stability.near)", "",
                  f"How far the {len(st['rescans'])} re-scans moved p_machine towards the other threshold, in logits, "
                  f"fit half ({100 * st['quantile']:g}th percentile = the bound; median; largest): from human verdicts "
                  f"**{st['toward_machine_logits']:.2f}**, {_fmt(mv['toward_machine_from_human']['median'])}, "
                  f"{_fmt(mv['toward_machine_from_human']['largest'])}; from machine verdicts "
                  f"**{st['toward_human_logits']:.2f}**, {_fmt(mv['toward_human_from_machine']['median'])}, "
                  f"{_fmt(mv['toward_human_from_machine']['largest'])}. Held-out half, the bundle's thresholds:", "",
                  "| rows | re-scanned | verdicts a re-scan flips | of them not re-scanned |", "|---|---|---|---|"]
        for key, o in st["heldout"].items():
            lines.append(f"| {key} ({o['rows']}) | {100 * (o['re_scanned_share'] or 0):.1f}% | "
                         f"{o['flipped_by_a_rescan']} | {o['flips_missed']} |")
    fam = ab.get("familiarity")
    if fam:
        shares = ", ".join(f"{k} {100 * v:.2f}%" for k, v in fam["heldout_unfamiliar_share"].items())
        lines += ["", "## Unfamiliar inputs", "",
                  f"Familiarity CNN logit above **{fam['threshold_logit']:.3f}** (the {100 * fam['quantile']:g}th "
                  f"percentile on {fam['fitted_on']}) makes a verdict `uncertain` / `unfamiliar`. Share of each "
                  f"source's held-out half called unfamiliar: {shares}."]
    dropped = ", ".join(f"{k} {v}" for k, v in ab["dropped_no_ink"].items() if v) or "none"
    lines += ["", "Counts: " + ", ".join(f"{k} {v}" for k, v in ab["counts"].items()),
              "", f"Dropped (no ink after preprocessing): {dropped}", ""]
    return "\n".join(lines)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


# --------------------------------------------------------------------------- the whole job


def _machine(device: torch.device) -> str:
    """What calibrated, for the manifest: the same seed gives the same bundle only on like hardware."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu, {os.cpu_count()} cores"


def _human_rows(available: int, wanted: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of the MNIST train split for the ScanCNN's human class: ``wanted`` distinct digits
    if there are enough, else every digit as often as it fits and a random rest once more. A
    digit drawn twice gets a different scan and print-and-scan each time, which is variety the
    weak condition (print-and-scan) needs even when the digits run out."""
    if wanted <= available:
        return np.sort(rng.choice(available, wanted, replace=False))
    rest = np.sort(rng.choice(available, wanted % available, replace=False))
    return np.concatenate([np.tile(np.arange(available), wanted // available), rest])


def _run_info(run_dir: Path) -> dict:
    """Per model (MODEL_NAMES, and the FORGER_NAMES the run has): the run manifest's command, data
    and metrics, after checking model.pt against it."""
    info = {}
    for name in (*MODEL_NAMES, *(f for f in FORGER_NAMES if (run_dir / f / "model.pt").is_file())):
        folder = run_dir / name
        manifest = read_manifest(folder / "manifest.json", verify=False)  # checkpoint.pt need not be there
        listed = manifest.get("files", {}).get("model.pt", {}).get("sha256")
        actual = sha256_file(folder / "model.pt") if (folder / "model.pt").is_file() else None
        if actual is None:
            raise CheckpointError(f"{folder / 'model.pt'}: not found; train it with forensics train-generators -m {name}")
        if listed and listed != actual:
            raise CheckpointError(f"{folder / 'model.pt'}: checksum does not match {folder / 'manifest.json'}: "
                                  f"the file was changed or damaged")
        info[name] = {k: manifest.get(k) for k in ("command", "data", "metrics", "train_seconds", "created")}
        info[name]["model_sha256"] = actual
    return info


def _cnn_logits(model: ScanCNN, images: np.ndarray, device: torch.device) -> np.ndarray:
    with torch.no_grad():
        return chunked(for_inference(model, device), as_batch(images), device).astype(np.float64)


def train_cnns(models: DetectorModels, human: np.ndarray, per_generator: int, cfg: CNNConfig, seed: int,
               sample_batch: int, progress: Progress | None = None, workers: int = 1, forgers: dict | None = None,
               human_digits: np.ndarray | None = None, aligned_fakes: bool = False) -> tuple[dict[str, ScanCNN], dict]:
    """From one training set: the ScanCNN (human vs the generators, "all"), one ScanCNN
    without each generator family, its rewrites included (for the leave-one-out ablation), the FontCNN (human vs font
    forgeries, "font") and the familiarity CNN (every known source vs as many outliers as a
    generator has samples, FAMILIAR_NAME); and a log for the manifest.

    Fonts get a CNN of their own: added to the ScanCNN's machine class they cost it 0.02
    AUROC on the generators (0.971 -> 0.948, 8 epochs), a small network spending itself on
    two different questions; apart, each signal is also one a reviewer can read."""
    train_set = build_calibration_set(models, human, per_generator, seed + CNN_SEED_OFFSET, sample_batch, progress,
                                      workers, forgers, human_digits, aligned_fakes)
    y = train_set.is_machine
    src = train_set.source
    fam = family(src)
    plans = {"all": src != "font", **{g: (src != "font") & (fam != g) for g in GENERATORS if (fam == g).any()},
             "font": np.isin(src, ["human", "font"])}
    cnns, logs = {}, {}
    outliers = scan_sources([("outlier", per_generator)], seed + OUTLIER_SEED_OFFSET, progress, workers)
    # The familiarity CNN: every known source (label 0) against generated non-digits (label 1).
    jobs = {key: (train_set.images[rows], y[rows]) for key, rows in plans.items()}
    jobs[FAMILIAR_NAME] = (np.concatenate([train_set.images, outliers.images]),
                           np.r_[np.zeros(len(train_set.images)), np.ones(len(outliers.images))].astype(np.int64))
    for key, (images, labels) in jobs.items():
        total = cfg.epochs * ((len(images) + cfg.batch_size - 1) // cfg.batch_size)
        what = {"all": "ScanCNN", "font": "FontCNN", FAMILIAR_NAME: "familiarity CNN"}.get(key, f"ScanCNN without {key}")
        task = progress.add_task(what, total=total) if progress else None
        report = (lambda done, _t, task=task: progress.update(task, completed=done)) if progress else None
        cnns[key], logs[key] = train_cnn(images, labels, cfg, seed=seed, progress=report, device=models.device)
    counts = {s: int((train_set.source == s).sum()) for s in SOURCES} | {"outlier": int(len(outliers.images))}
    return cnns, {"config": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(cfg).items()},
                  "train_counts": counts, "human_split": "train", "sample_seed": seed + CNN_SEED_OFFSET,
                  "dropped_no_ink": train_set.dropped, "runs": logs}


def fit_familiarity(models: DetectorModels, cal: CalibrationSet, fit: np.ndarray) -> Familiarity | None:
    """The unfamiliar threshold: the FAMILIAR_QUANTILE of the familiarity CNN's logit on the fit
    half's human images (every condition: the capture variety a real form arrives with); and
    the share of each source's held-out half above it. None without a familiarity CNN."""
    if models.familiar_cnn is None:
        return None
    z = _cnn_logits(models.familiar_cnn, cal.images, models.device)
    threshold = float(np.quantile(z[fit & (cal.source == "human")], FAMILIAR_QUANTILE))
    held = ~fit
    shares = {s: float(np.mean(z[held & (cal.source == s)] > threshold)) for s in SOURCES if (cal.source == s).any()}
    return Familiarity(threshold, {"quantile": FAMILIAR_QUANTILE, "threshold_logit": threshold,
                                   "fitted_on": "human calibration images, fit half, every condition",
                                   "heldout_unfamiliar_share": shares})


def _reused(bundle_dir: Path, device: str) -> tuple[DetectorModels, dict, dict, dict]:
    """A bundle's models (verified), its generators' training records, its CNNs' record and the
    leave-one-out rows its own ablation measured, for calibrate(cnns_from=...). Its forgers are
    loaded by the caller (load_forgers)."""
    bundle = load_bundle(bundle_dir, device)
    desc = describe_bundle(bundle)
    label = f"bundle {desc['id']} ({desc['created']})"
    manifest = bundle.manifest
    try:
        old = json.loads((bundle_dir / "ablation.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{bundle_dir / 'ablation.json'}: unreadable ({exc})") from None
    carried = {"from": f"carried from {label}: the ScanCNNs trained without each source are not in a bundle",
               "leave_one_generator_out": {g: m for g, m in (old.get("leave_one_generator_out") or {}).items()
                                           if g in FAMILIES},
               "leave_one_generator_out_alone": old.get("leave_one_generator_out_alone") or {}}
    cnn_info = {"reused_from": {"path": str(bundle_dir), "id": desc["id"], "created": desc["created"],
                                "command": manifest.get("command")}, **(manifest.get("scan_cnn") or {})}
    return bundle.models, dict(manifest.get("training") or {}), cnn_info, carried


def calibrate(run_dir: str | Path | None, out_dir: str | Path, per_generator: int = 2000, seed: int = 0,
              data_dir: str | None = None, device: str = "cpu", sample_batch: int = 100, signal_batch: int = 256,
              console: Console | None = None, command: str | None = None, cnn_per_generator: int = 3000,
              cnn_config: CNNConfig = CNNConfig(), workers: int = 1, signals: str = "auto",
              cnns_from: str | Path | None = None, generators_from: str | Path | None = None,
              aligned_fakes: bool = False) -> dict:
    """Train the ScanCNN, build the calibration set from RUN_DIR's models, fit the combiner,
    measure the re-scan bound, write the bundle to OUT_DIR.

    With ``cnns_from`` (a bundle) the generators and both CNNs are that bundle's, as they are
    (checksums verified, files copied unchanged) and no CNN is trained: the combiner, the
    human reference and the stability bound are fitted again on a fresh calibration set. The
    leave-one-generator-out rows then cannot be measured (the ScanCNN saw every generator) and
    are carried from that bundle's ablation, marked so; fonts are still left out honestly.

    With ``generators_from`` (a bundle) the generators are that bundle's and every CNN is trained
    again, as from a run: for when a forger's sampler changed but its weights did not.

    Returns the ablation dict (also written as OUT_DIR/ablation.json and ablation.md).
    """
    if per_generator < 10 or cnn_per_generator < 10:
        raise ForensicsError("--per-generator and --cnn-per-generator must be at least 10 (the combiner needs both "
                             "halves of each source, the CNN some of each)")
    if sum(x is not None for x in (run_dir, cnns_from, generators_from)) != 1:
        raise ForensicsError("give one of: a run folder to calibrate from (--run), a bundle to refit (--cnns-from), "
                             "a bundle whose generators to train new CNNs on (--generators-from)")
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    if cnns_from is not None or generators_from is not None:
        run_dir = Path(cnns_from if cnns_from is not None else generators_from)
        models, training, cnn_info, carried = _reused(run_dir, device)
        if generators_from is not None:
            carried = {}  # the CNNs are trained below, so leave-one-out is measured, not carried
    else:
        run_dir = Path(run_dir)
        training, carried = _run_info(run_dir), {}
        models = load_models(run_dir, device)
    forgers = load_forgers(run_dir, device)
    families = (*MODEL_NAMES, *forgers, *FORGERIES)
    dataset = str((training["pixelcnn"].get("data") or {}).get("dataset") or "mnist").lower()
    if dataset not in BUILTIN:
        raise ForensicsError(f"the PixelCNN was trained on {dataset!r}; calibration needs a built-in data set's "
                             f"test split ({', '.join(BUILTIN)}) as the human images")
    test = load_dataset(dataset, train=False, data_dir=data_dir, download=False)
    rng = np.random.default_rng(seed)
    pool = min(len(test), HUMAN_POOL)
    n_human = min(pool, len(families) * per_generator)  # as many human as machine images
    rows = np.sort(rng.choice(pool, n_human, replace=False))
    human, human_digits = test.images[rows, 0].numpy(), test.labels[rows].numpy()

    with _progress(console) as progress:
        if cnns_from is None:
            train_split = load_dataset(dataset, train=True, data_dir=data_dir, download=False)
            cnn_rows = _human_rows(len(train_split), (len(families) - len(FORGERIES)) * cnn_per_generator, rng)
            cnns, cnn_info = train_cnns(models, train_split.images[cnn_rows, 0].numpy(), cnn_per_generator, cnn_config,
                                        seed, sample_batch, progress, workers, forgers,
                                        train_split.labels[cnn_rows].numpy(), aligned_fakes)
            shipped = {"cnn": cnns["all"], "font_cnn": cnns["font"], FAMILIAR_NAME: cnns[FAMILIAR_NAME]}  # file -> CNN
            for name, cnn in shipped.items():  # from here on the models are the bundle's, as scoring will see them
                setattr(models, name, for_inference(cnn, models.device))
        else:
            names = (*CNN_NAMES, *((FAMILIAR_NAME,) if models.familiar_cnn is not None else ()))
            cnns, shipped = {}, {name: run_dir / name / "model.pt" for name in names}  # copied unchanged
        cal = build_calibration_set(models, human, per_generator, seed, sample_batch, progress, workers, forgers,
                                    human_digits, aligned_fakes)
        sig = signal_table(cal.images, models, signal_batch, progress)
    logo_signals = {}
    for g in families:
        if g in cnns and g not in FORGERIES:
            cnn_g = _cnn_logits(cnns[g], cal.images, models.device)
            logo_signals[g] = {"cnn_logit": cnn_g, "either_cnn_logit": either_logit(cnn_g, sig["font_logit"])}
    # Fonts left out: no FontCNN at all (a constant signal carries nothing, and "either" is
    # the ScanCNN alone, which never trained on fonts).
    logo_signals["font"] = {"font_logit": np.zeros(len(cal.images)), "cnn_logit": sig["cnn_logit"],
                            "either_cnn_logit": sig["cnn_logit"]}
    if console:
        console.print("fitting the combiner", highlight=False)
    fit = split_fit(cal, seed)
    y = cal.is_machine
    fit_sig = {n: v[fit] for n, v in sig.items()}
    chosen, selection = choose_signals(fit_sig, y[fit], cal.group[fit], signals)
    fit_info = {"fit_rows": int(fit.sum()), "seed": seed, "per_generator": per_generator, "prior": "balanced (50/50)"}
    combiners = {key: fit_combiner(fit_sig, y[fit], cal.group[fit], names, {**fit_info, "signal_set": key})
                 for key, names in SIGNAL_SETS.items()}
    combiner = combiners[chosen]
    p = combiner.predict_proba(combiner.matrix(sig))
    with _progress(console) as progress:
        thresholds = fit_thresholds(cal, p, human, fit, models, combiner, seed, signal_batch, progress, workers)
    if console:
        console.print(f"verdict thresholds: machine >= {thresholds.t_machine}, human <= {thresholds.t_human}",
                      highlight=False)
    ab = ablation(sig, cal, fit, combiners, chosen, selection, logo_signals, carried, thresholds)
    ab["thresholds"] = {**thresholds.to_dict(), "info": thresholds.info}
    with _progress(console) as progress:
        stability = measure_stability(cal, p, models, combiner, fit, signal_batch, progress, workers, thresholds)
    ab["stability"] = {"toward_machine_logits": stability.toward_machine,
                       "toward_human_logits": stability.toward_human, **stability.info}
    human_fit = fit & (cal.source == "human")
    reference = HumanReference.fit({n: sig[n][human_fit] for n in ALL_SIGNALS})
    familiarity = fit_familiarity(models, cal, fit)
    if familiarity is not None:
        ab["familiarity"] = familiarity.info
    ab_json = json.dumps(ab, indent=2) + "\n"
    heldout = ab["heldout"]
    summary = {sub: heldout[sub][f"ensemble_{chosen}"] for sub in heldout}
    write_bundle(out_dir, run_dir, shipped, combiner, reference, ab_json, ablation_markdown(ab), stability, familiarity,
                 forgers=tuple(forgers), thresholds=thresholds,
                 command=command or " ".join(["forensics", *sys.argv[1:]]),
                 calibration={"per_generator": per_generator, "human_images": n_human, "seed": seed,
                              "font_forgeries": per_generator, "families": list(families),
                              "aligned_fakes": aligned_fakes,
                              "generators_from": str(generators_from) if generators_from is not None else None,
                              "rewrites": {r: f"half of {fam}'s images, made from the human calibration digits"
                                           for r, fam in REWRITES.items() if fam in forgers and aligned_fakes},
                              "dataset": dataset, "human_split": f"test[:{pool}]", "device": device,
                              "machine": _machine(models.device), "torch": torch.__version__,
                              "counts": ab["counts"], "dropped_no_ink": cal.dropped},
                 scan_cnn=cnn_info,
                 data={"dataset": dataset, "sha256": data_checksums(dataset, data_dir)},
                 training=training,
                 metrics={"heldout_ensemble": summary, "leave_one_generator_out": ab["leave_one_generator_out"],
                          "leave_one_generator_out_from": ab["leave_one_generator_out_from"],
                          "selected_signals": ab["selected_signals"],
                          "stability": ab["stability"], "familiarity": ab.get("familiarity"),
                          "thresholds": ab["thresholds"]})
    return ab
