"""Records out, and back in: the one place that writes score records as JSON, JSONL and CSV.

`forensics score --format json|jsonl|csv` and `forensics report --csv/--json` both write
through this module, so a record looks the same in every file the tool writes, and every CSV
cell is escaped the same way. ``read_records`` reads any of them back (`report --from`).

CSV columns (``csv_columns(signals)``; one row per input, in input order, failed inputs included)
-------------------------------------------------------------------------------------------
  file            the input path as given (or the argument that matched nothing)
  document        the document id under the grouping in force (empty with ``none`` or
                  when a --group-by pattern does not match)
  status          ok | error
  error           why the input failed (empty when status is ok)
  verdict         machine | human | uncertain (empty for failed inputs)
  p_machine       calibrated probability that a machine made the character
  p_machine_min, p_machine_max   its range over the image and its simulated re-scans
  stable          true if no re-scan changes the verdict; empty when not checked
  rescanned       true if the re-scans were scored, false if skipped (none could change the
                  verdict: see forensics.record.Stability); empty with stability off
  digit           the digit the reader sees, 0-9
  top_signals     up to 3 signal names, ';'-separated, pushing hardest towards the verdict
  page            for a character found on a form page: the page (FILE, or FILE#page=N in a
                  multi-page TIFF or PDF); empty for a character scan
  field, index    its row of boxes on the page and its box in that row, from 1
  box_left, box_top, box_right, box_bottom   its printed box, in the page's pixels
                  (right and bottom exclusive)
  boxes_on_page, empty_on_page   boxes found on its page, and the empty ones (not scored)
  prior           the share of forgeries p_machine assumes (--prior)
  likelihood_ratio, log10_lr, lr_verbal   the evidence as a likelihood ratio, machine over
                  human, its log10 and its ENFSI verbal equivalent (detectors.evidence)
  reason          what drove the verdict: looks machine-made | unfamiliar | a re-scan changes
                  it | between the thresholds | looks unlike the machine sources
  unfamiliar, familiarity_logit   whether the input is unlike everything the bundle knows
                  (then the verdict is uncertain), and that check's logit; empty without one
  <signal>        the raw value of each signal, in the order given
  <signal>_human_percentile   share (0..100) of human calibration images below that value

Numbers are written with Python's repr (full precision); booleans as ``true``/``false``;
missing values as empty cells. Text cells that start with ``= + - @``, a tab or a carriage
return, and are not numbers, get a leading ``'`` (OWASP's advice against CSV injection,
CWE-1236): file names come from whoever filled in the form, and a name such as
``=HYPERLINK("http://x","y").png`` would otherwise run as a formula in a spreadsheet. JSON
keeps the exact strings.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import IO, Any, Iterable, Optional, Sequence

from forensics.errors import InputError

# The first twelve columns are those of every earlier version (scripts index them); the form
# page columns came after them.
RECORD_START = ("file", "document", "status", "error", "verdict", "p_machine", "p_machine_min", "p_machine_max",
                "stable", "rescanned", "digit", "top_signals",
                "page", "field", "index", "box_left", "box_top", "box_right", "box_bottom", "boxes_on_page",
                "empty_on_page", "prior", "likelihood_ratio", "log10_lr", "lr_verbal", "reason", "unfamiliar",
                "familiarity_logit")
DOCUMENT_COLUMNS: tuple[str, ...] = (
    "document", "verdict", "reason", "characters", "machine", "uncertain", "human", "failed", "page_log10_lr",
    "page_p_machine", "p_machine_max", "most_suspicious_file",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMATS = ("json", "jsonl", "csv")


# --------------------------------------------------------------------------- cells


def clean_text(value: Any) -> str:
    """``str(value)`` that can always be encoded as UTF-8.

    File names that are not valid UTF-8 reach Python as lone surrogates
    (``os.fsdecode``); they are shown as ``\\udcXX`` escapes instead of failing the write.
    """
    text = "" if value is None else str(value)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def csv_text(value: Any) -> str:
    """A text cell a spreadsheet shows and never runs (see the module docstring)."""
    text = clean_text(value)
    return "'" + text if text.startswith(FORMULA_START) and not _is_number(text) else text


def csv_number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    return str(value)


def json_safe(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null, text always encodable."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def record_json(record: dict) -> str:
    """One record as compact, strict JSON on one line."""
    try:  # fast path; ensure_ascii writes lone surrogates as \udcXX escapes
        return json.dumps(record, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN or infinity somewhere
        return json.dumps(json_safe(record), separators=(",", ":"), allow_nan=False)


# --------------------------------------------------------------------------- CSV


def csv_columns(signals: Sequence[str]) -> tuple[str, ...]:
    return (*RECORD_START, *(col for name in signals for col in (name, f"{name}_human_percentile")))


def flat_row(record: dict, signals: Sequence[str], document: Optional[str] = None) -> dict:
    """One record as a dict of CSV cells (strings), keyed by ``csv_columns(signals)``."""
    row = {"file": csv_text(record.get("file")), "document": csv_text(document)}
    for key in ("status", "error", "verdict"):
        row[key] = csv_text(record.get(key))
    for key in ("p_machine", "p_machine_min", "p_machine_max", "stable", "rescanned", "digit"):
        row[key] = csv_number(record.get(key))
    top = record.get("top_signals")
    row["top_signals"] = csv_text(";".join(map(str, top))) if top else ""
    row["page"] = csv_text(record.get("page"))
    box = record.get("box") or [None] * 4
    for key in ("field", "index"):
        row[key] = csv_number(record.get(key))
    for key, value in zip(("box_left", "box_top", "box_right", "box_bottom"), box):
        row[key] = csv_number(value)
    for key in ("boxes_on_page", "empty_on_page", "prior", "likelihood_ratio", "log10_lr"):
        row[key] = csv_number(record.get(key))
    row["lr_verbal"] = csv_text(record.get("lr_verbal"))
    row["reason"] = csv_text(record.get("reason"))
    for key in ("unfamiliar", "familiarity_logit"):
        row[key] = csv_number(record.get(key))
    values = record.get("signals") or {}
    for name in signals:
        s = values.get(name) or {}
        row[name] = csv_number(s.get("value"))
        row[f"{name}_human_percentile"] = csv_number(s.get("human_percentile"))
    return row


def document_row(doc: dict, label: str) -> dict:
    """A document's statistics (``DocumentStats.to_dict()``) as CSV cells."""
    return {"document": csv_text(label), "verdict": csv_text(doc["verdict"]), "reason": csv_text(doc.get("reason") or ""),
            **{k: csv_number(doc.get(k)) for k in ("characters", "machine", "uncertain", "human", "failed",
                                                    "page_log10_lr", "page_p_machine", "p_machine_max")},
            "most_suspicious_file": csv_text(doc["most_suspicious_file"])}


