"""The `forensics` command line: registers the commands of forensics/commands/ on one app.

Importing this module imports typer and rich, not torch: `forensics --help` and argument
errors answer at once; each command imports the models when it runs.
"""

from __future__ import annotations

import typer

from . import __version__
from .commands import detect, generate, report

app = typer.Typer(
    help="Tell human handwriting from machine-made characters in scanned forms.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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


# In the order `--help` lists them: the reviewer's commands first, then the builders'.
for name, command in (
    ("score", detect.score),
    ("report", report.report),
    ("preprocess", detect.preprocess),
    ("evaluate", detect.evaluate),
    ("train-generators", generate.train_generators),
    ("train-reader", generate.train_reader),
    ("calibrate", detect.calibrate),
    ("calibrate-pages", detect.calibrate_pages),
    ("sample", generate.sample),
    ("interpolate", generate.interpolate),
):
    app.command(name)(command)
