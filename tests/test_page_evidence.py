"""The page model (forensics.page_lr, detectors.page_calibration) and the page verdicts reports
draw from it: arithmetic, validation, fitting on synthetic forms, and the rule in reports."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from forensics.page_lr import (REASON_ONE_BOX, REASON_PAGE, PageModel, page_evidence, page_verdict,
                               usable_log_lr)
from reports import report_meta, write_reports
from reports.records import Grouping, Tally

ONE = PageModel({"x": (1.0, 0.0, 0.0, 0.0)}, 0.9, 20)  # page log LR = the mean


def test_page_lr_is_the_family_average_of_form_lrs():
    assert ONE.log_lr([1.0, 3.0]) == pytest.approx(2.0)
    assert ONE.log_lr([]) is None
    two = PageModel({"a": (1.0, 0.0, 0.0, 0.0), "b": (0.0, 0.0, 0.0, 0.0)}, 0.9, 20)
    assert two.log_lr([2.0]) == pytest.approx(math.log((math.exp(2.0) + 1.0) / 2))
    grows = PageModel({"a": (1.0, 1.0, 0.0, 0.0)}, 0.9, 4)
    assert grows.log_lr([1.0] * 4) == pytest.approx(1 + math.log(4))
    assert grows.log_lr([1.0] * 40) == grows.log_lr([1.0] * 4)  # beyond k_max: as k_max


@pytest.mark.parametrize("bad", [{"format": "other"}, {**ONE.to_dict(), "t_page": 0.0},
                                 {**ONE.to_dict(), "families": {"x": [1.0, float("nan"), 0.0, 0.0]}},
                                 {**ONE.to_dict(), "families": {"x": [1.0]}}, {**ONE.to_dict(), "k_max": None}])
def test_invalid_page_models_are_refused_naming_the_file(bad):
    with pytest.raises(ValueError, match="somewhere.json"):
        PageModel.from_dict(bad, "somewhere.json")
    assert PageModel.from_dict(json.loads(json.dumps(ONE.to_dict()))) == ONE


def test_page_verdicts():
    strong = [5.0] * 10
    weak = [-2.0] * 9 + [6.0]
    assert page_verdict(ONE, strong, 0.5, 0, 3, 0)[:2] == ("machine", REASON_PAGE)
    assert page_verdict(ONE, weak, 0.5, 1, 0, 0)[:2] == ("uncertain", REASON_ONE_BOX)
    assert page_verdict(None, weak, 0.5, 1, 0, 0)[0] == "machine"  # no page model: the any-box rule
    assert page_verdict(ONE, weak, 0.5, 0, 0, 0)[0] == "human"
    assert page_verdict(ONE, weak, 0.5, 0, 0, 1)[0] == "uncertain"
    # The prior moves the page posterior as it moves a character's.
    ev_low, ev_high = page_evidence(ONE, [2.5], 0.05), page_evidence(ONE, [2.5], 0.95)
    assert ev_low.p_machine < 0.9 < ev_high.p_machine and ev_low.log10_lr == ev_high.log10_lr


def test_unfamiliar_and_failed_characters_are_not_page_evidence():
    assert usable_log_lr({"status": "ok", "log10_lr": 1.0}) == pytest.approx(math.log(10))
    assert usable_log_lr({"status": "ok", "log10_lr": 1.0, "unfamiliar": True}) is None
    assert usable_log_lr({"status": "error", "log10_lr": None}) is None


def _blocks(rng, mean, n_blocks, conditions):
    return [(conditions[i % len(conditions)], rng.normal(mean, 1.5, 20)) for i in range(n_blocks)]


def test_fitted_page_model_separates_forms_and_holds_the_honest_budget():
    from detectors.page_calibration import BUDGET, CONDITIONS, SIZES, fit_page_model, forms

    rng = np.random.default_rng(0)
    human = _blocks(rng, -2.0, 400, CONDITIONS)
    machine = {"near": _blocks(rng, 0.5, 100, CONDITIONS), "far": _blocks(rng, 3.0, 100, CONDITIONS)}
    model = fit_page_model(human, machine, t_floor=0.9)
    assert 0.9 <= model.t_page <= 1.0
    assert all(v <= BUDGET for v in model.info["human_forms_called_machine"].values())
    for k in SIZES:  # the fitted LR rises with the evidence, and more so for bigger forms
        assert model.log_lr([1.0] * k) > model.log_lr([-1.0] * k)
    fresh = {"human": _blocks(rng, -2.0, 100, CONDITIONS), "near": _blocks(rng, 0.5, 100, CONDITIONS)}
    p = {s: np.array([1 / (1 + math.exp(-model.log_lr(f[1]))) for f in forms(b, 10)]) for s, b in fresh.items()}
    assert (p["near"] >= model.t_page).mean() > 0.8  # a weak forger at 10 boxes: caught as a page
    assert (p["human"] >= model.t_page).mean() <= 0.02


def _record(file, log10_lr, verdict):
    p = 1 / (1 + 10 ** -log10_lr)
    return {"file": file, "status": "ok", "error": None, "verdict": verdict, "p_machine": p, "log10_lr": log10_lr,
            "unfamiliar": False, "signals": {}, "top_signals": [], "heatmap": None, "preprocessed": None}


def test_reports_apply_the_page_model_to_documents(tmp_path):
    # One honest-looking form with a single machine box, one form whose boxes together look machine.
    records = ([_record(f"honest/{i}.png", -1.0, "human") for i in range(9)] + [_record("honest/9.png", 2.5, "machine")]
               + [_record(f"forged/{i}.png", 1.2, "uncertain") for i in range(10)])
    meta = report_meta(grouping=Grouping.parse("folder"), page_model=ONE.to_dict(), prior=0.5)
    out = tmp_path / "r.csv"
    write_reports(records, meta, csv=out, json=tmp_path / "r.json", html=tmp_path / "r.html")
    docs = {r["document"]: r for r in csv.DictReader(open(tmp_path / "r.documents.csv", encoding="utf-8"))}
    assert docs["honest"]["verdict"] == "uncertain" and docs["honest"]["reason"] == REASON_ONE_BOX
    assert docs["forged"]["verdict"] == "machine" and float(docs["forged"]["page_log10_lr"]) == pytest.approx(1.2)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["meta"]["page_model"]["t_page"] == 0.9
    assert "page LR" in (tmp_path / "r.html").read_text()
    # Without a page model the same records give the any-box rule.
    tally = Tally.of(Grouping.parse("folder"), report_meta(grouping=Grouping.parse("folder")))
    for r in records:
        tally.add(r)
    assert {d.document: d.verdict for d in tally.sorted_documents()} == {"honest": "machine", "forged": "uncertain"}


def test_calibrate_pages_adds_a_verified_page_model_and_a_tampered_one_is_refused(tiny_bundle_dir, tmp_path,
                                                                                 monkeypatch):
    import shutil

    import detectors.page_calibration as pc
    from detectors.bundle import load_bundle
    from forensics.errors import CheckpointError
    from forensics.page_lr import PAGE_EVIDENCE_FILE

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle_dir, copy)
    assert load_bundle(copy).page_model is None  # a bundle without one: the any-box rule
    monkeypatch.setattr(pc, "HUMAN_POOL", slice(0, 200))
    model = pc.calibrate_pages(copy, per_family={f: 40 for f in pc.FAMILIES}, command="test")
    loaded = load_bundle(copy)
    assert loaded.page_model == model and set(model.families) >= {"pixelcnn", "dcgan", "fcgan", "fonts"}
    assert loaded.manifest["page_evidence"]["t_page"] == model.t_page >= loaded.thresholds.t_machine
    text = (copy / PAGE_EVIDENCE_FILE).read_text()
    (copy / PAGE_EVIDENCE_FILE).write_text(text.replace('"t_page": ', '"t_page": 0.5, "was": ', 1))
    with pytest.raises(CheckpointError, match="page_evidence.json: checksum does not match"):
        load_bundle(copy)
