"""forensics: tell human handwriting from machine-made characters.

Shared plumbing lives here: data loading, scan preprocessing, checkpoints, the CLI.
"""

__version__ = "0.1.0"
