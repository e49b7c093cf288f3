"""New forgers: the detector as shipped, against models it was never calibrated on.

The bundle was calibrated on samples of three trained models (runs/full: PixelCNN, DCGAN,
FC-GAN, all seed 0). A forger does not use our checkpoints; they train their own. This
benchmark trains forgers with the project's own `forensics train-generators` recipe and scores
their samples with the shipped bundle, unchanged, against human scans:

    dcgan-seed1    DCGAN, the full recipe (4 epochs), seed 1        a known architecture, another run
    fcgan-seed1    FC-GAN, the full recipe (30 epochs), seed 1      the same for the FC-GAN
    dcgan-epoch1   DCGAN, seed 2, 1 epoch instead of 4              an undertrained forger
    autoencoder    PixelCNN autoencoder, 1 epoch, seed 1            a model family the bundle never saw,
                   decoding the codes of human digits               rewriting real handwriting
    vae            the conv VAE of issue 20 (runs/v7), sampled     the new families (issue 21, item 5):
    vae-rewrite    the same VAE reconstructing human digits         samples, and aligned fakes made from
    diffusion      the DDPM of issue 20 (runs/v7), DDIM + guidance  human digits, where content carries
    diffusion-rewrite   human digits noised to t = 300, denoised   no signal, only the generator's trace
    pixelcnn, dcgan, fcgan (seen)   fresh samples of the bundle's own generators, the reference

A forger whose model.pt is one the bundle carries (bundle v8 calibrated on the VAE and the
diffusion model) is marked "seen": its row then measures fresh samples and rewrites of other
human digits, not a family never seen; detectors.calibrate's leave-one-family-out does that.

human = MNIST test[5000:] digits (calibration used test[:5000]); the rewriters rewrite other
test[5000:] digits, never the human set's. Every base image becomes a scan, a print-and-scan
and a random capture exactly as calibration makes them (detectors.calibrate.scan_chunk), is
preprocessed and scored by detectors.score.p_machine (stability re-scans off). Figures per
source: AUROC / TPR at 1% FPR against the human scans (every condition, then each), and the
share of its scans the bundle's thresholds call machine, uncertain or human.

Models are trained on first use by the command recorded in the results (one CPU thread each:
565, 556, 143 and 1,461 s here) and reused from runs/ while their manifest records that command.

    FORENSICS_DATA=/path/to/data python -m benchmarks.new_forgers           # full: 500 base images per source
    FORENSICS_DATA=/path/to/data python -m benchmarks.new_forgers --quick   # smoke models, 12 images per source

Writes OUT/new_forgers.json.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


import numpy as np

from benchmarks.common import main, ROOT, fmt, log, machine_info, set_threads, thresholds_text, write_result

NAME = "new_forgers"
FULL_N, QUICK_N = 500, 12
SAMPLE_SEED = 4321  # + seed: not calibration's 0, not robustness's 1234
SAMPLE_BATCH = 100
SCORE_SLAB = 512
SEEN = ("pixelcnn", "dcgan", "fcgan")
# name -> (model, run folder under ROOT, seed, epochs or None for the preset's, what it stands for)
FORGERS: dict[str, tuple[str, str, int, int | None, str]] = {
    "dcgan-seed1": ("dcgan", "runs/seed1", 1, None, "DCGAN, full recipe, seed 1"),
    "fcgan-seed1": ("fcgan", "runs/seed1", 1, None, "FC-GAN, full recipe, seed 1"),
    "dcgan-epoch1": ("dcgan", "runs/early", 2, 1, "DCGAN, seed 2, 1 epoch"),
    "autoencoder": ("autoencoder", "runs/seed1", 1, 1, "PixelCNN autoencoder (unseen family), 1 epoch, seed 1"),
    "vae": ("vae", "runs/v7", 0, None, "conv VAE, full recipe, seed 0"),
    "vae-rewrite": ("vae", "runs/v7", 0, None, "the same VAE reconstructing human digits (aligned fakes)"),
    "diffusion": ("diffusion", "runs/v7", 0, None, "DDPM, DDIM sampling with guidance, seed 0"),
    "diffusion-rewrite": ("diffusion", "runs/v7", 0, None,
                          "the same DDPM: human digits noised to t = 300 and denoised (aligned fakes)"),
}
REWRITERS = ("autoencoder", "vae-rewrite", "diffusion-rewrite")  # make their forgeries from human digits


# --------------------------------------------------------------------------- the forgers


def train_command(name: str, out: str, quick: bool) -> list[str]:
    """The `forensics train-generators` arguments that make forger ``name`` in ``out``."""
    model, _, seed, epochs, _ = FORGERS[name]
    args = ["train-generators", "-m", model]
    if quick:
        args += ["--preset", "smoke"]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    return args + ["--out", out, "--seed", str(seed), "--device", "cpu"]


def forger_dir(name: str, run_root: Path | None, quick: bool) -> tuple[Path, bool]:
    """(the model folder of forger ``name``, whether it was trained now): trained unless a
    manifest there records the same command."""
    model, run, *_ = FORGERS[name]
    out = str(run_root / run) if run_root is not None else run
    folder = (ROOT / out if run_root is None else Path(out)) / model
    args = train_command(name, out, quick)
    manifest = folder / "manifest.json"
    # The CLI records its command line as " ".join(argv), so compare with the same, less what
    # does not change the model (--resume continues bit-identically; cpu is the default device).
    if manifest.is_file() and _run_of(json.loads(manifest.read_text()).get("command") or "") == _run_of(
            " ".join(["forensics", *args])):
        return folder, False
    log(f"{NAME}: training {name}: forensics {shlex.join(args)}")
    t = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run([sys.executable, "-m", "forensics", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"training {name} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    log(f"{NAME}: {name} trained in {time.perf_counter() - t:.0f} s")
    return folder, True


def _run_of(command: str) -> str:
    words = [w for w in command.split() if w != "--resume"]
    for i in range(len(words) - 1):
        if words[i] == "--device" and words[i + 1] == "cpu":
            del words[i : i + 2]
            break
    return " ".join(words)


def forger_samples(name: str, folder: Path, n: int, seed: int, rewrite: np.ndarray,
                   rewrite_digits: np.ndarray) -> np.ndarray:
    """n uint8 frames [n, 28, 28] from forger ``name``; the REWRITERS rewrite ``rewrite`` (whose
    digits, for a class-conditional model, are ``rewrite_digits``)."""
    import torch

    from detectors.calibrate import REWRITES
    from detectors.calibrate import rewrite_digits as rewrite_with
    from generators.load import load_generator

    gen = load_generator(folder)
    g = torch.Generator().manual_seed(SAMPLE_SEED + seed)
    if name in REWRITES:  # exactly as calibration makes its aligned fakes
        return rewrite_with(gen, name, rewrite[:n], rewrite_digits[:n], g, SAMPLE_BATCH)
    parts = []
    for i in range(0, n, SAMPLE_BATCH):
        k = min(SAMPLE_BATCH, n - i)
        if name == "autoencoder":
            x = gen.network.sample(x=torch.as_tensor(rewrite[i : i + k])[:, None], generator=g)
        else:
            x = gen.sample(k, g)
        parts.append(x.cpu()[:, 0].numpy())
    return np.concatenate(parts).astype(np.uint8)


def in_bundle(folder: Path, manifest: dict) -> bool:
    """Whether the model in ``folder`` is one the bundle carries (same model.pt checksum)."""
    from forensics.checkpoint import sha256_file

    listed = manifest.get("model_files", {}).get(f"{folder.name}/model.pt", {}).get("sha256")
    return listed is not None and (folder / "model.pt").is_file() and sha256_file(folder / "model.pt") == listed


# --------------------------------------------------------------------------- run


def _scan(source: str, frames: np.ndarray, key: list[int]) -> tuple[np.ndarray, np.ndarray, int]:
    """(preprocessed frames, their conditions, base images without ink) as calibration scans them."""
    from detectors.calibrate import CONDITIONS, scan_chunk

    out, cond, blank = [], [], 0
    for views in scan_chunk((source, frames, key)):
        if views[0] is None:  # no ink even as a clean scan: a blank sample, left out (and counted)
            blank += 1
            continue
        for name, view in zip(CONDITIONS, views):
            if view is not None:
                out.append(view)
                cond.append(name)
    return (np.stack(out) if out else np.zeros((0, 28, 28), np.uint8)), np.array(cond), blank


def _called(p: np.ndarray, thresholds) -> dict:
    """The share of p the bundle's thresholds call machine, uncertain and human."""
    verdicts = thresholds.verdict(p)
    return {v: float(np.mean(verdicts == v)) if len(p) else None for v in ("machine", "uncertain", "human")}


