"""Easy-to-hard splits: which items are easy and which hard, and which of them feed training and test.

A task's ``difficulty`` setting names where the difficulty comes from, either a column of the
task's data (``column``, with the values that count as ``easy``; every other value is hard) or a
rule this module knows (``rule``). The setting also names which items the weak teacher and the
student train on (``train``: weak_train, transfer and val) and which are tested (``test``), each
``easy``, ``hard`` or ``all``. Supervision that is reliable only on easy items, scored on hard ones,
is the easy-to-hard setting of Burns et al. (2023), Sun et al. (2024) and Hase et al. (2024).

Rules:
- ``length``: an item is easy when its word count is at most the ``easy_quantile`` quantile of the
  task's word counts (Hase et al. 2024 use question length as one measure of hardness).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .labeled import DataError, is_missing

EASY, HARD = "easy", "hard"
POOLS = (EASY, HARD, "all")


def _length_rule(texts: Sequence[str], setting: dict) -> np.ndarray:
    words = np.array([len(text.split()) for text in texts])
    cutoff = np.quantile(words, float(setting.get("easy_quantile", 0.5)))
    return np.where(words <= cutoff, EASY, HARD)


DIFFICULTY_RULES: dict[str, Callable[[Sequence[str], dict], np.ndarray]] = {"length": _length_rule}


def _from_column(task: str, setting: dict, values: Sequence[Any] | None) -> np.ndarray:
    column = setting["column"]
    if values is None:
        raise DataError(
            f"task {task!r}: difficulty column {column!r} was not read: its source gives no "
            f"difficulty values (use a rule, one of {sorted(DIFFICULTY_RULES)})"
        )
    missing = sum(is_missing(v) for v in values)
    counts = Counter(str(v) for v in values if not is_missing(v))
    if missing:
        raise DataError(
            f"task {task!r}: difficulty column {column!r} has {missing} missing values of "
            f"{len(values)} (values: {dict(counts)})"
        )
    if len(counts) < 2:
        raise DataError(f"task {task!r}: difficulty column {column!r} has a single value: {dict(counts)}")
    easy = {str(v) for v in setting.get("easy", [])}
    unknown = sorted(easy - set(counts))
    if not easy or unknown:
        raise DataError(
            f"task {task!r}: difficulty easy values {sorted(easy)} must be values of column "
            f"{column!r} (found {dict(counts)}; unknown: {unknown})"
        )
    return np.array([EASY if str(v) in easy else HARD for v in values])


def assign_difficulty(task: str, setting: dict, texts: Sequence[str], values: Sequence[Any] | None) -> np.ndarray:
    """``easy`` or ``hard`` per item, from a column's ``values`` or a rule on the ``texts``; a DataError
    names the task and the counts when one level is empty or values are missing."""
    if "column" in setting:
        levels = _from_column(task, setting, values)
    elif setting.get("rule") in DIFFICULTY_RULES:
        levels = DIFFICULTY_RULES[setting["rule"]](texts, setting)
    else:
        raise DataError(
            f"task {task!r}: difficulty needs a column or a rule, one of {sorted(DIFFICULTY_RULES)}; got {setting}"
        )
    counts = {level: int((levels == level).sum()) for level in (EASY, HARD)}
    if min(counts.values()) == 0:
        raise DataError(f"task {task!r}: difficulty leaves a level empty: {counts}")
    return levels


def pool_mask(levels: np.ndarray, pool: str) -> np.ndarray:
    """Which items a pool (``easy``, ``hard`` or ``all``) holds."""
    if pool not in POOLS:
        raise DataError(f"difficulty pool {pool!r} is not one of {POOLS}")
    return np.ones(len(levels), dtype=bool) if pool == "all" else levels == pool


def check_pool_sizes(task: str, levels: np.ndarray, setting: dict, sizes: dict[str, int]) -> None:
    """Before any split: the test pool must hold the test split, and what is left of the training
    pool the three training splits; a DataError names the pools, the sizes and the counts."""
    train, test = pool_mask(levels, setting.get("train", EASY)), pool_mask(levels, setting.get("test", HARD))
    n_test_pool = int(test.sum())
    n_train_left = int((train & ~test).sum()) + max(0, int((train & test).sum()) - sizes["test"])
    n_train = sizes["weak_train"] + sizes["transfer"] + sizes["val"]
    if n_test_pool < sizes["test"] or n_train_left < n_train:
        counts = {level: int((levels == level).sum()) for level in (EASY, HARD)}
        raise DataError(
            f"task {task!r}: easy-to-hard split cannot be filled: test from {setting.get('test', HARD)!r} "
            f"needs {sizes['test']} of {n_test_pool}; weak_train + transfer + val from "
            f"{setting.get('train', EASY)!r} need {n_train} of {n_train_left} left; items per level: {counts}"
        )


def subset_scores(correct: dict[str, np.ndarray], levels: np.ndarray) -> dict:
    """Per role and level: test accuracy on the easy and on the hard items, with the counts; an empty
    level gives None with a note, never 0."""
    out: dict = {}
    for level in (EASY, HARD):
        mask = levels == level
        out[f"n_test_{level}"] = int(mask.sum())
        for role, hits in correct.items():
            out[f"{role}_acc_{level}"] = float(hits[mask].mean()) if mask.any() else None
        if not mask.any():
            out[f"acc_{level}_note"] = f"the test split has no {level} items"
    return out
