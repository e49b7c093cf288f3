"""`forensics preprocess`, `score`, `calibrate` and `evaluate`: thin commands over detectors/."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from forensics.record import character_name
from forensics.errors import (EXIT_INTERRUPTED, EXIT_MISSING, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, CheckpointError,
                              DataMissingError, ForensicsError)

from .options import (AllSignals, BatchSize, DataDir, Device, Engine, EngineOption, Format, Models, NoStability, Pages, Prior, Quiet,
                      Scans, SignalSet, Stability, StabilityOption, Threads, THuman, TMachine, Workers, check_device, command_line,
                      err, fail, load_bundle, progress_bar, scorer, set_threads, stability_mode, thresholds)

MAX_ROWS_WITH_OUTPUT = 200  # with --output the file has every record; the terminal gets a glimpse


def preprocess(
    scans: Scans,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the 28x28 PNGs the models will see.")],
    pages: Pages = None,
) -> None:
    """Bring scans to the MNIST frame (28x28, ink bright, centred) and write them as PNGs (a form
    page: one PNG per written box, named <stem>[_pN]_fFIELD_bBOX.png)."""
    from forensics.frames import preprocess_to_folder

    ok, failed = preprocess_to_folder(scans, out, console=err, pages=pages)
    if ok + failed == 0:
        raise fail("no input files found")
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _table_row(table, rec: dict) -> None:
    colour = {"machine": "red", "human": "green", "uncertain": "yellow"}.get(rec["verdict"], "red")
    if rec["status"] != "ok":
        table.add_row(escape(character_name(rec)), "[red]error[/]", "", escape(rec["error"] or ""))
        return
    p = f"{rec['p_machine']:.3f}"
    if rec["stable"] is not None:
        p += f" [dim]({rec['p_machine_min']:.2f}-{rec['p_machine_max']:.2f})[/]"
    table.add_row(escape(character_name(rec)), f"[{colour}]{rec['verdict']}[/]", p, ", ".join(rec["top_signals"]))


def score(
    scans: Scans,
    models: Models = None,
    fmt: Annotated[Format, typer.Option(
        "--format", help="table (terminal), json (an array of records), jsonl (one record per line) or csv "
                         "(flat columns, no heatmap).")] = Format.table,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the records to this file (atomically) instead of stdout; "
                               "with --format table, .csv gives CSV, .jsonl JSON lines, anything else JSON.")] = None,
    batch_size: BatchSize = 256,
    stability: StabilityOption = Stability.near,
    no_stability: NoStability = False,
    all_signals: AllSignals = False,
    t_machine: TMachine = None,
    t_human: THuman = None,
    seed: Annotated[int, typer.Option(help="Seed for torch and numpy. Scoring draws no random numbers (the re-scans "
                                           "are fixed), so results do not depend on it.")] = 0,
    device: Device = "cpu",
    threads: Threads = 1,
    workers: Workers = None,
    engine: EngineOption = Engine.local,
    quiet: Quiet = False,
    pages: Pages = None,
    prior: Prior = 0.5,
    html: Annotated[Optional[Path], typer.Option(
        "--html", help="Also write the HTML report (as `forensics report`) from the same single scoring pass.")] = None,
) -> None:
    """Score scans as human- or machine-written: verdict, p_machine and the signals behind it."""
    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from detectors.bundle import describe_bundle
    from forensics.inputs import expand_inputs
    from detectors.score import record_signals
    from forensics.checkpoint import atomic_open
    from reports.records import Grouping, report_meta, scope_text
    from reports.write import write_reports
    from reports.writers import RecordWriter

    fmt = fmt.value
    if output is not None and fmt == "table":  # a file wants records, not a drawing
        fmt = {".csv": "csv", ".jsonl": "jsonl"}.get(output.suffix.lower(), "json")
    torch.manual_seed(seed)
    np.random.seed(seed)
    set_threads(threads)
    stability = stability_mode(stability, no_stability)
    bundle = load_bundle(models, device)
    limits = thresholds(t_machine, t_human, bundle)
    names = record_signals(bundle, all_signals)
    grouping = Grouping.parse("auto")
    meta = report_meta(bundle=describe_bundle(bundle), thresholds=limits.to_dict(), grouping=grouping,
                       stability=stability.value, command=command_line(), signals=names, prior=prior,
                       page_model=bundle.page_model_meta())

    counts = {"human": 0, "machine": 0, "uncertain": 0, "error": 0}
    page_boxes: dict[str, tuple[int, int]] = {}  # page -> (boxes found, empty ones skipped)
    table = Table(title="forensics score")
    for column in ("file", "verdict", "p_machine", "top signals"):
        table.add_column(column, overflow="fold")  # whole paths and names, wrapped, never cut
    items = expand_inputs(scans)

    def tap(records, writer: Optional[RecordWriter]):
        for rec in records:
            counts["error" if rec["status"] != "ok" else rec["verdict"]] += 1
            if rec.get("boxes_on_page") is not None:
                page_boxes[rec["page"]] = (rec.get("boxes_on_page") or 0, rec.get("empty_on_page") or 0)
            if writer:
                writer.add(rec, grouping.document_of_record(rec))
            if fmt == "table" or (output is not None and table.row_count < MAX_ROWS_WITH_OUTPUT):
                _table_row(table, rec)
            yield rec
        if writer:
            writer.close()

    def consume(writer: Optional[RecordWriter]) -> None:
        # One scoring pass feeds the table, the records file and (with --html) the report.
        with progress_bar(len(items), quiet or (fmt != "table" and output is None)) as advance:  # stdout: records
            records = scorer(engine, workers)(items, bundle, batch_size=batch_size, stability=stability,
                                              thresholds=limits, progress=advance, pages=pages,
                                              prior=prior)
            stream = tap(records, writer)
            if html is None:
                for _ in stream:
                    pass
            else:
                write_reports(stream, meta, html=html, console=None)

    try:
        if fmt == "table":
            consume(None)
        elif output is not None:
            with atomic_open(output) as f:
                consume(RecordWriter(fmt, f, names))
        else:
            consume(RecordWriter(fmt, sys.stdout, names))
    except KeyboardInterrupt:
        err.print(f"interrupted after {sum(counts.values())} inputs" + ("; no output file written" if output else ""))
        raise typer.Exit(EXIT_INTERRUPTED)
    except OSError as exc:
        where = output if output is not None else "standard output"
        raise fail(f"{where}: cannot write ({exc.strerror or exc})", EXIT_SOME_FAILED)

    total = sum(counts.values())
    if fmt == "table":
        Console(soft_wrap=True).print(table)
    elif output is not None:
        if total > table.row_count:
            table.caption = f"first {table.row_count} of {total} inputs; all are in {escape(str(output))}"
        err.print(table)
    summary = (f"{total} {'records' if page_boxes else 'inputs'}: {counts['machine']} machine, "
               f"{counts['human']} human, {counts['uncertain']} uncertain, {counts['error']} failed")
    if page_boxes:
        found, empty = (sum(v[i] for v in page_boxes.values()) for i in (0, 1))
        summary += f" ({len(page_boxes)} pages, {found} boxes found, {empty} empty ones skipped)"
    err.print(summary + (f"; records in {escape(str(output))}" if output else "")
              + (f"; report in {escape(str(html))}" if html else ""), highlight=False)
    scope = scope_text(meta["bundle"])  # what a "human" verdict is worth, from the bundle's own metrics
    if scope and total:
        err.print(f"[dim]{escape(scope)}[/]", highlight=False)
    if total == 0:
        raise typer.Exit(EXIT_USAGE)
    raise typer.Exit(EXIT_SOME_FAILED if counts["error"] else EXIT_OK)


def calibrate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle folder to write (models, combiner, reference, stability bound, ablation, manifest).")],
    run: Annotated[Optional[Path], typer.Option("--run", help="Run folder written by train-generators (needs pixelcnn, dcgan and fcgan; a vae or diffusion there joins calibration as a forger family).")] = None,
    cnns_from: Annotated[Optional[Path], typer.Option("--cnns-from", help="Instead of --run: take the generators and both CNNs from this bundle as they are, train nothing, and fit the combiner, human reference and re-scan bound again (minutes instead of hours). Leave-one-generator-out figures are then carried from that bundle's ablation, marked so.")] = None,
    generators_from: Annotated[Optional[Path], typer.Option("--generators-from", help="Instead of --run: take the generators from this bundle and train every CNN again, as from a run (hours): for a bundle whose forgers sample differently now but were not retrained.")] = None,
    signals: Annotated[SignalSet, typer.Option("--signals", help="The combiner's signals. auto: fast, unless the PixelCNN's signals cut cross-validated log-loss by 1%; fast: all but the PixelCNN's; all; required: the discriminators and the PixelCNN likelihood.")] = SignalSet.auto,
    aligned_fakes: Annotated[bool, typer.Option("--aligned-fakes/--no-aligned-fakes", help="Half of the VAE's and the diffusion model's images as rewrites of human digits (aligned fakes). Off by default: the one bundle built with them (v8) accused 20% of another data set's honest writers against 7% (docs/models.md).")] = False,
    per_generator: Annotated[int, typer.Option(min=1, help="Samples drawn from each generator (and font forgeries made); as many MNIST test images are used per machine source.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed for sampling, print-and-scan and the fit/held-out split.")] = 0,
    data_dir: DataDir = None,
    device: Annotated[str, typer.Option(help="cpu or cuda: where the generators sample and the CNNs train (on a CPU, CNN training is most of the time).")] = "cpu",
    cnn_per_generator: Annotated[int, typer.Option(min=1, help="Samples of each generator the ScanCNN trains on (with 3x as many MNIST train digits), and font forgeries the FontCNN trains on; drawn with another seed than calibration's. More data is what raised held-out AUROC (docs/models.md).")] = 3000,
    cnn_epochs: Annotated[int, typer.Option(min=1, help="Epochs of CNN training (the ScanCNN, FontCNN and familiarity CNN shipped, a ScanCNN without each generator family for the ablation).")] = 8,
    cnn_channels: Annotated[str, typer.Option(help="The CNNs' three conv widths, comma-separated. The shipped bundle uses 32,64,128 (with --cnn-hidden 128): 3x the training time on a CPU, little more on a GPU.")] = "16,32,64",
    cnn_hidden: Annotated[int, typer.Option(min=1, help="Units of the CNNs' hidden layer.")] = 64,
    cnn_batch_size: Annotated[int, typer.Option(min=1, help="CNN training batch; on a GPU a larger batch trains the same epochs in fewer, barely slower steps.")] = 128,
    workers: Annotated[int, typer.Option(min=1, help="Processes that scan and preprocess the training and calibration images (about 2 ms an image each); the images do not depend on how many.")] = 1,
    sample_batch: Annotated[int, typer.Option(min=1, help="Images sampled per generator call.")] = 100,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for the models. Chunks of 8 images are small: on a busy machine 2 threads were measured 10x slower than 1.")] = 1,
) -> None:
    """Fit the detector on a run's generators (or refit a bundle's combiner, --cnns-from) and write a model bundle with an ablation table."""
    from detectors.calibrate import calibrate as run_calibration
    from detectors.cnn import CNNConfig

    set_threads(threads)
    check_device(device)
    try:
        channels = tuple(int(c) for c in cnn_channels.split(","))
        if len(channels) != 3 or min(channels) < 1:
            raise ValueError
    except ValueError:
        raise fail(f"--cnn-channels: expected three positive widths like 16,32,64, got {cnn_channels!r}") from None
    try:
        ab = run_calibration(run, out, per_generator=per_generator, seed=seed, signals=signals.value, cnns_from=cnns_from,
                             generators_from=generators_from,
                             data_dir=str(data_dir) if data_dir else None, device=device,
                             sample_batch=sample_batch, console=err, cnn_per_generator=cnn_per_generator,
                             cnn_config=CNNConfig(channels=channels, hidden=cnn_hidden, epochs=cnn_epochs,
                                                  batch_size=cnn_batch_size),
                             workers=workers, aligned_fakes=aligned_fakes,
                             command=" ".join(["forensics", *sys.argv[1:]]))
    except (CheckpointError, DataMissingError) as exc:
        raise fail(exc, EXIT_MISSING)
    except ForensicsError as exc:
        raise fail(exc)
    m = ab["heldout"]["all_generators"][f"ensemble_{ab['selected']}"]
    err.print(f"held-out ensemble: AUROC {m['auroc']:.4f}, AP {m['average_precision']:.4f}, "
              f"TPR at 1% FPR {m['tpr_at_1pct_fpr']:.4f}; bundle in {escape(str(out))} "
              f"(ablation in {escape(str(out / 'ablation.md'))})", highlight=False)
    err.print(f"pages: `forensics calibrate-pages --models {escape(str(out))}` adds the page model (without it any "
              "machine box makes a page machine)", highlight=False)


def calibrate_pages(
    models: Annotated[Path, typer.Option("--models", help="The bundle to add the page model to (its page_evidence.json and manifest are rewritten).")],
    seed: Annotated[int, typer.Option(help="Seed for the forms' order and captures and the generators' fresh samples.")] = 0,
    data_dir: DataDir = None,
    threads: Threads = 2,
) -> None:
    """Fit a bundle's page model: one likelihood ratio and verdict for a page's characters together (about 9 min).

    Forms of 1 to 20 characters, each through one capture, from the calibration's human pool (MNIST test[:5000]) and fresh samples of every forger family: detectors/page_calibration.py."""
    from detectors.page_calibration import calibrate_pages as fit

    set_threads(threads)
    try:
        model = fit(models, seed=seed, data_dir=str(data_dir) if data_dir else None, console=err,
                    command=" ".join(["forensics", *sys.argv[1:]]))
    except (CheckpointError, DataMissingError) as exc:
        raise fail(exc, EXIT_MISSING)
    except ForensicsError as exc:
        raise fail(exc)
    called = ", ".join(f"{k} {100 * v:.2f}%" for k, v in model.info["human_forms_called_machine"].items())
    err.print(f"page threshold {model.t_page:.3f}; calibration human forms called machine: {called}; "
              f"written to {escape(str(models))}", highlight=False)


