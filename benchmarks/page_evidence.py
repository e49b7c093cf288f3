"""Page verdicts on held-out forms: the shipped bundle's page model against the any-box rule.

Forms as detectors.page_calibration builds them (blocks of 20 characters of one source through
one capture, cut into forms of each size), but from data the page model never saw:

- human: MNIST test[5000:] (calibration and the page model draw from test[:5000] only), cut into
  blocks twice, each time in another order and through other captures;
- machine: fresh samples of each forger family the bundle carries and font forgeries, with
  seeds neither calibration nor `calibrate-pages` drew.

Characters are scored as `forensics score` scores them without the re-scan check. Per page size:
the share of honest forms the page model calls machine (all, and the worst capture condition),
against the any-box rule (the document verdict without a page model); the share of each family's
forms called machine both ways; the page LR's Cllr. And altered forms: an honest 10-box form with
one box replaced by a machine character (captured on its own), and how often the page is then
called machine or uncertain, and the altered box machine.

    FORENSICS_DATA=/path/to/data python -m benchmarks.page_evidence           # ~10 min
    FORENSICS_DATA=/path/to/data python -m benchmarks.page_evidence --quick   # small sizes
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.common import log, machine_info, main, write_result

NAME = "page_evidence"
SIZES = (1, 2, 5, 10, 20)
HELD_OUT = slice(5000, 10000)
SEED = 4242  # block orders, captures and sampling seeds far from calibrate-pages' (0)
QUICK_PER_FAMILY = {"diffusion": 40}  # the slow sampler; others 100
ALTERED_K = 10


def _share(flags) -> float | None:
    return round(float(np.mean(flags)), 4) if len(flags) else None


def run(quick: bool, out_dir: Path, seed: int = SEED, data_dir: str | None = None) -> dict:
    from detectors import evidence
    from detectors.bundle import DEFAULT_BUNDLE, describe_bundle, load_bundle
    from detectors.calibrate import metrics
    from detectors.page_calibration import (CONDITIONS, DEFAULT_PER_FAMILY, capture_blocks, forms, machine_frames,
                                            score_blocks)
    from forensics.data import load_dataset

    started = time.perf_counter()
    bundle = load_bundle(DEFAULT_BUNDLE)
    model = bundle.page_model
    if model is None:
        raise SystemExit(f"{DEFAULT_BUNDLE} has no page model: run `forensics calibrate-pages --models {DEFAULT_BUNDLE}`")
    test = load_dataset("mnist", train=False, data_dir=data_dir, download=False).images[HELD_OUT, 0].numpy()
    if quick:
        test = test[:400]
    rng = np.random.default_rng(seed)
    human = [b for p in range(2)
             for b in score_blocks(bundle, capture_blocks(test[rng.permutation(len(test))], seed + 100 + p),
                                   verdicts=True)]
    per_family = {f: QUICK_PER_FAMILY.get(f, 100) for f in DEFAULT_PER_FAMILY} if quick else DEFAULT_PER_FAMILY
    machine = {fam: score_blocks(bundle, capture_blocks(x, seed + 1 + i), verdicts=True)
               for i, (fam, x) in enumerate(machine_frames(bundle, per_family, seed, None).items())}
    log(f"{NAME}: scored {sum(len(b[1]) for b in human)} human characters and "
        + ", ".join(f"{sum(len(b[1]) for b in v)} {k}" for k, v in machine.items()))

    def page_p(f) -> float:
        return evidence.posterior(model.log_lr(f[1]))

    sizes = []
    for k in SIZES:
        hf = forms(human, k)
        h_p = np.array([page_p(f) for f in hf])
        row = {"k": k, "human_forms": len(hf),
               "human_called_machine": {"page_model": _share(h_p >= model.t_page),
                                        "any_box": _share([f[2].any() for f in hf])},
               "worst_condition": max(((c, _share([p >= model.t_page for p, f in zip(h_p, hf) if f[0] == c]))
                                       for c in CONDITIONS if any(f[0] == c for f in hf)), key=lambda t: t[1]),
               "families": {}}
        all_m = []
        for fam, blocks in machine.items():
            mf = forms(blocks, k)
            m_p = np.array([page_p(f) for f in mf])
            all_m.append([model.log_lr(f[1]) for f in mf])
            y = np.r_[np.zeros(len(h_p)), np.ones(len(m_p))]
            auroc = metrics(y, np.r_[h_p, m_p])["auroc"] if len(m_p) else None
            row["families"][fam] = {"forms": len(mf), "page_model": _share(m_p >= model.t_page),
                                    "any_box": _share([f[2].any() for f in mf]),
                                    "auroc": None if auroc is None else round(auroc, 3)}
        lm = np.concatenate([np.array(v) for v in all_m])
        lh = np.array([model.log_lr(f[1]) for f in hf])
        row["cllr_bits"] = round(evidence.cllr(lm, lh), 3)
        sizes.append(row)

    # Altered forms: nine honest boxes and one machine box, captured apart.
    altered = {}
    hf = forms(human, ALTERED_K)
    for i, (fam, blocks) in enumerate(machine.items()):
        chars = [(l, m) for b in blocks for l, m in zip(b[1], b[2])]
        pick = np.random.default_rng(seed + 50 + i).integers(len(chars), size=len(hf))
        verdicts = {"machine": 0, "uncertain": 0, "box_machine": 0}
        for f, j in zip(hf, pick):
            l, m = chars[j]
            lr = np.r_[f[1][1:], l]
            box_machine = bool(m)
            if evidence.posterior(model.log_lr(lr)) >= model.t_page:
                verdicts["machine"] += 1
            elif box_machine or f[2][1:].any():
                verdicts["uncertain"] += 1
            verdicts["box_machine"] += box_machine
        altered[fam] = {k: round(v / len(hf), 4) for k, v in verdicts.items()}

    result = {"name": NAME, "quick": quick, "bundle": describe_bundle(bundle)["version"], "t_page": model.t_page,
              "t_machine": bundle.thresholds.t_machine, "human": "MNIST test[5000:]", "sizes": sizes,
              "altered_forms": {"k": ALTERED_K, "families": altered},
              "seconds": round(time.perf_counter() - started), "machine": machine_info()}
    write_result(out_dir, NAME, result)
    return result


def _pct(v, digits: int = 0) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f}%"


def markdown(result: dict) -> str:
    fams = list(result["sizes"][0]["families"])
    lines = [f"Held-out forms (human: {result['human']}, two cuts; machine: fresh samples), page threshold "
             f"{result['t_page']:.3f}, bundle {result['bundle']}{', quick mode' if result['quick'] else ''}. Called "
             "machine by the page model / by the any-box rule (the document verdict without a page model); "
             f"`python -m benchmarks.page_evidence`, {result['seconds']} s.", "",
             "| boxes | honest forms | honest called machine | worst capture | " + " | ".join(fams) + " | page LR Cllr |",
             "|---:|---:|---:|---|" + "---:|" * len(fams) + "---:|"]
    for r in result["sizes"]:
        h = r["human_called_machine"]
        cells = [f"{_pct(r['families'][f]['page_model'])} / {_pct(r['families'][f]['any_box'])}" for f in fams]
        lines.append(f"| {r['k']} | {r['human_forms']} | **{_pct(h['page_model'], 2)}** / {_pct(h['any_box'], 2)} | "
                     f"{r['worst_condition'][0]} {_pct(r['worst_condition'][1], 2)} | " + " | ".join(cells)
                     + f" | {r['cllr_bits']:.3f} |")
    alt = result["altered_forms"]
    lines += ["", f"Altered forms: {alt['k']} boxes, one of them machine (captured on its own). Page called machine / "
                  "uncertain (for review) / the altered box called machine:", "",
              "| family | page machine | page uncertain | box machine |", "|---|---:|---:|---:|"]
    lines += [f"| {f} | {_pct(v['machine'], 1)} | {_pct(v['uncertain'], 1)} | {_pct(v['box_machine'], 1)} |"
              for f, v in alt["families"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main(run, markdown, __doc__)
