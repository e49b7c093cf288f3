"""Benchmarks: scripts that measure the project (run each as python benchmarks/<name>.py)."""
