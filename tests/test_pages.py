"""Form pages (issue 22): boxes found on generated pages, empty boxes skipped, pages without
boxes, multi-page TIFF and PDF inputs, and the records' page geometry."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from benchmarks.make_forms import Capture, make_form
from forensics.boxes import find_boxes, skew_angle
from forensics.pages import characters_of, looks_like_page
from forensics.errors import InputError


def _digits(n: int, seed: int = 0) -> np.ndarray:
    """Stand-in digits (rings and bars of varied size) so the geometry tests need no data."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, 28, 28), np.uint8)
    yy, xx = np.mgrid[:28, :28]
    for f in frames:
        if rng.random() < 0.5:
            r = rng.uniform(5, 9)
            f[np.abs(np.hypot(yy - 14, xx - 14) - r) < 1.6] = 255
        else:
            f[4:24, int(rng.integers(11, 15)) : int(rng.integers(16, 18))] = 255  # a "1", rule to rule tall
    return frames


def _iou(a, b) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def page():
    rng = np.random.default_rng(3)
    capture = Capture(dpi=150, skew=1.3, noise=5.0, blur=0.6, jpeg=70)
    return make_form(_digits(200), ["human"] * 200, rng, capture, empty_share=0.25, fields=6)


def test_boxes_are_found_where_they_are_printed_and_empty_ones_are_told_apart(page):
    image, truth = page
    layout = find_boxes(np.asarray(image))
    assert abs(layout.angle + truth["capture"]["skew"]) < 0.15  # turned back by the skew it was given
    assert len(layout.boxes) == len(truth["boxes"])
    for found, true in zip(layout.boxes, truth["boxes"]):
        assert (found.field, found.index) == (true["field"], true["index"])
        assert _iou(found.bbox, true["box"]) >= 0.8
        assert found.filled == true["filled"]
    assert any(not b["filled"] for b in truth["boxes"]) and any(b["filled"] for b in truth["boxes"])


def test_crops_hold_the_character_without_the_box_lines(page):
    image, _ = page
    for box in find_boxes(np.asarray(image)).boxes:
        if box.filled:
            edge = np.concatenate([box.crop[0], box.crop[-1], box.crop[:, 0], box.crop[:, -1]])
            # A box line left in the crop would darken a whole edge.
            assert np.median(edge) > 200 and (edge < 128).mean() < 0.5


def test_skew_angle_reads_the_tilt_either_way():
    img = Image.new("L", (900, 700), 255)
    d = ImageDraw.Draw(img)
    for y in range(100, 650, 60):
        d.rectangle([50, y, 850, y + 1], fill=0)
    for degrees in (-1.7, 0.0, 0.8):
        tilted = np.asarray(img.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=255))
        assert skew_angle(tilted < 128) == pytest.approx(-degrees, abs=0.06)


def test_a_page_without_boxes_gets_one_clear_record(tmp_path):
    img = Image.new("L", (1275, 1650), 255)
    ImageDraw.Draw(img).text((100, 100), "Dear taxpayer, this letter has no boxes.", fill=0)
    path = tmp_path / "letter.png"
    img.save(path)
    assert looks_like_page(path)
    (char,) = characters_of(path)
    assert isinstance(char.frame, InputError) and "no character boxes" in char.frame.reason
    assert char.location["page"] == str(path) and char.location["boxes_on_page"] == 0


def test_two_page_tiff_and_pdf_give_each_page_its_characters(page, tmp_path):
    image, truth = page
    filled = sum(b["filled"] for b in truth["boxes"])
    blank = Image.new("L", image.size, 255)
    tiff, pdf = tmp_path / "forms.tif", tmp_path / "forms.pdf"
    image.save(tiff, save_all=True, append_images=[blank], compression="tiff_deflate")
    image.save(pdf, save_all=True, append_images=[image], resolution=150)
    for path, second in ((tiff, 1), (pdf, filled)):
        chars = characters_of(path)
        pages = [c.location["page"] for c in chars]
        assert pages.count(f"{path}#page=1") == filled
        assert pages.count(f"{path}#page=2") == second
        first = [c for c in chars if c.location["page"] == f"{path}#page=1"]
        assert all(not isinstance(c.frame, InputError) and c.frame.shape == (28, 28) for c in first)
        assert {c.location["boxes_on_page"] for c in first} == {len(truth["boxes"])}
    (blank_page,) = [c for c in characters_of(tiff) if c.location["page"] == f"{tiff}#page=2"]
    assert "no character boxes" in blank_page.frame.reason


