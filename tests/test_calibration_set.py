"""How calibration builds its images: the same set whatever the number of worker processes,
every source under every capture condition, and the ScanCNN's human rows when more are wanted than MNIST train has."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import calibrate as cal_mod
from detectors.bundle import load_models
from forensics.data import load_dataset


def test_human_rows_are_distinct_when_enough_and_evenly_repeated_when_not():
    rng = np.random.default_rng(0)
    few = cal_mod._human_rows(100, 30, rng)
    assert len(few) == 30 and len(set(few.tolist())) == 30
    many = cal_mod._human_rows(100, 250, np.random.default_rng(0))
    counts = np.bincount(many, minlength=100)
    assert len(many) == 250 and counts.min() == 2 and counts.max() == 3 and (counts == 3).sum() == 50


def test_calibration_set_does_not_depend_on_the_number_of_workers(tiny_bundle_dir, monkeypatch):
    monkeypatch.setattr(cal_mod, "PREP_CHUNK", 4)  # several chunks per source, split across workers
    models = load_models(tiny_bundle_dir)
    human = load_dataset("mnist", train=False).images[:10, 0].numpy()
    one = cal_mod.build_calibration_set(models, human, 6, seed=5, workers=1)
    two = cal_mod.build_calibration_set(models, human, 6, seed=5, workers=2)
    assert np.array_equal(one.images, two.images) and np.array_equal(one.source, two.source)
    assert np.array_equal(one.group, two.group) and one.dropped == two.dropped
    assert set(one.source) == {"human", *cal_mod.MACHINE_SOURCES}
    # Every source, human and machine alike, is seen under every condition, captures included.
    complete = [s for s in set(one.source) if not any(one.dropped[f"{s}/{c}"] for c in cal_mod.CONDITIONS)]
    assert "human" in complete and "font" in complete  # (a tiny generator's sample can be blank)
    for source in complete:
        assert set(one.condition[one.source == source]) == set(cal_mod.CONDITIONS), source
    other = cal_mod.build_calibration_set(models, human, 6, seed=6, workers=1)
    assert not np.array_equal(one.images[: len(human)], other.images[: len(human)])  # the seed matters


@pytest.mark.parametrize("channels", ["16,32", "a,b,c", "0,8,8"])
def test_calibrate_refuses_bad_cnn_channels(channels, tmp_path):
    from typer.testing import CliRunner

    from forensics.cli import app
    from forensics.errors import EXIT_USAGE

    result = CliRunner().invoke(app, ["calibrate", "--run", str(tmp_path), "--out", str(tmp_path / "b"),
                                      "--cnn-channels", channels])
    assert result.exit_code == EXIT_USAGE and "--cnn-channels" in result.output
