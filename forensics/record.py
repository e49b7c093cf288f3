"""The score record: what scoring gives for one input, and what every report and file shows.

Defined once, here, below both the detectors that fill it and the reports that render it.
A record is a plain dict (JSON-ready), typed as ``Record``:

    file            the input path (None for images scored from memory)
    status          "ok" | "error"
    error           the reason, or None
    verdict         "machine" if p_machine >= t_machine, "human" if <= t_human, else
                    "uncertain"; also "uncertain" when any re-scan would change the verdict, and
                    when the input is unfamiliar
    reason          what drove the verdict (REASONS): "looks machine-made", "looks unlike the
                    machine sources", "unfamiliar" (unlike every human and machine source the
                    bundle knows: never called machine on novelty alone), "a re-scan changes
                    it", "between the thresholds"
    unfamiliar      True if the familiarity check found the input unlike everything known;
                    None with a bundle that has no familiarity CNN
    familiarity_logit   that check's logit (unknown > 0); the threshold is in the bundle's
                    familiarity.json
    p_machine       calibrated probability that a machine made the character, at ``prior``
    p_machine_min, p_machine_max   over the image and its re-scans (= p_machine without stability)
    stable          True if every re-scan gives the same verdict; None when not checked
    rescanned       True if the re-scans were scored; False if skipped because none could
                    change the verdict (see Stability); None with stability off
    digit           the digit the reader (detectors.reader) sees, 0-9
    signals         {name: {"value", "human_percentile"}} for every signal computed: the
                    combiner's, or all of them when asked for
    top_signals     up to 3 signal names pushing hardest towards the verdict
    heatmap         28x28 per-pixel NLL in nats (the strokes the PixelCNN found unlikely),
                    when the PixelCNN signals were computed; else None
    preprocessed    28x28 uint8 frame the models saw
    prior           the share of forgeries assumed (``--prior``, default 0.5): p_machine is the
                    posterior at this prior, and verdicts use it
    likelihood_ratio   P(this evidence | machine) / P(this evidence | human), from the model
                    calibrated at 50/50 (detectors.evidence); log10_lr its log10 (capped at
                    +-300); lr_verbal the ENFSI verbal equivalent, e.g. "moderate support for
                    a machine"
    page            for a character found on a form page (forensics.pages): the page, as the
                    file or FILE#page=N for a multi-page file; None for a character scan
    box             [left, top, right, bottom] of its printed box in the page's pixels
                    (right and bottom exclusive)
    field, index    which row of boxes (top to bottom), which box in it (left to right), from 1
    boxes_on_page   character boxes found on its page; empty_on_page: how many were empty
                    (skipped, not scored)

Error records have every key, with None where there is no value. Reports add ``document``.
"""

from __future__ import annotations

from enum import Enum
from typing import Optional, TypedDict


class Stability(str, Enum):
    """Which scans get the re-scan check (detectors.printscan.rescans).

    near: only those whose verdict a re-scan could change: machine or human verdicts closer to
          their threshold than the bundle's measured bound on how far a re-scan moves p_machine
          (in logits); an uncertain verdict stays uncertain whatever a re-scan says
    all:  every scan (also gives p_machine_min / max for every one)
    off:  none
    """

    near = "near"
    all = "all"
    off = "off"

    @classmethod
    def of(cls, value: "Stability | str | bool") -> "Stability":
        """Also takes the library's older booleans: True = near, False = off."""
        if isinstance(value, bool):
            return cls.near if value else cls.off
        return cls(value)


class SignalValue(TypedDict):
    value: float
    human_percentile: float


class Record(TypedDict):
    file: Optional[str]
    status: str
    error: Optional[str]
    verdict: Optional[str]
    reason: Optional[str]
    unfamiliar: Optional[bool]
    familiarity_logit: Optional[float]
    p_machine: Optional[float]
    p_machine_min: Optional[float]
    p_machine_max: Optional[float]
    stable: Optional[bool]
    rescanned: Optional[bool]
    digit: Optional[int]
    signals: Optional[dict[str, SignalValue]]
    top_signals: Optional[list[str]]
    heatmap: Optional[list[list[float]]]
    preprocessed: Optional[list[list[int]]]
    prior: Optional[float]
    likelihood_ratio: Optional[float]
    log10_lr: Optional[float]
    lr_verbal: Optional[str]
    page: Optional[str]
    box: Optional[list[int]]
    field: Optional[int]
    index: Optional[int]
    boxes_on_page: Optional[int]
    empty_on_page: Optional[int]


RECORD_KEYS: tuple[str, ...] = tuple(Record.__annotations__)
LOCATION_KEYS = ("page", "box", "field", "index", "boxes_on_page", "empty_on_page")  # where on a form page
VERDICTS = ("machine", "uncertain", "human")  # most severe first
REASONS = ("looks machine-made", "unfamiliar", "a re-scan changes it", "between the thresholds",
           "looks unlike the machine sources")


def error_record(file: Optional[str], reason: str) -> Record:
    """The record of an input that could not be scored."""
    rec = dict.fromkeys(RECORD_KEYS)
    rec.update(file=file, status="error", error=reason)
    return rec  # type: ignore[return-value]


def character_name(record: dict) -> str:
    """How reports name a record's character: its file, or where on which form page it was found."""
    if record.get("field") is not None and record.get("page"):
        return f"{record['page']} field {record['field']} box {record['index']}"
    return str(record.get("page") or record.get("file") or "")
