"""A page's evidence: one likelihood ratio for all of a page's characters, and the page verdict.

A form is written by one filer or made by one forger, so its characters are evidence together.
Multiplying their likelihood ratios (as if independent) overstates it: an honest page that came
through one unusual capture has every box pushed the same way. Calling a page machine when any
box is machine accuses honest pages more often the more boxes they hold. Instead the page model
(fitted by detectors.page_calibration on forms of the calibration's human pool and of every
forger family, written to a bundle's page_evidence.json) maps the mean of the boxes' natural-log
LRs m and their number K to a page LR

    LR_page = mean over families f of exp(a_f m + c_f m ln K + b_f + d_f ln K)

each family's term a logistic fit of human forms against that family's forms: "machine" is "one
of the known forger families, equally likely". Its verdict threshold holds the share of honest
calibration forms called machine within a budget for every capture condition and size.

Pure arithmetic on numbers the records carry, so reports can apply it to records read back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

PAGE_EVIDENCE_FILE = "page_evidence.json"
PAGE_EVIDENCE_FORMAT = "forensics-page-evidence-v1"
LN10 = math.log(10.0)

REASON_PAGE = "the page's boxes together look machine-made"
REASON_ONE_BOX = "a box looks machine-made; the page's evidence does not reach machine"


@dataclass(frozen=True)
class PageModel:
    families: dict  # family -> (a, c, b, d)
    t_page: float  # page verdict machine if the page posterior (at the prior) >= t_page
    k_max: int  # the largest page size fitted: larger pages are evaluated as this size
    info: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def log_lr(self, log_lrs: Iterable[float]) -> Optional[float]:
        """The page's natural-log LR from its characters' natural-log LRs (None for no character)."""
        values = [float(v) for v in log_lrs]
        if not values:
            return None
        m = sum(values) / len(values)
        ln_k = math.log(min(len(values), self.k_max))
        z = [a * m + c * m * ln_k + b + d * ln_k for a, c, b, d in self.families.values()]
        top = max(z)
        return top + math.log(sum(math.exp(v - top) for v in z) / len(z))

    def to_dict(self) -> dict:
        return {"format": PAGE_EVIDENCE_FORMAT, "t_page": self.t_page, "k_max": self.k_max,
                "families": {f: list(v) for f, v in self.families.items()}, "info": self.info}

    @classmethod
    def from_dict(cls, d: Any, source: str = PAGE_EVIDENCE_FILE) -> "PageModel":
        """ValueError naming ``source`` if ``d`` is not a valid page model."""
        try:
            if d.get("format") != PAGE_EVIDENCE_FORMAT:
                raise ValueError(f"format {d.get('format')!r}, expected {PAGE_EVIDENCE_FORMAT!r}")
            families = {str(f): tuple(float(x) for x in v) for f, v in d["families"].items()}
            t_page, k_max = float(d["t_page"]), int(d["k_max"])
            if not families or any(len(v) != 4 or not all(map(math.isfinite, v)) for v in families.values()):
                raise ValueError("each family needs four finite coefficients")
            if not 0.0 < t_page <= 1.0 or k_max < 1:
                raise ValueError(f"need 0 < t_page <= 1 and k_max >= 1, got {t_page}, {k_max}")
            return cls(families, t_page, k_max, dict(d.get("info") or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{source}: not a valid page evidence model ({type(exc).__name__}: {exc})") from None


def posterior(log_lr: float, prior: float) -> float:
    z = log_lr + math.log(prior / (1.0 - prior))
    return 1.0 / (1.0 + math.exp(-max(min(z, 500.0), -500.0)))


@dataclass(frozen=True)
class PageEvidence:
    log10_lr: Optional[float]  # None: no character the page model can use
    p_machine: Optional[float]
    characters: int  # those it used: scored, not unfamiliar


def usable_log_lr(record: dict) -> Optional[float]:
    """The natural-log LR of a record the page model uses: scored and not unfamiliar (an
    unfamiliar character's LR is about novelty, which is never evidence of a machine)."""
    v = record.get("log10_lr")
    if record.get("status") != "ok" or record.get("unfamiliar") is True or not isinstance(v, (int, float)):
        return None
    return float(v) * LN10


def page_evidence(model: Optional[PageModel], log_lrs: list[float], prior: float = 0.5) -> Optional[PageEvidence]:
    """The page LR from its usable characters' natural-log LRs (None without a model)."""
    if model is None:
        return None
    z = model.log_lr(log_lrs)
    if z is None:
        return PageEvidence(None, None, 0)
    return PageEvidence(max(min(z / LN10, 300.0), -300.0), posterior(z, prior), len(log_lrs))


def model_from_meta(meta: Optional[dict]) -> Optional[PageModel]:
    """The page model a report's meta carries (ValueError if it is not valid), or None."""
    d = (meta or {}).get("page_model")
    return None if not d else PageModel.from_dict(d, "the records' page model")


def page_verdict(model: Optional[PageModel], log_lrs: list[float], prior: float, machine: int, uncertain: int,
                 failed: int) -> tuple[str, Optional[str], Optional[PageEvidence]]:
    """(verdict, reason, evidence) of a page from its characters' usable natural-log LRs and verdict
    counts. With a page model: machine only on the page's evidence; a machine box on a page whose
    evidence falls short makes the page uncertain (the box keeps its own verdict). Without one
    (older bundles, records without it): any machine box makes the page machine."""
    ev = page_evidence(model, log_lrs, prior)
    if ev is not None and ev.p_machine is not None and ev.p_machine >= model.t_page:
        return "machine", REASON_PAGE, ev
    if machine:
        return ("machine", "a box looks machine-made", ev) if model is None else ("uncertain", REASON_ONE_BOX, ev)
    if uncertain or failed:
        return "uncertain", "a box is uncertain or failed", ev
    return "human", None, ev
