"""The `forensics` command line: a thin layer over functions the tests call directly."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE

app = typer.Typer(
    help="Tell human handwriting from machine-made characters in scanned forms.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"forensics {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Exit codes: 0 all inputs processed; 1 some inputs failed (the rest were processed);
    2 bad usage or nothing to process; 3 data, checkpoint or model missing; 130 interrupted."""


@app.command()
def preprocess(
    scans: List[str] = typer.Argument(..., help="Scan files, folders (searched recursively) or glob patterns."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the 28x28 PNGs the models will see."),
) -> None:
    """Bring scans to the MNIST frame (28x28, ink bright, centred) and write them as PNGs."""
    from .preprocess import preprocess_to_folder

    ok, failed = preprocess_to_folder(scans, out, console=err)
    if ok + failed == 0:
        err.print("[red]error:[/] no input files found")
        raise typer.Exit(EXIT_USAGE)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)
