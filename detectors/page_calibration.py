"""Fit a bundle's page model (forensics.page_lr): what a page's boxes together show.

Forms are simulated from scored characters: a block of BLOCK characters of one source shares one
capture (a condition of CONDITIONS and one set of its parameters, as one filer's form goes
through one scanner), and each block is cut into forms of every size in SIZES. Human blocks come
from the calibration's human pool (MNIST test[:5000]; test[5000:] stays held out for the
benchmark), machine blocks from fresh samples of the bundle's generators and font forgeries, with
seeds calibration never drew. Characters are scored as `forensics score` scores them.

Per family, a logistic regression of the family's forms against the human forms on
(m, m ln K, 1, ln K), both classes weighted equally, so its log-odds are a form LR against that
family; the page LR averages the families' LRs. The page threshold t_page is the smallest value
>= the bundle's t_machine at which neither any page size (all conditions) nor any capture condition
(all sizes) has more than BUDGET of its human forms called machine.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from forensics.checkpoint import atomic_write_text, read_manifest, sha256_file, write_manifest
from forensics.data import load_dataset
from forensics.page_lr import PAGE_EVIDENCE_FILE, PageModel

from . import capture, evidence
from .bundle import MANIFEST_FILE, Bundle, load_bundle, load_forgers
from .calibrate import sample_generator, smallest_threshold
from .fonts import font_forgeries
from .printscan import preprocess_or_none, print_and_scan, render_scan
from .score import score_images

BLOCK = 20  # characters sharing one capture: a form's worth
SIZES = (1, 2, 4, 5, 10, 20)  # page sizes fitted (divisors of BLOCK)
BUDGET = 0.005  # share of each condition's and size's human forms the page threshold may call machine
CONDITIONS = ("plain", "printscan", *capture.CAPTURES)
HUMAN_POOL = slice(0, 5000)  # MNIST test: calibration's human pool (detectors.calibrate)
HUMAN_PASSES = 2  # the pool is cut into blocks this many times, each with its own order and captures
FAMILIES = ("pixelcnn", "dcgan", "fcgan", "vae", "diffusion", "fonts")
# Fresh characters per family: the diffusion model (many UNet passes a sample) is the slow one.
DEFAULT_PER_FAMILY = {"pixelcnn": 2000, "diffusion": 800, "dcgan": 2000, "fcgan": 2000, "vae": 2000, "fonts": 2000}
SEED_OFFSET = 7919  # machine sampling seeds: none calibration used


def captured(frame: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray | None:
    """A frame through ``condition`` as a character scan, preprocessed (None if it holds no ink)."""
    if condition == "plain":
        return preprocess_or_none(render_scan(frame, scale=int(rng.integers(2, 5))))
    if condition == "printscan":
        return preprocess_or_none(print_and_scan(frame, rng))
    return preprocess_or_none(capture.capture(frame, condition, rng))


def capture_blocks(frames: np.ndarray, seed: int) -> list[tuple[str, list[np.ndarray]]]:
    """Consecutive BLOCKs of frames, each through one condition with one parameter seed."""
    rng = np.random.default_rng(seed)
    blocks = []
    for start in range(0, len(frames) - BLOCK + 1, BLOCK):
        condition = CONDITIONS[int(rng.integers(len(CONDITIONS)))]
        block_seed = int(rng.integers(2**31))
        chars = [captured(f, condition, np.random.default_rng(block_seed)) for f in frames[start : start + BLOCK]]
        blocks.append((condition, [c for c in chars if c is not None]))
    return blocks


def score_blocks(bundle: Bundle, blocks: list[tuple[str, list[np.ndarray]]], batch: int = 256,
                 verdicts: bool = False) -> list[tuple]:
    """Each block's (condition, characters' natural-log LRs) as `forensics score` gives them
    without the re-scan check, unfamiliar characters left out as the page model leaves them
    out; with ``verdicts`` also whether each of those characters was called machine."""
    flat = [c for _, chars in blocks for c in chars]
    log_lr, keep, machine = [], [], []
    for i in range(0, len(flat), batch):
        for r in score_images(np.stack(flat[i : i + batch]), bundle, stability="off"):
            log_lr.append(r["log10_lr"] * math.log(10.0))
            keep.append(r.get("unfamiliar") is not True)
            machine.append(r["verdict"] == "machine")
    log_lr, keep, machine = np.array(log_lr), np.array(keep, dtype=bool), np.array(machine, dtype=bool)
    bounds = np.cumsum([0] + [len(chars) for _, chars in blocks])
    out = []
    for (cond, _), a, b in zip(blocks, bounds[:-1], bounds[1:]):
        k = keep[a:b]
        out.append((cond, log_lr[a:b][k], machine[a:b][k]) if verdicts else (cond, log_lr[a:b][k]))
    return out


def forms(scored: list[tuple], k: int) -> list[tuple]:
    """Each block cut into forms of k characters (a short remainder is dropped): (condition,
    then each of the block's arrays cut the same way)."""
    return [(b[0], *(a[i : i + k] for a in b[1:])) for b in scored for i in range(0, len(b[1]) - k + 1, k)]


def features(per_form: list[np.ndarray]) -> np.ndarray:
    m = np.array([f.mean() for f in per_form])
    ln_k = np.log([len(f) for f in per_form])
    return np.stack([m, m * ln_k, ln_k], axis=1)


def fit_family(human: list[np.ndarray], machine: list[np.ndarray]) -> tuple[float, float, float, float]:
    """(a, c, b, d) of one family's form LR (see the module docstring)."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([features(human), features(machine)])
    y = np.r_[np.zeros(len(human)), np.ones(len(machine))]
    w = np.where(y == 1, len(y) / (2 * len(machine)), len(y) / (2 * len(human)))
    fit = LogisticRegression(C=1.0, max_iter=1000).fit(x, y, sample_weight=w)
    a, c, d = (float(v) for v in fit.coef_[0])
    return a, c, float(fit.intercept_[0]), d


def fit_page_model(human: list[tuple[str, np.ndarray]], machine: dict[str, list[tuple[str, np.ndarray]]],
                   t_floor: float) -> PageModel:
    """The page model from scored blocks (score_blocks) of human and of each family's characters."""
    h_forms = [f[1] for k in SIZES for f in forms(human, k)]
    families = {fam: fit_family(h_forms, [f[1] for k in SIZES for f in forms(blocks, k)])
                for fam, blocks in machine.items()}
    model = PageModel(families, 1.0, max(SIZES))
    scored = [(k, c, evidence.posterior(model.log_lr(l))) for k in SIZES for c, l, *_ in forms(human, k)]
    groups = {**{f"K={k}": [p for kk, _, p in scored if kk == k] for k in SIZES},
              **{c: [p for _, cc, p in scored if cc == c] for c in CONDITIONS}}
    needed = {g: smallest_threshold(np.array(p), BUDGET, t_floor) for g, p in groups.items() if p}
    t_page = min(max(needed.values()), 1.0)
    called = {f"K={k}": round(float(np.mean([p >= t_page for kk, _, p in scored if kk == k])), 4) for k in SIZES}
    info = {"rule": f"smallest t_page >= the bundle's t_machine ({t_floor}) with at most {100 * BUDGET:.1f}% of "
                    f"each page size's and each capture condition's calibration human forms at or above it",
            "sizes": list(SIZES), "block": BLOCK, "conditions": list(CONDITIONS), "needed": needed,
            "human_forms_called_machine": called,
            "human_characters": int(sum(len(b[1]) for b in human)),
            "machine_characters": {f: int(sum(len(b[1]) for b in blocks)) for f, blocks in machine.items()}}
    return PageModel(families, t_page, max(SIZES), info)


def machine_frames(bundle: Bundle, per_family: dict[str, int], seed: int, console=None) -> dict[str, np.ndarray]:
    """Fresh characters of each family the bundle carries (blank samples dropped: no ink to score)."""
    forgers = load_forgers(bundle.path)
    out = {}
    for i, fam in enumerate(FAMILIES):
        t = time.perf_counter()
        n = per_family[fam]
        if fam == "fonts":
            x = font_forgeries(n, np.random.default_rng(seed + SEED_OFFSET + i))
        elif fam in ("pixelcnn", "dcgan", "fcgan") or fam in forgers:
            x = sample_generator(bundle.models, fam, n, torch.Generator().manual_seed(seed + SEED_OFFSET + i), 100,
                                 forgers=forgers)
        else:
            continue  # an older bundle without this forger
        out[fam] = x[x.reshape(len(x), -1).max(axis=1) > 0]
        if console is not None:
            console.print(f"page model: {len(out[fam])} {fam} characters in {time.perf_counter() - t:.0f} s")
    return out


def calibrate_pages(bundle_path: str | Path, seed: int = 0, per_family: dict[str, int] | None = None,
                    data_dir: str | None = None, console=None, command: str | None = None) -> PageModel:
    """Fit the page model of the bundle at ``bundle_path`` and add it to the bundle (its file,
    then the manifest, each written atomically)."""
    started = time.perf_counter()
    bundle = load_bundle(bundle_path)
    per_family = {**DEFAULT_PER_FAMILY, **(per_family or {})}
    pool = load_dataset("mnist", train=False, data_dir=data_dir, download=False).images[HUMAN_POOL, 0].numpy()
    rng = np.random.default_rng(seed)
    human = [b for p in range(HUMAN_PASSES)
             for b in score_blocks(bundle, capture_blocks(pool[rng.permutation(len(pool))], seed + 100 + p))]
    machine = {fam: score_blocks(bundle, capture_blocks(x, seed + 1 + i))
               for i, (fam, x) in enumerate(machine_frames(bundle, per_family, seed, console).items())}
    model = fit_page_model(human, machine, bundle.thresholds.t_machine)
    model.info.update(seed=seed, human="MNIST test[:5000] (calibration's human pool)", command=command,
                      seconds=round(time.perf_counter() - started))
    path = Path(bundle_path)
    atomic_write_text(path / PAGE_EVIDENCE_FILE, json.dumps(model.to_dict(), indent=2) + "\n")
    manifest = read_manifest(path / MANIFEST_FILE, verify=True)
    files = [path / name for name in manifest.get("files", {}) if name != PAGE_EVIDENCE_FILE] + [path / PAGE_EVIDENCE_FILE]
    info = {k: v for k, v in manifest.items() if k not in ("files", "manifest_version", "created", "torch")}
    info["page_evidence"] = {"command": command, "seed": seed, "t_page": model.t_page,
                             "sha256": sha256_file(path / PAGE_EVIDENCE_FILE)}
    write_manifest(path / MANIFEST_FILE, files, **info)
    return model
