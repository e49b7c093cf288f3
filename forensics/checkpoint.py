"""Checkpoints: atomic writes, safe loads, and a JSON manifest of what a file holds.

A checkpoint is written to a temporary file in the same folder, fsynced, then renamed
over the old one, so a crash or power loss leaves either the old file or the new one.
Loads use ``weights_only=True``: a checkpoint is data, never code.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Iterator

import torch

from .errors import CheckpointError

MANIFEST_VERSION = 1


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems (and Windows) cannot open folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open ``path`` for writing so readers see the old file or the whole new one: the content
    goes to a temporary file in the same folder, which is fsynced and renamed over ``path``
    when the block ends without an exception (and removed when it raises). Streams, so a
    large report or record file never sits in memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def _is_atomic_temp_name(name: str) -> bool:
    # atomic_open names its temporary files ".<target name>.<8 random chars>.tmp".
    return name.startswith(".") and name.endswith(".tmp") and len(name.split(".")) >= 4


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that writers killed mid-write (SIGKILL, power loss) left
    in ``folder``; returns what was deleted. Call it only where one process owns the folder
    (a training run's folder, at start), or it could delete another writer's file in flight."""
    deleted = []
    try:
        names = os.listdir(folder)
    except OSError:
        return deleted
    for name in names:
        f = Path(folder) / name
        if _is_atomic_temp_name(name) and f.is_file() and not f.is_symlink():
            try:
                f.unlink()
                deleted.append(f)
            except FileNotFoundError:
                pass
    return deleted


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save, atomically. ``obj`` should hold tensors, numbers, strings, lists, dicts."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint as data only; any failure becomes a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load: the file holds Python objects other than tensors and "
            f"plain data, which could run code ({_refusal_detail(exc)})"
        ) from exc
    except Exception as exc:  # truncated zip, wrong format, ...
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc


def _refusal_detail(exc: Exception) -> str:
    # torch's message opens with advice to retry with weights_only=False, i.e. to run the
    # file's code; what a user needs is the line naming what the file tried to call.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "global" in line.lower():  # "... unsupported GLOBAL posix.system ..."
            return line
    return next((line for line in lines if "weights_only" not in line), type(exc).__name__)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_manifest(path: str | os.PathLike, files: list[str | os.PathLike], **info: Any) -> Path:
    """A JSON manifest for checkpoint files: what they hold, and their SHA-256 checksums."""
    path = Path(path)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__,
        **info,
        "files": {Path(f).name: {"sha256": sha256_file(f), "bytes": os.path.getsize(f)} for f in files},
    }
    return atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")


def read_manifest(path: str | os.PathLike, verify: bool = True) -> dict:
    """Read a manifest; with ``verify``, check every listed file against its checksum."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: manifest not found") from exc
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable manifest ({exc})") from exc
    if verify:
        for name, meta in manifest.get("files", {}).items():
            f = path.parent / name
            if not f.is_file():
                raise CheckpointError(f"{f}: listed in {path.name} but missing")
            if sha256_file(f) != meta.get("sha256"):
                raise CheckpointError(f"{f}: checksum does not match {path.name}: the file was changed or damaged")
    return manifest
