"""Frozen features of the strong model (linear_probe mode): computed once per split and model,
shared by the ceiling and every student."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from transformers import AutoModel, AutoTokenizer

from .inference import mean_pooled_features
from .io import sha256_file, write_parquet
from .models import resolve_checkpoint
from .runtime import pick_device


def extract_features(
    checkpoint: str, inputs: dict[str, str], outputs: dict[str, str], max_length: int, batch_size: int, device: str = "auto"
) -> None:
    """Mean-pooled frozen features per split: Parquet with ``id`` and ``embedding`` (fixed-size float32 list)."""
    resolved = resolve_checkpoint(checkpoint)
    model = AutoModel.from_pretrained(resolved).to(pick_device(device))
    tokenizer = AutoTokenizer.from_pretrained(resolved)
    for split, path in inputs.items():
        table = pq.read_table(path, columns=["id", "text"])
        features = mean_pooled_features(model, tokenizer, table.column("text").to_pylist(), max_length,
                                        batch_size, desc=f"features {split}")
        embedding = pa.FixedSizeListArray.from_arrays(pa.array(features.ravel(), pa.float32()), features.shape[1])
        write_parquet(
            pa.table({"id": table.column("id"), "embedding": embedding}),
            outputs[split],
            provenance={"checkpoint": checkpoint, "split": split, "max_length": max_length,
                        "input_sha256": sha256_file(path), "pooling": "mean"},
        )


def read_features(path: str | Path) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(path)
    column = table.column("embedding").combine_chunks()
    return table.column("id").to_pylist(), column.flatten().to_numpy().reshape(len(column), -1).copy()


def aligned_features(path: str | Path, ids: list[str]) -> np.ndarray:
    """Rows of the features file in the order of ``ids``."""
    feature_ids, features = read_features(path)
    position = {example_id: i for i, example_id in enumerate(feature_ids)}
    missing = [i for i in ids if i not in position]
    if missing:
        raise ValueError(f"{path}: {len(missing)} examples have no features, e.g. {missing[:3]}")
    return features[[position[i] for i in ids]]
