"""The one place that decides how many CPU threads torch uses.

- ``set_threads(n)``: the process-wide count (``--threads``; benchmarks pass 1).
- ``one_thread()``: a block that runs on one thread whatever the process-wide count is. Scoring
  runs its models in it, so a scan's p_machine never depends on ``--threads`` (with 2 threads
  the PixelCNN's convolutions split their sums differently and moved p_machine by ~1e-6), and
  the fast PixelCNN sampler runs in it (its steps are a pixel's worth of work: on a busy CPU
  two threads were measured 4-7x slower than one).
- ``worker_init()``: for worker processes, which share the machine's cores: one thread each.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

MODEL_THREADS = 1


def set_threads(n: int) -> None:
    """Torch's CPU threads for this process and the children it starts (ValueError if n < 1)."""
    import torch

    if n < 1:
        raise ValueError("--threads must be at least 1")
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    import torch

    saved = torch.get_num_threads()
    if saved == MODEL_THREADS:
        yield
        return
    torch.set_num_threads(MODEL_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def worker_init() -> None:
    import torch

    torch.set_num_threads(1)
