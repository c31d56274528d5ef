"""Arrow schemas of the files passed between stages, and the one builder of their probability columns.

Every table that carries class probabilities (weak labels, student and ceiling predictions,
aggregated verifier labels) gets ``soft_label``, ``hard_label`` and ``confidence`` from
:func:`probability_columns`, so all of them break ties the same way: :func:`hard_labels`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

PREDICTION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("split", pa.string()),
        ("soft_label", pa.list_(pa.float32())),
        ("hard_label", pa.int64()),
        ("confidence", pa.float32()),
    ]
)

# Weak labels: written by the labeling stage and by every other weak-label source.
LABEL_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("soft_label", pa.list_(pa.float32()), nullable=False),
        pa.field("hard_label", pa.int64(), nullable=False),
        pa.field("confidence", pa.float32(), nullable=False),
    ]
)


def hard_labels(probs: np.ndarray) -> np.ndarray:
    """The class of each row: its argmax, ties to the lowest class index.

    This is the project's one tie rule: a binary score of exactly 0.5 is class 0, in training
    labels and in every report alike.
    """
    return np.asarray(probs).argmax(axis=1).astype(np.int64)


def binary_probs(positive: np.ndarray) -> np.ndarray:
    """(n, 2) float32 class probabilities [1 - p, p] from P(positive) scores ``p``."""
    p = np.asarray(positive, dtype=np.float32)
    return np.column_stack([1.0 - p, p]).astype(np.float32)


def binary_hard_labels(positive: np.ndarray) -> np.ndarray:
    """:func:`hard_labels` of P(positive) scores, through the same float32 table the labels use."""
    return hard_labels(binary_probs(positive))


def probability_columns(probs: np.ndarray) -> dict[str, pa.Array]:
    """``soft_label`` (list<float32>), ``hard_label`` (int64) and ``confidence`` (float32) of (n, k) probs."""
    probs = np.ascontiguousarray(probs, dtype=np.float32)
    n, k = probs.shape
    soft = pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1), pa.float32()), k)
    return {
        "soft_label": soft.cast(pa.list_(pa.float32())),
        "hard_label": pa.array(hard_labels(probs), pa.int64()),
        "confidence": pa.array(probs.max(axis=1), pa.float32()),
    }


def prediction_table(ids: Sequence[str], split: str, probs: np.ndarray) -> pa.Table:
    """One row per example: class probabilities, their argmax and its probability."""
    columns = probability_columns(probs)
    return pa.Table.from_arrays(
        [pa.array(list(ids), pa.string()), pa.array([split] * len(columns["hard_label"]), pa.string()),
         columns["soft_label"], columns["hard_label"], columns["confidence"]],
        schema=PREDICTION_SCHEMA,
    )


def label_table(split: pa.Table, probs: np.ndarray) -> pa.Table:
    """Weak labels (:data:`LABEL_SCHEMA`) of the rows of ``split`` (columns id and text, in order)."""
    columns = probability_columns(probs)
    return pa.Table.from_arrays(
        [split.column("id").combine_chunks().cast(pa.string()), split.column("text").combine_chunks().cast(pa.string()),
         columns["soft_label"], columns["hard_label"], columns["confidence"]],
        schema=LABEL_SCHEMA,
    )


def soft_labels(table: pa.Table) -> np.ndarray:
    """The ``soft_label`` column as an (n, k) float32 array."""
    column = table.column("soft_label").combine_chunks()
    k = len(column[0]) if len(column) else 0
    return column.flatten().to_numpy().astype(np.float32).reshape(len(column), k)
