"""Reports from synthetic score records: no models needed (one optional end-to-end test).

The browser tests open the HTML in Debian's headless Chromium (/usr/bin/chromium) and skip
when it is not installed.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from rich.console import Console
from typer.testing import CliRunner

from detectors.signals import ALL_SIGNALS
from reports import DOCUMENT_COLUMNS, SCHEMA_VERSION, Grouping, document_verdict, report_meta, write_reports
from reports.html import CSP, SCRIPT, SCRIPT_HASH, render_html, write_html
from detectors.bundle import Thresholds, describe_bundle
from reports.records import Tally, UNMATCHED_LABEL, scope_text
from reports.write import documents_csv_path
from reports.writers import csv_columns, flat_row

CSV_COLUMNS = csv_columns(ALL_SIGNALS)
from reports.terminal import print_report

HOSTILE = "<script>alert(1)</script>.png"  # a record's file string (the '/' makes it a path)
HOSTILE_FILE = '"><img src=x onerror=alert(2)>.png'  # a real file name on disk


# --------------------------------------------------------------------------- synthetic records


def _verdict(p: float) -> str:
    return "machine" if p >= 0.8 else "human" if p <= 0.2 else "uncertain"


def make_record(file: str, p: float, seed: int = 0, verdict: str | None = None, stable: bool | None = True) -> dict:
    rng = np.random.default_rng(seed)
    frame = np.zeros((28, 28), np.uint8)
    frame[6:22, 12:16] = 255
    heat = (frame / 255.0) * rng.gamma(2.0, 0.8, (28, 28)) + rng.gamma(1.0, 0.05, (28, 28))
    return {
        "file": file, "status": "ok", "error": None, "verdict": verdict or _verdict(p),
        "p_machine": p, "p_machine_min": max(0.0, p - 0.05), "p_machine_max": min(1.0, p + 0.05), "stable": stable,
        "rescanned": None if stable is None else True,
        "digit": int(rng.integers(0, 10)),
        "signals": {n: {"value": float(rng.normal()), "human_percentile": float(rng.uniform(0, 100))} for n in ALL_SIGNALS},
        "top_signals": [ALL_SIGNALS[0], ALL_SIGNALS[2]],
        "heatmap": np.round(heat, 4).tolist(), "preprocessed": frame.tolist(),
    }


def error_record(file: str, reason: str) -> dict:
    rec = {k: None for k in ("verdict", "p_machine", "p_machine_min", "p_machine_max", "stable", "rescanned", "digit", "signals",
                             "top_signals", "heatmap", "preprocessed")}
    rec.update(file=file, status="error", error=reason)
    return rec


def write_scan(path: Path, digit: int = 7) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("L", (60, 80), 255)
    ImageDraw.Draw(img).text((20, 25), str(digit), fill=0)
    img.save(path)
    return str(path)


@pytest.fixture
def batch(tmp_path) -> list[dict]:
    """Two forms (folders), one hostile file name, one failed input, one missing file."""
    a, b = tmp_path / "form_a", tmp_path / "form_b"
    return [
        make_record(write_scan(a / "box1.png", 1), 0.10, seed=1),
        make_record(write_scan(a / "box2.png", 2), 0.95, seed=2),
        make_record(write_scan(a / HOSTILE_FILE, 3), 0.55, seed=3, stable=False),
        make_record(str(b / HOSTILE), 0.85, seed=4),  # no such file: a placeholder thumbnail
        make_record(write_scan(b / "box5.png", 5), 0.05, seed=5),
        error_record(str(b / "broken.png"), "not an image (or not a supported image format)"),
        make_record(write_scan(tmp_path / "form_c" / "box7.png", 7), 0.15, seed=7),
    ]


def rows_in_order(html_text: str) -> list[float]:
    return [float(p) for p in re.findall(r'<tr class="rec"[^>]*?data-p="([^"]*)"', html_text)]


# --------------------------------------------------------------------------- unit


def test_table_sorted_by_suspicion_and_failed_listed_apart(batch):
    page = render_html(batch, report_meta(command="test"))
    ps = rows_in_order(page)
    assert ps == sorted(ps, reverse=True) and len(ps) == 6
    assert 'id="failed-table"' in page and "not an image (or not a supported image format)" in page
    assert page.count('class="failed-row"') == 1


def test_summary_counts(batch, tmp_path):
    summary = write_reports(iter(batch), report_meta(command="test"), html=tmp_path / "r.html")
    assert {k: summary[k] for k in ("inputs", "machine", "uncertain", "human", "failed")} == \
        {"inputs": 7, "machine": 2, "uncertain": 1, "human": 3, "failed": 1}
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    cards = dict(re.findall(r'data-count="([a-z_]+)"><div class="n">(\d+)<', page))
    assert cards["inputs"] == "7" and cards["machine"] == "2" and cards["failed"] == "1"
    assert cards["documents"] == "4"  # form_a, form_b, form_c and HOSTILE's "<script>alert(1)<" folder


def test_document_rule():
    assert document_verdict(machine=1, uncertain=3, failed=2) == "machine"
    assert document_verdict(machine=0, uncertain=1, failed=0) == "uncertain"
    assert document_verdict(machine=0, uncertain=0, failed=1) == "uncertain"
    assert document_verdict(machine=0, uncertain=0, failed=0) == "human"


def test_grouping_by_folder(batch, tmp_path):
    tally = Tally(Grouping.parse("auto"))
    for rec in batch:
        tally.add(rec)
    docs = {Path(d.document).name: d for d in tally.sorted_documents()}
    assert set(docs) == {"form_a", "form_b", "form_c", "<script>alert(1)<"}  # HOSTILE's '/' makes a folder
    assert docs["form_a"].verdict == "machine" and docs["form_a"].characters == 3
    assert docs["form_b"].verdict == "uncertain" and docs["form_b"].failed == 1 and docs["form_b"].human == 1
    assert docs["form_c"].verdict == "human"
    assert [d.verdict for d in tally.sorted_documents()][-1] == "human"  # most suspicious first
    assert tally.show_documents
    # one folder only: auto keeps the data but hides the table; "folder" shows it
    single = [make_record(str(tmp_path / "f" / f"{i}.png"), 0.1) for i in range(3)]
    for mode, shown in (("auto", False), ("folder", True), ("none", False)):
        t = Tally(Grouping.parse(mode))
        for rec in single:
            t.add(rec)
        assert t.show_documents is shown
        assert len(t.documents) == (0 if mode == "none" else 1)


def test_grouping_by_regex():
    g = Grouping.parse(r"^(F\d+)_")
    recs = [make_record("x/F1_a.png", 0.1), make_record("y/F1_b.png", 0.5), make_record("F2_a.png", 0.05),
            error_record("z/F2_b.png", "damaged"), make_record("loose.png", 0.9)]
    tally = Tally(g)
    docs = [tally.add(r) for r in recs]
    assert docs == ["F1", "F1", "F2", "F2", None]
    by = {d.document: d for d in tally.sorted_documents()}
    assert by["F1"].verdict == "uncertain" and by["F2"].verdict == "uncertain" and by[None].verdict == "machine"
    assert by[None].label == UNMATCHED_LABEL
    assert Grouping.parse(r"F\d+").document_of("a/F12_x.png") == "F12"  # no group: the whole match
    with pytest.raises(ValueError):
        Grouping.parse("(unclosed")


def test_csv_columns_stable_and_parseable(batch, tmp_path):
    out = tmp_path / "r.csv"
    write_reports(iter(batch), report_meta(command="test", signals=ALL_SIGNALS), csv=out)
    expected_start = ["file", "document", "status", "error", "verdict", "p_machine", "p_machine_min", "p_machine_max",
                      "stable", "rescanned", "digit", "top_signals"]
    assert list(CSV_COLUMNS[:12]) == expected_start
    page_columns = ["page", "field", "index", "box_left", "box_top", "box_right", "box_bottom", "boxes_on_page",
                    "empty_on_page", "prior", "likelihood_ratio", "log10_lr", "lr_verbal"]
    assert list(CSV_COLUMNS[12:25]) == page_columns
    assert list(CSV_COLUMNS[25:28]) == ["reason", "unfamiliar", "familiarity_logit"]
    assert list(CSV_COLUMNS[28:]) == [c for n in ALL_SIGNALS for c in (n, f"{n}_human_percentile")]
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert list(rows[0].keys()) == list(CSV_COLUMNS)
    assert len(rows) == len(batch) and [r["file"] for r in rows] == [b["file"] for b in batch]  # input order
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(0.0 <= float(r["p_machine"]) <= 1.0 for r in ok)
    assert all(float(r[f"{n}_human_percentile"]) >= 0 for r in ok for n in ALL_SIGNALS)
    failed = [r for r in rows if r["status"] == "error"]
    assert len(failed) == 1 and failed[0]["error"] and failed[0]["p_machine"] == "" and failed[0]["verdict"] == ""
    assert {r["stable"] for r in ok} == {"true", "false"}
    docs = list(csv.DictReader(documents_csv_path(out).open(encoding="utf-8", newline="")))
    assert list(docs[0].keys()) == list(DOCUMENT_COLUMNS) and len(docs) == 4
    # spreadsheet formula injection: a name starting with '=' is shown, not run
    assert flat_row(make_record("=HYPERLINK(1).png", 0.5), ALL_SIGNALS)["file"] == "'=HYPERLINK(1).png"


def test_json_schema(batch, tmp_path):
    out = tmp_path / "r.json"
    write_reports(iter(batch), report_meta(command="test", thresholds={"t_machine": 0.8, "t_human": 0.2}), json=out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION and data["kind"] == "forensics/report"
    assert len(data["records"]) == len(batch)
    assert [r["file"] for r in data["records"]] == [b["file"] for b in batch]
    assert sum(r["status"] == "error" for r in data["records"]) == 1
    assert all("document" in r for r in data["records"])
    assert data["summary"]["inputs"] == 7 and data["summary"]["failed"] == 1
    assert [d["verdict"] for d in data["documents"]] == ["machine", "machine", "uncertain", "human"]
    assert [d["p_machine_max"] for d in data["documents"]] == [0.95, 0.85, 0.05, 0.15]
    assert data["meta"]["command"] == "test" and data["meta"]["thresholds"] == {"t_machine": 0.8, "t_human": 0.2}
    assert len(data["records"][0]["heatmap"]) == 28


def test_hostile_names_escaped_and_no_network(batch):
    page = render_html(batch, report_meta(command=f"forensics report '{HOSTILE}' --out r.html"))
    assert "<script>alert" not in page and "<img src=x" not in page and "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in page
    assert '&quot;&gt;&lt;img src=x onerror=alert(2)&gt;.png' in page
    assert page.count("<script") == 2  # the JSON data block and our own script, nothing else
    data_block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in data_block and ">" not in data_block and "&" not in data_block
    assert json.loads(data_block)["meta"]["command"].endswith("--out r.html")
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert "default-src 'none'" in CSP and "img-src data:" in CSP and SCRIPT_HASH in CSP
    assert page.index("Content-Security-Policy") < page.index("<style>")
    assert f"<script>{SCRIPT}</script>" in page  # the hash covers exactly this text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not re.search(r"""url\(\s*["']?(?:https?:)?//""", page, re.I) and "@import" not in page
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'\ssrc="([^"]*)"', page))


