"""Crash-safe training: SIGKILL `forensics train-generators` at random moments, resume, and
get exactly the run that was never interrupted.

Nothing here is polite: SIGKILL gives the process no chance to save (unlike Ctrl-C, which
tests/test_train.py covers). What makes it safe is the loop itself: a checkpoint after
every step here (--checkpoint-minutes 0), each written to a temporary file and renamed
over the old one, so at any instant the folder holds a whole checkpoint.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from forensics.checkpoint import load_checkpoint, read_manifest
from generators.presets import preset_config
from generators.train import TrainConfig, train

pytestmark = pytest.mark.skipif(not os.environ.get("FORENSICS_DATA"), reason="set FORENSICS_DATA to the MNIST folder")

MODEL = "fcgan"  # the fastest model to start; its checkpoint (~25 MB with Adam state) takes long to write
SEED = 1
EPOCHS = 2  # crosses an epoch boundary (evaluation, sample grid, epoch checkpoint)
TRAIN_LIMIT = 1024  # 32 batches of 32 per epoch: 64 steps, a few seconds with a checkpoint per step
STEPS = EPOCHS * TRAIN_LIMIT // 32
MIN_KILLS = 5
MAX_LAUNCHES = 10
LAUNCH_TIMEOUT = 120  # seconds: a launch that neither progresses nor ends is a hang


def _cli(out: Path) -> list[str]:
    return [sys.executable, "-m", "forensics", "train-generators", "--preset", "smoke", "-m", MODEL,
            "--out", str(out), "--seed", str(SEED), "--device", "cpu", "--epochs", str(EPOCHS),
            "--train-limit", str(TRAIN_LIMIT), "--checkpoint-minutes", "0", "--resume"]


def _env() -> dict:
    # One thread: CPU kernels then reduce in one fixed order (see test_resumed_run_...).
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _temp_names(folder: Path) -> set[str]:
    try:
        return {n for n in os.listdir(folder) if n.startswith(".checkpoint.pt.") and n.endswith(".tmp")}
    except FileNotFoundError:
        return set()


def _identity(path: Path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns  # a rename over the file gives a new inode


def _wait_until(predicate, proc: subprocess.Popen, timeout: float, poll: float = 0.002) -> bool:
    """Poll until predicate() is true (True) or the process ends (False); fail on a hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    proc.kill()
    pytest.fail(f"training made no progress for {timeout} s")


