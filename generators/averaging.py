"""Weight averaging for sampling: an exponential moving average with a warm-up, shared by the
likelihood models' training (generators/train.py) and the GANs' generator (generators/gan.py)."""

from __future__ import annotations

from typing import Callable

import torch


def ema_with_warmup(decay: float) -> Callable:
    """An AveragedModel update whose decay ramps up as (1 + n) / (10 + n) to ``decay``: with a
    fixed 0.999 from the first step, the average still holds 39% of the untrained weights
    after 937 steps (an epoch here), and the first epochs' test NLL and samples say nothing."""
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        d = min(decay, (1.0 + float(num_averaged)) / (10.0 + float(num_averaged)))
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1.0 - d)
        for a, c in zip(averaged, current):  # counters (batch norm's num_batches_tracked) are copied
            if not a.is_floating_point():
                a.copy_(c)
    return update