def test_missing_scan_gets_placeholder_and_odd_names_render(tmp_path):
    recs = [make_record(str(tmp_path / "gone.png"), 0.5), make_record(str(tmp_path / "bad\udcffname.png"), 0.6),
            make_record(str(tmp_path / "=cmd|' /C calc'!A0.png"), 0.4)]
    page = render_html(recs, report_meta(command="test"))
    assert page.count("no preview") == 3
    page.encode("utf-8")  # lone surrogates from undecodable names are escaped, not fatal
    write_reports(iter(recs), report_meta(command="test"), csv=tmp_path / "r.csv", json=tmp_path / "r.json")
    rows = list(csv.DictReader((tmp_path / "r.csv").open(encoding="utf-8", newline="")))
    assert len(rows) == 3


def test_outputs_atomic_on_interrupt(batch, tmp_path):
    (tmp_path / "r.html").write_text("old report", encoding="utf-8")

    def interrupted():
        yield batch[0]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_reports(interrupted(), report_meta(command="test"), html=tmp_path / "r.html", csv=tmp_path / "r.csv",
                      json=tmp_path / "r.json")
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == "old report"
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "r.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_html_matches_render(batch, tmp_path):
    meta = report_meta(command="test")
    write_html(batch, meta, tmp_path / "a.html")
    assert (tmp_path / "a.html").read_text(encoding="utf-8") == render_html(batch, meta)


