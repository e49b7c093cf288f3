"""Errors the tool reports to users, and the exit codes scripts can rely on."""

from __future__ import annotations

# Exit codes (documented in the README; scripts branch on them).
EXIT_OK = 0  # every input was processed
EXIT_SOME_FAILED = 1  # at least one input failed; all others were processed
EXIT_USAGE = 2  # bad command line or nothing to process (typer uses 2 as well)
EXIT_MISSING = 3  # data, checkpoint or model bundle missing or unreadable
EXIT_INTERRUPTED = 130  # Ctrl-C, after saving what could be saved


class ForensicsError(Exception):
    """Base class: an error whose message is fit to show a user as is."""


class InputError(ForensicsError):
    """One input file cannot be used. Carries the file so batch callers can report it."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # picklable, so worker processes can send and receive it
        return (type(self), (self.path, self.reason))


class DataMissingError(ForensicsError):
    """A data set is not on disk and could not be downloaded."""


class CheckpointError(ForensicsError):
    """A checkpoint or model bundle is missing, corrupt, tampered with or unsafe."""
