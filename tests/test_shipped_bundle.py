"""The shipped bundle (detectors/bundle) on real data: MNIST test digits the calibration never
used (test[5000:]) as human scans, fresh samples of the bundle's own generators, printed and
scanned, and font forgeries as machine. Skipped when the bundle or the data is absent."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from detectors.bundle import DEFAULT_BUNDLE, FORGER_NAMES, load_bundle, load_forgers
from detectors.fonts import font_forgeries
from detectors.printscan import render_scan
from detectors.engine import score_paths
from detectors.score import score_images
from forensics.data import load_dataset
from forensics.errors import InputError
from forensics.preprocess import preprocess_image

pytestmark = [
    pytest.mark.skipif(not (DEFAULT_BUNDLE / "manifest.json").is_file(),
                       reason=f"no shipped bundle: {DEFAULT_BUNDLE}/manifest.json is absent "
                              f"(build it with forensics calibrate --out {DEFAULT_BUNDLE})"),
    pytest.mark.skipif(not os.environ.get("FORENSICS_DATA"), reason="set FORENSICS_DATA to the MNIST folder"),
]

# What the shipped bundle must do on scans it never saw (held-out AUROC 0.95 with captures, see the README).
# With stability on, a verdict that any re-scan would flip becomes "uncertain", so these pin
# the share of confident correct verdicts and cap the confident wrong ones.
MIN_AUROC = 0.9
# Bundles since v7 (trained on capture variety, issue 21) say "uncertain" far more often than v6 did:
MIN_HUMAN = 0.6  # measured (v7): 28 of the 40 human scans below called human (0 machine); v6 38, v5 38, v4 34
# Since v10 the bundle's t_machine is fitted (0.985: at most 0.5% of any capture's honest digits
# above it, issue 21), so most forgeries are "uncertain", sent to a reviewer, not "machine".
# Measured (v10, machine of 40): DCGAN 4, FC-GAN 8, PixelCNN 10 / 39, VAE 17, diffusion 11 (old sampler; 0 since), fonts 25
# (v9 at 0.8: 21, 23, 31 / 39, 31, 24, 35); called human: 3, 0, 1, 0, 2, 1 (MAX_WRONG is the guard).
MIN_MACHINE = 0.075
# The diffusion forger since its DDIM step was corrected (ebc27d2) draws clean digits, and no
# bundle catches them: v10 (shipped, trained on the old speckled samples) AUROC 0.62 here, 0 of
# 40 called machine; v11, every CNN trained again on the corrected samples, held-out AUROC 0.643,
# TPR at 1% FPR 0.011 (docs/models.md, "Bundle v11"). Strict: the day a bundle catches them this fails.
DIFFUSION_MISSED = pytest.mark.xfail(strict=True, reason="the corrected diffusion forger is not caught by "
                                     "any bundle built so far (docs/models.md, Bundle v11)")
FAMILIES = ["dcgan", "fcgan", "pixelcnn", "vae", pytest.param("diffusion", marks=DIFFUSION_MISSED), "font"]
MIN_DIGITS_READ = 0.95  # at most 2 of 40 misread; measured: 0 (the PixelCNN's digit was wrong for 1 in 6)
MAX_WRONG = 0.075  # at most 3 in 40 (2 in 39) confidently wrong; measured (v6): 0 human called machine; 1, 0, 1, 0 called human


@pytest.fixture(scope="module")
def bundle():
    return load_bundle()


@pytest.fixture(scope="module")
def human_frames():
    frames = load_dataset("mnist", train=False).images[-80:, 0].numpy()  # never used by calibration
    return np.stack([preprocess_image(Image.fromarray(255 - f).resize((84, 84), Image.Resampling.BICUBIC))
                     for f in frames])


def machine_frames(bundle, generator: str, n: int = 60) -> np.ndarray:
    g = torch.Generator().manual_seed(20240611)
    models = bundle.models
    if generator == "font":  # typed digits in disguise, from a seed calibration never used
        samples = torch.as_tensor(font_forgeries(n, np.random.default_rng(20240611))).unsqueeze(1)
    elif generator == "pixelcnn":
        samples = models.pixelcnn.eval().sample(n, y=torch.arange(n) % 10, generator=g)
    elif generator in FORGER_NAMES:  # forgers a bundle may carry; scoring never loads them
        forgers = load_forgers(DEFAULT_BUNDLE, names=(generator,))
        if generator not in forgers:
            pytest.skip(f"the shipped bundle was not calibrated on the {generator} (it carries no {generator}/)")
        samples = forgers[generator].sample(n, g)
    else:
        samples = getattr(models, generator).sample(n, generator=g)
    frames = []
    for f in samples[:, 0].numpy():  # a forger prints the sample; it reaches us scanned
        try:
            frames.append(preprocess_image(render_scan(f)))
        except InputError:  # a blank sample has no ink: preprocessing rejects it, as it should
            pass
    assert len(frames) >= n // 2, f"{generator}: only {len(frames)} of {n} samples had ink"
    return np.stack(frames)


def p_machine(frames, bundle) -> np.ndarray:
    return np.array([r["p_machine"] for r in score_images(frames, bundle, stability=False)])


@pytest.mark.parametrize("generator", FAMILIES)
def test_fresh_machine_scans_score_above_held_out_human_scans(bundle, human_frames, generator):
    ph, pm = p_machine(human_frames, bundle), p_machine(machine_frames(bundle, generator), bundle)
    auroc = roc_auc_score(np.r_[np.zeros(len(ph)), np.ones(len(pm))], np.r_[ph, pm])
    assert auroc >= MIN_AUROC, f"{generator}: AUROC {auroc:.3f} on {len(ph)} human vs {len(pm)} machine scans"
    assert np.median(pm) > np.median(ph)


def _share(records, verdict: str) -> float:
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records if r["status"] != "ok"]
    return sum(r["verdict"] == verdict for r in records) / len(records)


def test_held_out_human_scans_are_called_human_and_their_digits_read(bundle, tmp_path):
    test = load_dataset("mnist", train=False)
    frames, labels = test.images[-40:, 0].numpy(), test.labels[-40:].numpy()
    for i, frame in enumerate(frames):  # dark ink on white paper, as a scanner gives it
        Image.fromarray(255 - frame).resize((84, 84), Image.Resampling.BICUBIC).save(tmp_path / f"d{i:02d}.png")
    records = list(score_paths([str(tmp_path)], bundle, stability=True))
    assert _share(records, "human") >= MIN_HUMAN and _share(records, "machine") <= MAX_WRONG
    read = [r["digit"] for r in sorted(records, key=lambda r: r["file"])]
    # The reader is right for 99.3% of test digits as scans; the PixelCNN it replaced, 83%.
    assert np.mean(np.array(read) == labels) >= MIN_DIGITS_READ, list(zip(read, labels))


@pytest.mark.parametrize("generator", FAMILIES)
def test_fresh_machine_scans_are_flagged_never_let_through(bundle, generator):
    records = score_images(machine_frames(bundle, generator, n=40), bundle, stability=True)
    assert _share(records, "machine") >= MIN_MACHINE and _share(records, "human") <= MAX_WRONG


def test_scores_on_the_example_scans_are_what_they_were(bundle):
    """tests/data/example_scores.json was recorded with `forensics score examples/scans/` when the
    shipped bundle last changed (v9, issue 21); a refactor must not move a single score, nor
    change which scans get re-scanned."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    expected = json.loads((root / "tests" / "data" / "example_scores.json").read_text())["records"]
    records = {Path(r["file"]).name: r for r in score_paths([str(root / "examples" / "scans")], bundle)}
    assert set(records) == set(expected)
    for name, want in expected.items():
        got = records[name]
        assert (got["verdict"], got["digit"], got["rescanned"]) == (want["verdict"], want["digit"], want["rescanned"]), name
        # Not bit-exact: another CPU's vector kernels (AVX-512, AMX) round float32 sums differently,
        # moving a probability by ~1e-7 (seen: 4e-8 on an AMX machine); a refactor moves it far more.
        for key in ("p_machine", "p_machine_min", "p_machine_max"):
            assert abs(got[key] - want[key]) <= 1e-6, (name, key, got[key], want[key])