def test_html_without_heatmaps_has_no_surprise_column(batch):
    meta = report_meta(command="test")
    assert "<th>Surprise</th>" in render_html(batch, meta) and "surprise heatmap" in render_html(batch, meta)
    plain = [{**r, "heatmap": None} for r in batch]  # scored with the combiner's signals only
    page = render_html(plain, meta)
    assert "<th>Surprise</th>" not in page and "surprise heatmap" not in page
    assert "td.heatcell{display:none}" in page


def test_terminal_report(batch):
    console = Console(record=True, width=160, color_system=None)
    recs = batch + [make_record("evil\x1b[2J\x1b]0;pwned\x07.png", 0.99)]
    summary = print_report(iter(recs), console, top=3, meta=report_meta(command="test"))
    text = console.export_text()
    assert summary["inputs"] == 8 and "8 inputs" in text and "2 failed" not in text and "1 failed" in text
    assert "3 most suspicious" in text and "0.990" in text and "0.950" in text and "0.850" in text
    assert "0.550" not in text  # only the top 3
    assert "\x1b" not in text and "\\x1b[2J" in text  # escapes shown, not run
    assert "broken.png" in text  # failures listed


def _bundle_with_metrics(metrics: dict):
    class Bundle:
        path = "bundle"
        manifest = {"created": "2025-01-01T00:00:00Z", "files": {"combiner.json": {"sha256": "ab" * 32}},
                    "metrics": metrics}
    return Bundle()


