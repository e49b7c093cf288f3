"""What the commands share: the console, usage errors, choices as Enums, and the options that
`score`, `report` and `evaluate` have in common, declared once as ``Annotated`` aliases.

Nothing here imports torch or the models: `forensics --help` and a bad argument answer at
once; each command imports what it needs when it runs.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from forensics.errors import EXIT_MISSING, EXIT_USAGE, CheckpointError

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
    dcgan = "dcgan"
    fcgan = "fcgan"


class GAN(str, enum.Enum):
    dcgan = "dcgan"
    fcgan = "fcgan"


class Preset(str, enum.Enum):
    smoke = "smoke"
    full = "full"


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
Stability = Annotated[bool, typer.Option(
    "--stability/--no-stability", help="Also score 4 re-scans of each image; a verdict that flips becomes uncertain.")]
TMachine = Annotated[float, typer.Option(min=0.0, max=1.0, help="Verdict 'machine' when p_machine >= this.")]
THuman = Annotated[float, typer.Option(min=0.0, max=1.0, help="Verdict 'human' when p_machine <= this.")]
Device = Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")]
Threads = Annotated[int, typer.Option(
    min=1, help="Torch CPU threads for work around the models; the models run on one thread "
                "(forensics.threads), so p_machine never depends on this.")]
Seed = Annotated[int, typer.Option(help="Seed: the same seed gives the same result.")]
DataDir = Annotated[Optional[Path], typer.Option(
    help="Data root (default: $FORENSICS_DATA, else a user cache folder).")]
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


def thresholds(t_machine: float, t_human: float):
    from detectors.score import Thresholds

    try:
        return Thresholds(t_machine=t_machine, t_human=t_human)
    except ValueError as exc:
        raise fail(exc)


def command_line() -> str:
    import shlex
    import sys

    return shlex.join(["forensics", *sys.argv[1:]])
