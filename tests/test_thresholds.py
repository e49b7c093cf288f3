"""Verdict thresholds fitted by calibration and carried in the bundle (issue 21)."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from detectors import capture
from detectors.bundle import DEFAULT_T_MACHINE, THRESHOLDS_FILE, Thresholds, load_bundle
from detectors.calibrate import THRESHOLD_BUDGET, smallest_threshold
from detectors.score import score_images
from forensics.checkpoint import sha256_file
from forensics.commands.options import thresholds as cli_thresholds
from forensics.errors import CheckpointError


@pytest.mark.parametrize("budget", [0.0, 0.005, 0.05])
def test_smallest_threshold_is_the_smallest_that_keeps_the_budget(budget):
    p = np.random.default_rng(0).beta(0.5, 0.5, 2000)
    t = smallest_threshold(p, budget, floor=0.8)
    assert t >= 0.8 and (p >= t).mean() <= budget
    if t > 0.8:  # one grid step lower would break the budget
        assert (p >= round(t - 0.001, 3)).mean() > budget


def test_smallest_threshold_keeps_the_floor_when_few_reach_it():
    assert smallest_threshold(np.full(100, 0.1), 0.005, floor=0.8) == 0.8


def test_thresholds_refuse_an_inverted_pair_and_round_trip():
    with pytest.raises(ValueError, match="t_human < t_machine"):
        Thresholds(t_machine=0.2, t_human=0.8)
    t = Thresholds(0.973, 0.2, {"budget": 0.005})
    back = Thresholds.from_json(t.to_json())
    assert back == t and back.info == {"budget": 0.005}
    for bad in ('{"format": "forensics-thresholds-v1", "t_machine": "NaN", "t_human": 0.2}',
                '{"format": "forensics-thresholds-v1", "t_machine": 0.1, "t_human": 0.2}',
                '{"format": "other", "t_machine": 0.9, "t_human": 0.2}', "[]"):
        with pytest.raises(CheckpointError, match="thresholds.json: not valid verdict thresholds"):
            Thresholds.from_json(bad)


def test_calibration_fits_thresholds_that_keep_every_condition_within_budget(tiny_bundle_dir, tiny_bundle):
    manifest = json.loads((tiny_bundle_dir / "manifest.json").read_text())
    assert THRESHOLDS_FILE in manifest["files"]
    t = tiny_bundle.thresholds
    assert t == Thresholds.from_json((tiny_bundle_dir / THRESHOLDS_FILE).read_text())
    assert manifest["metrics"]["thresholds"]["t_machine"] == t.t_machine >= DEFAULT_T_MACHINE
    info = t.info
    assert set(info["needed_by_condition"]) == {"clean", "printscan", *capture.CAPTURES}
    assert t.t_machine == max(info["needed_by_condition"].values())
    for condition, share in info["fit_human_called_machine"].items():
        assert share <= THRESHOLD_BUDGET or t.t_machine == 1.0, condition
    fitted, default = info["heldout_called_machine"]["fitted"], info["heldout_called_machine"]["default"]
    assert all(fitted[s] <= default[s] for s in fitted)  # a higher threshold calls no more machine


def test_a_bundle_without_thresholds_uses_the_defaults(tiny_bundle_dir, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle_dir, copy)
    (copy / THRESHOLDS_FILE).unlink()
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"][THRESHOLDS_FILE]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert load_bundle(copy).thresholds == Thresholds(0.8, 0.2)


def test_a_broken_thresholds_file_is_refused_by_name(tiny_bundle_dir, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle_dir, copy)
    victim = copy / THRESHOLDS_FILE
    victim.write_text('{"format": "forensics-thresholds-v1", "t_machine": 0.1, "t_human": 0.5}')
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"][THRESHOLDS_FILE] = {"sha256": sha256_file(victim), "bytes": victim.stat().st_size}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=f"{THRESHOLDS_FILE}: not valid"):
        load_bundle(copy)


def test_verdicts_use_the_bundle_thresholds_unless_told_otherwise(tiny_bundle, mnist_test_frames):
    frames = mnist_test_frames[:24]

    def verdicts(bundle, **kw):  # an unfamiliar input is uncertain whatever the thresholds
        return [("unfamiliar" if r["unfamiliar"] else r["verdict"]) for r in score_images(frames, bundle, stability=False, **kw)]

    records = score_images(frames, tiny_bundle, stability=False)
    p = np.array([r["p_machine"] for r in records])
    familiar = np.array([not r["unfamiliar"] for r in records])
    middle = float(np.median(p))
    assert 0.0 < middle < 1.0

    def expected(t: Thresholds) -> list:
        return [str(v) if f else "unfamiliar" for v, f in zip(t.verdict(p), familiar)]

    # a bundle whose thresholds sit at the median: about half its verdicts are machine
    moved = dataclasses.replace(tiny_bundle, thresholds=Thresholds(middle, middle / 2))
    assert verdicts(moved) == expected(moved.thresholds) != expected(tiny_bundle.thresholds)
    assert verdicts(moved, thresholds=Thresholds(1.0, 0.0)) == expected(Thresholds(1.0, 0.0))
    # an option given on the command line wins over the bundle's; the other stays the bundle's
    assert cli_thresholds(None, None, moved) == moved.thresholds
    assert cli_thresholds(0.99, None, moved) == Thresholds(0.99, middle / 2)
