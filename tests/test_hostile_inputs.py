"""Hostile scans: every odd file gives a score or a one-line error record, never a traceback,
never a hang, never gigabytes of memory; a batch with all of them still scores the good ones.

The corpus is generated at test time (``make_corpus``), no binaries are committed.
"""

from __future__ import annotations

import io
import json
import os
import resource
import struct
import subprocess
import sys
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from detectors.engine import score_paths
from detectors.score import RECORD_KEYS
from forensics import imageload
from forensics.cli import app
from forensics.errors import EXIT_OK, EXIT_SOME_FAILED
from forensics.preprocess import preprocess_file

pytestmark = pytest.mark.skipif(not os.environ.get("FORENSICS_DATA"), reason="set FORENSICS_DATA to the MNIST folder")

TIMEOUT = 60  # seconds for one file; a hang fails the test instead of blocking the suite
IS_ROOT = os.name == "posix" and os.geteuid() == 0


@dataclass
class Case:
    path: Path
    expect: str  # "ok", or a phrase the error reason must contain
    like: Path | None = None  # a plain scan of the same digit: an "ok" case must preprocess like it


def _scan(frame: np.ndarray) -> np.ndarray:
    """An MNIST frame (bright ink on black) as a scan's grey pixels: dark ink on white, 84x84."""
    return np.asarray(Image.fromarray(255 - frame).resize((84, 84), Image.Resampling.BICUBIC))


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR (CRC fixed) claims width x height: a bomb in ~70 bytes."""
    data = bytearray(_png_bytes(Image.new("L", (1, 1), 255)))
    ihdr = 8  # after the signature: length (4), b"IHDR" (4), 13 bytes of fields, CRC (4)
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", width, height)
    data[ihdr + 21 : ihdr + 25] = struct.pack(">I", zlib.crc32(bytes(data[ihdr + 4 : ihdr + 21])))
    return bytes(data)


def make_corpus(folder: Path, frames: np.ndarray) -> dict[str, Case]:
    """Write the hostile files into ``folder``; ``frames`` are at least 4 MNIST digits."""
    folder.mkdir(parents=True, exist_ok=True)
    a, b = _scan(frames[0]), _scan(frames[1])
    plain = folder / "plain_a.png"
    Image.fromarray(a).save(plain)
    plain_b = folder / "plain_b.png"
    Image.fromarray(b).save(plain_b)
    cases: dict[str, Case] = {}

    def add(name: str, filename: str, expect: str, like: Path | None = None) -> Path:
        cases[name] = Case(folder / filename, expect, like)
        return folder / filename

    noise = np.random.default_rng(0).integers(0, 256, (120, 120), dtype=np.uint8)  # incompressible
    whole = _png_bytes(Image.fromarray(noise))
    add("truncated-png", "truncated.png", "truncated").write_bytes(whole[: len(whole) // 2])
    add("zero-bytes", "empty.png", "empty file").write_bytes(b"")
    add("text-named-png", "notes.png", "not an image").write_text("these are not pixels\n")
    add("bomb-30000x30000", "bomb.png", "too large").write_bytes(png_claiming_size(30_000, 30_000))

    sixteen = Image.fromarray(a.astype(np.uint16) * 257)  # full 16-bit range: 65535 is white
    assert sixteen.mode.startswith("I;16")
    sixteen.save(add("16-bit-png", "sixteen_bit.png", "ok", plain))

    # CMYK: ink in the black channel; Pillow writes an Adobe CMYK JPEG.
    cmyk = np.zeros((*a.shape, 4), np.uint8)
    cmyk[..., 3] = 255 - a
    Image.fromarray(cmyk, mode="CMYK").save(add("cmyk-jpeg", "cmyk.jpg", "ok", plain), quality=95)

    # Palette with a transparent background entry: the paper is index 0 and fully transparent.
    pal = Image.fromarray(a).quantize(16)
    background = int(np.bincount(np.asarray(pal).ravel()).argmax())
    pal.save(add("palette-transparency", "palette.png", "ok", plain), transparency=background)

    # Two frames, two different digits: the first is the one scored.
    Image.fromarray(a).save(add("animated-gif", "animated.gif", "ok", plain), save_all=True,
                            append_images=[Image.fromarray(b)], duration=100, loop=0)

    Image.new("L", (120, 90), 235).save(add("blank-page", "blank.png", "no ink"))
    Image.new("L", (120, 90), 0).save(add("all-black-page", "black.png", "no ink"))
    Image.fromarray(255 - a).save(add("white-on-black", "white_on_black.png", "ok", plain))

    rgba = np.zeros((*a.shape, 4), np.uint8)  # black ink whose shape is all in alpha
    rgba[..., 3] = 255 - a
    Image.fromarray(rgba, mode="RGBA").save(add("rgba-transparent", "rgba.png", "ok", plain))

    loop = add("symlink-loop", "loop.png", "symlink loop")
    loop.symlink_to(loop)
    locked = add("unreadable", "locked.png", "permission denied")
    Image.fromarray(a).save(locked)
    locked.chmod(0)
    add("directory-as-file", "folder.png", "empty folder").mkdir()
    Image.fromarray(a).save(add("unicode-and-spaces", "Ziffer ä 数字 – scan (1).png", "ok", plain))
    return cases


CASE_NAMES = ["truncated-png", "zero-bytes", "text-named-png", "bomb-30000x30000", "16-bit-png", "cmyk-jpeg",
              "palette-transparency", "animated-gif", "blank-page", "all-black-page", "white-on-black",
              "rgba-transparent", "symlink-loop", "unreadable", "directory-as-file", "unicode-and-spaces"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, mnist_test_frames):
    folder = tmp_path_factory.mktemp("hostile")
    cases = make_corpus(folder, mnist_test_frames)
    assert sorted(cases) == sorted(CASE_NAMES)
    yield cases
    cases["unreadable"].path.chmod(0o644)  # let pytest clean it up


def with_timeout(fn, timeout: float = TIMEOUT):
    """fn() in a thread; fail (instead of hanging the suite) if it takes longer than timeout."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"still running after {timeout} s: a hang")
    if "error" in box:
        raise box["error"]
    return box["value"]