def test_reports_say_what_the_bundle_can_show_from_its_own_metrics(batch):
    caught = {"font": {"tpr_at_1pct_fpr": 0.95}, "dcgan": {"tpr_at_1pct_fpr": 0.514},
              "all_generators": {"tpr_at_1pct_fpr": 0.01}, "<b>x</b>": {"tpr_at_1pct_fpr": 0.7}}
    left_out = {"dcgan": {"tpr_at_1pct_fpr": 0.123}, "font": {"tpr_at_1pct_fpr": 0.02}}
    meta = report_meta(describe_bundle(_bundle_with_metrics({"heldout_ensemble": caught, "leave_one_generator_out": left_out})),
                       command="test")
    assert meta["bundle"]["caught_at_1pct_fpr"] == {"font": 0.95, "dcgan": 0.514, "<b>x</b>": 0.7}
    text = scope_text(meta["bundle"])
    # Known sources in a fixed order, unknown ones after; the pooled row is not a source.
    assert text.startswith("Calibrated against DCGAN, font forgeries and <b>x</b>:"), text
    assert "it flags 51-95% of each" in text and "left out of calibration was flagged 2-12% of the time" in text
    page = render_html(batch, meta)
    assert "What it can show" in page and "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    console = Console(record=True, width=400, color_system=None)
    print_report(iter(batch), console, meta=meta)
    assert "flagged 2-12% of the time" in console.export_text()

    only_known = scope_text(report_meta(describe_bundle(_bundle_with_metrics({"heldout_ensemble": caught})))["bundle"])
    assert "51-95%" in only_known and "left out" not in only_known
    bare = report_meta(describe_bundle(_bundle_with_metrics({})), command="test")
    assert scope_text(bare["bundle"]) is None and "What it can show" not in render_html(batch, bare)


