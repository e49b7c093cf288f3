"""`forensics report`: score scans once and write the HTML report (plus CSV and JSON).

Registered on the app of forensics/cli.py when that module imports this one.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from .cli import _bundle, _fail, app, err
from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, ForensicsError


@app.command()
def report(
    scans: List[str] = typer.Argument(..., help="Scan files, folders (searched recursively) or glob patterns."),
    out: Path = typer.Option(..., "--out", "-o", help="The HTML report to write (one self-contained file, works offline)."),
    models: Optional[Path] = typer.Option(None, "--models", help="Detector bundle folder. Default: the bundle shipped in detectors/bundle."),
    group_by: str = typer.Option(
        "auto", "--group-by",
        help="Documents (forms): 'auto' (parent folder; the table shows when inputs span 2+ folders), 'folder', "
             "'none', or a REGEX searched in each file name whose first group is the document id."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Also write one CSV row per input here (and the documents to NAME.documents.csv)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write every record, the summary and the documents as JSON here."),
    top: int = typer.Option(20, "--top", help="Most suspicious characters listed in the terminal (0: summary only)."),
    batch_size: int = typer.Option(256, help="Images scored per model batch (memory vs speed; results do not depend on it)."),
    stability: bool = typer.Option(True, "--stability/--no-stability", help="Also score 4 re-scans of each image; a verdict that flips becomes uncertain."),
    t_machine: float = typer.Option(0.8, help="Verdict 'machine' when p_machine >= this."),
    t_human: float = typer.Option(0.2, help="Verdict 'human' when p_machine <= this."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    threads: int = typer.Option(1, help="Torch CPU threads for work around the models; the models always run on one thread (detectors.score.MODEL_THREADS), so p_machine never depends on this."),
) -> None:
    """Score scans and write a report a reviewer can open in any browser: verdicts, the images, the evidence.

    Exit codes as for `score`: 0 every input scored, 1 some failed (the report lists them),
    2 bad usage or no input, 3 model bundle missing, 130 interrupted (no file written)."""
    import torch

    from detectors.score import Thresholds, score_paths
    # reports.records, not reports: works even where an older editable install knows reports/ as a namespace
    from reports.records import Grouping, documents_csv_path, report_meta, write_reports

    try:
        grouping = Grouping.parse(group_by)
        thresholds = Thresholds(t_machine=t_machine, t_human=t_human)
    except ValueError as exc:
        raise _fail(exc, EXIT_USAGE)
    if batch_size < 1:
        raise _fail(ValueError("--batch-size must be at least 1"), EXIT_USAGE)
    if threads < 1:
        raise _fail(ValueError("--threads must be at least 1"), EXIT_USAGE)
    if top < 0:
        raise _fail(ValueError("--top must be 0 or more"), EXIT_USAGE)
    outputs = [p for p in (out, csv_path, json_path) if p is not None]
    if len({p.resolve() for p in outputs}) != len(outputs):
        raise _fail(ValueError("--out, --csv and --json must be different files"), EXIT_USAGE)
    for p in outputs:
        if p.is_dir():
            raise _fail(ValueError(f"{p} is a folder; give a file name"), EXIT_USAGE)
    torch.set_num_threads(threads)
    bundle = _bundle(models, device)

    meta = report_meta(bundle=bundle, thresholds=thresholds, grouping=grouping, stability=stability,
                       command=shlex.join(["forensics", *sys.argv[1:]]))
    records = score_paths(scans, bundle, batch_size=batch_size, stability=stability, thresholds=thresholds)
    try:
        summary = write_reports(records, meta, html=out, csv=csv_path, json=json_path, console=err, top=top,
                                grouping=grouping)
    except KeyboardInterrupt:
        err.print("interrupted; no report written")
        raise typer.Exit(EXIT_INTERRUPTED)
    except OSError as exc:
        where = getattr(exc, "filename", None) or "the report"
        raise _fail(ForensicsError(f"{where}: cannot write ({exc.strerror or exc})"), EXIT_SOME_FAILED)

    if summary["inputs"] == 0:
        err.print("[red]error:[/] no input files found")
        raise typer.Exit(EXIT_USAGE)
    if csv_path is not None and summary["documents"]:
        outputs.append(documents_csv_path(csv_path))
    written = ", ".join(escape(str(p)) for p in outputs)
    err.print(f"report written: {written}", highlight=False)
    raise typer.Exit(EXIT_SOME_FAILED if summary["failed"] else EXIT_OK)
