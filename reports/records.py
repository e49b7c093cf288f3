"""Report data: document grouping, the summary, flat CSV rows and the JSON report.

Everything here works on the score records of ``detectors.score`` (one dict per input,
see that module) and never needs the models, so reports can be re-rendered, tested and
benchmarked from records alone.

Documents
---------
A *document* is one scanned form; its characters are the inputs that belong to it.
``Grouping`` decides which document an input belongs to:

  auto     (default) the input's parent folder, as written in the record's ``file``
           (``forms/0042/box3.png`` belongs to ``forms/0042``). The HTML and terminal
           reports show the documents table only when the inputs span two folders or
           more; the CSV and JSON always carry it.
  folder   the parent folder, and the documents table is always shown.
  REGEX    ``re.search`` on the file *name* (not the folders); the first capture group
           is the document id, or the whole match when the pattern has no group. Inputs
           whose name does not match belong to no document (``document`` is null) and are
           gathered in one extra row, ``UNMATCHED_LABEL``.
  none     no documents.

Document verdict (``document_verdict``), most severe first:

  machine     at least one character's verdict is ``machine``;
  uncertain   otherwise, at least one character is ``uncertain`` or failed (a character
              we could not read cannot vouch for the form);
  human       every character was scored and every verdict is ``human``.

One forged box is enough to make a form suspect, so a single ``machine`` character
decides; nothing is averaged away.

CSV columns (``CSV_COLUMNS``; one row per input, in input order, failed inputs included)
------------------------------------------------------------------------------------------
  file            the input path as given (or the argument that matched nothing)
  document        the document id under the grouping in force (empty with ``none`` or
                  when a --group-by pattern does not match)
  status          ok | error
  error           why the input failed (empty when status is ok)
  verdict         machine | human | uncertain (empty for failed inputs)
  p_machine       calibrated probability that a machine made the character
  p_machine_min, p_machine_max   its range over the image and its simulated re-scans
  stable          true if no re-scan changes the verdict; empty when not checked
  digit           the digit the reader (detectors.reader) sees, 0-9
  top_signals     up to 3 signal names, ';'-separated, pushing hardest towards the verdict
  <signal>        the raw value of each signal of ``detectors.signals.ALL_SIGNALS``
  <signal>_human_percentile   share (0..100) of human calibration images below that value

Numbers are written with Python's repr (full precision); booleans as ``true``/``false``;
missing values as empty cells. Text cells that start with ``= + - @``, a tab or a carriage
return get a leading ``'`` so a spreadsheet shows them instead of running them as formulas
(file names come from whoever filled in the form); the JSON keeps the exact strings.

Documents CSV (``DOCUMENT_COLUMNS``; one row per document, most suspicious first)
---------------------------------------------------------------------------------
  document, verdict, characters, machine, uncertain, human, failed, p_machine_max,
  most_suspicious_file

JSON (``SCHEMA_VERSION``)
-------------------------
``{"schema_version", "kind": "forensics/report", "meta", "summary", "documents",
"records"}``: ``meta`` says how the report was made (command, date, bundle, thresholds,
grouping), ``summary`` has the counts, ``documents`` the rows above as objects, and
``records`` every score record in input order (failed ones included) with its
``document`` added; heatmaps and preprocessed frames are kept, so the JSON is the full
evidence.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from contextlib import ExitStack
from typing import IO, Any, Iterable, Iterator, Optional

from detectors.signals import ALL_SIGNALS
from forensics.checkpoint import atomic_open

SCHEMA_VERSION = 3  # 2: the cnn_logit signal joined the records and the CSV; 3: font_logit, either_cnn_logit
REPORT_KIND = "forensics/report"
VERDICTS = ("machine", "uncertain", "human")  # most severe first
SEVERITY = {"machine": 0, "uncertain": 1, "human": 2}
UNMATCHED_LABEL = "(file name did not match --group-by)"
GROUPING_WORDS = ("auto", "folder", "none")

CSV_COLUMNS: tuple[str, ...] = (
    "file", "document", "status", "error", "verdict", "p_machine", "p_machine_min", "p_machine_max", "stable",
    "digit", "top_signals",
    *(col for name in ALL_SIGNALS for col in (name, f"{name}_human_percentile")),
)
DOCUMENT_COLUMNS: tuple[str, ...] = (
    "document", "verdict", "characters", "machine", "uncertain", "human", "failed", "p_machine_max",
    "most_suspicious_file",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --------------------------------------------------------------------------- text hygiene


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


def _csv_text(value: Any) -> str:
    text = clean_text(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    return str(value)


# --------------------------------------------------------------------------- grouping


@dataclass(frozen=True)
class Grouping:
    """Which document an input belongs to (see the module docstring)."""

    mode: str = "auto"  # auto | folder | regex | none
    pattern: Optional[str] = None

    @classmethod
    def parse(cls, text: Optional[str]) -> "Grouping":
        """``auto``, ``folder``, ``none`` or a regular expression (ValueError if it does not compile)."""
        if text is None or text == "auto":
            return cls("auto")
        if text in ("folder", "none"):
            return cls(text)
        try:
            re.compile(text)
        except re.error as exc:
            raise ValueError(f"--group-by: not a valid regular expression ({exc})") from None
        return cls("regex", text)

    @property
    def explicit(self) -> bool:
        """True when the user asked for documents (the tables are then always shown)."""
        return self.mode in ("folder", "regex")

    def document_of(self, file: Optional[str]) -> Optional[str]:
        if self.mode == "none" or file is None:
            return None
        if self.mode == "regex":
            m = _compiled(self.pattern).search(os.path.basename(str(file)))
            if m is None:
                return None
            return m.group(1) if m.re.groups and m.group(1) is not None else m.group(0)
        return os.path.dirname(str(file)) or "."

    def describe(self) -> str:
        return {"auto": "by folder (automatic)", "folder": "by folder", "none": "none"}.get(
            self.mode, f"by file name pattern {self.pattern}")


_REGEX_CACHE: dict[str, re.Pattern] = {}


def _compiled(pattern: str) -> re.Pattern:
    if pattern not in _REGEX_CACHE:
        _REGEX_CACHE[pattern] = re.compile(pattern)
    return _REGEX_CACHE[pattern]


# --------------------------------------------------------------------------- summary and documents


def outcome(record: dict) -> str:
    """machine | uncertain | human | failed."""
    if record.get("status") != "ok":
        return "failed"
    verdict = record.get("verdict")
    return verdict if verdict in SEVERITY else "uncertain"


@dataclass
class DocumentStats:
    document: Optional[str]
    characters: int = 0
    machine: int = 0
    uncertain: int = 0
    human: int = 0
    failed: int = 0
    p_machine_max: Optional[float] = None
    most_suspicious_file: Optional[str] = None

    def add(self, record: dict) -> None:
        self.characters += 1
        kind = outcome(record)
        setattr(self, kind, getattr(self, kind) + 1)
        p = record.get("p_machine")
        if kind != "failed" and isinstance(p, (int, float)) and (self.p_machine_max is None or p > self.p_machine_max):
            self.p_machine_max, self.most_suspicious_file = float(p), record.get("file")

    @property
    def verdict(self) -> str:
        return document_verdict(self.machine, self.uncertain, self.failed)

    @property
    def label(self) -> str:
        return UNMATCHED_LABEL if self.document is None else self.document

    def to_dict(self) -> dict:
        return {"document": self.document, "verdict": self.verdict, "characters": self.characters,
                "machine": self.machine, "uncertain": self.uncertain, "human": self.human, "failed": self.failed,
                "p_machine_max": self.p_machine_max, "most_suspicious_file": self.most_suspicious_file}


def document_verdict(machine: int, uncertain: int, failed: int) -> str:
    """The documented rule: any machine -> machine; else any uncertain or failed -> uncertain; else human."""
    if machine:
        return "machine"
    if uncertain or failed:
        return "uncertain"
    return "human"


@dataclass
class Tally:
    """Counts and per-document statistics, built one record at a time."""

    grouping: Grouping = field(default_factory=Grouping)
    counts: dict = field(default_factory=lambda: {"inputs": 0, "machine": 0, "uncertain": 0, "human": 0, "failed": 0})
    documents: dict = field(default_factory=dict)

    def add(self, record: dict) -> Optional[str]:
        """Count ``record``; returns its document id."""
        self.counts["inputs"] += 1
        self.counts[outcome(record)] += 1
        if self.grouping.mode == "none":
            return None
        doc = self.grouping.document_of(record.get("file"))
        stats = self.documents.get(doc)
        if stats is None:
            stats = self.documents[doc] = DocumentStats(doc)
        stats.add(record)
        return doc

    def summary(self) -> dict:
        s = dict(self.counts)
        docs = self.sorted_documents()
        s["documents"] = len(docs)
        for v in VERDICTS:
            s[f"documents_{v}"] = sum(d.verdict == v for d in docs)
        return s

    def sorted_documents(self) -> list[DocumentStats]:
        """Most suspicious first: verdict severity, then highest p_machine, then id."""
        return sorted(self.documents.values(), key=lambda d: (
            SEVERITY[d.verdict], -(d.p_machine_max if d.p_machine_max is not None else -1.0),
            d.document is None, d.document or ""))

    @property
    def show_documents(self) -> bool:
        """Whether the HTML and terminal reports show the documents table."""
        if self.grouping.mode == "none" or not self.documents:
            return False
        return self.grouping.explicit or len(self.documents) >= 2


def suspicion_key(record: dict, index: int) -> tuple:
    """Sort key: highest p_machine first, failed inputs last, then input order."""
    p = record.get("p_machine")
    ok = record.get("status") == "ok" and isinstance(p, (int, float)) and not math.isnan(p)
    return (0 if ok else 1, -float(p) if ok else 0.0, index)


# --------------------------------------------------------------------------- meta


def report_meta(bundle: Any = None, thresholds: Any = None, command: Optional[str] = None,
                grouping: Optional[Grouping] = None, stability: Optional[bool] = None, **extra: Any) -> dict:
    """How a report was made: shown at the top of the HTML, stored in the JSON.

    ``bundle`` is a ``detectors.bundle.Bundle`` (or None), ``thresholds`` a
    ``detectors.score.Thresholds`` (or None for the defaults), ``command`` the command line
    (default: this process's, shell-quoted).
    """
    from forensics import __version__

    if thresholds is None:
        from detectors.score import Thresholds

        thresholds = Thresholds()
    grouping = grouping or Grouping()
    meta = {
        "tool": f"forensics {__version__}",
        "generated": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command if command is not None else shlex.join(["forensics", *sys.argv[1:]]),
        "bundle": bundle_info(bundle),
        "thresholds": {"t_machine": float(thresholds.t_machine), "t_human": float(thresholds.t_human)},
        "grouping": {"mode": grouping.mode, "pattern": grouping.pattern, "description": grouping.describe()},
        "stability": stability,
    }
    meta.update(extra)
    return meta


def bundle_info(bundle: Any) -> Optional[dict]:
    """Path and version of a model bundle, from its manifest.

    Bundles carry no version number of their own; their identity is their content, so the
    ``version`` shown is the creation date plus the first 12 hex digits of the SHA-256 of
    the bundle's ``combiner.json`` (as listed in the verified manifest).
    """
    if bundle is None:
        return None
    manifest = getattr(bundle, "manifest", None) or {}
    files = manifest.get("files") or {}
    digest = (files.get("combiner.json") or {}).get("sha256") or ""
    if not digest:  # fall back on every checksum the manifest lists
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest() if files else ""
    created = manifest.get("created")
    metrics = manifest.get("metrics") or {}
    heldout = (metrics.get("heldout_ensemble") or {}).get("all_generators") or {}
    return {
        "path": str(getattr(bundle, "path", "")),
        "created": created,
        "id": digest[:12] or None,
        "version": " ".join(x for x in (created, digest[:12]) if x) or None,
        "manifest_version": manifest.get("manifest_version"),
        "signals": list(getattr(getattr(bundle, "combiner", None), "signals", []) or []),
        "heldout_auroc": heldout.get("auroc"),
        # What the verdicts are worth, from the calibration's held-out half: the share of each
        # known source flagged at 1% of human scans flagged, and of a source left out of it.
        "caught_at_1pct_fpr": _tprs(metrics.get("heldout_ensemble"), skip="all_generators"),
        "caught_when_left_out": _tprs(metrics.get("leave_one_generator_out")),
    }


def _tprs(per_source: Any, skip: str = "") -> dict[str, float]:
    if not isinstance(per_source, dict):
        return {}
    return {str(s): float(m["tpr_at_1pct_fpr"]) for s, m in per_source.items()
            if s != skip and isinstance(m, dict) and isinstance(m.get("tpr_at_1pct_fpr"), (int, float))}


SOURCE_NAMES = {"pixelcnn": "PixelCNN", "dcgan": "DCGAN", "fcgan": "FC-GAN", "font": "font forgeries"}


def _span(values: Iterable[float]) -> str:
    lo, hi = round(100 * min(values)), round(100 * max(values))
    return f"{lo}%" if lo == hi else f"{lo}-{hi}%"


def scope_text(info: Optional[dict]) -> Optional[str]:
    """One plain sentence on what a bundle's verdicts can and cannot show, from its manifest's
    metrics (``bundle_info``), or None when the manifest records none. A reviewer must know
    that "human" means "unlike the sources calibration saw", and how far that reaches."""
    caught = (info or {}).get("caught_at_1pct_fpr") or {}
    if not caught:
        return None
    order = list(SOURCE_NAMES)  # the known sources in a fixed order, then any others as named
    names = [SOURCE_NAMES.get(s, s) for s in sorted(caught, key=lambda s: (order.index(s) if s in order else len(order), s))]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    text = (f"Calibrated against {listed}: on held-out scans, at a threshold that flags 1% of human scans, "
            f"it flags {_span(caught.values())} of each.")
    left_out = (info or {}).get("caught_when_left_out") or {}
    if left_out:
        text += (f" A source left out of calibration was flagged {_span(left_out.values())} of the time, so a human "
                 f"verdict means unlike these sources, not proven human.")
    return text


# --------------------------------------------------------------------------- CSV


def flat_row(record: dict, document: Optional[str] = None) -> dict:
    """One record as a dict of CSV cells (strings), keyed by ``CSV_COLUMNS``."""
    row = {
        "file": _csv_text(record.get("file")),
        "document": _csv_text(document),
        "status": _csv_text(record.get("status")),
        "error": _csv_text(record.get("error")),
        "verdict": _csv_text(record.get("verdict")),
    }
    for key in ("p_machine", "p_machine_min", "p_machine_max", "stable", "digit"):
        row[key] = _csv_number(record.get(key))
    top = record.get("top_signals")
    row["top_signals"] = _csv_text(";".join(map(str, top))) if top else ""
    signals = record.get("signals") or {}
    for name in ALL_SIGNALS:
        s = signals.get(name) or {}
        row[name] = _csv_number(s.get("value"))
        row[f"{name}_human_percentile"] = _csv_number(s.get("human_percentile"))
    return row


def document_row(doc: DocumentStats) -> dict:
    d = doc.to_dict()
    return {"document": _csv_text(doc.label), "verdict": d["verdict"],
            **{k: _csv_number(d[k]) for k in ("characters", "machine", "uncertain", "human", "failed", "p_machine_max")},
            "most_suspicious_file": _csv_text(d["most_suspicious_file"])}


# --------------------------------------------------------------------------- atomic streamed files


class CsvSink:
    """Streams one CSV row per record; the documents CSV is written at the end."""

    def __init__(self, stream: IO[str]):
        self.writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
        self.writer.writeheader()

    def add(self, record: dict, document: Optional[str]) -> None:
        self.writer.writerow(flat_row(record, document))


def write_documents_csv(stream: IO[str], documents: list[DocumentStats]) -> None:
    writer = csv.DictWriter(stream, fieldnames=DOCUMENT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for doc in documents:
        writer.writerow(document_row(doc))


def documents_csv_path(csv_path: str | os.PathLike) -> Path:
    """Where the documents CSV goes next to the records CSV: ``report.csv`` -> ``report.documents.csv``."""
    p = Path(csv_path)
    return p.with_name(f"{p.stem}.documents{p.suffix or '.csv'}")


# --------------------------------------------------------------------------- JSON


def json_safe(value: Any) -> Any:
    """Records as strict JSON: NaN and infinities become null, text always encodable."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class JsonSink:
    """Spools records (in input order) to a temporary file; ``finish`` writes the report."""

    def __init__(self):
        self.spool = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        self.count = 0

    def add(self, record: dict, document: Optional[str]) -> None:
        rec = dict(record)
        rec["document"] = document
        try:  # fast path; ensure_ascii writes lone surrogates as \udcXX escapes
            text = json.dumps(rec, separators=(",", ":"), allow_nan=False)
        except ValueError:  # NaN or infinity somewhere
            text = json.dumps(json_safe(rec), separators=(",", ":"), allow_nan=False)
        self.spool.write(("," if self.count else "") + "\n" + text)
        self.count += 1

    def finish(self, stream: IO[str], meta: dict, summary: dict, documents: list[DocumentStats]) -> None:
        head = {"schema_version": SCHEMA_VERSION, "kind": REPORT_KIND, "meta": json_safe(meta),
                "summary": summary, "documents": [json_safe(d.to_dict()) for d in documents]}
        text = json.dumps(head, indent=1, allow_nan=False)
        stream.write(text[:-2] + ',\n "records": [')  # text ends with "\n}"
        self.spool.seek(0)
        shutil.copyfileobj(self.spool, stream)
        stream.write("\n ]\n}\n")

    def close(self) -> None:
        self.spool.close()


# --------------------------------------------------------------------------- all outputs in one pass


def write_reports(records: Iterable[dict], meta: Optional[dict] = None, *,
                  html: str | os.PathLike | None = None,
                  csv: str | os.PathLike | None = None,
                  json: str | os.PathLike | None = None,
                  documents_csv: str | os.PathLike | None = None,
                  console=None, top: int = 20,
                  grouping: Optional[Grouping] = None) -> dict:
    """Consume ``records`` once and write every output asked for; returns the summary counts
    (``inputs``, ``machine``, ``uncertain``, ``human``, ``failed``, ``documents``, ...).

    - ``html``: the self-contained report page (reports.html);
    - ``csv``: one row per input (``CSV_COLUMNS``), streamed; with it, the documents CSV
      (``DOCUMENT_COLUMNS``) goes to ``documents_csv``, by default ``documents_csv_path(csv)``
      (``report.csv`` -> ``report.documents.csv``), whenever there are documents;
    - ``json``: schema_version, meta, summary, documents and every record;
    - ``console``: a rich Console for the terminal report (summary + ``top`` rows).

    Grouping comes from ``grouping``, else from ``meta["grouping"]``, else ``auto``.
    All files are renamed into place only after the last record; on any exception
    (KeyboardInterrupt included) none is written and the exception propagates.
    """
    from .html import HtmlSink
    from .terminal import TerminalSink

    meta = meta if meta is not None else report_meta(grouping=grouping)
    if grouping is None:
        g = meta.get("grouping") or {}
        grouping = Grouping(g.get("mode", "auto"), g.get("pattern"))
    if csv is not None and documents_csv is None:
        documents_csv = documents_csv_path(csv)
    targets = [Path(p).resolve() for p in (html, csv, json, documents_csv) if p is not None]
    if len(set(targets)) != len(targets):
        raise ValueError("the HTML, CSV, documents CSV and JSON outputs must be different files")

    tally = Tally(grouping)
    with ExitStack() as stack:
        html_sink = HtmlSink() if html is not None else None
        json_sink = JsonSink() if json is not None else None
        for sink in (html_sink, json_sink):
            if sink is not None:
                stack.callback(sink.close)
        csv_sink = CsvSink(stack.enter_context(atomic_open(csv))) if csv is not None else None
        term_sink = TerminalSink(top) if console is not None else None
        sinks = [s for s in (html_sink, json_sink, csv_sink, term_sink) if s is not None]

        for i, rec in enumerate(records):
            doc = tally.add(rec)
            for sink in sinks:
                if sink is html_sink or sink is term_sink:
                    sink.add(rec, doc, i)
                else:
                    sink.add(rec, doc)

        documents = tally.sorted_documents()
        if html_sink is not None:
            with atomic_open(html) as f:
                html_sink.finish(f, meta, tally)
        if json_sink is not None:
            with atomic_open(json) as f:
                json_sink.finish(f, meta, tally.summary(), documents)
        if csv is not None and documents:
            with atomic_open(documents_csv) as f:
                write_documents_csv(f, documents)
    # the records CSV is renamed into place when the ExitStack closes, after the others
    if term_sink is not None:
        term_sink.finish(console, meta, tally)
    return tally.summary()