def _history(ck: dict) -> list[dict]:
    return ck["state"]["history"]


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_run(tmp_path):
    # The uninterrupted reference, in this process (one torch thread, see conftest.py) and
    # with the default checkpoint timer: saving never draws random numbers, so how often a
    # run checkpoints cannot change its losses.
    fields = preset_config("smoke", MODEL)
    fields.update(epochs=EPOCHS, train_limit=TRAIN_LIMIT)
    ref_dir = tmp_path / "ref"
    train(TrainConfig(model=MODEL, out=str(ref_dir), seed=SEED, device="cpu", **fields), log=lambda *_: None)
    ref = load_checkpoint(ref_dir / MODEL / "checkpoint.pt")
    assert len(_history(ref)) == STEPS

    out = tmp_path / "killed"
    run = out / MODEL
    ckpt = run / "checkpoint.pt"
    log = tmp_path / "train.log"
    rng = random.Random(20240611)
    # Kill moments, measured in this machine's own time units so a fast machine cannot finish
    # the run before the kills are done:
    # "training": after 1-12 more saved steps, plus a random fraction of a step;
    # "anytime": a random moment in the first 1.2 startup times (imports, data loading, loading
    #   the checkpoint, the first steps), the startup time being measured by the first launch;
    # "write": the moment a new .checkpoint.pt.*.tmp appears, i.e. mid-write (retried until a
    #   kill really leaves the temporary file behind, which proves it landed inside the write).
    plan = ["training", "write", "anytime", "training", "training"]
    kills, write_kills, steps_seen, startup = 0, 0, [], None
    for _ in range(MAX_LAUNCHES):
        if kills >= MIN_KILLS and write_kills:
            break
        mode = plan[kills] if kills < len(plan) else "training"
        if not write_kills and kills >= len(plan) - 1:
            mode = "write"  # until one kill has landed inside a write
        stale = _temp_names(run)
        with open(log, "ab") as sink:
            launched = time.monotonic()
            proc = subprocess.Popen(_cli(out), env=_env(), stdout=sink, stderr=sink)
        try:
            new_temps = set()
            if mode == "anytime":
                deadline = launched + rng.uniform(0.0, 1.2) * startup
                fired = _wait_until(lambda: time.monotonic() > deadline, proc, LAUNCH_TIMEOUT)
            elif mode == "training":
                fired, saved_at = True, []
                for _ in range(rng.randint(1, 12)):
                    last = _identity(ckpt)
                    fired = _wait_until(lambda: _identity(ckpt) not in (None, last), proc, LAUNCH_TIMEOUT)
                    if not fired:
                        break
                    saved_at.append(time.monotonic())
                if fired:
                    startup = startup or saved_at[0] - launched
                    step_time = saved_at[-1] - saved_at[-2] if len(saved_at) > 1 else 0.05
                    time.sleep(rng.uniform(0.0, 1.0) * step_time)
            else:
                fired = _wait_until(lambda: bool(_temp_names(run) - stale), proc, LAUNCH_TIMEOUT, poll=0.0005)
                new_temps = _temp_names(run) - stale
            if not fired or proc.poll() is not None:
                break  # the run finished on its own before this kill: enough progress was made
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, log.read_text()[-3000:]
        kills += 1
        if mode == "write" and new_temps & _temp_names(run):
            write_kills += 1  # the process died between creating the temporary file and renaming it

        # (a) after every kill, the checkpoint on disk is whole and loads as data (the first
        # kill waits for it to exist), and holds exactly the reference run's first steps.
        ck = load_checkpoint(ckpt)
        step = ck["state"]["step"]
        assert len(_history(ck)) == step <= STEPS
        assert not steps_seen or step >= steps_seen[-1], "a kill lost saved progress"
        assert _history(ck) == _history(ref)[:step], "the killed run diverged from the reference"
        steps_seen.append(step)

    assert kills >= MIN_KILLS, f"only {kills} kills landed before the run finished; steps seen {steps_seen}"
    assert write_kills >= 1, "no kill landed inside a checkpoint write"
    assert steps_seen and steps_seen[-1] < STEPS, "the kills should interrupt training, not only the end"

    # (b) one more --resume finishes the planned steps.
    done = subprocess.run(_cli(out), env=_env(), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    final = load_checkpoint(ckpt)
    assert final["state"]["step"] == STEPS and final["state"]["epoch"] == EPOCHS

    # (c) Bitwise the same per-step losses as the uninterrupted run. Why bitwise holds on CPU:
    # the data order is a pure function of (seed, epoch) (train._permutation), so a resumed
    # run sees the same batches; the checkpoint restores weights, Adam moments and the
    # torch RNG state (the GAN's noise) exactly as they were after the saved step; and at
    # one thread (OMP_NUM_THREADS=1 here, torch.set_num_threads(1) in conftest.py) the CPU
    # kernels for a given shape run the same instructions in the same reduction order, so
    # the same inputs give the same bits. A kill only loses the steps after the last save,
    # which the resumed run recomputes identically.
    assert _history(final) == _history(ref)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(final["state"]["epochs"]) == strip(ref["state"]["epochs"])  # epoch means and evaluation too
    weights, ref_weights = load_checkpoint(run / "model.pt")["weights"], load_checkpoint(ref_dir / MODEL / "model.pt")["weights"]
    for net in ("G", "D"):
        for key, value in ref_weights[net].items():
            assert torch.equal(weights[net][key], value), f"{net}.{key}"
    read_manifest(run / "manifest.json", verify=True)

    # No temporary file survives a finished run, though the kills left at least one.
    assert not [p for p in out.rglob("*.tmp")], sorted(p.name for p in out.rglob("*"))
