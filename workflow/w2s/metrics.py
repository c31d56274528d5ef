"""Evaluation metrics. Each is a small pure function with a hand-checked unit test."""

from __future__ import annotations

import math

import numpy as np


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if len(predictions) != len(labels) or len(labels) == 0:
        raise ValueError(f"need equal, non-zero lengths; got {len(predictions)} and {len(labels)}")
    return float(np.mean(predictions == labels))


def accuracy_standard_error(acc: float, n: int) -> float:
    """Binomial standard error sqrt(p(1-p)/n) of an accuracy measured on n examples."""
    return math.sqrt(acc * (1.0 - acc) / n)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of examples where two models predict the same class."""
    return accuracy(a, b)


def performance_gap_recovered(weak: float, student: float, ceiling: float, min_gap: float = 0.0) -> tuple[float | None, str]:
    """PGR = (student - weak) / (ceiling - weak), or (None, reason) when the gap is too small to divide by."""
    gap = ceiling - weak
    if gap < min_gap or gap <= 0:
        return None, f"undefined: ceiling - weak = {gap:.4f} is below the minimum gap {min_gap:.4f}"
    return (student - weak) / gap, "ok"
