"""`python -m benchmarks.run --quick` end to end: every module runs, writes finite numbers, and
nothing in the repository (docs/results.md, benchmarks/results) is touched with --out elsewhere;
and the one smoke test of research/ (its scripts stay runnable)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from detectors.calibrate import CONDITIONS
from detectors.capture import CAPTURES

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("generator_quality", "nll", "training", "robustness", "new_forgers", "human_variety", "lr_calibration",
           "page_evidence", "forms", "speed", "throughput", "load", "report_speed")


def _fingerprint() -> dict[str, str]:
    files = [ROOT / "README.md", ROOT / "docs" / "results.md", *sorted((ROOT / "benchmarks" / "results").rglob("*"))]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def _numbers(obj, key: str = ""):
    """(key, number) for every number in a JSON value (bools are not numbers)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, str(k))
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v, key)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield key, obj


def test_quick_benchmarks_run_and_write_finite_results(tmp_path):
    if not os.environ.get("FORENSICS_DATA"):
        pytest.skip("set FORENSICS_DATA to the MNIST folder")
    before = _fingerprint()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(tmp_path), "--no-docs"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [m["name"] for m in summary["modules"]] == list(MODULES)
    assert summary["total_seconds"] > 0
    for m in summary["modules"]:
        if (ROOT / "benchmarks" / f"{m['name']}.py").is_file():
            assert m["status"] == "ok", m
        else:  # a module not written yet is reported, not hidden
            assert m["status"] == "missing", m
            continue
        results = [Path(f) for f in m["files"] if f.endswith(".json")]
        assert results, f"{m['name']} wrote no JSON"
        for f in results:
            assert f.is_file() and f.parent == tmp_path, f
            numbers = list(_numbers(json.loads(f.read_text())))
            assert numbers, f
            for key, v in numbers:
                assert math.isfinite(v), (f.name, key, v)
                if "auroc" in key.lower():
                    assert 0.0 <= v <= 1.0, (f.name, key, v)

    robustness = json.loads((tmp_path / "robustness.json").read_text())
    aurocs = [r["auroc"] for r in robustness["results"]]
    assert len(aurocs) == 13 and all(a is not None and 0.0 <= a <= 1.0 for a in aurocs)
    assert (tmp_path / "robustness.png").stat().st_size > 0
    speed = json.loads((tmp_path / "speed.json").read_text())
    assert speed["scoring"]["ratio_end_to_end_to_forward"] > 0
    assert speed["scoring"]["p_machine_identical"]
    forgers = json.loads((tmp_path / "new_forgers.json").read_text())
    n = forgers["n_per_source"]
    assert set(forgers["results"]) == {"human", "pixelcnn", "dcgan", "fcgan", *forgers["forgers"]}
    assert len(forgers["forgers"]) == 8  # 4 GAN and autoencoder forgers, the VAE and DDPM sampled and rewriting
    views = len(CONDITIONS)  # scan, print-and-scan, capture
    for r in forgers["results"].values():  # every base image is scored (once a view at most) or counted as blank
        assert n - r["blank"] <= r["n"] <= views * (n - r["blank"]), r
    training = json.loads((tmp_path / "training.json").read_text())
    assert {m["model"] for m in training["models"]} >= {"pixelcnn", "dcgan", "fcgan"}
    reports = json.loads((tmp_path / "report_speed.json").read_text())
    assert reports["scored"] + reports["failed"] == reports["n"] and reports["html_bytes"] > 0
    throughput = json.loads((tmp_path / "throughput.json").read_text())
    assert [e["options"] for e in throughput["end_to_end"]] == ["(defaults)", "--no-stability"]
    assert all(e["marginal_scans_per_second"] > 0 and e["peak_rss_mb"] > 0 for e in throughput["end_to_end"])
    variety = json.loads((tmp_path / "human_variety.json").read_text())
    # every capture, plus the plain scans, load_digits and Fashion items
    assert len(variety["sets"]) == len(CAPTURES) + 3 and all(0 <= r["called_machine"] <= 1 for r in variety["sets"].values())
    assert all(r["unfamiliar"] is None or 0 <= r["unfamiliar"] <= r["uncertain"] + 1e-9 for r in variety["sets"].values())
    lr = json.loads((tmp_path / "lr_calibration.json").read_text())
    assert 0 <= lr["cllr_min_bits"] <= lr["cllr_bits"] + 1e-9 and sum(b["n"] for b in lr["reliability"]) > 0
    pages = json.loads((tmp_path / "page_evidence.json").read_text())
    assert [r["k"] for r in pages["sizes"]][0] == 1 and all(r["human_forms"] > 0 for r in pages["sizes"])
    assert all(0 <= r["human_called_machine"]["page_model"] <= 1 for r in pages["sizes"])
    forms = json.loads((tmp_path / "forms.json").read_text())
    assert forms["records"] > 0 and 0 <= forms["found_share"] <= 1 and forms["filled_boxes"] > 0
    load = json.loads((tmp_path / "load.json").read_text())
    assert load["exit_code"] == 0 and load["all_records_written"]
    assert load["peak_rss_mb"] > 0

    assert _fingerprint() == before, "run --out elsewhere --no-docs touched README.md, docs/results.md or benchmarks/results"


