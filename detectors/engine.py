"""Scoring many files: in this process, or in worker processes on every core.

The unit of work is a *slab*: up to ``batch_size`` consecutive inputs (paths, or the errors
the input expansion already found), which one process reads, preprocesses and scores with
``score_slab``. Slabs go to ``workers`` processes (spawned, one torch thread each, the bundle
loaded once per process) and come back in input order, so the records are those of one
process: the models see fixed-shape chunks (detectors.signals.CHUNK) on one thread, whatever
the slab, the worker or the machine's thread count. The Ray engine (detectors.ray_engine)
runs the same ``score_slab`` on a cluster.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from forensics.errors import InputError
from forensics.inputs import expand_inputs
from forensics.record import Record, error_record

from .bundle import Bundle
from .score import Stability, Thresholds, score_images

Item = Path | InputError  # what forensics.inputs.expand_inputs gives for each input
Progress = Callable[[int], None]  # called with the number of inputs just finished


def default_workers() -> int:
    """Every core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def score_slab(items: Sequence[Item], bundle: Bundle, stability: Stability | bool, thresholds: Thresholds | None,
               all_signals: bool = False, pages: Optional[bool] = None, prior: float = 0.5) -> list[list[Record]]:
    """The records of each input of a slab, in order: read each file (a character scan gives
    one, a form page one per written box, see forensics.pages), score every frame in one call;
    a file that cannot be used is an error record in its place, and a model failure costs this
    slab's records, not the run."""
    from forensics.pages import Character, characters_of

    per_item: list[list[Character]] = [
        [Character(item.path, item)] if isinstance(item, InputError) else characters_of(item, pages) for item in items]
    chars = [c for group in per_item for c in group]
    good = [c for c in chars if not isinstance(c.frame, InputError)]
    scored: Iterator[Record] = iter(())
    if good:
        try:
            scored = iter(score_images(np.stack([c.frame for c in good]), bundle, stability, thresholds,
                                       files=[c.file for c in good], all_signals=all_signals, prior=prior))
        except Exception as exc:
            scored = iter([error_record(c.file, f"internal error while scoring ({type(exc).__name__}: {exc})")
                           for c in good])
    out = []
    for group in per_item:
        records = []
        for c in group:
            rec = error_record(c.file, _reason(c)) if isinstance(c.frame, InputError) else next(scored)
            rec.update({k: v for k, v in c.location.items() if v is not None})
            records.append(rec)
        out.append(records)
    return out


def _reason(c) -> str:
    # An error inside a page names the page (and box) it happened on; the record's file is the input.
    where = c.frame.path
    return c.frame.reason if where == c.file else f"{where}: {c.frame.reason}"


def slabs(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def score_items(items: Sequence[Item], bundle: Bundle, batch_size: int = 256,
                stability: Stability | bool = Stability.near, thresholds: Thresholds | None = None,
                workers: int = 1, progress: Optional[Progress] = None, all_signals: bool = False,
                pages: Optional[bool] = None, prior: float = 0.5) -> Iterator[Record]:
    """The records of each item (one per character scan, one per written box of a page), in
    order, scored ``batch_size`` inputs at a time in ``workers`` processes (inline when one is
    asked for, when the inputs fill at most one slab, or on a GPU). Form pages are heavy inputs:
    they go PAGE_SLAB to a slab, so a few pages still keep every core busy."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if pages is not False and any(_looks_like_page(item) for item in items[:batch_size]):
        batch_size = min(batch_size, PAGE_SLAB)
    inline = workers == 1 or len(items) <= batch_size or bundle.models.device.type != "cpu"
    how = (Stability.of(stability), thresholds or bundle.thresholds, all_signals, pages, prior)
    results = _inline(items, bundle, batch_size, how) if inline else _pooled(items, bundle, batch_size, how, workers)
    for slab in results:
        for records in slab:
            yield from records
        if progress:
            progress(len(slab))


PAGE_SLAB = 2  # form pages per slab (each one tens of characters)


def _looks_like_page(item: Item) -> bool:
    if isinstance(item, InputError):
        return False
    from forensics.pages import looks_like_page

    return looks_like_page(item)


def score_paths(args: list[str], bundle: Bundle, batch_size: int = 256,
                stability: Stability | bool = Stability.near, thresholds: Thresholds | None = None,
                workers: int = 1, progress: Optional[Progress] = None, all_signals: bool = False,
                pages: Optional[bool] = None, prior: float = 0.5) -> Iterator[Record]:
    """The records of the inputs named by ``args`` (files, folders, globs), in input order.

    Streams: at most a few slabs of ``batch_size`` files are in memory at once, however many
    files there are. A file that cannot be read or has no ink becomes an error record in its place."""
    yield from score_items(expand_inputs(args), bundle, batch_size, stability, thresholds, workers, progress,
                           all_signals, pages, prior)


How = tuple[Stability, Thresholds, bool, Optional[bool], float]  # score_slab's options after the bundle, as one picklable value


def _inline(items, bundle, batch_size, how: How) -> Iterable[list[list[Record]]]:
    for slab in slabs(items, batch_size):
        yield score_slab(slab, bundle, *how)


# --------------------------------------------------------------------------- worker processes

_WORKER_BUNDLE: Optional[Bundle] = None


def _worker_init(bundle_path: str) -> None:
    global _WORKER_BUNDLE
    from forensics.threads import worker_init

    from .bundle import load_bundle

    worker_init()
    _WORKER_BUNDLE = load_bundle(bundle_path)  # verified against its manifest, once per process


def _worker_slab(args: tuple[Sequence[Item], How]) -> list[list[Record]]:
    items, how = args
    return score_slab(items, _WORKER_BUNDLE, *how)


def _pooled(items, bundle, batch_size, how: How, workers) -> Iterable[list[list[Record]]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Spawned, not forked: forking a process whose torch thread pool has started can hang.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(str(bundle.path),)) as pool:
        pending: deque = deque()
        todo = slabs(items, batch_size)
        # A few slabs in flight per worker keep every core busy; more would only hold memory.
        for slab in todo:
            pending.append(pool.submit(_worker_slab, (slab, how)))
            if len(pending) >= 2 * workers:
                break
        try:
            while pending:
                done = pending.popleft().result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(_worker_slab, (nxt, how)))
                yield done
        finally:  # stopped early (Ctrl-C, a write error): do not score what nobody will read
            for future in pending:
                future.cancel()
