"""Weak-to-strong generalization experiments: the Python side of the Snakemake workflow."""

__version__ = "0.1.0"
