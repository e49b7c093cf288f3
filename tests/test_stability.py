"""Selective re-scans (Stability.near), signals computed only where asked, and re-fitting a
bundle's combiner on its own CNNs (calibrate --cnns-from)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from detectors.bundle import StabilityBound, load_bundle, logit
from detectors.score import Thresholds, score_images
from detectors.signals import ALL_SIGNALS, FAST_SIGNALS, PIXELCNN_SIGNALS, compute_signals
from forensics.checkpoint import sha256_file
from forensics.cli import app
from forensics.record import Stability


@pytest.fixture(scope="module")
def frames(mnist_test_frames):
    return mnist_test_frames[:12]


def test_compute_signals_gives_what_is_asked_and_the_same_values(tiny_bundle, frames):
    full = compute_signals(frames, tiny_bundle.models)
    fast = compute_signals(frames, tiny_bundle.models, FAST_SIGNALS)
    assert list(fast) == list(FAST_SIGNALS)  # no PixelCNN signal, no heatmap, no PixelCNN digit
    for name in FAST_SIGNALS:
        assert np.array_equal(fast[name], full[name]), name
    one = compute_signals(frames, tiny_bundle.models, ["complexity_bpd"])
    assert list(one) == ["complexity_bpd", "heatmap", "digit"]
    assert np.array_equal(one["complexity_bpd"], full["complexity_bpd"])
    with pytest.raises(ValueError, match="unknown signals"):
        compute_signals(frames, tiny_bundle.models, ["nonsense"])


def test_records_carry_the_combiners_signals_or_all_of_them(tiny_bundle, frames):
    used = [n for n in ALL_SIGNALS if n in tiny_bundle.combiner.signals]
    plain = score_images(frames[:3], tiny_bundle, stability=Stability.off)
    every = score_images(frames[:3], tiny_bundle, stability=Stability.off, all_signals=True)
    for a, b in zip(plain, every):
        assert list(a["signals"]) == used and list(b["signals"]) == list(ALL_SIGNALS)
        assert a["p_machine"] == b["p_machine"]  # the verdict never depends on what else is shown
        assert (a["heatmap"] is None) == (not set(used) & set(PIXELCNN_SIGNALS))
        assert b["heatmap"] is not None


def test_could_flip_only_near_a_threshold():
    bound = StabilityBound(1.0, 1.0)
    t_m, t_h = 0.8, 0.2
    p = 1 / (1 + np.exp(-np.array([logit(t_m) + 0.5, logit(t_m) + 1.5, 0.0, logit(t_h) - 0.5, logit(t_h) - 1.5])))
    assert bound.could_flip(p, t_m, t_h).tolist() == [True, False, False, True, False]
    assert StabilityBound(0.0, 0.0).could_flip(p, t_m, t_h).tolist() == [False] * 5
    assert StabilityBound(9.0, 0.0).could_flip(p, t_m, t_h).tolist() == [False, False, False, True, True]


def test_near_rescans_what_could_flip_and_says_so(tiny_bundle, frames):
    assert tiny_bundle.stability is not None  # calibration measured one
    t = Thresholds()
    full = score_images(frames, tiny_bundle, stability=Stability.all)
    # A bound as wide as the largest move seen re-scans everything that moved across a threshold.
    widest = max(abs(float(logit(r["p_machine_max"]) - logit(r["p_machine"]))) for r in full)
    widest = max(widest, max(abs(float(logit(r["p_machine_min"]) - logit(r["p_machine"]))) for r in full))
    wide = dataclasses.replace(tiny_bundle, stability=StabilityBound(widest + 1e-9, widest + 1e-9))
    near = score_images(frames, wide, stability=Stability.near, thresholds=t)
    for f, n in zip(full, near):
        assert n["p_machine"] == f["p_machine"]
        assert f["rescanned"] is True and isinstance(f["stable"], bool)
        assert n["verdict"] == f["verdict"] or (n["verdict"] == "uncertain")  # nothing a full check flips is missed
        if f["stable"] is False and n["rescanned"] is False:
            pytest.fail("a verdict that a re-scan flips was not re-scanned")
        if n["rescanned"] is False:
            assert n["stable"] is None and n["p_machine_min"] == n["p_machine_max"] == n["p_machine"]
    # A zero bound re-scans nothing; no stability re-scans nothing and says neither.
    none = score_images(frames, dataclasses.replace(tiny_bundle, stability=StabilityBound(0.0, 0.0)))
    assert all(r["rescanned"] is False and r["stable"] is None for r in none)
    off = score_images(frames, tiny_bundle, stability=Stability.off)
    assert all(r["rescanned"] is None and r["stable"] is None for r in off)
    # An uncertain verdict is never re-scanned under near: it cannot become anything else.
    middle = Thresholds(t_machine=0.999999, t_human=1e-6)
    assert all(r["rescanned"] is False for r in score_images(frames, tiny_bundle, thresholds=middle)
               if r["verdict"] == "uncertain")


def test_cli_stability_choices(tiny_bundle_dir, tmp_path):
    from PIL import Image

    scan = tmp_path / "one.png"
    Image.new("L", (56, 56), 255).save(scan)
    arr = np.full((56, 56), 255, np.uint8)
    arr[10:46, 25:31] = 0
    Image.fromarray(arr).save(scan)
    outs = {}
    for name, flags in (("off", ["--stability", "off"]), ("no", ["--no-stability"]), ("all", ["--stability", "all"])):
        out = tmp_path / f"{name}.json"
        r = CliRunner().invoke(app, ["score", str(scan), "--models", str(tiny_bundle_dir), "--format", "json",
                                     "--output", str(out), *flags])
        assert r.exit_code == 0, r.output
        outs[name] = json.loads(out.read_text())[0]
    assert outs["off"] == outs["no"] and outs["off"]["rescanned"] is None
    assert outs["all"]["rescanned"] is True and outs["all"]["p_machine"] == outs["off"]["p_machine"]
    r = CliRunner().invoke(app, ["score", str(scan), "--models", str(tiny_bundle_dir), "--no-stability",
                                 "--stability", "all"])
    assert r.exit_code == 2 and "contradicts" in r.output


def test_refit_on_a_bundles_own_cnns(tiny_bundle_dir, tmp_path):
    from detectors.calibrate import calibrate

    out = tmp_path / "refit"
    ab = calibrate(None, out, per_generator=20, seed=3, command="test refit", cnns_from=tiny_bundle_dir,
                   signals="all")
    for name in ("cnn", "font_cnn", "pixelcnn", "dcgan", "fcgan", "vae", "diffusion"):  # copied, not re-saved
        assert sha256_file(out / name / "model.pt") == sha256_file(tiny_bundle_dir / name / "model.pt")
    refit = load_bundle(out)
    assert refit.combiner.signals == list(ALL_SIGNALS) and ab["selected"] == "all"
    assert refit.stability is not None and min(refit.stability.toward_machine, refit.stability.toward_human) >= 0
    assert refit.manifest["scan_cnn"]["reused_from"]["path"] == str(tiny_bundle_dir)
    origin = ab["leave_one_generator_out_from"]
    assert origin["font"] == "measured"  # fonts can still be left out: the FontCNN is simply dropped
    assert all(origin[g].startswith("carried from bundle") for g in ("pixelcnn", "dcgan", "fcgan", "vae", "diffusion"))
    old = json.loads((tiny_bundle_dir / "ablation.json").read_text())
    assert ab["leave_one_generator_out"]["dcgan"] == old["leave_one_generator_out"]["dcgan"]
    assert set(ab["verdict_changes"]) == {"required", "fast", "all"} and ab["verdict_changes"]["all"]["changed"] == 0
    with pytest.raises(Exception, match="--run"):
        calibrate(tiny_bundle_dir, out, per_generator=20, cnns_from=tiny_bundle_dir)


def test_new_cnns_on_a_bundles_generators(tiny_bundle_dir, tmp_path):
    from detectors.calibrate import calibrate
    from detectors.cnn import CNNConfig

    out = tmp_path / "retrained"
    ab = calibrate(None, out, per_generator=20, seed=3, command="test retrain", generators_from=tiny_bundle_dir,
                   cnn_per_generator=20, cnn_config=CNNConfig(epochs=1))
    for name in ("pixelcnn", "dcgan", "fcgan", "vae", "diffusion"):  # the generators: copied as they are
        assert sha256_file(out / name / "model.pt") == sha256_file(tiny_bundle_dir / name / "model.pt")
    for name in ("cnn", "font_cnn", "familiar_cnn"):  # the CNNs: trained again, on another sample
        assert sha256_file(out / name / "model.pt") != sha256_file(tiny_bundle_dir / name / "model.pt")
    rebuilt = load_bundle(out)
    assert rebuilt.manifest["calibration"]["generators_from"] == str(tiny_bundle_dir)
    assert "reused_from" not in rebuilt.manifest["scan_cnn"]
    assert rebuilt.manifest["training"] == load_bundle(tiny_bundle_dir).manifest["training"]
    assert set(ab["leave_one_generator_out_from"].values()) == {"measured"}  # nothing carried
    with pytest.raises(Exception, match="--generators-from"):
        calibrate(None, out, per_generator=20, cnns_from=tiny_bundle_dir, generators_from=tiny_bundle_dir)


def test_chunks_are_small_on_a_cpu_and_large_on_a_gpu():
    import torch

    from detectors.signals import CHUNK, GPU_CHUNK, chunk_size

    assert chunk_size(torch.device("cpu")) == CHUNK == 8
    assert chunk_size(torch.device("cuda:0")) == GPU_CHUNK >= 256  # --device cuda scores in large batches
