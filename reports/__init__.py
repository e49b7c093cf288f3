"""Reports for fraud reviewers: one HTML page, CSV, JSON and a terminal summary.

One pass over the score records writes every output asked for, so scoring runs once::

    from reports import Grouping, report_meta, write_reports

    meta = report_meta(bundle=description, thresholds={"t_machine": 0.8, "t_human": 0.2},
                       grouping=Grouping.parse("auto"), stability="near", signals=signal_names)
    summary = write_reports(records, meta, html="report.html", csv="report.csv",
                            json="report.json", console=rich_console, top=20)

Reports render the records and metadata they are given; they never load a model. Every
file is written atomically, at the end: an interrupted run leaves the old files (or none),
never half a report. See reports/README.md, reports/writers.py for the CSV and JSON formats.
"""

from __future__ import annotations

from .records import SCHEMA_VERSION, Grouping, document_verdict, report_meta
from .write import documents_csv_path, write_reports
from .writers import DOCUMENT_COLUMNS, RecordWriter, csv_columns, read_records

__all__ = ["write_reports", "report_meta", "Grouping", "document_verdict", "documents_csv_path", "csv_columns",
           "read_records", "RecordWriter", "DOCUMENT_COLUMNS", "SCHEMA_VERSION"]
