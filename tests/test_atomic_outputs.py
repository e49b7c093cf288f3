"""Outputs are never half-written: `forensics score --output FILE` killed mid-run leaves the
previous FILE (or none), and a completed run replaces it whole.

Records stream into a hidden temporary file next to FILE (``.FILE.<random>.tmp``), which
is renamed over FILE only once every record is written and fsynced. SIGKILL, which no
handler can catch, is the hardest case; it may leave that hidden temporary file behind,
never a partial FILE.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from forensics.cli import app

pytestmark = pytest.mark.skipif(not os.environ.get("FORENSICS_DATA"), reason="set FORENSICS_DATA to the MNIST folder")

N_SCANS = 120  # with re-scans on, seconds of work: time to be killed half-way
PREVIOUS = {"json": '[{"file": "previous run", "status": "ok"}]\n', "csv": "file,status\nprevious run,ok\n"}


@pytest.fixture(scope="module")
def scan_folder(tmp_path_factory, mnist_test_frames) -> Path:
    folder = tmp_path_factory.mktemp("many-scans")
    for i in range(N_SCANS):
        frame = mnist_test_frames[i % len(mnist_test_frames)]
        Image.fromarray(255 - frame).resize((56 + i % 5, 56), Image.Resampling.BICUBIC).save(folder / f"s{i:03d}.png")
    return folder


def score_args(scans: Path, bundle: Path, out: Path, fmt: str) -> list[str]:
    return ["score", str(scans), "--models", str(bundle), "--format", fmt, "--output", str(out), "--batch-size", "8"]


def temp_files(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*.tmp"))


@pytest.mark.parametrize("fmt, previous", [("json", True), ("csv", False)], ids=["json-replaces-previous", "csv-none-before"])
def test_killed_score_leaves_the_previous_output_or_none(tiny_bundle_dir, scan_folder, tmp_path, fmt, previous):
    out = tmp_path / f"out.{fmt}"
    if previous:
        out.write_text(PREVIOUS[fmt])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "forensics", *score_args(scan_folder, tiny_bundle_dir, out, fmt)]
    with open(tmp_path / "score.log", "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    try:
        # Kill once records have started reaching the temporary file: mid-write by construction.
        deadline = time.monotonic() + 120
        while not any(t.stat().st_size > 0 for t in temp_files(out)):
            assert proc.poll() is None, (tmp_path / "score.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no records written after 120 s"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed; use more scans"

    # The output is exactly what it was before the run: the old file, or no file.
    if previous:
        assert out.read_text() == PREVIOUS[fmt]
    else:
        assert not out.exists()
    # The interrupted records exist only in the hidden temporary file, and they are partial.
    [tmp] = temp_files(out)
    partial = tmp.read_text(encoding="utf-8", errors="replace")
    if fmt == "json":
        with pytest.raises(ValueError):
            json.loads(partial)
    assert partial.count("\n") < N_SCANS
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == \
        sorted(["score.log", *([out.name] if previous else [])])

    # A completed run replaces the output whole (without re-scans, to be quick).
    result = CliRunner().invoke(app, [*score_args(scan_folder, tiny_bundle_dir, out, fmt), "--no-stability"])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        records = json.loads(out.read_text())
        assert len(records) == N_SCANS and all(r["status"] == "ok" for r in records)
    else:
        rows = list(csv.DictReader(out.open(newline="")))
        assert len(rows) == N_SCANS and all(r["status"] == "ok" for r in rows)
    assert temp_files(out) == [tmp], "the completed run's own temporary file is gone (renamed)"