def test_the_shipped_bundle_states_its_reach():
    from detectors.bundle import DEFAULT_BUNDLE, FORGER_NAMES, load_bundle

    if not (DEFAULT_BUNDLE / "manifest.json").is_file():
        pytest.skip("no shipped bundle")
    info = describe_bundle(load_bundle())
    forgers = [f for f in FORGER_NAMES if f in info["caught_at_1pct_fpr"]]  # the VAE and diffusion model, if calibrated on
    assert set(info["caught_at_1pct_fpr"]) == set(info["caught_when_left_out"]) == {"pixelcnn", "dcgan", "fcgan", *forgers, "font"}
    assert all(info["caught_at_1pct_fpr"][s] > info["caught_when_left_out"][s] for s in info["caught_at_1pct_fpr"])
    names = ", ".join(["PixelCNN", "DCGAN", "FC-GAN", *({"vae": "VAE", "diffusion": "diffusion"}[f] for f in forgers)])
    assert f"{names} and font forgeries" in scope_text(info)


# --------------------------------------------------------------------------- CLI wiring (fake bundle, fake scoring)


def test_cli_report_writes_everything(batch, tmp_path, monkeypatch):
    import detectors.bundle
    import detectors.engine
    from forensics.inputs import expand_inputs
    from forensics.cli import app

    class FakeBundle:
        path = tmp_path / "bundle"
        manifest = {"created": "2025-01-01T00:00:00Z", "manifest_version": 1,
                    "files": {"combiner.json": {"sha256": "0123456789abcdef" * 4}}}
        thresholds = Thresholds(t_machine=0.95, t_human=0.1)  # a fitted pair; the command line overrides one

        def page_model_meta(self):
            return None

        class combiner:
            signals = list(ALL_SIGNALS)

    seen = {}

    def fake_score_items(items, bundle, **kw):
        seen.update(items=items, kw=kw)
        yield from batch

    monkeypatch.setattr(detectors.bundle, "load_bundle", lambda path=None, device="cpu": FakeBundle())
    monkeypatch.setattr(detectors.engine, "score_items", fake_score_items)
    out = tmp_path / "out"
    argv = ["report", str(tmp_path), "--out", str(out / "r.html"), "--csv", str(out / "r.csv"),
            "--json", str(out / "r.json"), "--t-machine", "0.9", "--top", "2"]
    # The recorded command comes from sys.argv, which CliRunner does not set; set it as a shell would.
    monkeypatch.setattr(sys, "argv", ["/usr/bin/forensics", *argv])
    expected_items = expand_inputs([str(tmp_path)])  # what the command is to score (before it writes there)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1, result.output  # one input failed
    assert seen["items"] == expected_items and seen["kw"]["thresholds"] == Thresholds(0.9, 0.1)
    for name in ("r.html", "r.csv", "r.documents.csv", "r.json"):
        assert (out / name).is_file()
    data = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert data["meta"]["bundle"]["id"] == "0123456789ab" and data["meta"]["thresholds"]["t_machine"] == 0.9
    assert data["meta"]["command"] == shlex.join(["forensics", *argv])


def test_cli_report_usage_errors(tmp_path):
    from forensics.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r.html"), "--group-by", "(bad"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r.html"), "--models", str(tmp_path / "none")])
    assert r.exit_code == 3 and not (tmp_path / "r.html").exists()


# --------------------------------------------------------------------------- headless Chromium


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium): "
                                                              "browser tests skipped")


def chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-default-apps", "--disable-extensions", f"--user-data-dir={profile}",
           "--virtual-time-budget=2000", "--enable-logging=stderr", "--v=0", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


@pytest.fixture
def browser_report(batch, tmp_path) -> Path:
    path = tmp_path / "out" / "report.html"
    write_reports(iter(batch), report_meta(command=f"forensics report {HOSTILE}"), html=path)
    return path


def visible_rows(dom: str) -> list[tuple[str, float, bool]]:
    rows = re.findall(r'<tr class="rec"([^>]*)>', dom)
    out = []
    for attrs in rows:
        verdict = re.search(r'data-verdict="([^"]*)"', attrs).group(1)
        p = float(re.search(r'data-p="([^"]*)"', attrs).group(1))
        out.append((verdict, p, 'data-shown="1"' in attrs and "hidden" not in attrs))
    return out


