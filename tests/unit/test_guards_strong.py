"""What the strong student trains on: never test gold (early stopping included), the weak labels of
its confidence band (and their class prior for logconf), and confidence weights that stay at or
above 0 with more than two classes."""

import math

import numpy as np
import pyarrow as pa
import pytest
import torch

from w2s import strong
from w2s.io import write_parquet
from w2s.learners import ProbeLearner
from w2s.methods import Method
from w2s.registry import SELECTION_REGISTRY
from w2s.tables import prediction_table

N_TRANSFER, N_TEST, DIM = 40, 12, 6
SPEC = {
    "mode": "linear_probe",
    "train": {"epochs": 1, "batch_size": 8, "max_length": 32},
    "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
    "probe": {"epochs": 4, "batch_size": 8, "lr": 1e-2, "l2": 0.01},
    "early_stopping": {"enabled": True, "holdout_frac": 0.25, "eval_every": 2, "patience": 2},
}


def method(loss: str = "xent", options: dict | None = None, **selection) -> dict:
    """The one place a method config is written: ``loss`` with its options, plus band/weighting keys."""
    return {"loss": loss, "loss_options": options or {}, **selection}


def _features(path, ids: list[str], rng: np.random.Generator) -> str:
    x = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel(), pa.float32()), DIM)
    write_parquet(pa.table({"id": ids, "embedding": embedding}), path)
    return str(path)


def test_student_early_stopping_never_reads_test_gold(tmp_path, monkeypatch):
    """The test split given to the student has no label column, and nothing predicts on test before
    training is over: only the final transfer + test predictions do."""
    rng = np.random.default_rng(0)
    transfer_ids, test_ids = [f"tr{i}" for i in range(N_TRANSFER)], [f"te{i}" for i in range(N_TEST)]
    p = rng.uniform(0.05, 0.95, N_TRANSFER).astype(np.float32)
    weak = prediction_table(transfer_ids, "transfer", np.stack([1 - p, p], axis=1)).drop_columns(["split"])
    write_parquet(
        weak.append_column("text", pa.array([f"text {i}" for i in range(N_TRANSFER)])), tmp_path / "weak.parquet"
    )
    write_parquet(pa.table({"id": test_ids, "text": [f"test {i}" for i in range(N_TEST)]}), tmp_path / "test.parquet")
    features = {
        "transfer": _features(tmp_path / "ft.parquet", transfer_ids, rng),
        "test": _features(tmp_path / "fte.parquet", test_ids, rng),
    }
    calls = []
    predict = ProbeLearner.predict

    def recording_predict(self, split, index=None):
        calls.append(split)
        return predict(self, split, index)

    monkeypatch.setattr(ProbeLearner, "predict", recording_predict)
    info = strong.train_role(
        "student",
        SPEC,
        method("xent", relabel_rounds=1),
        str(tmp_path / "weak.parquet"),
        str(tmp_path / "test.parquet"),
        features,
        "unused-checkpoint",
        ["no", "yes"],
        0,
        "cpu",
        tmp_path / "model",
        tmp_path / "predictions.parquet",
    )
    assert all(r["validation_scores"] for r in info["rounds"])  # early stopping ran, in both rounds
    assert calls.count("test") == 1 and calls[-1] == "test"
    assert calls.count("transfer") > 3  # holdout scoring, the relabeling and the final predictions


class TrainingStarted(Exception):
    """Raised by the stand-in for train_loop once it has seen what training would get."""


def test_logconf_trains_on_the_band_with_the_band_prior(monkeypatch):
    # Confident weak labels (>= 0.8): three say class 1 at 0.9, one says class 0 at 0.9 -> prior [0.3, 0.7].
    # The four unsure ones (0.6 for class 0) would move the prior of all eight to [0.45, 0.55].
    weak = np.array([[0.1, 0.9]] * 3 + [[0.9, 0.1]] + [[0.6, 0.4]] * 4, dtype=np.float32)
    seen = {}

    def capture(module, logits_of, targets, loss, *args, **kwargs):
        seen["targets"], seen["loss"] = targets, loss
        raise TrainingStarted

    monkeypatch.setattr(strong, "train_loop", capture)
    spec = {**SPEC, "early_stopping": {**SPEC["early_stopping"], "enabled": False}}
    trainer = strong.StrongTrainer(
        spec, "unused-checkpoint", ["no", "yes"], 0, "cpu", {}, {"transfer": np.zeros((8, DIM), dtype=np.float32)}
    )
    band = Method.from_config(method("logconf", {"aux_weight": 1.0, "warmup_frac": 0.0}, min_confidence=0.8))
    with pytest.raises(TrainingStarted):
        trainer.fit(trainer.new_learner(0), weak, band, 0)
    np.testing.assert_array_equal(seen["targets"], weak[:4])
    # Students at p(class 1) = 0.2, 0.4, 0.6, 0.8 with a = 1: the target is the hardened label alone.
    # Prior 0.7: threshold = 0.3 quantile = 0.2 + 0.9 * 0.2 = 0.38 -> classes [0, 1, 1, 1]
    # (prior 0.55 would give 0.47 -> [0, 0, 1, 1]).
    logits = torch.tensor([[0.0, math.log(q / (1 - q))] for q in (0.2, 0.4, 0.6, 0.8)])
    value = seen["loss"](logits, torch.full((4, 2), 0.5), 1.0)
    expected = -(math.log(0.8) + math.log(0.4) + math.log(0.6) + math.log(0.8)) / 4
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_confidence_weights_with_three_classes():
    # chance is 1/3: weight = (confidence - 1/3) / (2/3)
    weak = np.array([[0.4, 0.3, 0.3], [0.2, 0.6, 0.2], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]], dtype=np.float32)
    keep, weights = Method.from_config(method(weighting="confidence")).select(weak)
    assert keep.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(weights, [0.1, 0.4, 0.7, 0.0], atol=1e-6)
    # the rule itself gives the float32 weights training uses, from float64 labels too
    assert SELECTION_REGISTRY.get("confidence")()(weak.astype(np.float64))[1].dtype == np.float32
    keep, weights = Method.from_config(method(weighting="confidence", min_confidence=0.5)).select(weak)
    assert keep.tolist() == [1, 2]
    np.testing.assert_allclose(weights, [0.4, 0.7], atol=1e-6)


def test_confidence_weights_refuse_labels_all_at_chance():
    weak = np.full((3, 3), 1 / 3, dtype=np.float32)
    with pytest.raises(
        ValueError, match=r"^weighting 'confidence': every selected weak label is at chance confidence$"
    ):
        Method.from_config(method(weighting="confidence")).select(weak)