def write_documents_csv(stream: IO[str], documents: Iterable[tuple[dict, str]]) -> None:
    """One row per (document statistics, label), in the order given."""
    writer = csv.DictWriter(stream, fieldnames=DOCUMENT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for doc, label in documents:
        writer.writerow(document_row(doc, label))


# --------------------------------------------------------------------------- streamed records


class RecordWriter:
    """Streams records to a text stream as a JSON array (``json``), one JSON object per line
    (``jsonl``) or CSV rows (``csv``, with ``signals`` naming the signal columns)."""

    def __init__(self, fmt: str, stream: IO[str], signals: Sequence[str] = ()):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.fmt, self.stream, self.signals, self.count = fmt, stream, tuple(signals), 0
        if fmt == "csv":
            self.csv = csv.DictWriter(stream, fieldnames=csv_columns(self.signals), lineterminator="\n")
            self.csv.writeheader()
        elif fmt == "json":
            stream.write("[")

    def add(self, record: dict, document: Optional[str] = None) -> None:
        if self.fmt == "csv":
            self.csv.writerow(flat_row(record, self.signals, document))
        elif self.fmt == "jsonl":
            self.stream.write(record_json(record) + "\n")
        else:
            self.stream.write(("," if self.count else "") + "\n" + record_json(record))
        self.count += 1

    def close(self) -> None:
        if self.fmt == "json":
            self.stream.write("\n]\n")


# --------------------------------------------------------------------------- reading back


def read_records(path: str | Path) -> tuple[list[dict], Optional[dict]]:
    """(records, meta or None) from a file this tool wrote: `score --format json` (an array),
    `--format jsonl`, or a `report --json` file (its meta comes back too). InputError, naming
    the file and the reason, for anything else."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read records ({getattr(exc, 'strerror', None) or exc})") from None
    meta = None
    try:
        data = json.loads(text)
    except ValueError:
        try:  # JSON lines
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise InputError(str(path), f"not JSON, JSON lines or a report JSON ({exc})") from None
    if isinstance(data, dict):
        meta, data = data.get("meta"), data.get("records")
    if not isinstance(data, list) or not all(isinstance(r, dict) and "status" in r and "file" in r for r in data):
        raise InputError(str(path), "not a list of score records (each needs 'file' and 'status')")
    return data, meta if isinstance(meta, dict) else None


def signal_names(records: Iterable[dict]) -> list[str]:
    """The signal names of the first scored record (in its order), for CSV columns of records read back."""
    for r in records:
        if r.get("status") == "ok" and isinstance(r.get("signals"), dict):
            return list(r["signals"])
    return []
