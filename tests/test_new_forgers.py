"""The new-forgers benchmark trains a forger only when no run of the same command is there."""

from __future__ import annotations

import json
import subprocess

import pytest

from benchmarks import new_forgers


def test_train_command_is_what_the_cli_records():
    assert new_forgers.train_command("dcgan-epoch1", "runs/early", quick=False) == [
        "train-generators", "-m", "dcgan", "--epochs", "1", "--out", "runs/early", "--seed", "2", "--device", "cpu"]
    assert "--preset" in new_forgers.train_command("fcgan-seed1", "x", quick=True)


def test_a_run_with_the_same_command_is_reused_and_another_is_retrained(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or subprocess.CompletedProcess(a, 0))
    folder = tmp_path / "runs" / "seed1" / "fcgan"
    folder.mkdir(parents=True)
    args = new_forgers.train_command("fcgan-seed1", str(tmp_path / "runs" / "seed1"), quick=False)
    (folder / "manifest.json").write_text(json.dumps({"command": " ".join(["forensics", *args])}))
    assert new_forgers.forger_dir("fcgan-seed1", tmp_path, quick=False) == (folder, False)
    assert calls == []
    # the same folder, made by another command (the smoke preset): trained again
    assert new_forgers.forger_dir("fcgan-seed1", tmp_path, quick=True) == (folder, True)
    assert len(calls) == 1 and "--preset" in calls[0][0]


def test_a_failed_training_names_the_forger(tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 2, "", "no data"))
    with pytest.raises(RuntimeError, match="autoencoder.*no data"):
        new_forgers.forger_dir("autoencoder", tmp_path, quick=True)


def test_a_forger_the_bundle_carries_is_marked_seen(tmp_path):
    from forensics.checkpoint import sha256_file

    folder = tmp_path / "vae"
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"weights")
    manifest = {"model_files": {"vae/model.pt": {"sha256": sha256_file(folder / "model.pt")}}}
    assert new_forgers.in_bundle(folder, manifest)
    (folder / "model.pt").write_bytes(b"other weights")  # another run of the same family: new
    assert not new_forgers.in_bundle(folder, manifest)
    assert not new_forgers.in_bundle(folder, {"model_files": {}})