@needs_chromium
def test_browser_renders_sorts_filters(browser_report, tmp_path):
    url = browser_report.as_uri()
    shot = tmp_path / "report.png"
    r = chromium(tmp_path, url, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.is_file() and shot.stat().st_size > 10_000, r.stderr[-2000:]
    with Image.open(shot) as img:
        assert img.size == (1280, 2000) and len(np.unique(np.asarray(img.convert("L")))) > 10

    r = chromium(tmp_path, url, "--dump-dom")
    dom = r.stdout
    assert 'data-ready="1"' in dom, "the page script did not run (CSP hash?)\n" + r.stderr[-3000:]
    rows = visible_rows(dom)
    assert len(rows) == 6 and all(shown for _, _, shown in rows)
    assert [p for _, p, _ in rows] == sorted((p for _, p, _ in rows), reverse=True)
    # the hostile names are text, not markup: no injected element, no alert
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in dom and "<script>alert" not in dom
    assert not re.search(r"<img[^>]*onerror", dom) and "onerror=alert(2)&gt;" in dom
    assert len(re.findall(r"<script[\s>]", dom)) == 2
    for bad in ("Refused to", "Uncaught", "Content Security Policy"):
        assert bad not in r.stderr, r.stderr[-3000:]
    assert not re.search(r"https?://(?!localhost)", "\n".join(l for l in r.stderr.splitlines() if "CONSOLE" in l))

    dom = chromium(tmp_path, url + "#filter=machine", "--dump-dom").stdout
    rows = visible_rows(dom)
    assert 'data-filter="machine"' in dom
    assert sorted(p for v, p, shown in rows if shown) == [0.85, 0.95]
    assert all(v == "machine" for v, _, shown in rows if shown) and sum(not s for _, _, s in rows) == 4

    dom = chromium(tmp_path, url + "#filter=all&sort=p_machine-asc", "--dump-dom").stdout
    ps = [p for _, p, _ in visible_rows(dom)]
    assert ps == sorted(ps) and 'data-sort="p_machine-asc"' in dom

    dom = chromium(tmp_path, url + "#sort=file-asc&filter=human", "--dump-dom").stdout
    assert 'data-shown="3"' in dom.split("<body", 1)[1].split(">", 1)[0]


@needs_chromium
def test_browser_enforces_csp(browser_report, tmp_path):
    """Were escaping ever to fail, the CSP still blocks an injected inline script and any fetch."""
    page = browser_report.read_text(encoding="utf-8")
    injected = ('<script>document.body.setAttribute("data-pwned", "1")</script>'
                '<img src="http://127.0.0.1:9/x.png"><link rel="stylesheet" href="http://127.0.0.1:9/x.css">')
    tampered = tmp_path / "tampered.html"
    tampered.write_text(page.replace("</main>", injected + "</main>", 1), encoding="utf-8")
    r = chromium(tmp_path, tampered.as_uri(), "--dump-dom")
    assert 'data-ready="1"' in r.stdout  # our own script (allowed by its hash) still runs
    assert "data-pwned" not in r.stdout.split("<body", 1)[1].split(">", 1)[0]
    assert "Content Security Policy" in r.stderr  # the browser reports what it refused


# --------------------------------------------------------------------------- optional end to end


def _bundle_path() -> Path | None:
    from detectors.bundle import DEFAULT_BUNDLE

    for p in (os.environ.get("FORENSICS_BUNDLE"), DEFAULT_BUNDLE):
        if p and (Path(p) / "manifest.json").is_file():
            return Path(p)
    return None


def test_end_to_end_with_bundle(tmp_path):
    bundle = _bundle_path()
    if bundle is None:
        pytest.skip("no detector bundle (set FORENSICS_BUNDLE or build detectors/bundle)")
    from forensics.cli import app

    for i, d in enumerate((3, 5)):
        write_scan(tmp_path / "scans" / "form1" / f"box{i}.png", d)
    (tmp_path / "scans" / "form1" / "junk.png").write_bytes(b"not a png")
    out = tmp_path / "r.html"
    r = CliRunner().invoke(app, ["report", str(tmp_path / "scans"), "--out", str(out), "--models", str(bundle),
                                 "--json", str(tmp_path / "r.json"), "--no-stability"])
    assert r.exit_code == 1, r.output
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["summary"]["inputs"] == 3 and data["summary"]["failed"] == 1
    assert out.read_text(encoding="utf-8").count('<tr class="rec"') == 2
