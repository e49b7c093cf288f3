"""Experiments that measured an idea once: not installed, not the product (see README.md here)."""
