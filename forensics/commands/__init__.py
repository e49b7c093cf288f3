"""The commands of the `forensics` CLI, as plain functions: forensics/cli.py registers them.

Each module imports only what sits below it (detectors, reports, generators, plumbing) and
never the CLI, so the CLI is a thin layer and every command can be called from a test.
"""