def check_record(rec: dict, case: Case) -> None:
    assert tuple(rec) == RECORD_KEYS
    assert rec["file"] == str(case.path)
    if case.expect == "ok":
        assert rec["status"] == "ok", rec["error"]
        assert 0.0 <= rec["p_machine"] <= 1.0 and rec["verdict"] in ("human", "machine", "uncertain")
        if case.like is not None:
            # Converted right (not inverted, not clipped, not blank): the frame the models saw is
            # the plain scan's frame up to JPEG and palette rounding.
            seen = np.array(rec["preprocessed"], dtype=np.float64)
            plain = preprocess_file(case.like).astype(np.float64)
            assert np.abs(seen - plain).mean() < 3, f"{case.path.name} preprocesses unlike its plain scan"
    else:
        assert rec["status"] == "error" and rec["p_machine"] is None
        reason = rec["error"]
        assert case.expect in reason, reason
        assert "\n" not in reason and "Traceback" not in reason and not reason.startswith("internal error"), reason


def skip_if_root(name: str) -> None:
    if name == "unreadable" and IS_ROOT:
        pytest.skip("running as root, which can read a file with mode 000; "
                    "tests/test_bad_inputs.py simulates the refusal instead")


@pytest.mark.parametrize("name", CASE_NAMES)
def test_score_paths_gives_a_score_or_a_clear_error(tiny_bundle, corpus, name):
    skip_if_root(name)
    case = corpus[name]
    [rec] = with_timeout(lambda: list(score_paths([str(case.path)], tiny_bundle, stability=False)))
    check_record(rec, case)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_cli_score_gives_a_score_or_a_clear_error(tiny_bundle_dir, corpus, name, tmp_path):
    skip_if_root(name)
    case = corpus[name]
    out = tmp_path / "records.json"
    args = ["score", str(case.path), "--models", str(tiny_bundle_dir), "--format", "json", "--output", str(out),
            "--no-stability"]
    result = with_timeout(lambda: CliRunner().invoke(app, args))
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == (EXIT_OK if case.expect == "ok" else EXIT_SOME_FAILED), result.output
    [rec] = json.loads(out.read_text(encoding="utf-8"))
    check_record(rec, case)


def test_animated_gif_scores_its_first_frame_and_the_docs_say_so(tiny_bundle, corpus):
    case = corpus["animated-gif"]
    [rec] = list(score_paths([str(case.path)], tiny_bundle, stability=False))
    seen = np.array(rec["preprocessed"], dtype=np.float64)
    first = preprocess_file(case.like)
    second = preprocess_file(case.path.parent / "plain_b.png")
    assert np.abs(seen - first).mean() < np.abs(seen - second).mean() / 4
    assert "first frame" in imageload.load_scan.__doc__


def test_bomb_is_refused_from_the_header_without_allocating(tiny_bundle, corpus):
    case = corpus["bomb-30000x30000"]
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    [rec] = with_timeout(lambda: list(score_paths([str(case.path)], tiny_bundle, stability=False)), timeout=10)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    check_record(rec, case)
    assert case.path.stat().st_size < 200
    assert grown_mib < 100, f"peak memory grew by {grown_mib:.0f} MiB for a {case.path.stat().st_size}-byte file"


def test_mixed_batch_scores_every_good_file(tiny_bundle_dir, corpus, mnist_test_frames, tmp_path):
    """All the hostile files and 3 good scans in one real `forensics score` process."""
    good = []
    for i in range(3):
        path = tmp_path / f"good {i}.png"
        Image.fromarray(_scan(mnist_test_frames[4 + i])).save(path)
        good.append(path)
    names = [n for n in CASE_NAMES if not (n == "unreadable" and IS_ROOT)]
    inputs = [good[0], *[corpus[n].path for n in names[:8]], good[1], *[corpus[n].path for n in names[8:]], good[2]]
    out = tmp_path / "mixed.json"
    cmd = [sys.executable, "-m", "forensics", "score", *map(str, inputs), "--models", str(tiny_bundle_dir),
           "--format", "json", "--output", str(out), "--no-stability", "--batch-size", "4"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    assert proc.returncode == EXIT_SOME_FAILED, proc.stderr[-3000:]
    records = json.loads(out.read_text(encoding="utf-8"))
    assert [r["file"] for r in records] == [str(p) for p in inputs]  # one record per input, in order
    by_file = {r["file"]: r for r in records}
    for path in good:
        assert by_file[str(path)]["status"] == "ok", by_file[str(path)]["error"]
    for name in names:
        check_record(by_file[str(corpus[name].path)], corpus[name])
