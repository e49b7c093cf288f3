"""`forensics report`: score scans once (or read scored records back) and write the HTML report,
plus CSV and JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.markup import escape

from forensics.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, ForensicsError, InputError

from .options import (AllSignals, BatchSize, Device, Engine, EngineOption, GroupBy, Models, NoStability, Pages, Prior, Quiet, Stability,
                      StabilityOption, Threads, THuman, TMachine, Workers, command_line, err, fail, load_bundle,
                      progress_bar, scorer, set_threads, stability_mode, thresholds)


def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML report to write (one self-contained file, works offline).")],
    scans: Annotated[Optional[List[str]], typer.Argument(
        help="Scan files, folders (searched recursively) or glob patterns (or none, with --from).")] = None,
    from_records: Annotated[Optional[Path], typer.Option(
        "--from", help="Render from records already scored (`score --format json|jsonl`, or a report's --json) "
                       "instead of scoring: no models are loaded.")] = None,
    models: Models = None,
    group_by: GroupBy = "auto",
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Also write one CSV row per input here (and the documents to NAME.documents.csv).")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write every record, the summary and the documents as JSON here.")] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Most suspicious characters listed in the terminal (0: summary only).")] = 20,
    batch_size: BatchSize = 256,
    stability: StabilityOption = Stability.near,
    no_stability: NoStability = False,
    all_signals: AllSignals = False,
    t_machine: TMachine = None,
    t_human: THuman = None,
    device: Device = "cpu",
    threads: Threads = 1,
    workers: Workers = None,
    engine: EngineOption = Engine.local,
    quiet: Quiet = False,
    pages: Pages = None,
    prior: Prior = 0.5,
) -> None:
    """Score scans and write a report a reviewer can open in any browser: verdicts, the images, the evidence.

    Exit codes as for `score`: 0 every input scored, 1 some failed (the report lists them),
    2 bad usage or no input, 3 model bundle missing, 130 interrupted (no file written)."""
    from reports.records import Grouping, report_meta
    from reports.write import documents_csv_path, write_reports

    try:
        grouping = Grouping.parse(group_by)
    except ValueError as exc:
        raise fail(exc)
    if bool(scans) == (from_records is not None):
        raise fail("give scans to score, or --from a records file, not both" if scans else
                   "give scans to score, or --from a records file")
    outputs = [p for p in (out, csv_path, json_path) if p is not None]
    if len({p.resolve() for p in outputs}) != len(outputs):
        raise fail("--out, --csv and --json must be different files")
    for p in outputs:
        if p.is_dir():
            raise fail(f"{p} is a folder; give a file name")

    if from_records is not None:
        from forensics.page_lr import model_from_meta
        from reports.writers import read_records

        try:
            records, recorded = read_records(from_records)
        except InputError as exc:
            raise fail(exc)
        recorded = recorded or {}
        meta = report_meta(bundle=recorded.get("bundle"), thresholds=recorded.get("thresholds"), grouping=grouping,
                           stability=recorded.get("stability"), command=command_line(),
                           signals=recorded.get("signals") or (), records_from=str(from_records),
                           prior=recorded.get("prior", next((r.get("prior") for r in records if r.get("prior")), None)),
                           scored_by=recorded.get("command"),
                           # Score records carry no meta: --models names the bundle whose page model to apply.
                           page_model=recorded.get("page_model") or (
                               load_bundle(models, device).page_model_meta() if models is not None else None))
        try:
            model_from_meta(meta)
        except ValueError as exc:
            raise fail(f"{from_records}: {exc}")
    else:
        from detectors.bundle import describe_bundle
        from detectors.score import record_signals
        from forensics.inputs import expand_inputs

        stability = stability_mode(stability, no_stability)
        set_threads(threads)
        bundle = load_bundle(models, device)
        limits = thresholds(t_machine, t_human, bundle)
        names = record_signals(bundle, all_signals)
        meta = report_meta(bundle=describe_bundle(bundle), thresholds=limits.to_dict(), grouping=grouping,
                           stability=stability.value, command=command_line(), signals=names, prior=prior,
                           page_model=bundle.page_model_meta())
        items = expand_inputs(scans)
    try:
        # Rendering records read back scores nothing, so there is no progress to show.
        with progress_bar(0 if from_records is not None else len(items), quiet) as advance:
            if from_records is None:
                records = scorer(engine, workers)(items, bundle, batch_size=batch_size, stability=stability,
                                                  thresholds=limits, progress=advance, pages=pages,
                                              prior=prior)
            summary = write_reports(records, meta, html=out, csv=csv_path, json=json_path, console=err, top=top,
                                    grouping=grouping)
    except KeyboardInterrupt:
        err.print("interrupted; no report written")
        raise typer.Exit(EXIT_INTERRUPTED)
    except OSError as exc:
        where = getattr(exc, "filename", None) or "the report"
        raise fail(ForensicsError(f"{where}: cannot write ({exc.strerror or exc})"), EXIT_SOME_FAILED)

    if summary["inputs"] == 0:
        raise fail("no input files found" if scans else f"{from_records}: holds no records", EXIT_USAGE)
    if csv_path is not None and summary["documents"]:
        outputs.append(documents_csv_path(csv_path))
    written = ", ".join(escape(str(p)) for p in outputs)
    err.print(f"report written: {written}", highlight=False)
    raise typer.Exit(EXIT_SOME_FAILED if summary["failed"] else EXIT_OK)
