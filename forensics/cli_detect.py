"""`forensics score`, `calibrate` and `evaluate`: thin commands over detectors/.

Registered on the app of forensics/cli.py when that module imports this one.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Iterator, List, Optional, TextIO

import typer
from rich.markup import escape
from rich.table import Table

from .checkpoint import atomic_open
from .cli import _bundle, _check_device, _fail, app, err
from .errors import EXIT_INTERRUPTED, EXIT_MISSING, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, CheckpointError, DataMissingError, ForensicsError

FORMATS = ("table", "json", "csv")
MAX_ROWS_WITH_OUTPUT = 200  # with --output the file has every record; the terminal gets a glimpse


def _set_threads(n: int) -> None:
    import torch

    if n < 1:
        raise _fail(ValueError("--threads must be at least 1"), EXIT_USAGE)
    torch.set_num_threads(n)


class _Writer:
    """Streams records as a JSON array or CSV rows to a text stream."""

    def __init__(self, fmt: str, stream: TextIO):
        from detectors.score import csv_columns

        self.fmt, self.stream, self.count = fmt, stream, 0
        if fmt == "csv":
            self.csv = csv.DictWriter(stream, fieldnames=csv_columns(), lineterminator="\n")
            self.csv.writeheader()
        else:
            stream.write("[")

    def write(self, record: dict) -> None:
        from detectors.score import flat_row

        if self.fmt == "csv":
            self.csv.writerow(flat_row(record))
        else:
            self.stream.write(("," if self.count else "") + "\n" + json.dumps(record, separators=(",", ":")))
        self.count += 1

    def close(self) -> None:
        if self.fmt == "json":
            self.stream.write("\n]\n")


def _table_row(table: Table, rec: dict) -> None:
    colour = {"machine": "red", "human": "green", "uncertain": "yellow"}.get(rec["verdict"], "red")
    if rec["status"] != "ok":
        table.add_row(escape(rec["file"] or ""), "[red]error[/]", "", escape(rec["error"] or ""))
        return
    p = f"{rec['p_machine']:.3f}"
    if rec["stable"] is not None:
        p += f" [dim]({rec['p_machine_min']:.2f}-{rec['p_machine_max']:.2f})[/]"
    table.add_row(escape(rec["file"] or ""), f"[{colour}]{rec['verdict']}[/]", p, ", ".join(rec["top_signals"]))


@app.command()
def score(
    scans: List[str] = typer.Argument(..., help="Scan files, folders (searched recursively) or glob patterns."),
    models: Optional[Path] = typer.Option(None, "--models", help="Detector bundle folder. Default: the bundle shipped in detectors/bundle."),
    fmt: str = typer.Option("table", "--format", help="table (terminal), json (one record per input) or csv (flat columns, no heatmap)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the json or csv records to this file (atomically) instead of stdout."),
    batch_size: int = typer.Option(256, help="Images scored per model batch (memory vs speed; results do not depend on it)."),
    stability: bool = typer.Option(True, "--stability/--no-stability", help="Also score 4 re-scans of each image; a verdict that flips becomes uncertain."),
    t_machine: float = typer.Option(0.8, help="Verdict 'machine' when p_machine >= this."),
    t_human: float = typer.Option(0.2, help="Verdict 'human' when p_machine <= this."),
    seed: int = typer.Option(0, help="Seed for torch and numpy. Scoring draws no random numbers (the re-scans are fixed), so results do not depend on it."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    threads: int = typer.Option(1, help="Torch CPU threads for work around the models; the models always run on one thread (detectors.score.MODEL_THREADS), so p_machine never depends on this."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the HTML report (as `forensics report`) from the same single scoring pass."),
) -> None:
    """Score scans as human- or machine-written: verdict, p_machine and the signals behind it."""
    import numpy as np
    import torch

    from detectors.score import Thresholds, score_paths

    if fmt not in FORMATS:
        raise _fail(ValueError(f"--format must be one of {', '.join(FORMATS)}"), EXIT_USAGE)
    if output is not None and fmt == "table":
        fmt = "csv" if output.suffix.lower() == ".csv" else "json"  # a file wants records, not a drawing
    try:
        thresholds = Thresholds(t_machine=t_machine, t_human=t_human)
    except ValueError as exc:
        raise _fail(exc, EXIT_USAGE)
    if batch_size < 1:
        raise _fail(ValueError("--batch-size must be at least 1"), EXIT_USAGE)
    torch.manual_seed(seed)
    np.random.seed(seed)
    _set_threads(threads)
    bundle = _bundle(models, device)

    counts = {"human": 0, "machine": 0, "uncertain": 0, "error": 0}
    table = Table(title="forensics score")
    for column in ("file", "verdict", "p_machine", "top signals"):
        table.add_column(column, overflow="fold")  # whole paths and names, wrapped, never cut
    records = score_paths(scans, bundle, batch_size=batch_size, stability=stability, thresholds=thresholds)

    def tap(writer: Optional[_Writer]) -> Iterator[dict]:
        for rec in records:
            counts["error" if rec["status"] != "ok" else rec["verdict"]] += 1
            if writer:
                writer.write(rec)
            if fmt == "table" or (output is not None and table.row_count < MAX_ROWS_WITH_OUTPUT):
                _table_row(table, rec)
            yield rec
        if writer:
            writer.close()

    def consume(writer: Optional[_Writer]) -> None:
        # One scoring pass feeds the table, the records file and (with --html) the report.
        stream = tap(writer)
        if html is None:
            for _ in stream:
                pass
            return
        import shlex

        from reports.records import Grouping, report_meta, write_reports

        meta = report_meta(bundle=bundle, thresholds=thresholds, grouping=Grouping.parse("auto"),
                           stability=stability, command=shlex.join(["forensics", *sys.argv[1:]]))
        write_reports(stream, meta, html=html, console=None)

    try:
        if fmt == "table":
            consume(None)
        elif output is not None:
            with atomic_open(output) as f:
                consume(_Writer(fmt, f))
        else:
            consume(_Writer(fmt, sys.stdout))
    except KeyboardInterrupt:
        err.print(f"interrupted after {sum(counts.values())} inputs" + ("; no output file written" if output else ""))
        raise typer.Exit(EXIT_INTERRUPTED)
    except OSError as exc:
        where = output if output is not None else "standard output"
        raise _fail(ForensicsError(f"{where}: cannot write ({exc.strerror or exc})"), EXIT_SOME_FAILED)

    total = sum(counts.values())
    if fmt == "table":
        from rich.console import Console

        Console(soft_wrap=True).print(table)
    elif output is not None:
        if total > table.row_count:
            table.caption = f"first {table.row_count} of {total} inputs; all are in {escape(str(output))}"
        err.print(table)
    summary = (f"{total} inputs: {counts['machine']} machine, {counts['human']} human, "
               f"{counts['uncertain']} uncertain, {counts['error']} failed")
    err.print(summary + (f"; records in {escape(str(output))}" if output else "")
              + (f"; report in {escape(str(html))}" if html else ""), highlight=False)
    from reports.records import bundle_info, scope_text

    scope = scope_text(bundle_info(bundle))  # what a "human" verdict is worth, from the bundle's own metrics
    if scope and total:
        err.print(f"[dim]{escape(scope)}[/]", highlight=False)
    if total == 0:
        raise typer.Exit(EXIT_USAGE)
    raise typer.Exit(EXIT_SOME_FAILED if counts["error"] else EXIT_OK)


@app.command()
def calibrate(
    run: Path = typer.Option(..., "--run", help="Run folder written by train-generators (needs pixelcnn, dcgan and fcgan)."),
    out: Path = typer.Option(..., "--out", "-o", help="Bundle folder to write (models, combiner, reference, ablation, manifest)."),
    per_generator: int = typer.Option(2000, help="Samples drawn from each generator (and font forgeries made); as many MNIST test images are used per machine source."),
    seed: int = typer.Option(0, help="Seed for sampling, print-and-scan and the fit/held-out split."),
    data_dir: Optional[Path] = typer.Option(None, help="Data root with the MNIST test split (default: $FORENSICS_DATA, else a user cache folder)."),
    device: str = typer.Option("cpu", help="cpu or cuda: where the generators sample and the 5 CNNs train (on a CPU, CNN training is most of the time)."),
    cnn_per_generator: int = typer.Option(3000, help="Samples of each generator the ScanCNN trains on (with 3x as many MNIST train digits), and font forgeries the FontCNN trains on; drawn with another seed than calibration's. Held-out AUROC 0.973 / 0.984 / 0.989 / 0.990 at 4500 / 12000 / 24000 / 48000 with the default width; the shipped bundle used 24000 with --cnn-channels 32,64,128 --cnn-hidden 128 (0.993) and --device cuda, 5.4 min on one H100; 12000 at the default width took 76 min on 2 CPU cores."),
    cnn_epochs: int = typer.Option(8, help="Epochs of CNN training (5 CNNs: the ScanCNN and FontCNN shipped, a ScanCNN without each generator for the ablation)."),
    cnn_channels: str = typer.Option("16,32,64", help="The CNNs' three conv widths, comma-separated. The shipped bundle uses 32,64,128 (with --cnn-hidden 128): 3x the training time on a CPU, little more on a GPU."),
    cnn_hidden: int = typer.Option(64, help="Units of the CNNs' hidden layer."),
    cnn_batch_size: int = typer.Option(128, help="CNN training batch; on a GPU a larger batch trains the same epochs in fewer, barely slower steps (2.6 -> 3.1 ms from 128 to 256 on an H100)."),
    workers: int = typer.Option(1, help="Processes that scan and preprocess the training and calibration images (about 2 ms an image each); the images do not depend on how many."),
    sample_batch: int = typer.Option(100, help="Images sampled per generator call."),
    threads: int = typer.Option(1, help="CPU threads for the models. Chunks of 8 images are small: on a busy machine 2 threads were measured 10x slower than 1."),
) -> None:
    """Fit the detector on the run's generators and write a model bundle with an ablation table."""
    from detectors.calibrate import calibrate as run_calibration
    from detectors.cnn import CNNConfig

    _set_threads(threads)
    _check_device(device)
    if min(cnn_epochs, cnn_hidden, cnn_batch_size, workers) < 1:
        raise _fail(ValueError("--cnn-epochs, --cnn-hidden, --cnn-batch-size and --workers must be at least 1"), EXIT_USAGE)
    try:
        channels = tuple(int(c) for c in cnn_channels.split(","))
        if len(channels) != 3 or min(channels) < 1:
            raise ValueError
    except ValueError:
        raise _fail(ValueError(f"--cnn-channels: expected three positive widths like 16,32,64, got {cnn_channels!r}"),
                    EXIT_USAGE) from None
    try:
        ab = run_calibration(run, out, per_generator=per_generator, seed=seed,
                             data_dir=str(data_dir) if data_dir else None, device=device,
                             sample_batch=sample_batch, console=err, cnn_per_generator=cnn_per_generator,
                             cnn_config=CNNConfig(channels=channels, hidden=cnn_hidden, epochs=cnn_epochs,
                                                  batch_size=cnn_batch_size),
                             workers=workers,
                             command=" ".join(["forensics", *sys.argv[1:]]))
    except (CheckpointError, DataMissingError) as exc:
        raise _fail(exc, EXIT_MISSING)
    except ForensicsError as exc:
        raise _fail(exc, EXIT_USAGE)
    m = ab["heldout"]["all_generators"][f"ensemble_{ab['selected']}"]
    err.print(f"held-out ensemble: AUROC {m['auroc']:.4f}, AP {m['average_precision']:.4f}, "
              f"TPR at 1% FPR {m['tpr_at_1pct_fpr']:.4f}; bundle in {escape(str(out))} "
              f"(ablation in {escape(str(out / 'ablation.md'))})", highlight=False)


