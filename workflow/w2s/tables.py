"""Arrow schemas of the prediction files passed between stages."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PREDICTION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("split", pa.string()),
        ("soft_label", pa.list_(pa.float32())),
        ("hard_label", pa.int64()),
        ("confidence", pa.float32()),
    ]
)


def prediction_table(ids: Sequence[str], split: str, probs: np.ndarray) -> pa.Table:
    """One row per example: class probabilities, their argmax and its probability."""
    probs = np.asarray(probs, dtype=np.float32)
    return pa.table(
        {
            "id": pa.array(list(ids), pa.string()),
            "split": pa.array([split] * len(probs), pa.string()),
            "soft_label": pa.array(list(probs), pa.list_(pa.float32())),
            "hard_label": pa.array(probs.argmax(axis=1), pa.int64()),
            "confidence": pa.array(probs.max(axis=1), pa.float32()),
        },
        schema=PREDICTION_SCHEMA,
    )


def soft_labels(table: pa.Table) -> np.ndarray:
    """The ``soft_label`` column as an (n, k) float32 array."""
    column = table.column("soft_label").combine_chunks()
    k = len(column[0]) if len(column) else 0
    return column.flatten().to_numpy().astype(np.float32).reshape(len(column), k)


def read_columns(path: str, columns: list[str]) -> pa.Table:
    return pq.read_table(path, columns=columns)
