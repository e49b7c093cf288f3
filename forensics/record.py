"""The score record: what scoring gives for one input, and what every report and file shows.

Defined once, here, below both the detectors that fill it and the reports that render it.
A record is a plain dict (JSON-ready), typed as ``Record``:

    file            the input path (None for images scored from memory)
    status          "ok" | "error"
    error           the reason, or None
    verdict         "machine" if p_machine >= t_machine, "human" if <= t_human, else
                    "uncertain"; also "uncertain" when any re-scan would change the verdict
    p_machine       calibrated probability (50/50 prior) that a machine made the character
    p_machine_min, p_machine_max   over the image and its re-scans (= p_machine without stability)
    stable          True if every re-scan gives the same verdict; None when not checked
    digit           the digit the reader (detectors.reader) sees, 0-9
    signals         {name: {"value", "human_percentile"}} for every signal
    top_signals     up to 3 signal names pushing hardest towards the verdict
    heatmap         28x28 per-pixel NLL in nats (the strokes the PixelCNN found unlikely)
    preprocessed    28x28 uint8 frame the models saw

Error records have every key, with None where there is no value. Reports add ``document``.
"""

from __future__ import annotations

from typing import Optional, TypedDict


class SignalValue(TypedDict):
    value: float
    human_percentile: float


class Record(TypedDict):
    file: Optional[str]
    status: str
    error: Optional[str]
    verdict: Optional[str]
    p_machine: Optional[float]
    p_machine_min: Optional[float]
    p_machine_max: Optional[float]
    stable: Optional[bool]
    digit: Optional[int]
    signals: Optional[dict[str, SignalValue]]
    top_signals: Optional[list[str]]
    heatmap: Optional[list[list[float]]]
    preprocessed: Optional[list[list[int]]]


RECORD_KEYS: tuple[str, ...] = tuple(Record.__annotations__)
VERDICTS = ("machine", "uncertain", "human")  # most severe first


def error_record(file: Optional[str], reason: str) -> Record:
    """The record of an input that could not be scored."""
    rec = dict.fromkeys(RECORD_KEYS)
    rec.update(file=file, status="error", error=reason)
    return rec  # type: ignore[return-value]