# Issue 21: honest digits from other captures and writers are not accused, and an input unlike
# anything the bundle knows is uncertain / unfamiliar, never machine.
# The target is at most 1% on every held-out human set. v10's fitted threshold meets it on these two
# (benchmarks.human_variety: load_digits 0.1% of 1,797, low resolution 0.2% of 600; v9 at 0.8: 2.7%
# and 3.5%; v7 7.0% and 5.7%); one of 40 allowed, as a 1% rate would give 0.4 on average.
MAX_ACCUSED = 1  # of 40
MIN_FASHION_UNFAMILIAR = 16  # of 20; measured (v7): 19, none called machine (94.8% of 600 in the benchmark)


def _called(images, bundle) -> list[dict]:
    frames = np.stack([preprocess_image(img) for img in images])
    return score_images(frames, bundle, stability=True)


def test_load_digits_honest_digits_are_not_called_machine(bundle):
    from sklearn.datasets import load_digits

    uci = load_digits().images[:40]  # UCI 8x8, other writers: never trained, calibrated or tuned on
    scans = [Image.fromarray((255 - np.round(u * 255 / 16)).astype(np.uint8)).resize((64, 64), Image.Resampling.BICUBIC)
             for u in uci]
    records = _called(scans, bundle)
    assert sum(r["verdict"] == "machine" for r in records) <= MAX_ACCUSED, [r["p_machine"] for r in records]


