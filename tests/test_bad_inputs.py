"""Bad inputs: each becomes an InputError naming the file and saying why, and a batch goes on."""

from __future__ import annotations

import errno
import io
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile
from typer.testing import CliRunner

from forensics import imageload
from forensics.cli import app
from forensics.errors import InputError
from forensics.imageload import load_scan
from forensics.inputs import expand_inputs
from forensics.preprocess import iter_preprocessed, preprocess_file


def digit_png(path: Path) -> Path:
    img = Image.new("L", (60, 80), 220)
    ImageDraw.Draw(img).line([(15, 15), (45, 15), (25, 65)], fill=20, width=6)
    img.save(path)
    return path


def noise_png(path: Path, size: int = 200) -> Path:
    # Random pixels do not compress, so the file is big enough to cut in half.
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size), dtype=np.uint8)).save(path)
    return path


def png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims width x height: a decompression bomb in 70 bytes."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1), 255).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8  # after the PNG signature: length (4), b"IHDR" (4), 13 bytes of data, CRC (4)
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", width, height)
    data[ihdr + 21 : ihdr + 25] = struct.pack(">I", zlib.crc32(bytes(data[ihdr + 4 : ihdr + 21])))
    path.write_bytes(bytes(data))
    return path


def load_error(path: Path, **options) -> InputError:
    with pytest.raises(InputError) as caught:
        load_scan(path, **options)
    return caught.value


