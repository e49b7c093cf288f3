"""The shipped bundle (detectors/bundle) on real data: MNIST test digits are human, fresh
samples of the bundle's own generators are machine. Skipped until the bundle is committed."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from detectors.bundle import DEFAULT_BUNDLE, load_bundle
from detectors.printscan import render_scan
from detectors.score import score_images, score_paths
from forensics.data import load_dataset
from forensics.preprocess import preprocess_image

pytestmark = [
    pytest.mark.skipif(not (DEFAULT_BUNDLE / "manifest.json").is_file(),
                       reason=f"no shipped bundle yet: {DEFAULT_BUNDLE}/manifest.json is absent "
                              f"(build it with forensics calibrate --out {DEFAULT_BUNDLE})"),
    pytest.mark.skipif(not os.environ.get("FORENSICS_DATA"), reason="set FORENSICS_DATA to the MNIST folder"),
]

MIN_RIGHT = 0.9  # share of verdicts that must be right; none may be the opposite verdict


@pytest.fixture(scope="module")
def bundle():
    return load_bundle()


def _check(records, expected: str) -> None:
    opposite = {"human": "machine", "machine": "human"}[expected]
    verdicts = [r["verdict"] for r in records]
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records if r["status"] != "ok"]
    assert verdicts.count(opposite) == 0, verdicts
    assert verdicts.count(expected) >= MIN_RIGHT * len(verdicts), verdicts


def test_real_mnist_test_digits_scanned_are_called_human(bundle, tmp_path):
    frames = load_dataset("mnist", train=False).images[-20:, 0].numpy()
    for i, frame in enumerate(frames):  # dark ink on white paper, as a scanner gives it
        Image.fromarray(255 - frame).resize((84, 84), Image.Resampling.BICUBIC).save(tmp_path / f"d{i:02d}.png")
    _check(list(score_paths([str(tmp_path)], bundle, stability=True)), "human")


@pytest.mark.parametrize("generator", ["dcgan", "fcgan", "pixelcnn"])
def test_fresh_samples_of_the_bundles_generators_are_called_machine(bundle, generator):
    g = torch.Generator().manual_seed(20240611)
    models = bundle.models
    if generator == "pixelcnn":
        samples = models.pixelcnn.eval().sample(10, y=torch.arange(10), generator=g)
    else:
        samples = getattr(models, generator).sample(20, generator=g)
    # A forger prints the sample and it reaches us scanned, like every input does.
    frames = np.stack([preprocess_image(render_scan(f)) for f in samples[:, 0].numpy()])
    _check(score_images(frames, bundle, stability=True), "machine")
