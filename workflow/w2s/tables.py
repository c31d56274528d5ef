"""Arrow schemas of the files passed between stages, and the one builder of their probability columns.

Every table that carries class probabilities (weak labels, student and ceiling predictions,
aggregated verifier labels) gets ``soft_label``, ``hard_label`` and ``confidence`` from
:func:`probability_columns`, so all of them break ties the same way: :func:`hard_labels`.
"""

from __future__ import annotations

from collections.abc import Sequence

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
        [
            pa.array(list(ids), pa.string()),
            pa.array([split] * len(columns["hard_label"]), pa.string()),
            columns["soft_label"],
            columns["hard_label"],
            columns["confidence"],
        ],
        schema=PREDICTION_SCHEMA,
    )


def label_table(split: pa.Table, probs: np.ndarray) -> pa.Table:
    """Weak labels (:data:`LABEL_SCHEMA`) of the rows of ``split`` (columns id and text, in order)."""
    columns = probability_columns(probs)
    return pa.Table.from_arrays(
        [
            split.column("id").combine_chunks().cast(pa.string()),
            split.column("text").combine_chunks().cast(pa.string()),
            columns["soft_label"],
            columns["hard_label"],
            columns["confidence"],
        ],
        schema=LABEL_SCHEMA,
    )


def soft_labels(table: pa.Table) -> np.ndarray:
    """The ``soft_label`` column as an (n, k) float32 array."""
    column = table.column("soft_label").combine_chunks()
    k = len(column[0]) if len(column) else 0
    return column.flatten().to_numpy().astype(np.float32).reshape(len(column), k)


# ---------------------------------------------------------------- the summary page (results/summary.html)
# Headline first: the method, the student's accuracy and PGR with its interval; then where it ran;
# then the diagnostics. The over-seeds table comes before the per-experiment one.
_PAGE_STYLE = (
    "body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse}"
    " th,td{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}"
)
_PER_SEED_GROUP = (
    (
        "student_acc_mean",
        "pgr_of_means",
        "pgr_of_means_ci_low",
        "pgr_of_means_ci_high",
        "pgr_of_means_ci_unbounded",
        "PGR of seed means [interval]",
    ),
    ("task", "weak_model", "strong_model", "mode", "n_seeds", "seeds"),
    ("weak_acc_mean", "ceiling_acc_mean", "pgr_mean", "pgr_seed_ci_low", "pgr_seed_ci_high", "n_seeds_pgr_defined"),
)
_PER_EXPERIMENT = (
    ("student_acc", "pgr", "pgr_ci_low", "pgr_ci_high", "pgr_ci_unbounded", "PGR [interval]"),
    ("task", "weak_model", "strong_model", "mode", "seed", "n_test"),
    (
        "weak_acc",
        "ceiling_acc",
        "pgr_boot_undefined_frac",
        "student_weak_agreement_weak_wrong",
        "student_acc_weak_confident",
        "student_acc_weak_unsure",
        "weak_ece",
        "student_ece",
        "ceiling_ece",
        "pgr_note",
    ),
)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def pgr_with_interval(pgr: object, low: object, high: object, unbounded: object = False) -> str:
    """``0.512 [0.301, 0.700]``; ``undefined`` without a PGR; an absent end of an unbounded set as -inf/inf;
    the PGR alone when there is no interval (one seed)."""
    if _missing(pgr):
        return "undefined"
    open_ended = not _missing(unbounded) and bool(unbounded)
    if _missing(low) and _missing(high) and not open_ended:
        return f"{pgr:.3f}"
    ends = ["-inf" if _missing(low) else f"{low:.3f}", "inf" if _missing(high) else f"{high:.3f}"]
    return f"{pgr:.3f} [{ends[0]}, {ends[1]}]"


def headline_table(frame, groups: tuple[tuple[str, ...], ...]) -> str:
    """An HTML table: ``method``, the headline (accuracy and a PGR [interval] column made of the
    group's PGR fields), where it ran, then the diagnostics; columns the frame lacks are left out."""
    import pandas as pd

    (accuracy, pgr, low, high, unbounded, title), context, diagnostics = groups
    shown = pd.DataFrame({"method": frame["method"]}) if "method" in frame else pd.DataFrame(index=frame.index)
    if accuracy in frame:
        shown[accuracy] = frame[accuracy]
    if pgr in frame:
        shown[title] = [
            pgr_with_interval(*(row.get(c) for c in (pgr, low, high, unbounded))) for row in frame.to_dict("records")
        ]
    for column in (*context, *diagnostics):
        if column in frame:
            shown[column] = frame[column]
    return shown.to_html(index=False, na_rep="undefined", float_format=lambda x: f"{x:.3f}", border=0)


def summary_page(summary, by_seed) -> str:
    """results/summary.html: the over-seeds table, then the per-experiment table, headline columns first."""
    return (
        f"<html><head><meta charset='utf-8'><style>{_PAGE_STYLE}</style></head><body>"
        f"<h3>Over seeds</h3>{headline_table(by_seed, _PER_SEED_GROUP)}"
        f"<h3>Per experiment</h3>{headline_table(summary, _PER_EXPERIMENT)}</body></html>\n"
    )
