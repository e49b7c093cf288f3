"""Report data: document grouping, the summary, flat CSV rows and the JSON report.

Everything here works on score records (``forensics.record.Record``, one per input) and the
metadata it is given, never on the models, so reports can be re-rendered, tested and
benchmarked from records alone.

Documents
---------
A *document* is one scanned form; its characters are the inputs that belong to it.
``Grouping`` decides which document an input belongs to:

  auto     (default) the form page a character was found on (the record's ``page``), or
           for a character scan the input's parent folder, as written in its ``file``
           (``forms/0042/box3.png`` belongs to ``forms/0042``). The HTML and terminal
           reports show the documents table only when the inputs span two folders or
           more; the CSV and JSON always carry it.
  folder   the parent folder, and the documents table is always shown.
  REGEX    ``re.search`` on the file *name* (not the folders); the first capture group
           is the document id, or the whole match when the pattern has no group. Inputs
           whose name does not match belong to no document (``document`` is null) and are
           gathered in one extra row, ``UNMATCHED_LABEL``.
  none     no documents.

Document verdict (``forensics.page_lr.page_verdict``), most severe first, with a page model
(a bundle's page_evidence.json, carried in the meta as ``page_model``):

  machine     the document's characters together: its page LR (from the mean of their log
              LRs and their number) reaches the page threshold at the report's prior;
  uncertain   otherwise, a character's verdict is ``machine`` (one forged box is enough to
              make a form suspect, but not to accuse it: with ten boxes, 2.4% of honest forms
              have one), or a character is ``uncertain`` or failed (a character we could not
              read cannot vouch for the form);
  human       every character was scored and every verdict is ``human``.

Without a page model (older bundles and records) any ``machine`` character makes the
document ``machine`` (``document_verdict``).

The files are written by ``reports.write.write_reports`` (HTML, CSV, JSON, terminal) through
``reports.writers`` (the CSV and JSON encodings shared with `forensics score`); the report
JSON is ``{"schema_version", "kind": "forensics/report", "meta", "summary", "documents",
"records"}``.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import shlex
import sys
from dataclasses import dataclass, field

from typing import Any, Iterable, Optional, Sequence

from forensics.page_lr import PageEvidence, PageModel, model_from_meta, page_verdict, usable_log_lr
from forensics.record import character_name

SCHEMA_VERSION = 8  # 2: cnn_logit joined the records and the CSV; 3: font_logit, either_cnn_logit; 4: meta.signals;
# 5: records carry "rescanned" and only the signals computed; meta.stability is near | all | off;
# 6: form pages: page, box, field, index, boxes_on_page, empty_on_page (CSV columns after top_signals);
# 7: reason, unfamiliar, familiarity_logit (CSV columns after lr_verbal);
# 8: the page model: meta.page_model, documents' reason, page_log10_lr, page_p_machine, and their verdict
REPORT_KIND = "forensics/report"
VERDICTS = ("machine", "uncertain", "human")  # most severe first
SEVERITY = {"machine": 0, "uncertain": 1, "human": 2}
UNMATCHED_LABEL = "(file name did not match --group-by)"
GROUPING_WORDS = ("auto", "folder", "none")



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

    def document_of_record(self, record: dict) -> Optional[str]:
        """A record's document: its form page in auto mode, else what its file gives."""
        page = record.get("page")
        if page and self.mode == "auto":
            return str(page)
        if page and self.mode == "regex":
            return self.document_of(str(page))
        return self.document_of(record.get("file"))

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
    page_model: Optional[PageModel] = field(default=None, repr=False)
    prior: float = 0.5
    log_lrs: list = field(default_factory=list, repr=False)  # the characters the page model uses

    def add(self, record: dict) -> None:
        self.characters += 1
        kind = outcome(record)
        setattr(self, kind, getattr(self, kind) + 1)
        p = record.get("p_machine")
        if kind != "failed" and isinstance(p, (int, float)) and (self.p_machine_max is None or p > self.p_machine_max):
            self.p_machine_max, self.most_suspicious_file = float(p), character_name(record)
        ln = usable_log_lr(record)
        if ln is not None:
            self.log_lrs.append(ln)

    def judged(self) -> tuple[str, Optional[str], Optional[PageEvidence]]:
        return page_verdict(self.page_model, self.log_lrs, self.prior, self.machine, self.uncertain, self.failed)

    @property
    def verdict(self) -> str:
        return self.judged()[0]

    @property
    def label(self) -> str:
        return UNMATCHED_LABEL if self.document is None else self.document

    def to_dict(self) -> dict:
        verdict, reason, ev = self.judged()
        return {"document": self.document, "verdict": verdict, "reason": reason, "characters": self.characters,
                "machine": self.machine, "uncertain": self.uncertain, "human": self.human, "failed": self.failed,
                "p_machine_max": self.p_machine_max, "most_suspicious_file": self.most_suspicious_file,
                "page_log10_lr": None if ev is None else ev.log10_lr,
                "page_p_machine": None if ev is None else ev.p_machine}


