"""Likelihood ratios, their ENFSI verbal scale, priors and Cllr (issue 21, item 7)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors import evidence


def test_verbal_scale_follows_enfsi_bands_both_ways():
    assert evidence.verbal(0.0) == evidence.NEUTRAL
    assert evidence.verbal(math.log10(1.5)) == evidence.NEUTRAL
    assert evidence.verbal(math.log10(5)) == "weak support for a machine"
    assert evidence.verbal(1.5) == "moderate support for a machine"
    assert evidence.verbal(2.0) == "moderately strong support for a machine"
    assert evidence.verbal(3.5) == "strong support for a machine"
    assert evidence.verbal(40.0) == "very strong support for a machine"
    assert evidence.verbal(-2.5) == "moderately strong support for a human hand"


def test_posterior_is_bayes_rule_on_the_likelihood_ratio():
    log_lr = np.log(np.array([1.0, 9.0, 1 / 9.0]))
    assert np.allclose(evidence.posterior(log_lr, 0.5), [0.5, 0.9, 0.1])
    # LR 9 with a prior of 10% forgeries: odds 9 * 1/9 = 1
    assert np.allclose(evidence.posterior(log_lr, 0.1), [0.1, 0.5, 1 / 82])
    with pytest.raises(ValueError):
        evidence.posterior(log_lr, 1.0)


def test_cllr_is_zero_when_perfect_one_when_silent_and_above_one_when_misleading():
    strong = np.full(100, 50.0)
    assert evidence.cllr(strong, -strong) < 1e-6
    assert evidence.cllr(np.zeros(10), np.zeros(10)) == pytest.approx(1.0)
    assert evidence.cllr(-strong, strong) > 1.0
    # Cllr_min ignores calibration: a well-separated but overconfident system keeps a low Cllr_min.
    rng = np.random.default_rng(0)
    m, h = rng.normal(3, 1, 500) * 20, rng.normal(-3, 1, 500) * 20
    assert evidence.cllr_min(m, h) < evidence.cllr(m, h)


def test_prior_moves_p_machine_and_verdicts_not_the_likelihood_ratio(tiny_bundle, mnist_test_frames):
    from detectors.score import score_images

    a = score_images(mnist_test_frames[:4], tiny_bundle, stability="off")
    b = score_images(mnist_test_frames[:4], tiny_bundle, stability="off", prior=0.01)
    for ra, rb in zip(a, b):
        assert ra["prior"] == 0.5 and rb["prior"] == 0.01
        assert ra["log10_lr"] == rb["log10_lr"] and ra["lr_verbal"] == rb["lr_verbal"]
        assert rb["p_machine"] < ra["p_machine"]
        odds = ra["likelihood_ratio"] * 0.01 / 0.99
        assert rb["p_machine"] == pytest.approx(odds / (1 + odds), rel=1e-9)
        assert ra["p_machine"] == pytest.approx(ra["likelihood_ratio"] / (1 + ra["likelihood_ratio"]), rel=1e-9)


def test_cli_prior_is_recorded_and_checked(cli_here):
    import json
    from pathlib import Path

    scan = sorted((Path(__file__).resolve().parent.parent / "examples" / "scans").glob("human_*"))[0]
    bad = cli_here("score", scan, "--prior", "1")
    assert bad.exit_code == 2 and "between 0 and 1" in bad.output
    ok = cli_here("score", scan, "--prior", "0.01", "--format", "json", "--no-stability", "--quiet")
    assert ok.exit_code == 0, ok.output
    (rec,) = json.loads(ok.stdout)
    assert rec["prior"] == 0.01 and rec["lr_verbal"] and rec["likelihood_ratio"] > 0
