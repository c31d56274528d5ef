"""Shared types of the task suite: a task turns hub rows into classifier items.

A ``SuiteTask`` names a hub dataset (path, config, labeled splits), the columns its
formatter reads, its label names and ``to_items``, which turns one row into zero or
more ``Item``s. Items made from one question (or passage) share a ``group`` so the
splitter can keep them in one split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..tasks import DataError


class SuiteError(DataError):
    """A suite task's data is unusable; the message names the task (and row or column)."""


@dataclass(frozen=True)
class Item:
    """One classifier example made from a dataset row."""

    text: str
    label: int
    group: str


RowToItems = Callable[[Mapping[str, Any], int, np.random.Generator], list[Item]]


@dataclass(frozen=True)
class SuiteTask:
    """A registry entry: where the rows live and how one row becomes items."""

    name: str
    hf_path: str
    hf_config: str | None
    splits: tuple[str, ...]
    columns: tuple[str, ...]
    label_names: tuple[str, ...]
    to_items: RowToItems
    description: str = ""
    revision: str | None = None  # a hub branch, e.g. the parquet export of a script-only dataset


def require_columns(task: SuiteTask, column_names: Iterable[str]) -> None:
    """Raise SuiteError naming the task and every column its formatter needs but lacks."""
    available = list(column_names)
    missing = [c for c in task.columns if c not in available]
    if missing:
        raise SuiteError(
            f"suite task {task.name!r}: missing column(s) {missing}; "
            f"available columns: {available}"
        )


def row_error(task_name: str, row_index: int, problem: str) -> SuiteError:
    """The error for an unusable row: names the task and the row."""
    return SuiteError(f"suite task {task_name!r}: row {row_index}: {problem}")


def binary_pair(task: str, index: int, stem: str, candidates: list[Any], correct: int,
          rng: np.random.Generator) -> list[Item]:
    """The correct candidate and one sampled wrong candidate, as two items of one group."""
    if not 0 <= correct < len(candidates):
        raise row_error(task, index, f"correct index {correct} out of range "
                                     f"for {len(candidates)} candidates")
    wrong = [c for k, c in enumerate(candidates)
             if k != correct and isinstance(c, str) and c.strip()]
    if not wrong:
        raise row_error(task, index, "no wrong candidate")
    other = wrong[int(rng.integers(len(wrong)))]
    return [Item(f"{stem}\nAnswer: {candidates[correct]}", 1, f"q{index}"),
            Item(f"{stem}\nAnswer: {other}", 0, f"q{index}")]


def passage_group(passage: str) -> str:
    """A short, stable group id for a passage (the same text gives the same id), so items made from
    one passage's several questions share a split."""
    return "p" + hashlib.sha1(passage.encode("utf-8")).hexdigest()[:12]