def preprocess_error(path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        preprocess_file(path)
    return caught.value


def assert_names(error: InputError, path: Path | str, *words: str) -> None:
    assert error.path == str(path) and str(path) in str(error)
    for word in words:
        assert word in error.reason, f"{word!r} not in reason {error.reason!r}"
    assert "\n" not in str(error), "a reason is one line"


# --------------------------------------------------------------------------- one file


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n")
    assert_names(load_error(path), path, "not an image")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    assert_names(load_error(path), path, "empty")


@pytest.mark.parametrize("pillow_lenient", [False, True], ids=["default", "LOAD_TRUNCATED_IMAGES"])
def test_truncated_png(tmp_path, monkeypatch, pillow_lenient):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", pillow_lenient)
    whole = noise_png(tmp_path / "whole.png").read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(whole[: len(whole) // 2])
    assert_names(load_error(path), path, "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is pillow_lenient, "the caller's setting is restored"


def test_truncated_jpeg(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (200, 200), dtype=np.uint8)).save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert_names(load_error(path), path, "truncated")


@pytest.mark.parametrize(
    "width, height, max_pixels",
    [
        (30_000, 30_000, imageload.DEFAULT_MAX_PIXELS),  # beyond Pillow's own hard limit
        (7_000, 7_000, imageload.DEFAULT_MAX_PIXELS),  # 49 MP: over our 40 MP cap only
        (10_000, 10_000, 10**9),  # 100 MP: Pillow's warning range, made an error
        (300, 300, 50_000),  # the cap is configurable
    ],
    ids=["30000x30000", "7000x7000", "pillow-warning", "configured-cap"],
)
def test_decompression_bomb_fails_fast_from_the_header(tmp_path, monkeypatch, width, height, max_pixels):
    def no_decoding(self):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    path = png_claiming_size(tmp_path / "bomb.png", width, height)
    started = time.perf_counter()
    error = load_error(path, max_pixels=max_pixels)
    assert time.perf_counter() - started < 1.0
    assert_names(error, path, "too large")


def test_a_folder_is_not_a_file(tmp_path):
    assert_names(load_error(tmp_path), tmp_path, "folder")


def test_symlink_loop(tmp_path):
    path = tmp_path / "loop.png"
    path.symlink_to(path)
    assert_names(load_error(path), path, "symlink loop")


def test_broken_symlink(tmp_path):
    path = tmp_path / "gone.png"
    path.symlink_to(tmp_path / "never-there.png")
    assert_names(load_error(path), path, "broken symlink")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="running as root, which can read any file")
def test_unreadable_file(tmp_path):
    path = digit_png(tmp_path / "locked.png")
    path.chmod(0)
    try:
        assert_names(load_error(path), path, "permission denied")
    finally:
        path.chmod(0o644)


def test_permission_error_becomes_a_clean_reason(tmp_path, monkeypatch):
    # Runs as root too: the OS refusal is simulated where load_scan opens the file.
    def refuse(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(file))

    monkeypatch.setattr(imageload, "open", refuse, raising=False)
    path = digit_png(tmp_path / "locked.png")
    assert_names(load_error(path), path, "permission denied")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_named_pipe_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    assert_names(load_error(path), path, "not a regular file")
    [record] = expand_inputs([str(path)])
    assert_names(record, path, "not a regular file")


# --------------------------------------------------------------------------- no ink


def grey_page(value: float, noise: float = 0.0) -> Image.Image:
    page = value + np.random.default_rng(2).normal(0, noise, (120, 90))
    return Image.fromarray(np.clip(np.round(page), 0, 255).astype(np.uint8))


@pytest.mark.parametrize(
    "page",
    [grey_page(230, noise=3), grey_page(0), grey_page(128), grey_page(230, noise=25)],
    ids=["blank-paper", "all-black", "uniform-grey", "very-noisy-blank"],
)
def test_page_without_ink(tmp_path, page):
    path = tmp_path / "page.png"
    page.save(path)
    assert_names(preprocess_error(path), path, "no ink found")


@pytest.mark.parametrize("specks", [3, 40])
def test_dust_specks_are_not_ink(tmp_path, specks):
    page = np.full((120, 90), 230, np.uint8)
    rng = np.random.default_rng(3)
    page[rng.integers(0, 120, specks), rng.integers(0, 90, specks)] = 0
    path = tmp_path / "dusty.png"
    Image.fromarray(page).save(path)
    assert_names(preprocess_error(path), path, "no ink found")


# --------------------------------------------------------------------------- expanding arguments


def test_missing_glob_and_missing_file(tmp_path):
    pattern, missing = str(tmp_path / "nothing" / "*.png"), str(tmp_path / "absent.png")
    records = expand_inputs([pattern, missing])
    assert_names(records[0], pattern, "no file matches")
    assert_names(records[1], missing, "no such file")


def test_folder_keeps_order_skips_sidecars_and_reports_non_images(tmp_path):
    scans = tmp_path / "scans"
    (scans / "sub").mkdir(parents=True)
    digit_png(scans / "b.png")
    digit_png(scans / "sub" / "a.png")
    (scans / "readme.txt").write_text("not a scan")
    (scans / ".DS_Store").write_bytes(b"\0")
    (scans / "Thumbs.db").write_bytes(b"\0")
    (scans / ".hidden.png").write_bytes(b"\0")
    first = digit_png(tmp_path / "first.png")

    results = dict(iter_preprocessed([str(first), str(scans), str(scans / "b.png")]))

    assert list(results) == [str(first), str(scans / "b.png"), str(scans / "readme.txt"), str(scans / "sub" / "a.png")]
    assert_names(results[str(scans / "readme.txt")], scans / "readme.txt", "not an image")
    assert all(isinstance(results[name], np.ndarray) for name in list(results) if not name.endswith(".txt"))


def test_glob_recurses_and_duplicates_are_dropped(tmp_path):
    digit_png(tmp_path / "x.png")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    digit_png(tmp_path / "deep" / "er" / "y.png")
    (tmp_path / "alias.png").symlink_to(tmp_path / "x.png")
    found = expand_inputs([str(tmp_path / "**" / "*.png"), str(tmp_path / "x.png")])
    assert found == [tmp_path / "alias.png", tmp_path / "deep" / "er" / "y.png"]


def test_symlink_loops_in_folders_and_globs_do_not_hang(tmp_path):
    digit_png(tmp_path / "x.png")
    (tmp_path / "self1").symlink_to(tmp_path)  # two links to '.' are 2**40 paths for glob.glob
    (tmp_path / "self2").symlink_to(tmp_path)
    started = time.perf_counter()
    walked = expand_inputs([str(tmp_path)])
    globbed = expand_inputs([str(tmp_path / "**" / "*.png")])
    assert time.perf_counter() - started < 2.0
    assert [r.path for r in walked[:2]] == [str(tmp_path / "self1"), str(tmp_path / "self2")]
    assert all("symlink loop" in r.reason for r in walked[:2])
    assert walked[2:] == [tmp_path / "x.png"]
    assert globbed == [tmp_path / "x.png"]


# --------------------------------------------------------------------------- the command line


def run_cli(*args: str):
    return CliRunner().invoke(app, ["preprocess", *args])


def test_cli_one_bad_file_in_the_middle(tmp_path):
    good1, good2 = digit_png(tmp_path / "good1.png"), digit_png(tmp_path / "good2.png")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    out = tmp_path / "out"

    result = run_cli(str(good1), str(bad), str(good2), "--out", str(out))

    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in out.iterdir()) == ["good1.png", "good2.png"]
    assert Image.open(out / "good1.png").size == (28, 28)
    assert f"error: {bad}: not an image" in result.output.splitlines()[0]


def test_cli_all_good(tmp_path):
    digit_png(tmp_path / "a.png")
    digit_png(tmp_path / "b.png")
    result = run_cli(str(tmp_path / "*.png"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert "2 of 2" in result.output


@pytest.mark.parametrize("what", ["unmatched-glob", "empty-folder"])
def test_cli_nothing_found(tmp_path, what):
    (tmp_path / "empty").mkdir()
    arg = str(tmp_path / "*.tif") if what == "unmatched-glob" else str(tmp_path / "empty")
    result = run_cli(arg, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "no input files found" in result.output


def test_cli_names_with_markup_and_shared_stems(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    digit_png(tmp_path / "a" / "scan.png")
    digit_png(tmp_path / "b" / "scan.png")
    digit_png(tmp_path / "Ziffer_ä.png")
    odd = tmp_path / "[bold]x.png"  # rich would eat "[bold]" as a style tag
    odd.write_text("no")
    out = tmp_path / "out"

    result = run_cli(str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "Ziffer_ä.png"), str(odd), "--out", str(out))

    assert result.exit_code == 1, result.output
    assert f"error: {odd}: not an image" in result.output  # printed literally, not as markup
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 3 and "Ziffer_ä.png" in names
    assert all(n.startswith("scan-") and len(n) == len("scan-12345678.png") for n in names if n != "Ziffer_ä.png")


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "forensics", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("forensics ")


def test_cli_refuses_to_overwrite_the_scans_themselves(tmp_path):
    scan = digit_png(tmp_path / "x.png")
    before = scan.read_bytes()
    result = run_cli(str(scan), "--out", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "refusing to overwrite the input scan" in result.output
    assert scan.read_bytes() == before


def test_named_empty_folder_is_reported(tmp_path):
    (tmp_path / "empty" / "nested").mkdir(parents=True)
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"\0")
    [record] = expand_inputs([str(tmp_path / "empty")])
    assert_names(record, tmp_path / "empty", "empty folder")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("command", [["score", "x.png"], ["report", "x.png", "--out", "r.html"],
                                     ["calibrate", "--run", "r", "--out", "b"], ["sample", "--run", "r"]])
def test_cuda_without_a_gpu_is_a_usage_error_naming_the_option(command, tmp_path, monkeypatch):
    from forensics.errors import EXIT_USAGE

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [*command, "--device", "cuda"])
    assert result.exit_code == EXIT_USAGE and "--device cuda" in result.output and "no CUDA GPU" in result.output
