"""`python -m forensics`: the same command line as the `forensics` script."""

from .cli import app

app(prog_name="forensics")
