"""Stage 5: score weak teacher, strong student and strong ceiling on test gold; summarize the grid."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .io import atomic_path, read_json, write_json, write_parquet
from .metrics import accuracy, accuracy_standard_error, agreement, performance_gap_recovered


EXPERIMENT_AXES = ("task", "weak_model", "strong_model", "mode", "loss", "seed")


def _gold(split_path: str | Path) -> pd.Series:
    return pq.read_table(split_path, columns=["id", "label"]).to_pandas().set_index("id")["label"]


def _hard_labels(path: str | Path, split: str | None = None) -> pd.Series:
    frame = pq.read_table(path).to_pandas()
    if split is not None:
        frame = frame[frame["split"] == split]
    return frame.set_index("id")["hard_label"]


def _scored(name: str, predictions: pd.Series, gold: pd.Series) -> dict:
    missing = gold.index.difference(predictions.index)
    if len(missing):
        raise ValueError(f"{name}: {len(missing)} test examples have no prediction, e.g. {list(missing[:3])}")
    acc = accuracy(predictions.loc[gold.index].to_numpy(), gold.to_numpy())
    return {f"{name}_acc": acc, f"{name}_acc_se": accuracy_standard_error(acc, len(gold))}


def evaluate_experiment(
    test_split: str | Path,
    transfer_split: str | Path,
    weak_test: str | Path,
    weak_transfer: str | Path,
    student_predictions: str | Path,
    ceiling_predictions: str | Path,
    min_pgr_gap: float,
    experiment: dict,
    out_path: str | Path,
) -> dict:
    """Write the metrics JSON of one (task, seed, weak, strong, loss) experiment and return it."""
    gold = _gold(test_split)
    weak = _hard_labels(weak_test)
    student = _hard_labels(student_predictions, "test")
    ceiling = _hard_labels(ceiling_predictions, "test")
    metrics = {**experiment, "n_test": len(gold)}
    metrics |= _scored("weak", weak, gold) | _scored("student", student, gold) | _scored("ceiling", ceiling, gold)
    pgr, note = performance_gap_recovered(
        metrics["weak_acc"], metrics["student_acc"], metrics["ceiling_acc"], min_gap=min_pgr_gap
    )
    metrics["pgr"], metrics["pgr_note"] = pgr, note
    metrics["student_weak_agreement"] = agreement(student.loc[gold.index], weak.loc[gold.index])
    transfer_gold = _gold(transfer_split)
    metrics["weak_label_acc_transfer"] = accuracy(
        _hard_labels(weak_transfer).loc[transfer_gold.index].to_numpy(), transfer_gold.to_numpy()
    )
    write_json(metrics, out_path)
    return metrics


def summarize(metrics_paths: list[str | Path], out_parquet: str | Path, out_csv: str | Path) -> pd.DataFrame:
    """One row per experiment, every config axis and metric a column."""
    frame = pd.DataFrame([read_json(path) for path in metrics_paths])
    axes = [c for c in EXPERIMENT_AXES if c in frame]
    frame = frame[axes + [c for c in frame if c not in axes]]
    frame = frame.sort_values(axes).reset_index(drop=True)
    write_parquet(pa.Table.from_pandas(frame, preserve_index=False), out_parquet)
    with atomic_path(out_csv) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    return frame