@app.command()
def evaluate(
    human_dir: Path = typer.Argument(..., help="Folder of human-written scans."),
    machine_dir: Path = typer.Argument(..., help="Folder of machine-made scans."),
    models: Optional[Path] = typer.Option(None, "--models", help="Detector bundle folder. Default: the bundle shipped in detectors/bundle."),
    roc: Optional[Path] = typer.Option(None, "--roc", help="Also write the ROC curve to this PNG."),
    t_machine: float = typer.Option(0.8, help="Threshold whose false- and true-positive rates are reported."),
    batch_size: int = typer.Option(256, help="Images scored per model batch."),
    threads: int = typer.Option(1, help="Torch CPU threads for work around the models; the models always run on one thread (detectors.score.MODEL_THREADS), so p_machine never depends on this."),
) -> None:
    """Measure a bundle on a folder of human and a folder of machine scans."""
    from detectors.evaluate import evaluate_dirs

    _set_threads(threads)
    bundle = _bundle(models)
    try:
        m = evaluate_dirs(human_dir, machine_dir, bundle, roc_path=roc, t_machine=t_machine, batch_size=batch_size)
    except ForensicsError as exc:
        raise _fail(exc, EXIT_USAGE)
    except ValueError as exc:
        raise _fail(exc, EXIT_USAGE)
    except OSError as exc:
        raise _fail(ForensicsError(f"{roc}: cannot write ({exc.strerror or exc})"), EXIT_SOME_FAILED)
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