def evaluate(
    human_dir: Annotated[Path, typer.Argument(help="Folder of human-written scans.")],
    machine_dir: Annotated[Path, typer.Argument(help="Folder of machine-made scans.")],
    models: Models = None,
    roc: Annotated[Optional[Path], typer.Option("--roc", help="Also write the ROC curve to this PNG.")] = None,
    t_machine: Annotated[Optional[float], typer.Option(
        min=0.0, max=1.0, show_default=False,
        help="Threshold whose false- and true-positive rates are reported. Default: the bundle's.")] = None,
    batch_size: BatchSize = 256,
    threads: Threads = 1,
) -> None:
    """Measure a bundle on a folder of human and a folder of machine scans."""
    import io

    from detectors.evaluate import evaluate_dirs

    set_threads(threads)
    bundle = load_bundle(models)
    try:
        m = evaluate_dirs(human_dir, machine_dir, bundle, roc_path=roc, t_machine=t_machine, batch_size=batch_size)
    except (ForensicsError, ValueError) as exc:
        raise fail(exc)
    except OSError as exc:
        raise fail(f"{roc}: cannot write ({exc.strerror or exc})", EXIT_SOME_FAILED)
    buf = io.StringIO()
    for key in ("n_human", "n_machine", "auroc", "average_precision", "tpr_at_1pct_fpr", "threshold",
                "fpr_at_threshold", "tpr_at_threshold"):
        v = m[key]
        buf.write(f"{key:18} {v:.4f}\n" if isinstance(v, float) else f"{key:18} {v}\n")
    buf.write(f"{'failed':18} {len(m['failed'])}\n")
    if "roc" in m:
        buf.write(f"{'roc':18} {m['roc']}\n")
    typer.echo(buf.getvalue(), nl=False)
    for f in m["failed"]:
        err.print(f"[red]error:[/] {escape(f['file'])}: {escape(f['error'])}", soft_wrap=True, highlight=False)
    raise typer.Exit(EXIT_SOME_FAILED if m["failed"] else EXIT_OK)