def _row(p_human: np.ndarray, c_human: np.ndarray, p: np.ndarray, c: np.ndarray, thresholds) -> dict:
    from detectors.calibrate import CONDITIONS, metrics

    def m(ph, pm):
        r = metrics(np.r_[np.zeros(len(ph)), np.ones(len(pm))], np.r_[ph, pm])
        return {"auroc": r["auroc"], "tpr_at_1pct_fpr": r["tpr_at_1pct_fpr"]}

    return {"n": int(len(p)), **m(p_human, p),
            "by_condition": {k: m(p_human[c_human == k], p[c == k]) for k in CONDITIONS if k in set(c_human) & set(c)},
            "called": _called(p, thresholds), "mean_p_machine": float(p.mean()) if len(p) else None}


def run(quick: bool, out_dir: Path, seed: int = 0, n: int | None = None) -> dict:
    import torch

    from detectors.bundle import DEFAULT_BUNDLE, load_bundle
    from detectors.calibrate import HUMAN_POOL, sample_generator
    from detectors.score import p_machine
    from forensics.data import load_dataset

    set_threads()
    t_start = time.perf_counter()
    n = n or (QUICK_N if quick else FULL_N)
    bundle = load_bundle(DEFAULT_BUNDLE)
    pool = load_dataset("mnist", train=False).images[HUMAN_POOL:, 0].numpy()
    order = np.random.default_rng([seed, 11]).permutation(len(pool))
    digits = load_dataset("mnist", train=False).labels[HUMAN_POOL:].numpy()
    human, rewrite = pool[np.sort(order[:n])], pool[np.sort(order[n : 2 * n])]
    rewrite_digits = digits[np.sort(order[n : 2 * n])]

    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="forgers-") as tmp:  # quick: smoke models, thrown away
        run_root = Path(tmp) if quick else None
        made = {name: forger_dir(name, run_root, quick) for name in FORGERS}
        folders = {name: folder for name, (folder, _) in made.items()}
        trained_now = [name for name, (_, trained) in made.items() if trained]
        train_seconds = time.perf_counter() - t
        train_times = {name: json.loads((f / "manifest.json").read_text()).get("train_seconds")
                       for name, f in folders.items()}
        t = time.perf_counter()
        g = torch.Generator().manual_seed(SAMPLE_SEED + seed)
        bases = {"human": human,
                 **{name: sample_generator(bundle.models, name, n, g, SAMPLE_BATCH) for name in SEEN},
                 **{name: forger_samples(name, folders[name], n, seed, rewrite, rewrite_digits) for name in FORGERS}}
        seen = {*SEEN, *(name for name in FORGERS if in_bundle(folders[name], bundle.manifest))}
        commands = {name: "forensics " + shlex.join(train_command(name, str(FORGERS[name][1]), quick))
                    for name in FORGERS}
    sample_seconds = time.perf_counter() - t

    t = time.perf_counter()
    scanned = {name: _scan(name, frames, [seed, 13, k]) for k, (name, frames) in enumerate(bases.items())}
    allx = np.concatenate([x for x, _, _ in scanned.values()])
    parts = []
    for i in range(0, len(allx), SCORE_SLAB):
        parts.append(p_machine(allx[i : i + SCORE_SLAB], bundle))
        log(f"{NAME}: scored {min(i + SCORE_SLAB, len(allx))}/{len(allx)} scans")
    p_all = np.concatenate(parts) if parts else np.zeros(0)
    score_seconds = time.perf_counter() - t

    p, at = {}, 0
    for name, (x, _, _) in scanned.items():
        p[name], at = p_all[at : at + len(x)], at + len(x)
    ph, ch = p["human"], scanned["human"][1]
    results = {"human": {"n": int(len(ph)), "called": _called(ph, bundle.thresholds), "mean_p_machine": float(ph.mean()),
                         "blank": scanned["human"][2]}}
    results.update({name: {**_row(ph, ch, p[name], scanned[name][1], bundle.thresholds), "blank": scanned[name][2], "seen": name in seen}
                    for name in bases if name != "human"})
    for name, r in list(results.items())[1:]:
        log(f"{NAME}: {name}: AUROC {fmt(r['auroc'])}, TPR@1%FPR {fmt(r['tpr_at_1pct_fpr'])}, "
            f"called machine {fmt(r['called']['machine'])}")
    result = {
        "benchmark": NAME,
        "quick": quick,
        "seed": seed,
        "n_per_source": n,
        "human_source": "MNIST test[5000:] (calibration used test[:5000]), numpy seed [seed, 11]",
        "forgers": {name: {"what": FORGERS[name][4], "command": commands[name], "train_seconds": train_times[name]}
                    for name in FORGERS},
        "sample_seed": SAMPLE_SEED + seed,
        "thresholds": bundle.thresholds.to_dict(),
        "results": results,
        "trained_now": trained_now,
        "train_seconds": round(train_seconds, 1),
        "sample_seconds": round(sample_seconds, 1),
        "score_seconds": round(score_seconds, 1),
        "seconds": round(time.perf_counter() - t_start, 1),
        "bundle": str(DEFAULT_BUNDLE),
        "machine": machine_info(),
    }
    write_result(out_dir, NAME, result)
    return result


