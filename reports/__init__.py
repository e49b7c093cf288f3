"""Reports for fraud reviewers: one HTML page, CSV, JSON and a terminal summary.

One pass over the score records writes every output asked for, so scoring runs once::

    from detectors.score import score_paths
    from reports import Grouping, report_meta, write_reports

    grouping = Grouping.parse("auto")                  # or "folder", "none", a regex
    meta = report_meta(bundle=bundle, thresholds=thresholds, grouping=grouping, stability=True)
    summary = write_reports(score_paths(scans, bundle, thresholds=thresholds), meta,
                            html="report.html", csv="report.csv", json="report.json",
                            console=rich_console, top=20)

Every file is written atomically, at the end: an interrupted run leaves the old files (or
none), never half a report. See reports/README.md and reports/records.py for the formats.
"""

from __future__ import annotations

from .records import (
    CSV_COLUMNS,
    DOCUMENT_COLUMNS,
    SCHEMA_VERSION,
    Grouping,
    document_verdict,
    documents_csv_path,
    report_meta,
    write_reports,
)

__all__ = ["write_reports", "report_meta", "Grouping", "document_verdict", "documents_csv_path",
           "CSV_COLUMNS", "DOCUMENT_COLUMNS", "SCHEMA_VERSION"]
