"""Evidence as forensic science reports it: a likelihood ratio, its verbal equivalent, and a
posterior only once a prior is stated.

The bundle's calibrated probability is fitted on a 50/50 mix of human and machine images, so its
log-odds are the log likelihood ratio LR = P(evidence | machine) / P(evidence | human). A team
that expects a share ``prior`` of forgeries gets the posterior odds LR * prior / (1 - prior)
(Bayes' rule); verdicts and rankings use that posterior, and every report states the prior.

The verbal scale is the ENFSI Guideline for Evaluative Reporting in Forensic Science (2015):
LR 2-10 weak, 10-100 moderate, 100-1,000 moderately strong, 1,000-10,000 strong, and above
10,000 very strong support (the guideline goes on to "extremely strong" above 1,000,000; a
model's LR that far out says more about its calibration tails than about the case, so the
scale stops at "very strong" here). Below 2 either way the evidence supports neither side
much. The same bands, inverted, give support for a human hand.

Cllr (Brümmer & du Preez 2006), the log-likelihood-ratio cost, is how forensic LR systems are
judged: 0 for a perfect system, 1 for one that always says LR = 1, above 1 for a misleading one.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_PRIOR = 0.5
LOG10_CAP = 300.0  # |log10 LR| beyond this is reported as this (a float holds up to ~1e308)
# (lower bound of |log10 LR|, words), strongest first
ENFSI_SCALE = ((4.0, "very strong support"), (3.0, "strong support"), (2.0, "moderately strong support"),
               (1.0, "moderate support"), (math.log10(2.0), "weak support"))
NEUTRAL = "supports neither side"


def check_prior(prior: float) -> float:
    if not 0.0 < prior < 1.0:
        raise ValueError(f"prior must be strictly between 0 and 1 (the expected share of forgeries), got {prior}")
    return float(prior)


def prior_log_odds(prior: float) -> float:
    prior = check_prior(prior)
    return math.log(prior / (1.0 - prior))


def posterior(log_lr: np.ndarray, prior: float = DEFAULT_PRIOR) -> np.ndarray:
    """p_machine under ``prior`` from natural-log likelihood ratios."""
    z = np.asarray(log_lr, dtype=np.float64) + prior_log_odds(prior)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))


def log10_lr(log_lr: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(log_lr, dtype=np.float64) / math.log(10.0), -LOG10_CAP, LOG10_CAP)


def verbal(log10: float) -> str:
    """The ENFSI verbal equivalent of an LR given as log10 (machine over human)."""
    side = "a machine" if log10 > 0 else "a human hand"
    for bound, words in ENFSI_SCALE:
        if abs(log10) >= bound:
            return f"{words} for {side}"
    return NEUTRAL


def cllr(log_lr_machine: np.ndarray, log_lr_human: np.ndarray) -> float:
    """Log-likelihood-ratio cost in bits from natural-log LRs of machine and human items."""
    lm = np.asarray(log_lr_machine, dtype=np.float64)
    lh = np.asarray(log_lr_human, dtype=np.float64)
    # log2(1 + 1/LR) for machine items, log2(1 + LR) for human ones, computed without overflow.
    cost_m = np.logaddexp(0.0, -lm).mean() / math.log(2.0)
    cost_h = np.logaddexp(0.0, lh).mean() / math.log(2.0)
    return float(0.5 * (cost_m + cost_h))


def cllr_min(log_lr_machine: np.ndarray, log_lr_human: np.ndarray) -> float:
    """Cllr after the best monotone recalibration (pool-adjacent-violators): the discrimination
    cost alone. Cllr - Cllr_min is the cost of miscalibration."""
    from sklearn.isotonic import IsotonicRegression

    scores = np.concatenate([log_lr_machine, log_lr_human])
    labels = np.concatenate([np.ones(len(log_lr_machine)), np.zeros(len(log_lr_human))])
    p = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit_transform(scores, labels)
    eps = 1e-12
    # The PAV posterior is at the sample's own class mix; remove it to get LRs.
    prior_odds = len(log_lr_machine) / max(len(log_lr_human), 1)
    lr = np.log(np.clip(p, eps, 1 - eps) / np.clip(1 - p, eps, 1 - eps)) - math.log(prior_odds)
    return cllr(lr[labels == 1], lr[labels == 0])
