"""Evaluation matches prediction rows to gold by id: rows in another order than the gold split, and
a strong file whose transfer and test rows are interleaved, give the hand-worked metrics."""

import numpy as np
import pyarrow as pa
import pytest

from w2s.evaluate import EvaluationSettings, evaluate_experiment
from w2s.io import write_parquet
from w2s.tables import prediction_table

IDS = [f"x{i}" for i in (4, 2, 5, 0, 3, 1)]  # the gold split is not in id order either
GOLD = np.array([0, 1, 1, 0, 1, 0])
SHUFFLED = [3, 0, 5, 1, 4, 2]  # row order of every prediction file
SETTINGS = EvaluationSettings(
    min_pgr_gap=0.01,
    bootstrap_samples=50,
    confidence_level=0.95,
    bootstrap_seed=0,
    ece_bins=10,
    confidence_split="median",
)


def _probs(hard: np.ndarray) -> np.ndarray:
    """0.9 on the predicted class."""
    probs = np.full((len(hard), 2), 0.1, dtype=np.float32)
    probs[np.arange(len(hard)), hard] = 0.9
    return probs


def _wrong_on(items: set[int]) -> np.ndarray:
    return np.array([1 - y if i in items else y for i, y in enumerate(GOLD)])


def _write_gold(path) -> None:
    write_parquet(pa.table({"id": IDS, "text": [f"t{i}" for i in range(6)], "label": pa.array(GOLD, pa.int64())}), path)


def _write_weak(path, hard: np.ndarray) -> None:
    """A weak-label file (no split column), rows in SHUFFLED order."""
    table = prediction_table([IDS[i] for i in SHUFFLED], "unused", _probs(hard[SHUFFLED])).drop_columns(["split"])
    write_parquet(table, path)


def _write_strong(path, test_hard: np.ndarray, transfer_hard: np.ndarray) -> None:
    """Transfer and test rows, each in SHUFFLED order, interleaved one by one."""
    tables = [
        prediction_table([IDS[i]], split, _probs(hard[[i]]))
        for i in SHUFFLED
        for split, hard in (("test", test_hard), ("transfer", transfer_hard))
    ]
    write_parquet(pa.concat_tables(tables), path)


def test_metrics_follow_ids_not_row_order(tmp_path):
    for split in ("test", "transfer"):
        _write_gold(tmp_path / f"{split}.parquet")
    _write_weak(tmp_path / "weak_test.parquet", _wrong_on({0, 1, 2}))  # 3/6 right
    _write_weak(tmp_path / "weak_transfer.parquet", _wrong_on({4}))  # 5/6
    _write_strong(tmp_path / "student.parquet", _wrong_on({0}), _wrong_on({1, 2}))  # test 5/6, transfer 4/6
    _write_strong(tmp_path / "ceiling.parquet", GOLD, GOLD)  # 6/6
    metrics = evaluate_experiment(
        tmp_path / "test.parquet",
        tmp_path / "transfer.parquet",
        tmp_path / "weak_test.parquet",
        tmp_path / "weak_transfer.parquet",
        tmp_path / "student.parquet",
        tmp_path / "ceiling.parquet",
        SETTINGS,
        {"task": "t", "seed": 0},
        tmp_path / "metrics.json",
    )
    assert (metrics["weak_acc"], metrics["student_acc"], metrics["ceiling_acc"]) == pytest.approx((0.5, 5 / 6, 1.0))
    assert metrics["weak_acc_transfer"] == pytest.approx(5 / 6)
    assert metrics["student_acc_transfer"] == pytest.approx(4 / 6)
    assert metrics["pgr"] == pytest.approx((5 / 6 - 0.5) / (1.0 - 0.5))  # 2/3
    # Weak wrong on 0-2, student wrong on 0: it agrees with weak on 0 and on the three weak-right items.
    assert metrics["student_weak_agreement"] == pytest.approx(4 / 6)
    assert metrics["student_weak_agreement_weak_wrong"] == pytest.approx(1 / 3)
    # Brier, both classes: right 2 * 0.1^2 = 0.02, wrong 2 * 0.9^2 = 1.62
    assert metrics["student_brier"] == pytest.approx((5 * 0.02 + 1.62) / 6, abs=1e-6)
