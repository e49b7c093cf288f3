"""Determinism: the same scan gets the same p_machine however it is batched and threaded.

Why it holds: detectors.signals runs every model on fixed-size chunks of CHUNK images
(the last chunk padded with blank frames), so a kernel always sees the same tensor shape
and picks the same algorithm whatever the batch; each image's numbers come from its own
row of that computation; the combiner adds signal columns one at a time in a fixed order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from detectors.engine import score_paths
from forensics.cli import app

pytestmark = pytest.mark.skipif(not os.environ.get("FORENSICS_DATA"), reason="set FORENSICS_DATA to the MNIST folder")

TOLERANCE = 1e-6
KEYS = ("p_machine", "p_machine_min", "p_machine_max")


@pytest.fixture(scope="module")
def scans(tmp_path_factory, mnist_test_frames) -> list[str]:
    """11 digit scans and, in the middle, one broken file (error records must not shift batches)."""
    folder = tmp_path_factory.mktemp("det-scans")
    paths = []
    for i, frame in enumerate(mnist_test_frames[:11]):
        path = folder / f"digit{i:02d}.png"
        Image.fromarray(255 - frame).resize((84, 84), Image.Resampling.BICUBIC).save(path)
        paths.append(str(path))
    broken = folder / "digit05b.png"
    broken.write_text("not an image")
    paths.insert(6, str(broken))
    return paths


def columns(records: list[dict]) -> dict[str, list]:
    cols = {k: [r[k] for r in records] for k in (*KEYS, "status", "verdict")}
    cols["signals"] = [[s["value"] for s in r["signals"].values()] if r["signals"] else None for r in records]
    return cols


def scored(paths, bundle, batch_size: int, threads: int) -> dict[str, list]:
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        records = list(score_paths(paths, bundle, batch_size=batch_size, stability=True))
    finally:
        torch.set_num_threads(saved)
    assert [r["file"] for r in records] == paths
    return columns(records)


def _array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def assert_same(a: dict, b: dict, label: str) -> None:
    assert a["status"] == b["status"] and a["verdict"] == b["verdict"], label
    for key in KEYS:
        x, y = _array(a[key]), _array(b[key])
        np.testing.assert_allclose(x, y, rtol=0, atol=TOLERANCE, equal_nan=True, err_msg=f"{label}: {key}")
        # The tiny bundle's p_machine sit near 0, where 1e-6 says little: compare the logits too.
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(np.log(x) - np.log1p(-x), np.log(y) - np.log1p(-y), rtol=0, atol=TOLERANCE,
                                       equal_nan=True, err_msg=f"{label}: logit of {key}")
    for i, (x, y) in enumerate(zip(a["signals"], b["signals"])):
        assert (x is None) == (y is None), label
        if x is not None:
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=0, err_msg=f"{label}: signals of input {i}")


def test_p_machine_is_the_same_for_any_batch_size_and_thread_count(tiny_bundle, scans):
    reference = scored(scans, tiny_bundle, batch_size=64, threads=1)
    assert reference["status"].count("error") == 1 and reference["status"].count("ok") == 11
    assert_same(scored(scans, tiny_bundle, batch_size=64, threads=1), reference, "scored twice")
    for threads in (1, 2):
        for batch_size in (1, 3, 64):
            assert_same(scored(scans, tiny_bundle, batch_size, threads), reference,
                        f"batch size {batch_size}, {threads} threads")


def test_cli_threads_and_batch_size_do_not_change_the_records(tiny_bundle, tiny_bundle_dir, scans, tmp_path):
    reference = scored(scans, tiny_bundle, batch_size=64, threads=1)
    out = tmp_path / "records.json"
    saved = torch.get_num_threads()
    try:  # the command sets the process's thread count
        result = CliRunner().invoke(app, ["score", *scans, "--models", str(tiny_bundle_dir), "--format", "json",
                                          "--output", str(out), "--threads", "2", "--batch-size", "3"])
    finally:
        torch.set_num_threads(saved)
    assert result.exit_code == 1, result.output  # the broken file
    assert_same(columns(json.loads(Path(out).read_text())), reference, "CLI")


def test_worker_processes_give_the_records_of_one_process(tiny_bundle, scans):
    """Slabs scored in two spawned worker processes, each loading the bundle itself, come back
    in input order and equal, to the bit, what one process gives."""
    inline = list(score_paths(scans, tiny_bundle, batch_size=3, workers=1))
    pooled = list(score_paths(scans, tiny_bundle, batch_size=3, workers=2))
    assert [r["file"] for r in pooled] == scans
    assert pooled == inline
