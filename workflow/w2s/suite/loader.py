"""Load a suite task: read its hub splits (or a local copy), check columns, build items."""

from __future__ import annotations

import numpy as np

from ..tasks import LabeledTexts, to_labeled
from .base import SuiteError, require_columns
from .registry import get_task


def load_suite(task: str, spec: dict, seed: int = 0) -> LabeledTexts:
    """Items of the registry task ``spec['name']``; ``spec['path']`` overrides the hub name."""
    import datasets

    entry = get_task(spec.get("name", task))
    path = spec.get("path", entry.hf_path)
    rng = np.random.default_rng(seed)
    texts, labels, groups = [], [], []
    for split in entry.splits:
        try:
            revision = entry.revision if path == entry.hf_path else None  # a local copy has no branches
            ds = datasets.load_dataset(path, entry.hf_config, split=split, revision=revision)
        except Exception as exc:
            raise SuiteError(f"suite task {entry.name!r}: could not load {path!r} "
                             f"split {split!r}: {exc}") from exc
        require_columns(entry, ds.column_names)
        for index, row in enumerate(ds):
            for item in entry.to_items(row, index, rng):
                texts.append(item.text)
                labels.append(item.label)
                groups.append(f"{split}-{item.group}")
    data = to_labeled(task, texts, labels, list(entry.label_names))
    data.groups = groups
    return data