def test_pdf_geometry_is_in_the_rendered_pages_pixels(page, tmp_path):
    image, truth = page
    pdf = tmp_path / "one.pdf"
    image.save(pdf, resolution=150)  # rendered at 200 dpi: boxes scale by 4/3
    chars = characters_of(pdf)
    truths = [b for b in truth["boxes"] if b["filled"]]
    assert len(chars) == len(truths)
    for c, t in zip(chars, truths):
        scaled = [v * 200 / 150 for v in t["box"]]
        assert _iou(c.location["box"], scaled) >= 0.7


def test_damaged_pdf_and_forced_character_mode_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    (char,) = characters_of(bad)
    assert isinstance(char.frame, InputError) and str(bad) in char.frame.path and "PDF" in char.frame.reason
    (forced,) = characters_of(bad, pages=False)
    assert "--no-pages" in forced.frame.reason


def test_score_gives_page_records_with_geometry(page, tmp_path, tiny_bundle):
    from detectors.engine import score_paths

    image, truth = page
    path = tmp_path / "form.png"
    image.save(path)
    records = list(score_paths([str(path)], tiny_bundle, stability=False))
    filled = [b for b in truth["boxes"] if b["filled"]]
    assert len(records) == len(filled)
    for rec, t in zip(records, filled):
        assert rec["status"] == "ok" and rec["file"] == str(path) and rec["page"] == str(path)
        assert (rec["field"], rec["index"]) == (t["field"], t["index"]) and len(rec["box"]) == 4
        assert rec["empty_on_page"] == len(truth["boxes"]) - len(filled)
    # --no-pages: the same file is one character (a big one, with boxes in it)
    (single,) = list(score_paths([str(path)], tiny_bundle, stability=False, pages=False))
    assert single["page"] is None and single["status"] == "ok"


def test_report_shows_each_page_with_its_boxes_outlined(page, tmp_path, tiny_bundle):
    import csv

    from detectors.engine import score_paths
    from reports.records import report_meta
    from reports.write import write_reports

    image, truth = page
    path = tmp_path / "<b>form.png"  # a name that must reach the HTML escaped
    image.save(path)
    records = list(score_paths([str(path)], tiny_bundle, stability=False))
    html, table = tmp_path / "r.html", tmp_path / "r.csv"
    write_reports(iter(records), report_meta(command="test"), html=html, csv=table)
    text = html.read_text(encoding="utf-8")
    section = text[text.index('<section id="pages">') : text.index("</section>", text.index('<section id="pages">'))]
    assert section.count("<rect ") == len(records) and "&lt;b&gt;form.png" in section and "<b>form" not in section
    assert f"{truth['boxes'].__len__()} boxes found" in section
    rows = list(csv.DictReader(table.open(encoding="utf-8", newline="")))
    assert [(int(r["field"]), int(r["index"])) for r in rows] == [(rec["field"], rec["index"]) for rec in records]
    assert [int(rows[0][k]) for k in ("box_left", "box_top", "box_right", "box_bottom")] == records[0]["box"]


def test_preprocess_writes_one_frame_per_written_box(page, tmp_path, cli_here):
    image, truth = page
    image.save(tmp_path / "form.png")
    result = cli_here("preprocess", tmp_path / "form.png", "--out", tmp_path / "frames")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "frames").iterdir())
    filled = [b for b in truth["boxes"] if b["filled"]]
    assert written == sorted(f"form_f{b['field']}_b{b['index']}.png" for b in filled)
