"""Generator quality: FID, Inception-style score and precision/recall of the shipped generators.

    OMP_NUM_THREADS=1 FORENSICS_DATA=/path/to/data python -m benchmarks.generator_quality          # full
    OMP_NUM_THREADS=1 FORENSICS_DATA=/path/to/data python -m benchmarks.generator_quality --quick  # smoke

For each generator of the shipped detector bundle (pixelcnn, dcgan, fcgan) it draws N samples
and compares them with N MNIST test images in the feature space of the digit reader
(detectors/reader.py, trained by forensics train-reader; a CNN classifier trained on MNIST
train, 99.35% test accuracy, standing in for Inception):

* FID on the 128-d penultimate features (lower is better);
* the Inception-style score exp E KL(p(y|x) || p(y)) from the classifier's softmax (1..10);
* precision and recall of the sample manifold (Kynkaanniemi et al. 2019, k = 3).

The real-data floor is what the same metrics give for real digits: N MNIST train images
against the same N test images (FID, precision, recall), and the score of the test images.
FID is biased upwards at small N, so generator and floor use the same N and only figures at
the same N compare. Full mode: N = 10,000 (the whole test set is the reference), dominated by
PixelCNN sampling at 15-45 samples/s on one CPU thread, depending on load (~5 min on a quiet
machine, up to ~12 on a busy one; the GANs take seconds). Quick mode: N = 100, < 30 s.

``--run RUN`` also measures every model of a training run (RUN/<model>/model.pt), and gives
each conditional model's share of samples read as the digit they were drawn for.

Writes OUT/generator_quality.json (default benchmarks/results/).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch


from detectors import reader as fnet
from generators.quality import fid, inception_score, precision_recall
from benchmarks.common import main, display_path, machine_info, write_result
from forensics.checkpoint import sha256_file

NAME = "generator_quality"
GENERATORS = ("pixelcnn", "dcgan", "fcgan")
FULL_N, QUICK_N = 10_000, 100  # full: the reference is the whole MNIST test set
K = 3  # neighbours for precision/recall, as in Kynkaanniemi et al.
SAMPLE_BATCH = 500  # the PixelCNN sampler is per-op overhead bound: bigger batches are faster per digit
RESULTS = Path(__file__).resolve().parent / "results"


def load_generators(bundle: str | os.PathLike | None = None):
    """The bundle's models (detectors.signals.DetectorModels), loaded and verified by
    detectors.bundle.load_bundle, and the generators' checksums (what was measured)."""
    from detectors.bundle import DEFAULT_BUNDLE, load_bundle

    path = Path(bundle) if bundle is not None else DEFAULT_BUNDLE
    loaded = load_bundle(path)  # every file checked against the manifest
    sums = {name: loaded.manifest["model_files"][f"{name}/model.pt"]["sha256"] for name in GENERATORS}
    return loaded.models, {"bundle": display_path(path), "sha256": sums}


def _featurenet_info(path: Path) -> dict:
    model = path / fnet.MODEL_FILE if path.is_dir() else path
    manifest = model.parent / fnet.MANIFEST_FILE
    m = json.loads(manifest.read_text()) if manifest.is_file() else {}
    return {"path": display_path(model), "sha256": sha256_file(model), "test_accuracy": m.get("test_accuracy"),
            "feature_dim": fnet.FEATURE_DIM}


def _measure(net, real_feats: np.ndarray, images: np.ndarray) -> tuple[dict, np.ndarray]:
    feats, probs = fnet.features_and_probs(net, images)
    precision, recall = precision_recall(real_feats, feats, k=K)
    return {"fid": fid(feats, real_feats), "inception_score": inception_score(probs),
            "precision": precision, "recall": recall}, probs


def run_samplers(run_dir: str | os.PathLike) -> dict:
    """name -> (draw(n, generator) -> uint8 [n, 28, 28], digit of sample i or None, weights
    sha256) for every trained model in a training run folder (RUN/<model>/model.pt)."""
    from generators.load import MODELS, WEIGHTS_FILE, load_generator

    out = {}
    for name in MODELS:
        path = Path(run_dir) / name / WEIGHTS_FILE
        if name == "autoencoder" or not path.is_file():
            continue
        g = load_generator(path.parent)

        def draw(n: int, generator: torch.Generator, g=g) -> np.ndarray:
            parts = [g.sample(min(SAMPLE_BATCH, n - i), generator)[:, 0].numpy() for i in range(0, n, SAMPLE_BATCH)]
            return np.concatenate(parts)

        out[f"{name} ({display_path(Path(run_dir))})"] = (draw, g.conditional, sha256_file(path))
    return out