def test_honest_load_digits_forms_are_not_called_machine_by_the_page_model(bundle):
    from sklearn.datasets import load_digits

    from forensics.page_lr import page_verdict, usable_log_lr

    assert bundle.page_model is not None and bundle.page_model.t_page >= bundle.thresholds.t_machine
    uci = load_digits().images[40:120]  # eight forms of ten, other writers: never fitted on
    scans = [Image.fromarray((255 - np.round(u * 255 / 16)).astype(np.uint8)).resize((64, 64), Image.Resampling.BICUBIC)
             for u in uci]
    records = _called(scans, bundle)
    for i in range(0, len(records), 10):
        form = records[i : i + 10]
        counts = [sum(r["verdict"] == v for r in form) for v in ("machine", "uncertain")]
        verdict = page_verdict(bundle.page_model, [usable_log_lr(r) for r in form if usable_log_lr(r) is not None],
                               0.5, *counts, 0)[0]
        assert verdict != "machine", [r["log10_lr"] for r in form]


def test_a_low_resolution_human_scan_is_not_called_machine(bundle):
    from detectors.capture import capture

    frames = load_dataset("mnist", train=False).images[-40:, 0].numpy()  # never used by calibration
    rng = np.random.default_rng(21)
    records = _called([capture(f, "low_res", rng) for f in frames], bundle)
    assert sum(r["verdict"] == "machine" for r in records) <= MAX_ACCUSED, [r["p_machine"] for r in records]


def test_a_fashion_item_is_uncertain_and_unfamiliar_never_machine(bundle):
    items = load_dataset("fashion-mnist", train=False).images[:20, 0].numpy()
    records = _called([render_scan(f) for f in items], bundle)
    assert not any(r["verdict"] == "machine" for r in records)
    unfamiliar = [r for r in records if r["unfamiliar"]]
    assert all(r["verdict"] == "uncertain" and r["reason"] == "unfamiliar" for r in unfamiliar)
    assert len(unfamiliar) >= MIN_FASHION_UNFAMILIAR, [round(r["familiarity_logit"], 2) for r in records]


def test_sampling_a_generator_the_bundle_lacks_says_how_to_get_one(tmp_path):
    """A forger the bundle carries (calibration's, never scoring's) is drawn from its own copy,
    checked against the manifest; one it lacks is refused with the command that trains it."""
    from typer.testing import CliRunner

    from forensics.cli import app
    from forensics.errors import EXIT_MISSING

    out = tmp_path / "vae.png"
    r = CliRunner().invoke(app, ["sample", "-m", "vae", "-n", "4", "--out", str(out), "--seed", "1"])
    said = " ".join(r.output.split())
    if (DEFAULT_BUNDLE / "vae" / "model.pt").is_file():
        assert r.exit_code == 0 and out.is_file() and "shipped bundle's vae" in said, r.output
    else:
        assert r.exit_code == EXIT_MISSING and "train-generators -m vae" in said and not out.exists(), r.output