def test_research_detector_experiments_quick_measures_every_row(tmp_path):
    """research/ is not product code, but its scripts stay runnable: the one smoke test of them.
    research.detector_experiments exercises the others (generic forgeries, aligned reconstructions)."""
    if not os.environ.get("FORENSICS_DATA"):
        pytest.skip("set FORENSICS_DATA to the MNIST folder")
    from research.detector_experiments import markdown, run

    result = run(quick=True, out_dir=tmp_path)
    assert json.loads((tmp_path / "detector_experiments.json").read_text())["results"] == result["results"]
    assert result["counts"]["aligned_reconstructions"] > 0 and result["counts"]["generic_forgeries"] > 0
    for row in result["rows"]:  # every row is measured for every source left out (fonts: no "with it")
        for s in ("pixelcnn", "dcgan", "fcgan", "font"):
            assert (result["results"][row][s] is None) == (row == "with_it" and s == "font"), (row, s)
    assert "| ScanCNN without it |" in markdown(result)


def test_nll_benchmark_measures_a_stochastic_run_on_the_draw_training_evaluated(tmp_path):
    """A stochastically binarized run is measured on the same seeded test draw its training
    reported (not on thresholded images, which would give another figure), and quick mode's
    first images are that draw's first images."""
    if not os.environ.get("FORENSICS_DATA"):
        pytest.skip("set FORENSICS_DATA to the MNIST folder")
    import torch

    from benchmarks import nll
    from forensics.data import load_dataset
    from generators.load import load_generator
    from generators.presets import preset_config
    from generators.train import TrainConfig, train

    cfg = TrainConfig(model="pixelcnn-bin", out=str(tmp_path), seed=3,
                      **{**preset_config("smoke", "pixelcnn-bin"), "test_limit": None, "binarize": "stochastic"})
    reported = train(cfg)["final"]["test_nll_nats_per_image"]
    run = tmp_path / "pixelcnn-bin"
    assert nll.binarization(run) == "stochastic"
    test = load_dataset("mnist", train=False, download=False)
    model = load_generator(run).network
    drawn = nll.test_images(test.images, "stochastic")
    assert math.isclose(nll.conditional_nll(model, drawn, test.labels).mean(), reported, rel_tol=1e-4)
    assert set(drawn.unique().tolist()) == {0, 255} and not torch.equal(drawn, (test.images >= 128).to(torch.uint8) * 255)
    assert torch.equal(nll.test_images(test.images, "stochastic")[:100], drawn[:100])

    result = nll.run(quick=True, out_dir=tmp_path / "out", binarized_run=run)
    assert result["binarized"]["source"] == "measured" and result["binarized"]["binarization"] == "stochastic"
    assert "stochastically" in result["settings"]["binarization"] and "unconditional" not in result["binarized"]
    assert math.isclose(result["binarized"]["conditional"]["nats_per_image"],
                        float(nll.conditional_nll(model, drawn[:100], test.labels[:100]).mean()), rel_tol=1e-6)
