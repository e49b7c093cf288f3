"""Turn command-line arguments (files, folders, glob patterns) into a list of input files.

Nothing is dropped silently: every argument yields either files or an ``InputError``
record saying why it yielded none, in the order the arguments were given. The only
files skipped on purpose are hidden ones and the sidecar files that desktop systems
scatter through folders of scans (``.DS_Store``, ``Thumbs.db``...).
"""

from __future__ import annotations

import errno
import glob
import os
import stat
from pathlib import Path
from typing import Iterator

from .errors import InputError

# Files that operating systems leave in folders; never scans, so never reported.
SIDECAR_NAMES = frozenset({"Thumbs.db", "ehthumbs.db", "desktop.ini", "Desktop.ini", ".DS_Store"})

_ERRNO_REASONS = {
    errno.ENOENT: "no such file or folder",
    errno.ELOOP: "symlink loop",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENAMETOOLONG: "file name too long",
    errno.ENOTDIR: "a part of the path is not a folder",
}


def describe_os_error(path: str | os.PathLike, exc: OSError) -> str:
    """A short reason for an OSError on ``path``, without Python's '[Errno N]' noise."""
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return "broken symlink (its target does not exist)"
    return _ERRNO_REASONS.get(exc.errno, (exc.strerror or str(exc)).lower())


def expand_inputs(args: list[str]) -> list[Path | InputError]:
    """Files named by ``args``, in argument order, each real file once.

    An argument may be a file, a folder (searched recursively, sorted by name, hidden
    files and sidecars skipped; a symlinked folder is followed unless it leads back into
    a folder being searched) or a glob pattern (``**`` recurses but, like the shell's,
    does not follow symlinked folders). A path that does not exist, a pattern that
    matches nothing, an empty folder, a symlink loop or a special file (pipe, device)
    becomes an ``InputError`` record in its place.
    """
    results: list[Path | InputError] = []
    seen: set[str] = set()
    for arg in args:
        for item in _expand_arg(arg):
            if isinstance(item, Path):
                key = _identity(item)
                if key in seen:
                    continue
                seen.add(key)
            results.append(item)
    return results


def _identity(path: Path) -> str:
    # The same file reached as 'a.png', './a.png', a symlink or via 'dir/../a.png'.
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):  # RuntimeError: symlink loop on Python < 3.13
        return os.path.abspath(path)


def _expand_arg(arg: str) -> Iterator[Path | InputError]:
    if os.path.lexists(arg):  # checked first: a real file may have '[' or '*' in its name
        found = list(_expand_path(Path(arg), ancestors=frozenset()))
        yield from found or [InputError(arg, "empty folder (no files in it or below it)")]
    elif glob.has_magic(arg):
        yield from _expand_glob(arg)
    else:
        yield InputError(arg, "no such file or folder")


def _expand_path(path: Path, ancestors: frozenset) -> Iterator[Path | InputError]:
    try:
        st = os.stat(path)
    except OSError as exc:
        yield InputError(str(path), describe_os_error(path, exc))
        return
    if stat.S_ISREG(st.st_mode):
        yield path
    elif stat.S_ISDIR(st.st_mode):
        yield from _walk_folder(path, st, ancestors)
    else:
        # Opening a pipe would block forever, a device would stream junk.
        yield InputError(str(path), "not a regular file (a pipe, socket or device)")


def _walk_folder(folder: Path, st: os.stat_result, ancestors: frozenset) -> Iterator[Path | InputError]:
    folder_id = (st.st_dev, st.st_ino)
    if folder_id in ancestors:  # a symlink back to a folder we are already inside
        yield InputError(str(folder), "symlink loop (links back to a folder that contains it)")
        return
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        yield InputError(str(folder), f"cannot list folder: {describe_os_error(folder, exc)}")
        return
    inside = ancestors | {folder_id}
    for name in names:
        if not _is_skipped_name(name):
            yield from _expand_path(folder / name, inside)


def _is_skipped_name(name: str) -> bool:
    return name.startswith(".") or name in SIDECAR_NAMES


def _expand_glob(pattern: str) -> Iterator[Path | InputError]:
    matches = sorted(m for m in _glob_no_symlink_recursion(pattern) if not _is_hidden_match(m, pattern))
    if not matches:
        yield InputError(pattern, "no file matches this pattern")
        return
    found = [item for match in matches for item in _expand_path(match, ancestors=frozenset())]
    yield from found or [InputError(pattern, "this pattern matches only empty folders")]


def _glob_no_symlink_recursion(pattern: str) -> list[Path]:
    """Like glob.glob(pattern, recursive=True), without following symlinked folders.

    glob.glob follows them in '**', so two symlinks to '.' explode into 2**40 paths; pathlib's
    glob does not follow them, but takes only relative patterns: split off the literal
    leading folders and glob the rest from there.
    """
    parts = Path(pattern).parts
    first_magic = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    base = Path(*parts[:first_magic]) if first_magic else Path(".")
    rest = "/".join(parts[first_magic:])
    try:
        return list(base.glob(rest))
    except (OSError, ValueError):  # unreadable base folder, malformed pattern
        return []


def _is_hidden_match(match: Path, pattern: str) -> bool:
    # pathlib's '*' matches dot-files, the shell's does not; follow the shell unless the
    # pattern itself asks for hidden names.
    if any(part.startswith(".") and part not in (".", "..") for part in Path(pattern).parts):
        return False
    return any(_is_skipped_name(part) for part in match.parts if part not in (".", ".."))
