"""Scoring beyond one machine: the same slabs as detectors.engine, on a Ray cluster with Ray Data.

    RAY_ADDRESS=ray://head:10001 forensics score /shared/scans --engine ray --workers 64

The inputs are expanded on the driver (so the order and the error records for paths that do
not exist are exactly the local engine's), become a Ray Dataset of (index, path or error) rows,
and go through ``map_batches`` with ``SlabScorer``, a callable class: each actor loads the
bundle once, then scores a batch of rows with ``engine.score_slab``, the function the local
engine runs. Records travel back as JSON text (floats round-trip exactly) in input order.

The scans must be readable at the same path on every node (a shared file system), and every
node needs forensics installed; a custom ``--models`` bundle must be at the same path on every
node too. Each actor checks that its bundle is the driver's (same combiner checksum).

Ray connects the way Ray does: to the cluster named by RAY_ADDRESS, or, when it is unset, to a
local instance started here with ``workers`` CPUs.
"""

from __future__ import annotations

import json
import os
from typing import Iterator, Optional, Sequence

from forensics.errors import ForensicsError, InputError
from forensics.record import Record

from .bundle import Bundle, describe_bundle
from .engine import Item, Progress
from .score import Stability, Thresholds


class SlabScorer:
    """A Ray Data callable class: one bundle per actor, one slab per batch."""

    def __init__(self, bundle_path: Optional[str], bundle_id: Optional[str], stability: str,
                 thresholds: dict[str, float], all_signals: bool = False, pages: Optional[bool] = None,
                 prior: float = 0.5):
        from forensics.threads import worker_init

        from .bundle import load_bundle

        worker_init()  # an actor holds one CPU: one torch thread
        self.bundle = load_bundle(bundle_path)
        found = describe_bundle(self.bundle)["id"]
        if bundle_id and found != bundle_id:
            raise ForensicsError(f"the bundle on this node ({self.bundle.path}, id {found}) is not the driver's "
                                 f"(id {bundle_id}); install the same bundle on every node")
        self.stability = Stability(stability)
        self.thresholds = Thresholds(**thresholds)
        self.all_signals = all_signals
        self.pages = pages
        self.prior = prior

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        from .engine import score_slab

        items = [InputError(p, e) if e else _path(p) for p, e in zip(batch["path"], batch["error"])]
        per_item = score_slab(items, self.bundle, self.stability, self.thresholds, self.all_signals, self.pages,
                              self.prior)
        # One row per input: a form page's records travel together, as one JSON list.
        return {"index": np.asarray(batch["index"]), "records": np.array([json.dumps(r) for r in per_item], dtype=object)}


def _path(p: str):
    from pathlib import Path

    return Path(p)


def connect(workers: Optional[int]) -> int:
    """ray.init as Ray users expect: the cluster at RAY_ADDRESS if set, else a local instance
    with ``workers`` CPUs (default: every core here). Returns how many actors to run:
    ``workers``, or every CPU the cluster has."""
    import ray

    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False)
        else:
            from .engine import default_workers

            ray.init(num_cpus=workers or default_workers(), include_dashboard=False, log_to_driver=False)
    return workers or max(1, int(ray.cluster_resources().get("CPU", 1)))


def score_items(items: Sequence[Item], bundle: Bundle, batch_size: int = 256,
                stability: Stability | bool = Stability.near, thresholds: Thresholds | None = None,
                workers: Optional[int] = None, progress: Optional[Progress] = None,
                all_signals: bool = False, pages: Optional[bool] = None, prior: float = 0.5) -> Iterator[Record]:
    """The records of detectors.engine.score_items, computed on Ray (same order, same values)."""
    try:
        import ray
    except ImportError:
        raise ForensicsError("--engine ray needs Ray: pip install 'forensics[ray]' (or pip install 'ray[data]')") from None
    if not items:
        return
    workers = connect(workers)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # records come back in input order
    ctx.enable_progress_bars = False  # the CLI draws its own
    rows = [{"index": i, "path": item.path if isinstance(item, InputError) else str(item),
             "error": item.reason if isinstance(item, InputError) else ""} for i, item in enumerate(items)]
    shipped = bundle.path.resolve() == _default_bundle().resolve()
    ds = ray.data.from_items(rows).map_batches(
        SlabScorer, batch_size=batch_size, concurrency=workers, num_cpus=1, batch_format="numpy",
        fn_constructor_kwargs={"bundle_path": None if shipped else str(bundle.path),
                               "bundle_id": describe_bundle(bundle)["id"],
                               "stability": Stability.of(stability).value, "all_signals": all_signals, "pages": pages, "prior": prior,
                               "thresholds": (thresholds or bundle.thresholds).to_dict()})
    expected = 0
    for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
        for index, text in zip(batch["index"], batch["records"]):
            if int(index) != expected:
                raise ForensicsError(f"Ray returned record {int(index)} where {expected} was due")
            expected += 1
            yield from json.loads(text)
        if progress:
            progress(len(batch["index"]))


def _default_bundle():
    from .bundle import DEFAULT_BUNDLE

    return DEFAULT_BUNDLE