# --------------------------------------------------------------------------- outputs


CONDITION_TITLES = {"clean": "scan", "printscan": "print-and-scan", "capture": "random capture"}


def _as_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def markdown(result: dict) -> str:
    recorded = sum(f.get("train_seconds") or 0 for f in result["forgers"].values())
    trained = (f", plus {result['train_seconds'] / 60:.0f} min training {', '.join(result['trained_now'])}"
               if result.get("trained_now") else f" (the new forgers' models reused from runs/; their manifests record {recorded / 60:.0f} min of "
                    "training on one thread)")
    conditions = list(next(r for r in result["results"].values() if "by_condition" in r)["by_condition"])
    titles = [CONDITION_TITLES.get(k, k) for k in conditions]
    lines = [f"The shipped bundle, unchanged, on {result['n_per_source']} base images per source, each as "
             f"{_as_list(['a ' + t for t in titles])}, against as many human digits (MNIST test[5000:]). "
             f"Share called: at the bundle's "
             f"thresholds ({thresholds_text(result)}), re-scans off. {(result['seconds'] - result['train_seconds']) / 60:.0f} min{trained}"
             f"{' (quick mode: smoke-test models, figures meaningless)' if result['quick'] else ''}.", "",
             f"| source | AUROC / TPR at 1% FPR | {' | '.join(titles)} | called machine / uncertain / human | no ink |",
             "|---|---|" + "---|" * len(titles) + "---|---:|"]
    what = {name: f"**{name}** (new: {f['what']})" if not result["results"][name].get("seen")
            else f"{name} (in calibration: {f['what']})" for name, f in result["forgers"].items()}
    for name, r in result["results"].items():
        if name == "human":
            continue
        c = r["called"]
        cells = [f"{fmt(r['auroc'])} / {fmt(r['tpr_at_1pct_fpr'])}"] + [
            f"{fmt(r['by_condition'][k]['auroc'])} / {fmt(r['by_condition'][k]['tpr_at_1pct_fpr'])}"
            if k in r["by_condition"] else "–" for k in conditions]  # (a view with no inked scan)
        lines.append(f"| {what.get(name, name + ' (seen in calibration)')} | " + " | ".join(cells)
                     + f" | {fmt(c['machine'], 2)} / {fmt(c['uncertain'], 2)} / {fmt(c['human'], 2)} | {r['blank']} |")
    h = result["results"]["human"]["called"]
    lines += ["", f"Human scans called machine / uncertain / human: {fmt(h['machine'], 3)} / {fmt(h['uncertain'], 3)} / "
              f"{fmt(h['human'], 3)}. The new forgers were trained by: "
              + "; ".join(f"`{f['command']}`" for f in result["forgers"].values()) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, markdown, __doc__, options=(
        (("--n",), {"type": int, "help": f"base images per source (default {FULL_N})"}),))
