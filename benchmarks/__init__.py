"""Benchmarks: each module measures the project (`python -m benchmarks.NAME`; all: `python -m benchmarks.run`)."""