def document_verdict(machine: int, uncertain: int, failed: int) -> str:
    """The rule without a page model: any machine -> machine; else any uncertain or failed ->
    uncertain; else human."""
    return page_verdict(None, [], 0.5, machine, uncertain, failed)[0]


@dataclass
class Tally:
    """Counts and per-document statistics, built one record at a time."""

    grouping: Grouping = field(default_factory=Grouping)
    page_model: Optional[PageModel] = None
    prior: float = 0.5
    counts: dict = field(default_factory=lambda: {"inputs": 0, "machine": 0, "uncertain": 0, "human": 0, "failed": 0,
                                                  "unfamiliar": 0})
    documents: dict = field(default_factory=dict)

    @classmethod
    def of(cls, grouping: Grouping, meta: Optional[dict]) -> "Tally":
        """A tally applying the page model and prior that ``meta`` records."""
        prior = (meta or {}).get("prior")
        return cls(grouping, model_from_meta(meta), float(prior) if isinstance(prior, (int, float)) else 0.5)

    def add(self, record: dict) -> Optional[str]:
        """Count ``record``; returns its document id."""
        self.counts["inputs"] += 1
        self.counts[outcome(record)] += 1
        self.counts["unfamiliar"] += record.get("unfamiliar") is True  # (also counted as uncertain)
        if self.grouping.mode == "none":
            return None
        doc = self.grouping.document_of_record(record)
        stats = self.documents.get(doc)
        if stats is None:
            stats = self.documents[doc] = DocumentStats(doc, page_model=self.page_model, prior=self.prior)
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


def report_meta(bundle: Optional[dict] = None, thresholds: Optional[dict] = None, command: Optional[str] = None,
                grouping: Optional[Grouping] = None, stability: Optional[str | bool] = None,
                signals: Sequence[str] = (), prior: Optional[float] = None, page_model: Optional[dict] = None,
                **extra: Any) -> dict:
    """How a report was made: shown at the top of the HTML, stored in the JSON.

    ``bundle`` describes the model bundle (``detectors.bundle.describe_bundle``: path, version,
    the metrics ``scope_text`` reads), ``thresholds`` is ``{"t_machine", "t_human"}``,
    ``signals`` the signal names the records carry (the CSV's columns), ``prior`` the share of
    forgeries p_machine assumes (``--prior``), ``page_model`` the bundle's page model
    (``forensics.page_lr.PageModel.to_dict``, its ``info`` left out), ``command`` the command
    line (default: this process's, shell-quoted).
    """
    from forensics import __version__

    grouping = grouping or Grouping()
    meta = {
        "tool": f"forensics {__version__}",
        "generated": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command if command is not None else shlex.join(["forensics", *sys.argv[1:]]),
        "bundle": bundle,
        "thresholds": {k: float(v) for k, v in thresholds.items()} if thresholds else None,
        "grouping": {"mode": grouping.mode, "pattern": grouping.pattern, "description": grouping.describe()},
        "stability": {True: "near", False: "off"}.get(stability, stability),  # older records said True / False
        "signals": list(signals),
        "prior": None if prior is None else float(prior),
        "page_model": None if not page_model else {k: v for k, v in page_model.items() if k != "info"},
    }
    meta.update(extra)
    return meta


SOURCE_NAMES = {"pixelcnn": "PixelCNN", "dcgan": "DCGAN", "fcgan": "FC-GAN", "vae": "VAE", "diffusion": "diffusion",
                "vae-rewrite": "VAE rewrites of human digits", "diffusion-rewrite": "diffusion rewrites of human digits",
                "font": "font forgeries"}


def _span(values: Iterable[float]) -> str:
    lo, hi = round(100 * min(values)), round(100 * max(values))
    return f"{lo}%" if lo == hi else f"{lo}-{hi}%"


def scope_text(info: Optional[dict]) -> Optional[str]:
    """One plain sentence on what a bundle's verdicts can and cannot show, from its manifest's
    metrics (``meta["bundle"]``), or None when the manifest records none. A reviewer must know
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
