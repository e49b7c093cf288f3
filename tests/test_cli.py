"""The command line as a user meets it: one output path (CSV escaped in every CSV the tool
writes, records that render again with `report --from`), commands that work with what is
installed (sampling from the shipped bundle), and a CLI that answers without importing torch."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from forensics.cli import app
from reports.writers import csv_text

ROOT = Path(__file__).resolve().parents[1]
# Names a form filler controls, each of which a spreadsheet would run as a formula.
HOSTILE_NAMES = ('=HYPERLINK("http:x","y").png', "+SUM(1,2).png", "@cmd.png", "-2+3.png")


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open(encoding="utf-8", newline="")))


@pytest.fixture(scope="module")
def hostile_scans(tmp_path_factory, mnist_test_frames) -> Path:
    folder = tmp_path_factory.mktemp("scans") / "=HYPERLINK(form)"  # a document id that is a formula too
    folder.mkdir()
    for name, frame in zip(HOSTILE_NAMES, mnist_test_frames):
        Image.fromarray(255 - frame).resize((56, 56)).save(folder / name)
    (folder / "=broken.png").write_bytes(b"not an image")  # an error record with a hostile name
    return folder


def test_csv_text_neutralises_formulas_but_not_numbers():
    assert [csv_text(n) for n in HOSTILE_NAMES] == ["'" + n for n in HOSTILE_NAMES]
    assert csv_text("\tx") == "'\tx" and csv_text("\rx") == "'\rx"
    assert csv_text("-1.5") == "-1.5" and csv_text("+3") == "+3" and csv_text("box.png") == "box.png"


def test_every_csv_the_tool_writes_escapes_hostile_names(tiny_bundle_dir, hostile_scans, tmp_path, monkeypatch):
    monkeypatch.chdir(hostile_scans.parent)  # relative names, as a user types them: the cells start with '='
    score_csv, report_csv = tmp_path / "score.csv", tmp_path / "report.csv"
    r = CliRunner().invoke(app, ["score", hostile_scans.name, "--models", str(tiny_bundle_dir), "--no-stability",
                                 "--format", "csv", "--output", str(score_csv)])
    assert r.exit_code == 1, r.output  # the broken file is one failed input
    r = CliRunner().invoke(app, ["report", hostile_scans.name, "--models", str(tiny_bundle_dir), "--no-stability",
                                 "--out", str(tmp_path / "r.html"), "--csv", str(report_csv), "--group-by", "folder"])
    assert r.exit_code == 1, r.output
    for path in (score_csv, report_csv):
        rows = _rows(path)
        assert len(rows) == len(HOSTILE_NAMES) + 1
        for row in rows:
            assert row["file"].startswith("'=HYPERLINK(form)/"), row["file"]
            assert row["document"] == "'=HYPERLINK(form)", row["document"]
    docs = _rows(tmp_path / "report.documents.csv")
    assert [d["document"] for d in docs] == ["'=HYPERLINK(form)"]
    assert docs[0]["most_suspicious_file"].startswith("'=HYPERLINK(form)/")
    # The JSON keeps the exact names: escaping is for spreadsheets only.
    out = tmp_path / "s.json"
    CliRunner().invoke(app, ["score", hostile_scans.name, "--models", str(tiny_bundle_dir), "--no-stability",
                             "--format", "json", "--output", str(out)])
    assert {Path(r["file"]).name for r in json.loads(out.read_text())} == {*HOSTILE_NAMES, "=broken.png"}


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_report_from_records_matches_scoring_again(tiny_bundle_dir, hostile_scans, tmp_path, fmt):
    records = tmp_path / f"s.{fmt}"
    common = ["--models", str(tiny_bundle_dir), "--no-stability"]
    r = CliRunner().invoke(app, ["score", str(hostile_scans), *common, "--format", fmt, "--output", str(records)])
    assert r.exit_code == 1, r.output
    if fmt == "jsonl":
        assert len(records.read_text().splitlines()) == len(HOSTILE_NAMES) + 1
    r = CliRunner().invoke(app, ["report", "--from", str(records), "--out", str(tmp_path / "a.html"),
                                 "--csv", str(tmp_path / "a.csv"), "--json", str(tmp_path / "a.json")])
    assert r.exit_code == 1, r.output  # the failed input is still there, and still counts
    r = CliRunner().invoke(app, ["report", str(hostile_scans), *common, "--out", str(tmp_path / "b.html"),
                                 "--csv", str(tmp_path / "b.csv")])
    assert r.exit_code == 1, r.output
    assert _rows(tmp_path / "a.csv") == _rows(tmp_path / "b.csv")
    meta = json.loads((tmp_path / "a.json").read_text())["meta"]
    assert meta["records_from"] == str(records) and meta["signals"] == []  # a bare records file has no meta
    # A report's own JSON renders again too, with the meta it recorded.
    r = CliRunner().invoke(app, ["report", "--from", str(tmp_path / "a.json"), "--out", str(tmp_path / "c.html")])
    assert r.exit_code == 1, r.output


def test_report_from_refuses_what_is_not_records(tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}')
    r = CliRunner().invoke(app, ["report", "--from", str(bad), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 2 and "notes.json" in r.output and "score records" in r.output
    r = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 2 and "--from" in r.output
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("model", ["dcgan", "fcgan", "pixelcnn"])
def test_sample_without_a_run_uses_the_shipped_bundle(tmp_path, monkeypatch, model):
    from detectors.bundle import DEFAULT_BUNDLE

    if not (DEFAULT_BUNDLE / "manifest.json").is_file():
        pytest.skip("no shipped bundle")
    monkeypatch.chdir(tmp_path)  # no runs/ folder here
    n = 4 if model == "pixelcnn" else 16
    r = CliRunner().invoke(app, ["sample", "-m", model, "-n", str(n), "--out", "grid.png"])
    assert r.exit_code == 0, r.output
    assert "shipped bundle" in " ".join(r.output.split())
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.std() > 10  # drawn digits, not a blank page


def test_sample_into_a_folder_writes_one_scorable_png_per_sample(tmp_path, monkeypatch):
    from detectors.bundle import DEFAULT_BUNDLE

    if not (DEFAULT_BUNDLE / "manifest.json").is_file():
        pytest.skip("no shipped bundle")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["sample", "-m", "pixelcnn", "-n", "3", "--digit", "4", "--out", "fours/"])
    assert r.exit_code == 0, r.output
    files = sorted(p.name for p in (tmp_path / "fours").iterdir())
    assert files == ["sample_0000_digit4.png", "sample_0001_digit4.png", "sample_0002_digit4.png"]
    assert Image.open(tmp_path / "fours" / files[0]).size == (28, 28)
    (tmp_path / "gans").mkdir()  # an existing folder needs no trailing slash
    r = CliRunner().invoke(app, ["sample", "-m", "dcgan", "-n", "12", "--out", "gans"])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "gans").iterdir())
    assert len(names) == 12 and names[0] == "sample_0000.png"  # an unconditional GAN: no digit to name
    r = CliRunner().invoke(app, ["score", "gans", "--no-stability", "--format", "csv", "--output", "s.csv"])
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 13


def test_interpolate_and_sample_say_what_the_bundle_lacks(tmp_path, monkeypatch):
    from detectors.bundle import DEFAULT_BUNDLE

    if not (DEFAULT_BUNDLE / "manifest.json").is_file():
        pytest.skip("no shipped bundle")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["interpolate", "-m", "fcgan", "--steps", "4", "--rows", "1", "--out", "w.png"])
    assert r.exit_code == 0 and (tmp_path / "w.png").is_file(), r.output
    r = CliRunner().invoke(app, ["sample", "-m", "pixelcnn-bin", "-n", "2"])
    assert r.exit_code == 3 and "train-generators -m pixelcnn-bin" in " ".join(r.output.split())


def test_help_and_usage_errors_do_not_import_torch():
    code = ("import sys\nfrom forensics.cli import app\n"
            "for argv in (['--help'], ['score', 'x', '--format', 'bogus'], ['sample', '-n', '0']):\n"
            "    try:\n        app(argv, prog_name='forensics')\n"
            "    except SystemExit as e:\n        print(argv[0], e.code)\n"
            "print('torch loaded:', 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    assert "--help 0" in out and "score 2" in out and "sample 2" in out, out
    assert "torch loaded: False" in out, out


def test_train_reader_writes_a_reader_that_loads(tmp_path, monkeypatch):
    import os

    if not os.environ.get("FORENSICS_DATA"):
        pytest.skip("set FORENSICS_DATA to the MNIST folder")
    from detectors.reader import load_reader, read_digits

    out = tmp_path / "reader"
    argv = ["train-reader", "--out", str(out), "--epochs", "1", "--train-limit", "512"]
    monkeypatch.setattr(sys, "argv", ["forensics", *argv])  # the command is recorded as a shell passed it
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == " ".join(["forensics", *argv])
    assert manifest["data"]["train_split"] == "train (512)" and 0.0 <= manifest["scan_test_accuracy"] <= 1.0
    digits, p = read_digits(load_reader(out), np.zeros((2, 28, 28), np.uint8))
    assert digits.shape == (2,) and np.all((p > 0) & (p <= 1))
