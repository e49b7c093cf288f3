"""Shared test setup: one thread per process, and ONE tiny detector bundle per test session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

# Tests use tiny models, for which one thread is fastest; on a shared 2-core machine, two
# threads per process oversubscribe the cores and can be ten times slower.
torch.set_num_threads(1)

TINY_BUNDLE_PER_GENERATOR = 100  # 300 human + 300 machine images, each with a print-and-scan twin


def _need_data() -> None:
    if not os.environ.get("FORENSICS_DATA"):
        pytest.skip("set FORENSICS_DATA to the MNIST folder")


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory) -> Path:
    """A detector bundle from `smoke` generators and a small calibration, built once per session.

    Meaningless quality-wise (the generators train for seconds): tests use it for plumbing,
    loading, tamper checks, hostile inputs and determinism. Treat it as read-only; copy it
    (shutil.copytree) before damaging it.
    """
    _need_data()
    from detectors.calibrate import calibrate
    from detectors.cnn import CNNConfig
    from generators.presets import preset_config
    from generators.train import TrainConfig, train

    run = tmp_path_factory.mktemp("tiny-run")
    for name in ("pixelcnn", "dcgan", "fcgan", "vae", "diffusion"):  # the last two: forgers, not signals
        fields = preset_config("smoke", name)
        if name == "pixelcnn":
            # The smoke PixelCNN's 256-wide output head is most of its cost; 10 class passes
            # per image make that the tests' bottleneck, so this copy uses a narrower head.
            fields["model_config"] = {**fields["model_config"], "head_channels": 32}
        train(TrainConfig(model=name, out=str(run), seed=1, **fields), log=lambda *_: None)
    out = tmp_path_factory.mktemp("tiny-bundle")
    calibrate(run, out, per_generator=TINY_BUNDLE_PER_GENERATOR, seed=0, command="test",
              cnn_per_generator=TINY_BUNDLE_PER_GENERATOR, cnn_config=CNNConfig(epochs=1), aligned_fakes=True)
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tiny_bundle_dir):
    """The tiny bundle, loaded (verified against its manifest) once per session."""
    from detectors.bundle import load_bundle

    return load_bundle(tiny_bundle_dir)


@pytest.fixture(scope="session")
def mnist_test_frames() -> np.ndarray:
    """The first 16 MNIST test digits as uint8 [16, 28, 28] (bright ink on black)."""
    _need_data()
    from forensics.data import load_dataset

    return load_dataset("mnist", train=False).images[:16, 0].numpy()


@pytest.fixture
def fit_briefly():
    """fit(model, x, y, steps, lr) -> (loss before, loss after): Adam on the model's own loss, one batch."""

    def fit(model, x, y, steps: int = 30, lr: float = 1e-2) -> tuple[float, float]:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        first = model.loss(x, y).item()
        for _ in range(steps):
            loss = model.loss(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return first, model.loss(x, y).item()

    return fit


@pytest.fixture
def cli_here(tmp_path, monkeypatch):
    """invoke(*args) runs the CLI with tmp_path as the working folder (the data path made absolute
    first, as a relative FORENSICS_DATA would no longer point at it)."""
    _need_data()
    from typer.testing import CliRunner

    from forensics.cli import app

    monkeypatch.setenv("FORENSICS_DATA", str(Path(os.environ["FORENSICS_DATA"]).resolve()))
    monkeypatch.chdir(tmp_path)
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])