def run(quick: bool, out_dir: Path, seed: int = 0, bundle: str | None = None,
        featurenet_path: str | os.PathLike = fnet.DEFAULT, data_dir: str | None = None,
        run_dir: str | None = None, n: int | None = None, run_only: bool = False) -> dict:
    """Compute the table, write OUT_DIR/generator_quality.json atomically, return it."""
    from detectors.calibrate import sample_generator
    from forensics.data import load_dataset

    t0 = time.perf_counter()
    n = n or (QUICK_N if quick else FULL_N)
    net = fnet.load_reader(featurenet_path)
    models, weights = load_generators(bundle)

    # The real sets: N random test images (the reference) and N random train images (the floor).
    rng = np.random.default_rng(seed)
    test = load_dataset("mnist", train=False, data_dir=data_dir, download=False).images[:, 0].numpy()
    train = load_dataset("mnist", train=True, data_dir=data_dir, download=False).images[:, 0].numpy()
    reference = "the whole MNIST test set" if n >= len(test) else f"{n:,} random MNIST test images"
    test = test[np.sort(rng.choice(len(test), n, replace=False))]  # all of it at n = 10,000
    train = train[np.sort(rng.choice(len(train), n, replace=False))]
    real_feats, real_probs = fnet.features_and_probs(net, test)
    train_metrics, _ = _measure(net, real_feats, train)
    floor = {"fid": train_metrics["fid"], "precision": train_metrics["precision"], "recall": train_metrics["recall"],
             "inception_score_test": inception_score(real_probs),
             "inception_score_train": train_metrics["inception_score"]}

    generators = {}
    for name in () if run_only else GENERATORS:
        t = time.perf_counter()
        # One generator per model, so each model's samples do not depend on the others' order.
        images = sample_generator(models, name, n, torch.Generator().manual_seed(seed), SAMPLE_BATCH)
        sample_s = time.perf_counter() - t
        metrics, probs = _measure(net, real_feats, images)
        predicted = probs.argmax(1)
        metrics["predicted_class_share"] = np.bincount(predicted, minlength=10).astype(float) / n
        if name == "pixelcnn" and models.pixelcnn.cfg.num_classes == 10:  # sample i is of digit i % 10
            metrics["class_match"] = float((predicted == np.arange(n) % 10).mean())
        metrics["sample_seconds"] = round(sample_s, 2)
        generators[name] = metrics
    # Models of a training run (issue 20's new and retrained generators), beside the bundle's.
    # A conditional model draws the digits in turn, so sample i is of digit i % 10.
    for name, (draw, conditional, sha) in (run_samplers(run_dir) if run_dir else {}).items():
        t = time.perf_counter()
        images = draw(n, torch.Generator().manual_seed(seed))
        sample_s = time.perf_counter() - t
        metrics, probs = _measure(net, real_feats, images)
        predicted = probs.argmax(1)
        metrics["predicted_class_share"] = np.bincount(predicted, minlength=10).astype(float) / n
        if conditional:
            metrics["class_match"] = float((predicted == np.arange(n) % 10).mean())
        metrics["sample_seconds"] = round(sample_s, 2)
        metrics["weights_sha256"] = sha
        generators[name] = metrics

    result = {
        "benchmark": NAME,
        "settings": {"n": n, "seed": seed, "quick": quick, "k": K, "sample_batch": SAMPLE_BATCH,
                     "reference": reference, "floor": f"{n:,} random MNIST train images"},
        "feature_net": _featurenet_info(Path(featurenet_path)),
        "generator_weights": weights,
        "real_floor": floor,
        "generators": generators,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": machine_info(),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    result = json.loads(json.dumps(result, default=_jsonable))  # numpy -> plain numbers, as the file holds them
    write_result(out_dir, NAME, result)
    return result


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return [round(float(v), 4) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def markdown(result: dict) -> str:
    """A README-ready table: each generator's figures, with the real-data floor on top."""
    s, f = result["settings"], result["real_floor"]
    lines = [
        "| samples | FID ↓ | Inception-style score ↑ | precision ↑ | recall ↑ | read as the asked digit ↑ | sampling s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| real-data floor: MNIST train vs test | {f['fid']:.2f} | {f['inception_score_test']:.2f} (test), "
        f"{f['inception_score_train']:.2f} (train) | {f['precision']:.3f} | {f['recall']:.3f} | | |",
    ]
    for name, g in result["generators"].items():
        match = f"{g['class_match']:.1%}" if "class_match" in g else "–"
        lines.append(f"| {name} | {g['fid']:.2f} | {g['inception_score']:.2f} | {g['precision']:.3f} | {g['recall']:.3f} "
                     f"| {match} | {g.get('sample_seconds', 0):.0f} |")
    fn = result["feature_net"]
    notes = [
        "",
        f"N = {s['n']:,} images per set (every row, floor included: FID is biased upwards at small N, so only "
        f"figures at the same N compare), seed {s['seed']}{', quick mode' if s['quick'] else ''}. "
        f"Reference: {s['reference']}. Features: the 128-d penultimate layer of the digit reader "
        f"(`detectors/reader.py`, trained by `forensics train-reader`), "
        f"a CNN trained on MNIST train ({fn['test_accuracy']:.2%} test accuracy); scores from its softmax; "
        f"precision/recall with k = {s['k']} (Kynkäänniemi et al. 2019). The figures depend on this feature net "
        f"and N: compare them with each other, not with FIDs published for other networks. "
        f"{result['wall_seconds'] / 60:.1f} min on "
        f"{result['threads']} CPU thread(s).",
    ]
    if "pixelcnn" in result["generators"] and "class_match" in result["generators"]["pixelcnn"]:
        notes.append(f"The class-conditional PixelCNN's samples are classified as the digit they were drawn for "
                     f"{result['generators']['pixelcnn']['class_match']:.1%} of the time.")
    return "\n".join(lines + notes) + "\n"


if __name__ == "__main__":
    main(run, markdown, __doc__, options=(
        (("--bundle",), {"help": "detector bundle with the generators (default: the shipped one)"}),
        (("--run",), {"dest": "run_dir", "help": "also measure every model of this training run folder "
                                                 "(RUN/<model>/model.pt: VAE, diffusion, retrained PixelCNN, ...)"}),
        (("--n",), {"type": int, "help": f"images per set (default {FULL_N:,}; FIDs compare only at the same N)"}),
        (("--run-only",), {"action": "store_true", "default": None,
                           "help": "measure only the --run models, not the bundle's"}),))
