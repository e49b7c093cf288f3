"""No code from data: checkpoints, model bundles and scans are read as data, never run.

A PyTorch checkpoint is a pickle, and unpickling can call any function the file names. The
payload here calls ``os.system("touch MARKER")`` when unpickled; every loader must refuse
the file with a clear error (exit code 3 on the command line) and the marker must not
appear. A control first proves the payload is live: a plain ``torch.load`` runs it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from detectors.bundle import load_bundle
from detectors.engine import score_paths
from forensics.checkpoint import load_checkpoint, sha256_file
from forensics.cli import app
from forensics.errors import EXIT_MISSING, CheckpointError

pytestmark = pytest.mark.skipif(not os.environ.get("FORENSICS_DATA"), reason="set FORENSICS_DATA to the MNIST folder")


class Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.marker)}",)


def evil_checkpoint(path: Path, marker: Path, like: Path | None = None) -> Path:
    """A checkpoint with the payload inside; with ``like``, a real checkpoint's contents plus
    the payload, so the file looks right to everything but the unpickler."""
    blob = load_checkpoint(like) if like is not None else {"format": "forensics-train-v1"}
    blob["weights"] = {**blob.get("weights", {}), "extra": Payload(marker)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, path)
    return path


def one_line(text: str) -> str:
    return "".join(text.split())  # rich wraps long paths across lines


def test_the_payload_is_live(tmp_path):
    # The control: loading the file the unsafe way runs the command.
    marker = tmp_path / "pwned-control"
    path = evil_checkpoint(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_load_checkpoint_refuses_a_pickle_that_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    path = evil_checkpoint(tmp_path / "checkpoint.pt", marker)
    with pytest.raises(CheckpointError, match="refused to load") as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value) and "system" in str(caught.value)  # names the file and the function
    assert not marker.exists()


def test_training_resume_refuses_an_evil_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    evil_checkpoint(tmp_path / "run" / "fcgan" / "checkpoint.pt", marker)
    result = CliRunner().invoke(app, ["train-generators", "--preset", "smoke", "-m", "fcgan", "--out",
                                      str(tmp_path / "run"), "--resume", "--device", "cpu"])
    assert result.exit_code == EXIT_MISSING, result.output
    assert "refused to load" in result.output and "Traceback" not in result.output
    assert not marker.exists()


def test_sample_refuses_an_evil_model_file(tmp_path):
    marker = tmp_path / "pwned"
    evil_checkpoint(tmp_path / "run" / "fcgan" / "model.pt", marker)
    result = CliRunner().invoke(app, ["sample", "-m", "fcgan", "--run", str(tmp_path / "run"),
                                      "--out", str(tmp_path / "grid.png")])
    assert result.exit_code == EXIT_MISSING, result.output
    assert "refused to load" in result.output
    assert not marker.exists() and not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("resign", [False, True])
def test_the_digit_reader_refuses_a_changed_or_evil_weight_file(tmp_path, resign):
    from detectors.reader import DEFAULT, MANIFEST_FILE, MODEL_FILE, load_reader

    folder = tmp_path / "reader_net"
    shutil.copytree(DEFAULT, folder)
    marker = tmp_path / "pwned"
    victim = evil_checkpoint(folder / MODEL_FILE, marker, like=DEFAULT / MODEL_FILE)
    if resign:  # a manifest re-signed to match: only the refusal to unpickle code is left to protect us
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        manifest["files"][MODEL_FILE] = {"sha256": sha256_file(victim), "bytes": victim.stat().st_size}
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="refused to load" if resign else "checksum|changed|match") as caught:
        load_reader(folder)
    assert str(victim) in str(caught.value)
    assert not marker.exists()


@pytest.fixture(params=["pixelcnn", "cnn", "font_cnn"])
def evil_bundle(request, tiny_bundle_dir, tmp_path):
    """The tiny bundle with a booby-trapped generator or ScanCNN model.pt, and a manifest
    re-signed to match: whoever hands us a bundle controls its checksums too, so only the
    loader's refusal to run code protects us."""
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle_dir, bundle)
    rel = f"{request.param}/model.pt"
    victim = bundle / rel
    evil_checkpoint(victim, tmp_path / "pwned", like=tiny_bundle_dir / rel)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["model_files"][rel] = {"sha256": sha256_file(victim), "bytes": victim.stat().st_size}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return bundle, victim, tmp_path / "pwned"


def test_load_bundle_refuses_an_evil_model_even_with_matching_checksums(evil_bundle):
    bundle, victim, marker = evil_bundle
    with pytest.raises(CheckpointError, match="refused to load") as caught:
        load_bundle(bundle)
    assert str(victim) in str(caught.value)
    assert not marker.exists()


def test_cli_score_refuses_an_evil_bundle_with_exit_3(evil_bundle, tmp_path, mnist_test_frames):
    from PIL import Image

    bundle, victim, marker = evil_bundle
    scan = tmp_path / "scan.png"
    Image.fromarray(255 - mnist_test_frames[0]).save(scan)
    out = tmp_path / "records.json"
    result = CliRunner().invoke(app, ["score", str(scan), "--models", str(bundle), "--format", "json",
                                      "--output", str(out), "--no-stability"])
    assert result.exit_code == EXIT_MISSING, result.output
    assert "refused to load" in result.output and one_line(str(victim)) in one_line(result.output)
    assert "Traceback" not in result.output
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("victim", ["dcgan/model.pt", "combiner.json", "human_reference.json"])
def test_cli_score_names_a_tampered_bundle_file_with_exit_3(tiny_bundle_dir, tmp_path, victim):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle_dir, bundle)
    data = bytearray((bundle / victim).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    (bundle / victim).write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["score", str(tmp_path / "scan.png"), "--models", str(bundle), "--format", "json",
                                      "--output", str(tmp_path / "out.json"), "--no-stability"])
    assert result.exit_code == EXIT_MISSING, result.output
    assert one_line(str(bundle / victim)) in one_line(result.output)
    assert "checksum does not match" in result.output
    assert not (tmp_path / "out.json").exists()


def test_a_postscript_scan_is_never_handed_to_ghostscript(tiny_bundle, tmp_path, monkeypatch):
    # Pillow opens EPS by running Ghostscript, an interpreter for a programming language:
    # the loader accepts raster formats only (forensics.imageload.SCAN_FORMATS).
    def no_programs(*args, **kwargs):
        raise AssertionError(f"tried to run {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "Popen", no_programs)
    monkeypatch.setattr(subprocess, "check_call", no_programs)
    eps = "%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n0 0 moveto 28 28 lineto stroke\nshowpage\n%%EOF\n"
    files = [tmp_path / "scan.eps", tmp_path / "scan.png"]
    for f in files:
        f.write_text(eps)
    records = list(score_paths([str(f) for f in files], tiny_bundle, stability=False))
    assert [r["status"] for r in records] == ["error", "error"]
    assert all("not an image" in r["error"] for r in records), [r["error"] for r in records]
