"""Detectors on a tiny bundle: smoke generators + a small calibration, built once per session.

The bundle is meaningless quality-wise (the generators train for seconds); these tests
check the plumbing: signal definitions, the JSON combiner, tamper checks, streaming
records, determinism, the CLI and the ROC plot.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from forensics.cli import app
from forensics.data import load_dataset
from forensics.errors import EXIT_MISSING, EXIT_SOME_FAILED, CheckpointError

from detectors import printscan
from detectors.bundle import Combiner, HumanReference, load_bundle
from detectors.evaluate import evaluate_dirs
from detectors.engine import score_paths
from detectors.score import RECORD_KEYS, Thresholds, score_images
from detectors.signals import ALL_SIGNALS, REQUIRED_SIGNALS, compute_signals
from reports.writers import csv_columns, flat_row

pytestmark = pytest.mark.skipif(not os.environ.get("FORENSICS_DATA"), reason="set FORENSICS_DATA to the MNIST folder")


@pytest.fixture(scope="module")
def bundle_dir(tiny_bundle_dir) -> Path:
    # Built once per session in conftest.py (smoke generators + a small calibration).
    return tiny_bundle_dir


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return tiny_bundle


@pytest.fixture(scope="module")
def mnist_frames() -> np.ndarray:
    return load_dataset("mnist", train=False).images[:7, 0].numpy()


def write_scan(path: Path, frame: np.ndarray) -> Path:
    """A frame as a scan would come: dark ink on white paper, larger than 28x28."""
    Image.fromarray(255 - frame).resize((84, 84), Image.Resampling.BICUBIC).save(path)
    return path


@pytest.fixture(scope="module")
def scans(tmp_path_factory, mnist_frames) -> Path:
    folder = tmp_path_factory.mktemp("scans")
    for i, frame in enumerate(mnist_frames[:5]):
        write_scan(folder / f"digit{i}.png", frame)
    (folder / "zz_broken.png").write_bytes(b"this is not a PNG")
    return folder


# --------------------------------------------------------------------------- signals


def test_signals_have_the_documented_names_and_shapes(bundle, mnist_frames):
    sig = compute_signals(mnist_frames, bundle.models)
    assert list(sig) == [*ALL_SIGNALS, "heatmap", "digit"]
    assert set(REQUIRED_SIGNALS) <= set(sig)
    for name in ALL_SIGNALS:
        assert sig[name].shape == (7,) and np.isfinite(sig[name]).all(), name
    assert sig["heatmap"].shape == (7, 28, 28)
    assert sig["digit"].shape == (7,) and ((0 <= sig["digit"]) & (sig["digit"] < 10)).all()


def test_heatmap_sums_to_the_marginal_nll_and_best_class_is_the_minimum(bundle, mnist_frames):
    x = torch.from_numpy(mnist_frames).unsqueeze(1)
    sig = compute_signals(x, bundle.models)
    model = bundle.models.pixelcnn
    with torch.no_grad():
        nll_y = torch.stack([model.nll(x, torch.full((7,), y)) for y in range(10)], 1).double()  # [7, 10] nats
    marginal = -(torch.logsumexp(-nll_y, 1) + math.log(1 / 10))
    to_nats = 784 * math.log(2)
    np.testing.assert_allclose(sig["pixelcnn_bpd"] * to_nats, marginal.numpy(), rtol=1e-5)
    np.testing.assert_allclose(sig["heatmap"].sum(axis=(1, 2)), sig["pixelcnn_bpd"] * to_nats, rtol=1e-9)
    np.testing.assert_allclose(sig["pixelcnn_best_class_bpd"] * to_nats, nll_y.min(1).values.numpy(), rtol=1e-5)
    assert (sig["digit"] == nll_y.argmin(1).numpy()).all()
    assert (sig["pixelcnn_bpd"] >= sig["pixelcnn_best_class_bpd"] - 1e-12).all()  # marginal <= best + log 10


def test_complexity_score_is_nll_minus_zlib_bits(bundle, mnist_frames):
    sig = compute_signals(mnist_frames, bundle.models)
    zlib_bpd = np.array([8 * len(zlib.compress(f.tobytes(), 9)) / 784 for f in mnist_frames])
    np.testing.assert_array_equal(sig["compressed_bpd"], zlib_bpd)
    np.testing.assert_allclose(sig["complexity_bpd"], sig["pixelcnn_bpd"] - zlib_bpd, rtol=0, atol=1e-12)


def test_signals_do_not_depend_on_batch_mates(bundle, mnist_frames):
    together = compute_signals(mnist_frames, bundle.models)
    for i in (0, 6):
        alone = compute_signals(mnist_frames[i : i + 1], bundle.models)
        for name in (*ALL_SIGNALS, "heatmap"):
            np.testing.assert_array_equal(alone[name][0], together[name][i], err_msg=name)


# --------------------------------------------------------------------------- bundle


def test_combiner_round_trips_through_json_with_identical_probabilities(bundle, mnist_frames):
    comb = bundle.combiner
    x = comb.matrix(compute_signals(mnist_frames, bundle.models))
    again = Combiner.from_json(comb.to_json())
    assert again.signals == comb.signals
    np.testing.assert_array_equal(again.predict_proba(x), comb.predict_proba(x))
    # Extreme and broken inputs stay finite probabilities.
    wild = np.array([[1e300] * len(comb.signals), [np.nan] * len(comb.signals)])
    assert np.isfinite(comb.predict_proba(wild)).all()


def test_combiner_json_is_plain_data_and_bad_json_is_refused(bundle_dir):
    d = json.loads((bundle_dir / "combiner.json").read_text())
    assert d["calibration"]["method"] == "platt" and len(d["logistic_regression"]["coef"]) == len(d["signals"])
    d["scaler"]["scale"] = d["scaler"]["scale"][:-1]
    with pytest.raises(CheckpointError, match="one number per signal"):
        Combiner.from_dict(d)


def test_bundle_manifest_records_checksums_commands_data_and_metrics(bundle_dir):
    m = json.loads((bundle_dir / "manifest.json").read_text())
    families = {"pixelcnn", "dcgan", "fcgan", "vae", "diffusion", "font"}
    assert set(m["model_files"]) == {"pixelcnn/model.pt", "dcgan/model.pt", "fcgan/model.pt", "vae/model.pt",
                                     "diffusion/model.pt", "cnn/model.pt", "font_cnn/model.pt", "familiar_cnn/model.pt"}
    assert set(m["scan_cnn"]["runs"]) == families | {"all", "familiar_cnn"}
    # A family left out takes its aligned fakes with it: the ScanCNN without the VAE saw neither
    # its samples nor its rewrites of human digits.
    counts, runs = m["scan_cnn"]["train_counts"], m["scan_cnn"]["runs"]
    assert counts["vae-rewrite"] > 0 and counts["diffusion-rewrite"] > 0
    for fam, sources in (("vae", ("vae", "vae-rewrite")), ("diffusion", ("diffusion", "diffusion-rewrite")),
                         ("dcgan", ("dcgan",))):
        assert runs[fam]["train_machine"] == runs["all"]["train_machine"] - sum(counts[s] for s in sources), fam
    assert m["scan_cnn"]["train_counts"]["outlier"] > 0 and "familiarity.json" in m["files"]
    fam = m["metrics"]["familiarity"]  # threshold on the fit half's humans; shares on the held-out half
    assert fam["quantile"] == 0.995 and set(fam["heldout_unfamiliar_share"]) >= {"human", "font"}
    assert m["scan_cnn"]["train_counts"]["font"] > 0 and m["calibration"]["font_forgeries"] > 0
    assert m["scan_cnn"]["human_split"] == "train" and m["scan_cnn"]["sample_seed"] != m["calibration"]["seed"]
    assert {"combiner.json", "human_reference.json", "ablation.json", "ablation.md"} <= set(m["files"])
    assert set(m["training"]) == families - {"font"} and m["data"]["sha256"]
    assert m["metrics"]["heldout_ensemble"]["all_generators"]["auroc"] is not None
    ablation = json.loads((bundle_dir / "ablation.json").read_text())
    assert set(ablation["leave_one_generator_out"]) == families
    # the CNN of each left-out row was retrained without that family, and is reported alone
    assert set(ablation["leave_one_generator_out_alone"]["cnn_logit"]) == families
    assert {"vae-rewrite", "diffusion-rewrite"} <= set(ablation["heldout"])  # aligned fakes, each a column
    # font forgeries have their own held-out column; the headline figure stays generators only
    assert "font" in ablation["heldout"] and ablation["counts"]["font/heldout"] > 0
    assert "| signal |" in (bundle_dir / "ablation.md").read_text()


@pytest.mark.parametrize("victim", ["combiner.json", "pixelcnn/model.pt", "cnn/model.pt", "font_cnn/model.pt",
                                    "familiar_cnn/model.pt", "familiarity.json", "vae/model.pt"])
def test_load_bundle_rejects_a_tampered_file(bundle_dir, tmp_path, victim):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    data = bytearray((copy / victim).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / victim).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum does not match.*changed or damaged"):
        load_bundle(copy)


def test_missing_bundle_says_how_to_build_one(tmp_path):
    with pytest.raises(CheckpointError, match="forensics calibrate --run"):
        load_bundle(tmp_path / "nowhere")


def test_human_percentiles_are_monotone_and_bounded():
    ref = HumanReference.fit({"s": np.arange(100.0)})
    pct = ref.percentile("s", np.array([-5.0, 0.0, 49.5, 99.0, 500.0]))
    assert pct[0] == 0 and pct[-1] == 100 and (np.diff(pct) >= 0).all() and 45 < pct[2] < 55
    tied = HumanReference.fit({"s": np.zeros(10)})
    assert tied.percentile("s", np.array([0.0]))[0] == 50  # a value every human shares: the middle
    assert HumanReference.from_json(ref.to_json()).quantiles["s"].tolist() == ref.quantiles["s"].tolist()


# --------------------------------------------------------------------------- scoring


def test_score_paths_gives_one_record_per_input_in_order(bundle, scans, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    args = [str(scans), str(blank), str(tmp_path / "missing.png")]
    records = list(score_paths(args, bundle, batch_size=2, stability=False))
    assert [Path(r["file"]).name for r in records] == [
        "digit0.png", "digit1.png", "digit2.png", "digit3.png", "digit4.png", "zz_broken.png", "blank.png",
        "missing.png"]
    for r in records:
        assert tuple(r) == RECORD_KEYS
    errors = {Path(r["file"]).name: r["error"] for r in records if r["status"] == "error"}
    assert set(errors) == {"zz_broken.png", "blank.png", "missing.png"}
    assert "not an image" in errors["zz_broken.png"] and "no ink" in errors["blank.png"]
    ok = records[0]
    assert ok["verdict"] in ("human", "machine", "uncertain") and 0 <= ok["p_machine"] <= 1
    assert set(ok["signals"]) == set(bundle.combiner.signals)  # what the combiner uses, no more
    assert all(0 <= s["human_percentile"] <= 100 for s in ok["signals"].values())
    assert np.array(ok["preprocessed"]).shape == (28, 28)
    every = list(score_paths([str(scans / "digit0.png")], bundle, stability=False, all_signals=True))[0]
    assert set(every["signals"]) == set(ALL_SIGNALS) and np.array(every["heatmap"]).shape == (28, 28)
    assert every["p_machine"] == ok["p_machine"]
    assert set(ok["top_signals"]) <= set(bundle.combiner.signals) and len(ok["top_signals"]) <= 3
    json.dumps(records)  # plain data all the way down


def test_p_machine_does_not_depend_on_batch_size(bundle, scans):
    one = list(score_paths([str(scans)], bundle, batch_size=1, stability=True))
    seven = list(score_paths([str(scans)], bundle, batch_size=7, stability=True))
    assert [r["p_machine"] for r in one] == [r["p_machine"] for r in seven]
    assert [r["p_machine_min"] for r in one] == [r["p_machine_min"] for r in seven]


def test_stability_bounds_and_a_flipping_verdict_becomes_uncertain(bundle, mnist_frames):
    records = score_images(mnist_frames[:3], bundle, stability="all")
    for r in records:
        assert r["p_machine_min"] <= r["p_machine"] <= r["p_machine_max"]
        assert isinstance(r["stable"], bool)
        if not r["stable"]:
            assert r["verdict"] == "uncertain"
    r = records[0]
    plain = score_images(mnist_frames[:1], bundle, stability=False)[0]
    assert plain["p_machine"] == r["p_machine"] and plain["stable"] is None
    assert plain["p_machine_min"] == plain["p_machine_max"] == r["p_machine"]
    # Thresholds that put the image on one side and a re-scan on the other: the verdict must not stand.
    p, lo, hi = r["p_machine"], r["p_machine_min"], r["p_machine_max"]
    assert lo < hi, "the re-scans should move p_machine at least a little"
    t = Thresholds(t_machine=hi, t_human=p) if p < hi else Thresholds(t_machine=p, t_human=lo)
    flipped = score_images(mnist_frames[:1], bundle, stability="all", thresholds=t)[0]
    assert flipped["stable"] is False and flipped["verdict"] == "uncertain"


def test_thresholds_give_the_three_verdicts():
    t = Thresholds(t_machine=0.8, t_human=0.2)
    assert t.verdict(np.array([0.9, 0.8, 0.5, 0.2, 0.1])).tolist() == ["machine", "machine", "uncertain", "human", "human"]
    with pytest.raises(ValueError):
        Thresholds(t_machine=0.3, t_human=0.5)


def test_csv_rows_are_flat_with_stable_columns(bundle, mnist_frames):
    rec = score_images(mnist_frames[:1], bundle, stability=False)[0]
    row = flat_row(rec, ALL_SIGNALS)
    assert list(row) == list(csv_columns(ALL_SIGNALS))
    assert all(not isinstance(v, (list, dict)) for v in row.values())


# --------------------------------------------------------------------------- print and scan


def test_print_and_scan_is_seeded_and_keeps_the_digit(mnist_frames):
    a = printscan.print_and_scan(mnist_frames[0], np.random.default_rng(5))
    b = printscan.print_and_scan(mnist_frames[0], np.random.default_rng(5))
    assert np.array_equal(a, b) and a.dtype == np.uint8 and a.mean() > 128  # dark ink on light paper
    frames = printscan.augment(mnist_frames[:4], np.random.default_rng(0))
    assert all(f is not None and f.shape == (28, 28) for f in frames)
    again = printscan.rescans(mnist_frames[0])
    assert len(again) == len(printscan.RESCANS) and all(f.shape == (28, 28) for f in again)


# --------------------------------------------------------------------------- CLI and evaluate


def test_cli_score_writes_json_records_and_exits_1_when_an_input_failed(bundle_dir, scans, tmp_path):
    out = tmp_path / "records.json"
    result = CliRunner().invoke(app, ["score", str(scans), "--models", str(bundle_dir), "--format", "json",
                                      "--output", str(out), "--no-stability"])
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    records = json.loads(out.read_text())
    assert len(records) == 6 and [r["status"] for r in records].count("error") == 1
    assert not list(tmp_path.glob(".records.json.*"))  # no temporary file left behind
    said = " ".join(result.output.split())  # the reviewer is told what a verdict is worth, from the bundle's metrics
    assert "Calibrated against PixelCNN, DCGAN, FC-GAN, VAE, diffusion, VAE rewrites of human digits, diffusion rewrites of human digits and font forgeries" in said and "left out of calibration" in said


def test_cli_score_csv_and_missing_bundle(bundle_dir, scans, tmp_path):
    out = tmp_path / "records.csv"
    result = CliRunner().invoke(app, ["score", str(scans / "digit0.png"), "--models", str(bundle_dir),
                                      "--format", "csv", "--output", str(out), "--no-stability"])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    used = [n for n in ALL_SIGNALS if n in load_bundle(bundle_dir).combiner.signals]
    assert lines[0].split(",") == list(csv_columns(used)) and len(lines) == 2
    result = CliRunner().invoke(app, ["score", str(scans), "--models", str(tmp_path / "no-bundle")])
    assert result.exit_code == EXIT_MISSING and "forensics calibrate" in result.output


def test_evaluate_reports_metrics_and_writes_a_roc_png(bundle, bundle_dir, tmp_path, mnist_frames):
    human, machine = tmp_path / "human", tmp_path / "machine"
    human.mkdir()
    machine.mkdir()
    for i, frame in enumerate(mnist_frames[:4]):
        write_scan(human / f"h{i}.png", frame)
    samples = bundle.models.dcgan.sample(4, generator=torch.Generator().manual_seed(0))[:, 0].numpy()
    rng = np.random.default_rng(0)
    for i, frame in enumerate(samples):  # printed and scanned, as a forger would submit them
        Image.fromarray(printscan.print_and_scan(frame, rng)).save(machine / f"m{i}.png")
    roc = tmp_path / "roc.png"
    m = evaluate_dirs(human, machine, bundle, roc_path=roc)
    assert m["n_human"] == 4 and m["n_machine"] == 4 and not m["failed"]
    for key in ("auroc", "average_precision", "tpr_at_1pct_fpr", "fpr_at_threshold"):
        assert 0 <= m[key] <= 1, key
    assert roc.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = CliRunner().invoke(app, ["evaluate", str(human), str(machine), "--models", str(bundle_dir),
                                      "--roc", str(tmp_path / "roc2.png")])
    assert result.exit_code == 0, result.output
    assert "auroc" in result.output and (tmp_path / "roc2.png").is_file()


def test_an_unfamiliar_input_is_uncertain_never_machine_and_says_why(bundle, mnist_frames):
    import dataclasses

    from detectors.bundle import Familiarity

    assert bundle.familiarity is not None and bundle.models.familiar_cnn is not None
    frames = mnist_frames[:4]
    plain = score_images(frames, bundle, stability=False)
    assert all(r["unfamiliar"] in (True, False) and isinstance(r["familiarity_logit"], float) for r in plain)
    assert all(r["reason"] != "unfamiliar" or r["verdict"] == "uncertain" for r in plain)
    # Everything unfamiliar (a threshold below every logit): uncertain, and the reason says so.
    strict = dataclasses.replace(bundle, familiarity=Familiarity(-1e9))
    for r, p in zip(score_images(frames, strict, stability=False), plain):
        assert r["verdict"] == "uncertain" and r["reason"] == "unfamiliar" and r["unfamiliar"] is True
        assert r["p_machine"] == p["p_machine"]  # novelty changes the verdict, never the evidence
    # Nothing unfamiliar: the verdict is the combiner's, with its reason.
    lax = dataclasses.replace(bundle, familiarity=Familiarity(1e9))
    for r in score_images(frames, lax, stability=False):
        assert r["unfamiliar"] is False and r["reason"] == {
            "machine": "looks machine-made", "human": "looks unlike the machine sources",
            "uncertain": "between the thresholds"}[r["verdict"]]


def test_a_bundle_without_a_familiarity_check_leaves_it_out(bundle, mnist_frames):
    import dataclasses

    older = dataclasses.replace(bundle, familiarity=None)
    for r in score_images(mnist_frames[:2], older, stability=False):
        assert r["unfamiliar"] is None and r["familiarity_logit"] is None and r["reason"] != "unfamiliar"
