"""Evaluation stage on hand-made prediction files with hand-computed metrics."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from w2s.evaluate import evaluate_experiment, summarize
from w2s.io import write_parquet
from w2s.tables import prediction_table

GOLD = [0, 1, 1, 0, 1, 0, 1, 1, 0, 0]
IDS = [f"x{i}" for i in range(10)]


def _split(path, labels):
    write_parquet(pa.table({"id": IDS, "text": [f"t{i}" for i in range(10)], "label": pa.array(labels, pa.int64())}), path)


def _preds(path, hard, split="test"):
    probs = np.eye(2, dtype=np.float32)[hard] * 0.8 + 0.1
    write_parquet(prediction_table(IDS, split, probs), path)


@pytest.fixture
def files(tmp_path):
    flip = lambda labels, idx: [1 - y if i in idx else y for i, y in enumerate(labels)]  # noqa: E731
    _split(tmp_path / "test.parquet", GOLD)
    _split(tmp_path / "transfer.parquet", GOLD)
    _preds(tmp_path / "weak_test.parquet", flip(GOLD, {0, 1, 2, 3}))  # 6/10 right
    _preds(tmp_path / "weak_transfer.parquet", flip(GOLD, {0}))  # 9/10 right
    _preds(tmp_path / "student.parquet", flip(GOLD, {0, 1}))  # 8/10 right
    _preds(tmp_path / "ceiling.parquet", flip(GOLD, {0}))  # 9/10 right
    return tmp_path


def test_metrics_hand_values(files):
    metrics = evaluate_experiment(
        files / "test.parquet", files / "transfer.parquet", files / "weak_test.parquet",
        files / "weak_transfer.parquet", files / "student.parquet", files / "ceiling.parquet",
        0.01, {"task": "t", "seed": 0}, files / "metrics.json",
    )
    assert metrics["weak_acc"] == 0.6 and metrics["student_acc"] == 0.8 and metrics["ceiling_acc"] == 0.9
    assert metrics["pgr"] == pytest.approx((0.8 - 0.6) / (0.9 - 0.6))
    assert metrics["student_acc_se"] == pytest.approx(np.sqrt(0.8 * 0.2 / 10))
    # student wrong on {0, 1}, weak wrong on {0..3}: they agree on 0, 1 and 4..9 -> 8/10
    assert metrics["student_weak_agreement"] == pytest.approx(0.8)
    assert metrics["weak_label_acc_transfer"] == pytest.approx(0.9)
    assert json.loads((files / "metrics.json").read_text()) == metrics


def test_pgr_undefined_when_gap_is_small(files):
    metrics = evaluate_experiment(
        files / "test.parquet", files / "transfer.parquet", files / "weak_test.parquet",
        files / "weak_transfer.parquet", files / "student.parquet", files / "weak_test.parquet",
        0.01, {}, files / "metrics.json",
    )
    assert metrics["pgr"] is None and "undefined" in metrics["pgr_note"]


def test_missing_predictions_are_an_error(files):
    write_parquet(prediction_table(IDS[:5], "test", np.full((5, 2), 0.5, np.float32)), files / "student.parquet")
    with pytest.raises(ValueError, match="5 test examples have no prediction"):
        evaluate_experiment(
            files / "test.parquet", files / "transfer.parquet", files / "weak_test.parquet",
            files / "weak_transfer.parquet", files / "student.parquet", files / "ceiling.parquet",
            0.01, {}, files / "metrics.json",
        )


def test_summary_has_axes_first_and_one_row_per_experiment(tmp_path):
    paths = []
    for seed in (1, 0):
        path = tmp_path / f"m{seed}.json"
        path.write_text(json.dumps({"weak_acc": 0.5 + seed / 10, "task": "t", "seed": seed, "weak_model": "w",
                                    "strong_model": "s", "mode": "linear_probe", "loss": "xent", "pgr": None}))
        paths.append(path)
    frame = summarize(paths, tmp_path / "summary.parquet", tmp_path / "summary.csv")
    assert list(frame.columns[:6]) == ["task", "weak_model", "strong_model", "mode", "loss", "seed"]
    assert frame["seed"].tolist() == [0, 1]
    assert pd.read_parquet(tmp_path / "summary.parquet").shape == (2, 8)
    assert pd.read_csv(tmp_path / "summary.csv")["weak_acc"].tolist() == [0.5, 0.6]
