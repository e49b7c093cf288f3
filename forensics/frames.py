"""`forensics preprocess`: write the 28x28 frames the models see, one PNG per character: a
character scan gives ``<stem>.png``, a form page one PNG per written box,
``<stem>[_pN]_fF_bI.png`` (page N of a multi-page file, field F, box I; forensics.pages)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .checkpoint import atomic_write_bytes
from .errors import InputError
from .inputs import expand_inputs
from .pagefile import page_number
from .pages import characters_of

PROGRESS_MIN_FILES = 20  # show a progress bar from this many files on

def preprocess_to_folder(args: list[str], out_dir: str | os.PathLike, console: Console,
                         pages: Optional[bool] = None) -> tuple[int, int]:
    """Write one 28x28 PNG per character into ``out_dir``; returns (written, failed).

    Each failure prints one line ``error: <file>: <reason>`` and the batch goes on. When the
    arguments name no file at all, their errors are printed and (0, 0) is returned: there
    was nothing to process, which the CLI reports as a usage error.
    """
    out_dir = Path(out_dir)
    items = expand_inputs(args)
    files = [item for item in items if isinstance(item, Path)]
    if not files:
        for error in items:
            _print_failure(console, error)
        return 0, 0
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = f"cannot create the output folder ({exc.strerror or exc})"
        _print_failure(console, InputError(str(out_dir), reason))
        return 0, len(items)
    ok, failed = _write_frames(items, out_dir, console, pages)
    summary = f"{ok} of {ok + failed} characters written to {escape(str(out_dir))}"
    _print_line(console, summary + (f", {failed} failed" if failed else ""))
    return ok, failed


def _write_frames(items: list[Path | InputError], out_dir: Path, console: Console,
                  pages: Optional[bool]) -> tuple[int, int]:
    files = [item for item in items if isinstance(item, Path)]
    names = output_names(files)
    inputs = {os.path.realpath(path) for path in files}
    ok = failed = 0
    with _progress(console, len(items)) as progress:
        task = progress.add_task("preprocessing", total=len(items))
        for item in items:
            for result in ([item] if isinstance(item, InputError) else _write_characters(item, out_dir, names[item],
                                                                                          inputs, pages)):
                if isinstance(result, InputError):
                    _print_failure(progress.console, result)
                    failed += 1
                else:
                    ok += 1
            progress.advance(task)
    return ok, failed


def _write_characters(path: Path, out_dir: Path, name: str, inputs: set[str],
                      pages: Optional[bool]) -> list[InputError | None]:
    out = []
    for char in characters_of(path, pages):
        where = char.location
        target = out_dir / name
        if where.get("field") is not None:
            number = page_number(str(where["page"]), str(path))
            page = f"_p{number}" if number is not None else ""
            target = out_dir / f"{Path(name).stem}{page}_f{where['field']}_b{where['index']}.png"
        if isinstance(char.frame, InputError):
            out.append(char.frame)
        else:
            out.append(_write(path, char.frame, target, inputs))
    return out


def output_names(files: list[Path]) -> dict[Path, str]:
    """'<stem>.png' per file; stems shared by several files get a hash of the full path."""
    counts: dict[str, int] = {}
    for path in files:
        key = path.stem.casefold()  # 'A.png' and 'a.png' collide on macOS and Windows
        counts[key] = counts.get(key, 0) + 1
    return {path: f"{path.stem}{_suffix_if_shared(path, counts)}.png" for path in files}


def _suffix_if_shared(path: Path, counts: dict[str, int]) -> str:
    if counts[path.stem.casefold()] == 1:
        return ""
    return "-" + hashlib.sha1(os.fsencode(os.path.abspath(path))).hexdigest()[:8]


def _write(path: Path, frame: np.ndarray, target: Path, inputs: set[str]) -> None | InputError:
    if os.path.realpath(target) in inputs:  # e.g. --out pointing at the scans' own folder
        reason = f"refusing to overwrite the input scan {target}; choose another --out folder"
        return InputError(str(path), reason)
    try:
        atomic_write_bytes(target, _png_bytes(frame))
    except OSError as exc:
        return InputError(str(path), f"cannot write {target}: {exc.strerror or exc}")
    return None


def _png_bytes(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def _print_failure(console: Console, error: InputError) -> None:
    _print_line(console, f"[red]error:[/] {escape(error.path)}: {escape(error.reason)}")


def _print_line(console: Console, markup: str) -> None:
    # soft_wrap keeps a long line one line (for grep); no highlighting of numbers and paths.
    console.print(markup, soft_wrap=True, highlight=False)


def _progress(console: Console, total: int) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=total < PROGRESS_MIN_FILES,
    )
