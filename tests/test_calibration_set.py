"""How calibration builds its images: the same set whatever the number of worker processes,
every source under every capture condition, and the ScanCNN's human rows when more are wanted than MNIST train has."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import calibrate as cal_mod
from detectors.bundle import load_forgers, load_models
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
    models, forgers = load_models(tiny_bundle_dir), load_forgers(tiny_bundle_dir)
    test = load_dataset("mnist", train=False)
    human, digits = test.images[:10, 0].numpy(), test.labels[:10].numpy()
    kw = dict(forgers=forgers, human_digits=digits, aligned_fakes=True)
    one = cal_mod.build_calibration_set(models, human, 6, seed=5, workers=1, **kw)
    two = cal_mod.build_calibration_set(models, human, 6, seed=5, workers=2, **kw)
    assert np.array_equal(one.images, two.images) and np.array_equal(one.source, two.source)
    assert np.array_equal(one.group, two.group) and one.dropped == two.dropped
    assert set(one.source) == {"human", *cal_mod.MACHINE_SOURCES}
    # Every source, human and machine alike, is seen under every condition, captures included.
    complete = [s for s in set(one.source) if not any(one.dropped[f"{s}/{c}"] for c in cal_mod.CONDITIONS)]
    assert "human" in complete and "font" in complete  # (a tiny generator's sample can be blank)
    for source in complete:
        assert set(one.condition[one.source == source]) == set(cal_mod.CONDITIONS), source
    other = cal_mod.build_calibration_set(models, human, 6, seed=6, workers=1, **kw)
    assert not np.array_equal(one.images[: len(human)], other.images[: len(human)])  # the seed matters


@pytest.mark.parametrize("channels", ["16,32", "a,b,c", "0,8,8"])
def test_calibrate_refuses_bad_cnn_channels(channels, tmp_path):
    from typer.testing import CliRunner

    from forensics.cli import app
    from forensics.errors import EXIT_USAGE

    result = CliRunner().invoke(app, ["calibrate", "--run", str(tmp_path), "--out", str(tmp_path / "b"),
                                      "--cnn-channels", channels])
    assert result.exit_code == EXIT_USAGE and "--cnn-channels" in result.output


def test_aligned_fakes_are_rewrites_of_the_human_digits(tiny_bundle_dir):
    """The VAE's aligned fakes are its reconstructions of the given human digits; the diffusion
    model's rewrites are seeded and do not depend on the batch size."""
    import torch

    forgers = load_forgers(tiny_bundle_dir)
    test = load_dataset("mnist", train=False)
    human, digits = test.images[:8, 0].numpy(), test.labels[:8].numpy()
    vae = forgers["vae"]
    made = cal_mod.rewrite_digits(vae, "vae-rewrite", human[:3], digits[:3], torch.Generator().manual_seed(0), 2)
    want = vae.network.reconstruct(torch.as_tensor(human[:3])[:, None], torch.as_tensor(digits[:3]))[:, 0].numpy()
    assert np.array_equal(made, want)
    a = cal_mod.rewrite_digits(forgers["diffusion"], "diffusion-rewrite", human[3:6], digits[3:6],
                               torch.Generator().manual_seed(1), 2)
    b = cal_mod.rewrite_digits(forgers["diffusion"], "diffusion-rewrite", human[3:6], digits[3:6],
                               torch.Generator().manual_seed(1), 3)
    assert np.array_equal(a, b) and a.shape == (3, 28, 28)  # seeded; the batch size does not matter
    assert list(cal_mod.family(np.array(["vae-rewrite", "diffusion-rewrite", "font", "human"]))) == [
        "vae", "diffusion", "font", "human"]


@pytest.mark.parametrize("aligned", [False, True])
def test_a_forger_family_gives_half_rewrites_only_with_aligned_fakes(tiny_bundle_dir, monkeypatch, aligned):
    monkeypatch.setattr(cal_mod, "scan_sources", lambda bases, *a, **k: bases)  # the base images, unscanned
    test = load_dataset("mnist", train=False)
    bases = dict(cal_mod.build_calibration_set(load_models(tiny_bundle_dir), test.images[:10, 0].numpy(), 6,
                                               forgers=load_forgers(tiny_bundle_dir),
                                               human_digits=test.labels[:10].numpy(), aligned_fakes=aligned))
    sizes = {name: v if isinstance(v, int) else len(v) for name, v in bases.items()}
    if aligned:
        assert sizes == {"human": 10, "pixelcnn": 6, "dcgan": 6, "fcgan": 6, "vae": 3, "diffusion": 3,
                         "vae-rewrite": 3, "diffusion-rewrite": 3, "font": 6}
    else:
        assert sizes == {"human": 10, "pixelcnn": 6, "dcgan": 6, "fcgan": 6, "vae": 6, "diffusion": 6, "font": 6}
