"""What the commands share: the console, usage errors, choices as Enums, and the options that
`score`, `report` and `evaluate` have in common, declared once as ``Annotated`` aliases.

Nothing here imports torch or the models: `forensics --help` and a bad argument answer at
once; each command imports what it needs when it runs.
"""

from __future__ import annotations

import contextlib
import enum
import sys
from pathlib import Path
from typing import Annotated, Callable, Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from forensics.errors import EXIT_MISSING, EXIT_USAGE, CheckpointError
from forensics.record import Stability

err = Console(stderr=True)


def fail(exc: Exception | str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: <message>`` on stderr; returns the Exit to raise."""
    err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # never break a file name
    return typer.Exit(code)


# --------------------------------------------------------------------------- choices


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class Model(str, enum.Enum):
    pixelcnn = "pixelcnn"
    pixelcnn_bin = "pixelcnn-bin"
    autoencoder = "autoencoder"
    vae = "vae"
    diffusion = "diffusion"
    dcgan = "dcgan"
    fcgan = "fcgan"


class Latent(str, enum.Enum):
    """Models with a latent space to walk."""
    dcgan = "dcgan"
    fcgan = "fcgan"
    vae = "vae"
    diffusion = "diffusion"


class Preset(str, enum.Enum):
    smoke = "smoke"
    full = "full"


class Engine(str, enum.Enum):
    local = "local"
    ray = "ray"


class SignalSet(str, enum.Enum):
    auto = "auto"
    fast = "fast"
    all = "all"
    required = "required"


class Walk(str, enum.Enum):
    slerp = "slerp"
    lerp = "lerp"
    dim = "dim"


# --------------------------------------------------------------------------- shared options

Scans = Annotated[List[str], typer.Argument(help="Scan files, folders (searched recursively) or glob patterns.")]
Models = Annotated[Optional[Path], typer.Option(
    "--models", help="Detector bundle folder. Default: the bundle shipped in detectors/bundle.")]
BatchSize = Annotated[int, typer.Option(
    min=1, help="Images scored per model batch (memory vs speed; results do not depend on it).")]
StabilityOption = Annotated[Stability, typer.Option(
    "--stability", help="Re-scan check: each checked scan is also scored as 4 simulated re-scans, and a verdict that "
                        "any of them flips becomes uncertain. near: only scans whose verdict a re-scan could flip "
                        "(closer to a threshold than the bundle's measured bound); all: every scan; off: none.")]
NoStability = Annotated[bool, typer.Option("--no-stability", help="The same as --stability off.")]
AllSignals = Annotated[bool, typer.Option(
    "--all-signals", help="Also compute the signals the bundle's combiner does not use (the PixelCNN's, 10 forward "
                          "passes per scan, several times slower) and the PixelCNN heatmap; verdicts are the same.")]
TMachine = Annotated[Optional[float], typer.Option(
    min=0.0, max=1.0, show_default=False,
    help="Verdict 'machine' when p_machine >= this. Default: the bundle's (fitted by calibrate; 0.8 if it has none).")]
THuman = Annotated[Optional[float], typer.Option(
    min=0.0, max=1.0, show_default=False, help="Verdict 'human' when p_machine <= this. Default: the bundle's (0.2).")]
Device = Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")]
Threads = Annotated[int, typer.Option(
    min=1, help="Torch CPU threads for work around the models; the models run on one thread "
                "(forensics.threads), so p_machine never depends on this.")]
Seed = Annotated[int, typer.Option(help="Seed: the same seed gives the same result.")]
DataDir = Annotated[Optional[Path], typer.Option(
    help="Data root (default: $FORENSICS_DATA, else a user cache folder).")]
def _open_unit_interval(value: float) -> float:
    if not 0.0 < value < 1.0:
        raise typer.BadParameter(f"{value} is not strictly between 0 and 1")
    return value


Prior = Annotated[float, typer.Option(
    callback=_open_unit_interval,
    help="The share of forgeries you expect among the characters: p_machine (and so verdicts and rankings) "
         "is the posterior at this prior from each record's likelihood ratio. 0.5 is the calibration's own mix.")]
Pages = Annotated[Optional[bool], typer.Option(
    "--pages/--no-pages", show_default="decided per file",
    help="Treat every input as a form page (find its printed character boxes, score each written one), or "
         "none (each file is one character). Left out: PDFs, multi-page TIFFs and images at least 1000 px on "
         "both sides are pages.")]
Workers = Annotated[Optional[int], typer.Option(
    min=1, help="Processes that read, preprocess and score the scans (default: every core); the records do not "
                "depend on how many.")]
EngineOption = Annotated[Engine, typer.Option(
    "--engine", help="local: worker processes on this machine; ray: a Ray cluster (RAY_ADDRESS, else a local "
                     "instance), same records (needs pip install 'forensics[ray]').")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar (there is none when stdout is not a terminal).")]
GroupBy = Annotated[str, typer.Option(
    "--group-by",
    help="Documents (forms): 'auto' (parent folder; the table shows when inputs span 2+ folders), 'folder', "
         "'none', or a REGEX searched in each file name whose first group is the document id.")]


# --------------------------------------------------------------------------- helpers


def check_device(name: str) -> None:
    """A --device the models can load on, or a usage error saying why (a CUDA name on a
    machine without CUDA otherwise surfaces as 'not a readable checkpoint')."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise fail(f"--device {name!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise fail(f"--device {name}: torch sees no CUDA GPU on this machine; use --device cpu")


def set_threads(n: int) -> None:
    from forensics.threads import set_threads as _set

    _set(n)


def load_bundle(models: Optional[Path], device: str = "cpu"):
    """The detector bundle (the shipped one when ``models`` is None), or exit 3 saying why."""
    from detectors.bundle import load_bundle as _load

    check_device(device)
    try:
        return _load(models, device=device)
    except CheckpointError as exc:
        raise fail(exc, EXIT_MISSING)


def stability_mode(stability: Stability, no_stability: bool) -> Stability:
    if no_stability and stability not in (Stability.near, Stability.off):
        raise fail(f"--no-stability contradicts --stability {stability.value}")
    return Stability.off if no_stability else stability


def thresholds(t_machine: Optional[float], t_human: Optional[float], bundle):
    """The verdict thresholds: each one given, else the bundle's."""
    from detectors.score import Thresholds

    default = bundle.thresholds
    try:
        return Thresholds(t_machine=default.t_machine if t_machine is None else t_machine,
                          t_human=default.t_human if t_human is None else t_human)
    except ValueError as exc:
        raise fail(exc)


@contextlib.contextmanager
def progress_bar(total: int, quiet: bool, what: str = "scoring") -> Iterator[Optional[Callable[[int], None]]]:
    """A rich progress bar on stderr with scans/s and the time left, as a callback taking the
    number of inputs just finished; None (no bar) with --quiet, when stdout is not a terminal
    (a script is reading it), or for a handful of inputs."""
    if quiet or total < 2 or not sys.stdout.isatty() or not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("[progress.data.speed]{task.fields[rate]}"),
               TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(what, total=total, rate="")
        state = bar.tasks[-1]  # the task just added

        def advance(n: int) -> None:
            bar.advance(task, n)
            bar.update(task, rate=f"{state.speed:.1f} scans/s" if state.speed else "")

        yield advance


def scorer(engine: Engine, workers: Optional[int]):
    """The score_items of the engine asked for, with the worker count filled in."""
    import functools

    if engine is Engine.ray:
        from detectors.ray_engine import score_items

        return functools.partial(score_items, workers=workers)
    from detectors.engine import default_workers, score_items

    return functools.partial(score_items, workers=workers or default_workers())


def command_line() -> str:
    import shlex

    return shlex.join(["forensics", *sys.argv[1:]])
