"""Shared types of the task suite: a task turns hub rows into classifier items.

A ``SuiteTask`` names a hub dataset (path, config, labeled splits), the columns its
formatter reads, its label names and ``to_items``, which turns one row into zero or
more ``Item``s. Items made from one question (or passage) share a ``group`` so the
splitter can keep them in one split.

It also records the layout it reads on the hub. Either parquet files on ``main`` (whose
README declares the configs), or the hub's parquet export branch, ``refs/convert/parquet``,
which holds ``<config>/<split>/0000.parquet`` and no README: ``datasets`` then infers one
``default`` config from folder names, so a config is chosen there with ``data_dir``, never
with a config name. A local copy (spec ``path``) is read with the same arguments, minus the
branch, and so must be laid out like the branch it stands for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..labeled import DataError

PARQUET_EXPORT = "refs/convert/parquet"  # the branch the hub's dataset viewer writes parquet to


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
    revision: str | None = None  # None: main; PARQUET_EXPORT: the parquet export branch
    data_dir: str | None = None  # the folder read on that branch (the export branch's <config>)
    data_files: Mapping[str, str] | None = None  # split -> glob, where datasets cannot infer them
    main_files: str = "data/{split}-00000-of-00001.parquet"  # one split's file on main

    @property
    def files(self) -> str:
        """The path of one split's file on the branch read (``{split}`` stands for the split)."""
        if self.revision == PARQUET_EXPORT:
            return f"{self.data_dir or 'default'}/{{split}}/0000.parquet"
        return self.main_files

    @property
    def layout(self) -> str:
        """Where the rows are read, in words: the branch and, where one is chosen, the folder."""
        branch = "parquet export branch" if self.revision == PARQUET_EXPORT else (self.revision or "main")
        chosen = (
            f"data_dir {self.data_dir!r}"
            if self.data_dir
            else (f"config {self.hf_config!r}" if self.hf_config else "default config")
        )
        return f"{branch}, {chosen}: {self.files}"

    def load_kwargs(self, path: str) -> dict[str, Any]:
        """Keyword arguments of ``datasets.load_dataset`` for reading this layout from ``path``.
        The branch is passed for the registry's own repo only: a local copy (or another repo) has
        no such branch, and is read as a tree laid out like it."""
        return {
            "name": self.hf_config,
            "data_dir": self.data_dir,
            "data_files": dict(self.data_files) if self.data_files else None,
            "revision": self.revision if path == self.hf_path else None,
        }


def require_columns(task: SuiteTask, column_names: Iterable[str]) -> None:
    """Raise SuiteError naming the task and every column its formatter needs but lacks."""
    available = list(column_names)
    missing = [c for c in task.columns if c not in available]
    if missing:
        raise SuiteError(f"suite task {task.name!r}: missing column(s) {missing}; available columns: {available}")


def row_error(task_name: str, row_index: int, problem: str) -> SuiteError:
    """The error for an unusable row: names the task and the row."""
    return SuiteError(f"suite task {task_name!r}: row {row_index}: {problem}")


def binary_pair(
    task: str, index: int, stem: str, candidates: list[Any], correct: int, rng: np.random.Generator
) -> list[Item]:
    """The correct candidate and one sampled wrong candidate, as two items of one group."""
    if not 0 <= correct < len(candidates):
        raise row_error(task, index, f"correct index {correct} out of range for {len(candidates)} candidates")
    wrong = [c for k, c in enumerate(candidates) if k != correct and isinstance(c, str) and c.strip()]
    if not wrong:
        raise row_error(task, index, "no wrong candidate")
    other = wrong[int(rng.integers(len(wrong)))]
    return [
        Item(f"{stem}\nAnswer: {candidates[correct]}", 1, f"q{index}"),
        Item(f"{stem}\nAnswer: {other}", 0, f"q{index}"),
    ]


def passage_group(passage: str) -> str:
    """A short, stable group id for a passage (the same text gives the same id), so items made from
    one passage's several questions share a split."""
    return "p" + hashlib.sha1(passage.encode("utf-8")).hexdigest()[:12]
