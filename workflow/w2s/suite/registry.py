"""The suite's tasks: hub name, config, splits, columns and how a row becomes items.

Each entry was checked against the dataset's hub card (columns and parquet format) and records
the layout it reads (``SuiteTask.layout``): parquet on main, or the parquet export branch with
the config folder chosen by ``data_dir``.
Multiple-choice rows become two balanced binary items: the correct candidate (label 1)
and one seeded wrong candidate (label 0), both in the row's group.

Every suite task is an entry of kind ``suite`` in the one task registry (:data:`w2s.tasks.TASK_REGISTRY`),
read by its ``suite`` source; ``SUITE`` is the live view of those entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..registry import Entry, source_of
from ..tasks import KIND_SUITE, TASK_REGISTRY, kind_of
from .base import Item, SuiteError, SuiteTask, binary_pair
from .classification import CLASSIFICATION
from .multiple_choice import MULTIPLE_CHOICE


def _boolq(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
    text = f"Passage: {row['passage']}\nQuestion: {row['question']}?"
    return [Item(text=text, label=int(bool(row["answer"])), group=f"q{index}")]


def _amazon(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
    return [Item(text=f"{row['title']}\n{row['content']}", label=int(row["label"]), group=f"r{index}")]


def _sciq(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
    candidates = [row["correct_answer"], row["distractor1"], row["distractor2"], row["distractor3"]]
    stem = f"Context: {row['support']}\nQuestion: {row['question']}"
    return binary_pair("sciq", index, stem, candidates, 0, rng)


_CORE: dict[str, SuiteTask] = {
    "boolq": SuiteTask(
        name="boolq",
        hf_path="google/boolq",
        hf_config=None,
        splits=("train", "validation"),
        columns=("question", "passage", "answer"),
        label_names=("false", "true"),
        to_items=_boolq,
        description="BoolQ yes/no questions on a Wikipedia passage; parquet on the hub.",
    ),
    "sciq": SuiteTask(
        name="sciq",
        hf_path="allenai/sciq",
        hf_config=None,
        splits=("train", "validation", "test"),
        columns=("question", "support", "correct_answer", "distractor1", "distractor2", "distractor3"),
        label_names=("wrong", "correct"),
        to_items=_sciq,
        description="SciQ science questions, 1 correct + 3 distractors; parquet on the hub.",
    ),
    "amazon_polarity": SuiteTask(
        name="amazon_polarity",
        hf_path="fancyzhx/amazon_polarity",
        hf_config="amazon_polarity",
        splits=("test",),
        main_files="amazon_polarity/{split}-00000-of-00001.parquet",
        columns=("label", "title", "content"),
        label_names=("negative", "positive"),
        to_items=_amazon,
        description="Amazon review polarity (used by openai/weak-to-strong); parquet; only "
        "the 400k-row test split is read, far more than any experiment needs.",
    ),
}


SUITE: Mapping[str, SuiteTask] = TASK_REGISTRY.view(lambda entry: kind_of(entry) == KIND_SUITE)


def get_task(name: str) -> SuiteTask:
    """The suite task ``name``; the error lists the available names."""
    if name not in SUITE:
        raise SuiteError(f"unknown suite task {name!r}; available: {sorted(SUITE)}")
    return SUITE[name]


for _task in {**_CORE, **MULTIPLE_CHOICE, **CLASSIFICATION}.values():  # data, not code: named by this module
    TASK_REGISTRY.add(Entry(_task.name, _task, None, source_of(get_task), {"kind": KIND_SUITE, "read_by": "suite"}))
