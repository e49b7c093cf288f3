"""The training loop: smoke runs, --epochs 0, resume after a crash, torchrun with 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from forensics.checkpoint import load_checkpoint
from generators.presets import preset_config
from generators.load import load_generator
from generators.train import TrainConfig, TrainingInterrupted, train

pytestmark = pytest.mark.skipif(not os.environ.get("FORENSICS_DATA"), reason="set FORENSICS_DATA to the MNIST folder")


def smoke(model: str, out: Path, **kw) -> TrainConfig:
    fields = preset_config("smoke", model)
    fields.update(kw)
    return TrainConfig(model=model, out=str(out), seed=3, **fields)


@pytest.mark.parametrize("model", ["pixelcnn", "pixelcnn-bin", "dcgan", "fcgan", "autoencoder", "vae", "diffusion"])
def test_smoke_run_writes_every_artifact(tmp_path, model):
    metrics = train(smoke(model, tmp_path))
    run = tmp_path / model
    for name in ("checkpoint.pt", "model.pt", "manifest.json", "metrics.json", "losses.png", "evolution.gif",
                 "samples/epoch_001.png"):
        assert (run / name).is_file(), name
    assert metrics["epochs_done"] == 1 and metrics["steps"] == 256 // 32
    assert json.loads((run / "metrics.json").read_text())["steps"] == metrics["steps"]
    if model.startswith("pixelcnn"):
        assert metrics["final"]["test_nll_bits_per_dim"] > 0
    if model in ("dcgan", "fcgan"):  # the two players' balance, per epoch
        final = metrics["final"]
        assert sum(final["d_hist_real"]) == sum(final["d_hist_fake"]) > 0
        assert (run / "d_histograms.png").is_file()
    # The weights reload as data only and sample.
    gen = load_generator(run)
    assert gen.sample(4, torch.Generator().manual_seed(0)).dtype == torch.uint8


def test_epochs_zero_gives_an_untrained_grid_at_once(tmp_path):
    t0 = time.monotonic()
    metrics = train(smoke("pixelcnn", tmp_path, epochs=0, model_config={}))  # full-size model, untrained
    elapsed = time.monotonic() - t0
    assert (tmp_path / "pixelcnn" / "samples" / "epoch_000.png").is_file()
    assert metrics["steps"] == 0
    assert elapsed < 60, f"--epochs 0 took {elapsed:.1f}s"


def _losses(run: Path) -> list[float]:
    ck = load_checkpoint(run / "checkpoint.pt")
    return [h["loss_d"] if "loss_d" in h else h["loss"] for h in ck["state"]["history"]]


STREAMS = dict(model_config=dict(arch="streams", channels=8, nr_resnet=1), lr_schedule="cosine", warmup_steps=3,
               ema=0.9, cpu_bf16=True)


@pytest.mark.parametrize("model,extra", [("pixelcnn", {}), ("dcgan", {}), ("pixelcnn", STREAMS),
                                         ("pixelcnn-bin", {"binarize": "stochastic"})],
                         ids=["pixelcnn", "dcgan", "streams-cosine-ema", "bin-stochastic"])
def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, model, extra, monkeypatch):
    ref = tmp_path / "ref"
    train(smoke(model, ref, epochs=2, **extra))

    # Interrupt the second run mid-epoch, as Ctrl-C would (the loop polls the flag after each step).
    import generators.train as T

    class StopAfter11Steps(T._StopFlag):
        polls = 0

        @property
        def stop(self):
            StopAfter11Steps.polls += 1
            return StopAfter11Steps.polls == 11

        @stop.setter
        def stop(self, value):
            pass

    cut = tmp_path / "cut"
    monkeypatch.setattr(T, "_StopFlag", StopAfter11Steps)
    with pytest.raises(TrainingInterrupted):
        train(smoke(model, cut, epochs=2, **extra))
    saved = load_checkpoint(cut / model / "checkpoint.pt")["state"]
    assert (saved["epoch"], saved["batch"], saved["step"]) == (1, 3, 11)  # 8 batches per epoch

    with pytest.raises(Exception, match="--resume"):
        train(smoke(model, cut, epochs=2, **extra))
    metrics = train(smoke(model, cut, epochs=2, **extra), resume=True)
    assert metrics["steps"] == 16
    assert _losses(cut / model) == _losses(ref / model)  # bitwise on CPU: same data order, RNG and weights
    shipped = [load_checkpoint(r / model / "model.pt")["weights"] for r in (cut, ref)]
    for part, state in shipped[0].items():
        for name, w in state.items():
            assert torch.equal(w, shipped[1][part][name]), (part, name)
    if extra.get("ema"):  # the averaged weights ship, not the last step's
        lrs = [h["lr"] for h in load_checkpoint(ref / model / "checkpoint.pt")["state"]["history"]]
        assert lrs[0] < lrs[2] and lrs[-1] < lrs[3]  # warm-up, then the cosine down
        raw = load_checkpoint(ref / model / "checkpoint.pt")["recipe"]["model"]
        assert any(not torch.equal(raw[k], shipped[1]["model"][k]) for k in raw)


def test_cli_train_generators_smoke_and_sample(tmp_path):
    from typer.testing import CliRunner

    from forensics.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["train-generators", "--preset", "smoke", "-m", "fcgan", "--out", str(tmp_path), "--seed", "1"])
    assert r.exit_code == 0, r.output
    grid = tmp_path / "grid.png"
    r = runner.invoke(app, ["sample", "-m", "fcgan", "--run", str(tmp_path), "-n", "8", "--out", str(grid)])
    assert r.exit_code == 0, r.output
    first = grid.read_bytes()
    r = runner.invoke(app, ["sample", "-m", "fcgan", "--run", str(tmp_path), "-n", "8", "--out", str(grid)])
    assert grid.read_bytes() == first, "same seed must give the same samples"
    strip = tmp_path / "strip.png"
    for mode in ("slerp", "lerp", "dim"):
        r = runner.invoke(app, ["interpolate", "-m", "fcgan", "--run", str(tmp_path), "--mode", mode,
                                "--steps", "5", "--rows", "2", "--out", str(strip)])
        assert r.exit_code == 0, r.output
        assert strip.is_file()
    r = runner.invoke(app, ["sample", "-m", "dcgan", "--run", str(tmp_path), "--out", str(grid)])
    assert r.exit_code == 3 and "not found" in r.output


def test_torchrun_two_cpu_processes(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "forensics", "train-generators", "--preset", "smoke", "-m", "dcgan", "--out", str(tmp_path),
           "--train-limit", "128", "--device", "cpu"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    metrics = json.loads((tmp_path / "dcgan" / "metrics.json").read_text())
    assert metrics["steps"] == 128 // 32


def test_stochastic_binarization_draws_each_pixel_with_its_grey_level(tmp_path):
    from generators.train import stochastic_binarize

    x = torch.tensor([0, 64, 128, 255], dtype=torch.uint8).repeat(20000, 1)
    b = stochastic_binarize(x, torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) <= {0, 255}
    torch.testing.assert_close((b.float() / 255).mean(0), x[0].float() / 255, atol=0.01, rtol=0)
    assert torch.equal(b, stochastic_binarize(x, torch.Generator().manual_seed(0)))
    metrics = train(smoke("pixelcnn-bin", tmp_path, binarize="stochastic"))
    assert metrics["final"]["test_binarization"].startswith("stochastic")
    with pytest.raises(Exception, match="pixelcnn-bin"):
        train(smoke("pixelcnn", tmp_path / "x", binarize="stochastic"))


def test_ema_warms_up_instead_of_holding_the_untrained_weights():
    from torch.optim.swa_utils import AveragedModel

    from generators.train import ema_with_warmup

    model = torch.nn.Linear(2, 1)
    ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(0.999))
    for step in range(100):
        with torch.no_grad():
            model.weight.fill_(1.0 if step == 0 else 2.0)  # the first weights, then the trained ones
        ema.update_parameters(model)
    # A fixed 0.999 would still be ~90% the first weights after 100 steps (1.09); warmed up, it is ~2.
    assert ema.module.weight.mean().item() > 1.9
