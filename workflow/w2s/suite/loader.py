"""Load a suite task: read its hub splits (or a local copy), check columns, build items.

``open_split`` is the one place that calls ``datasets.load_dataset`` for a suite task, so the
full load (``load_suite``) and the hub check (``check.py``, streaming) read the same layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..labeled import LabeledTexts, to_labeled
from ..tasks import KIND_SOURCE, KIND_SUITE, register_task
from .base import Item, SuiteError, SuiteTask, require_columns
from .registry import get_task


def open_split(entry: SuiteTask, path: str, split: str, streaming: bool = False) -> Any:
    """One split of ``entry`` read from ``path`` (the hub name or a local tree laid out like the
    branch it reads); a SuiteError names the task, the path and the split."""
    import datasets

    try:
        return datasets.load_dataset(path, split=split, streaming=streaming, **entry.load_kwargs(path))
    except Exception as exc:
        raise SuiteError(
            f"suite task {entry.name!r}: could not load {path!r} split {split!r} ({entry.layout}): {exc}"
        ) from exc


def split_items(
    entry: SuiteTask,
    split: str,
    rows: Iterable[Mapping[str, Any]],
    columns: Iterable[str] | None,
    rng: np.random.Generator,
) -> list[Item]:
    """The items of one split's ``rows``, their groups prefixed with the split. ``columns``: the
    split's column names where known up front, else those of its first row."""
    items: list[Item] = []
    checked = False
    if columns is not None:
        require_columns(entry, columns)
        checked = True
    for index, row in enumerate(rows):
        if not checked:
            require_columns(entry, row.keys())
            checked = True
        items.extend(Item(item.text, item.label, f"{split}-{item.group}") for item in entry.to_items(row, index, rng))
    return items


@register_task("suite", kind=KIND_SOURCE, selects=KIND_SUITE)
def load_suite(task: str, spec: dict, seed: int = 0) -> LabeledTexts:
    """Items of the suite task ``spec['name']`` (default: ``task``); ``spec['path']`` overrides the hub
    name. Registered as the task source ``suite``, which also reads every suite entry named as a source."""
    entry = get_task(spec.get("name", task))
    path = spec.get("path", entry.hf_path)
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    for split in entry.splits:
        ds = open_split(entry, path, split)
        items.extend(split_items(entry, split, ds, ds.column_names, rng))
    data = to_labeled(task, [i.text for i in items], [i.label for i in items], list(entry.label_names))
    data.groups = [i.group for i in items]
    return data
