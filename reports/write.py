"""Every report output from one pass over the records: HTML, CSV (+ documents CSV), JSON, terminal.

    meta = report_meta(bundle=describe_bundle(bundle), thresholds={"t_machine": 0.8, "t_human": 0.2},
                       grouping=Grouping.parse("auto"), stability="near", signals=ALL_SIGNALS)
    summary = write_reports(records, meta, html="r.html", csv="r.csv", json="r.json",
                            console=err_console, top=20)

Every file is renamed into place only after the last record: an interrupted run leaves the
previous files (or none), never half a report.
"""

from __future__ import annotations

import json as _json
import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Iterable, Optional

from forensics.checkpoint import atomic_open

from .html import HtmlSink
from .records import REPORT_KIND, SCHEMA_VERSION, DocumentStats, Grouping, Tally, report_meta
from .terminal import TerminalSink
from .writers import RecordWriter, json_safe, record_json, signal_names, write_documents_csv


def documents_csv_path(csv_path: str | os.PathLike) -> Path:
    """Where the documents CSV goes next to the records CSV: ``report.csv`` -> ``report.documents.csv``."""
    p = Path(csv_path)
    return p.with_name(f"{p.stem}.documents{p.suffix or '.csv'}")


class JsonSink:
    """Spools records (in input order, each with its ``document``) to a temporary file;
    ``finish`` writes the report JSON around them."""

    def __init__(self):
        self.spool = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        self.count = 0

    def add(self, record: dict, document: Optional[str]) -> None:
        self.spool.write(("," if self.count else "") + "\n" + record_json({**record, "document": document}))
        self.count += 1

    def finish(self, stream: IO[str], meta: dict, summary: dict, documents: list[DocumentStats]) -> None:
        head = {"schema_version": SCHEMA_VERSION, "kind": REPORT_KIND, "meta": json_safe(meta),
                "summary": summary, "documents": [json_safe(d.to_dict()) for d in documents]}
        text = _json.dumps(head, indent=1, allow_nan=False)
        stream.write(text[:-2] + ',\n "records": [')  # text ends with "\n}"
        self.spool.seek(0)
        shutil.copyfileobj(self.spool, stream)
        stream.write("\n ]\n}\n")

    def close(self) -> None:
        self.spool.close()


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
    - ``csv``: one row per input (``reports.writers.csv_columns(meta["signals"])``), streamed;
      with it, the documents CSV (``DOCUMENT_COLUMNS``) goes to ``documents_csv``, by default
      ``documents_csv_path(csv)`` (``report.csv`` -> ``report.documents.csv``), whenever there
      are documents;
    - ``json``: schema_version, meta, summary, documents and every record;
    - ``console``: a rich Console for the terminal report (summary + ``top`` rows).

    Grouping comes from ``grouping``, else from ``meta["grouping"]``, else ``auto``.
    On any exception (KeyboardInterrupt included) no file is written and the exception propagates.
    """
    meta = meta if meta is not None else report_meta(grouping=grouping)
    if grouping is None:
        g = meta.get("grouping") or {}
        grouping = Grouping(g.get("mode", "auto"), g.get("pattern"))
    if csv is not None and documents_csv is None:
        documents_csv = documents_csv_path(csv)
    targets = [Path(p).resolve() for p in (html, csv, json, documents_csv) if p is not None]
    if len(set(targets)) != len(targets):
        raise ValueError("the HTML, CSV, documents CSV and JSON outputs must be different files")
    signals = list(meta.get("signals") or ())
    if csv is not None and not signals:  # records read back without meta: their own signal names
        records = list(records)
        signals = signal_names(records)

    tally = Tally.of(grouping, meta)
    with ExitStack() as stack:
        html_sink = HtmlSink() if html is not None else None
        json_sink = JsonSink() if json is not None else None
        for sink in (html_sink, json_sink):
            if sink is not None:
                stack.callback(sink.close)
        csv_sink = RecordWriter("csv", stack.enter_context(atomic_open(csv)), signals) if csv is not None else None
        term_sink = TerminalSink(top) if console is not None else None

        for i, rec in enumerate(records):
            doc = tally.add(rec)
            for sink in (html_sink, term_sink):
                if sink is not None:
                    sink.add(rec, doc, i)
            for sink in (json_sink, csv_sink):
                if sink is not None:
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
                write_documents_csv(f, ((d.to_dict(), d.label) for d in documents))
    # the records CSV is renamed into place when the ExitStack closes, after the others
    if term_sink is not None:
        term_sink.finish(console, meta, tally)
    return tally.summary()
