"""Strong stage: frozen features, linear-probe and fine-tuned roles, gold isolation for the student."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from w2s.features import extract_features, read_features
from w2s.io import read_provenance, write_parquet
from w2s.strong import load_targets, train_role
from w2s.tables import PREDICTION_SCHEMA, prediction_table


def _weak_labels(splits_dir, out_path, seed: int = 0) -> np.ndarray:
    """A weak-label file in the stage-3 schema (no gold column), with random probabilities."""
    transfer = pq.read_table(splits_dir / "transfer.parquet", columns=["id", "text"])
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, len(transfer)).astype(np.float32)
    probs = np.stack([1 - p, p], axis=1)
    table = prediction_table(transfer.column("id").to_pylist(), "transfer", probs)
    write_parquet(table.drop(["split"]).append_column("text", transfer.column("text")), out_path)
    return probs


@pytest.fixture(scope="module")
def features(tiny_classifier, tiny_splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("features")
    inputs = {s: str(tiny_splits / f"{s}.parquet") for s in ("transfer", "test")}
    outputs = {s: str(out / f"{s}.parquet") for s in inputs}
    extract_features(
        str(tiny_classifier), inputs, outputs, max_length=32, batch_size=8, device="cpu", layer=-1, pooling="auto"
    )
    return outputs


def test_features_schema_and_alignment(features, tiny_splits):
    ids, x = read_features(features["test"])
    assert ids == pq.read_table(tiny_splits / "test.parquet").column("id").to_pylist()
    assert x.shape == (48, 64) and x.dtype == np.float32 and np.isfinite(x).all()
    schema = pq.read_schema(features["test"])
    assert schema.field("embedding").type == pa.list_(pa.float32(), 64)
    assert read_provenance(features["test"])["pooling"] == "mean"


def test_student_targets_come_from_weak_labels_without_gold(tiny_splits, tmp_path):
    probs = _weak_labels(tiny_splits, tmp_path / "weak.parquet")
    ids, texts, targets = load_targets("student", tmp_path / "weak.parquet", 2)
    np.testing.assert_allclose(targets, probs, rtol=1e-6)
    # The gold split cannot serve as student targets: it has no soft_label column.
    with pytest.raises(Exception, match="soft_label"):
        load_targets("student", tiny_splits / "transfer.parquet", 2)


def test_ceiling_targets_are_one_hot_gold(tiny_splits):
    _, _, targets = load_targets("ceiling", tiny_splits / "transfer.parquet", 2)
    gold = pq.read_table(tiny_splits / "transfer.parquet").column("label").to_numpy()
    np.testing.assert_array_equal(targets.argmax(1), gold)
    assert set(np.unique(targets)) == {0.0, 1.0}


SPEC = {
    "mode": "linear_probe",
    "train": {"epochs": 1, "batch_size": 16, "max_length": 32},
    "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
    "probe": {"epochs": 5, "batch_size": 16, "lr": 1e-2, "l2": 0.01},
    "early_stopping": {"enabled": False, "holdout_frac": 0.25, "eval_every": 0, "patience": 2},
}


def _train(role, targets, tiny_classifier, tiny_splits, features, out, spec=SPEC, method=None):
    return train_role(
        role,
        spec,
        method or {},
        str(targets),
        str(tiny_splits / "test.parquet"),
        features,
        str(tiny_classifier),
        ["rotten", "fresh"],
        0,
        "cpu",
        out / "model",
        out / "predictions.parquet",
    )


def test_probe_roles_write_predictions_for_transfer_and_test(features, tiny_classifier, tiny_splits, tmp_path):
    _weak_labels(tiny_splits, tmp_path / "weak.parquet")
    for role, targets in (("student", tmp_path / "weak.parquet"), ("ceiling", tiny_splits / "transfer.parquet")):
        out = tmp_path / role
        info = _train(role, targets, tiny_classifier, tiny_splits, features, out)
        table = pq.read_table(out / "predictions.parquet")
        assert table.schema.remove_metadata() == PREDICTION_SCHEMA
        assert table.column("split").to_pylist().count("test") == 48
        assert (out / "model" / "probe.safetensors").exists()
        assert info["role"] == role and read_provenance(out / "predictions.parquet")["role"] == role


def test_student_with_early_stopping_and_relabeling(features, tiny_classifier, tiny_splits, tmp_path):
    probs = _weak_labels(tiny_splits, tmp_path / "weak.parquet")
    spec = {**SPEC, "early_stopping": {**SPEC["early_stopping"], "enabled": True}}
    info = _train(
        "student",
        tmp_path / "weak.parquet",
        tiny_classifier,
        tiny_splits,
        features,
        tmp_path / "s",
        spec=spec,
        method={"loss": "logconf", "relabel_rounds": 1, "min_confidence": 0.7},
    )
    assert [r["round"] for r in info["rounds"]] == [0, 1]
    # A threshold that filters (with two classes every confidence is >= 0.5): 23 of the 48 weak
    # labels are >= 0.7, and a quarter of those (6) are held out for early stopping.
    selected = int((probs.max(axis=1) >= 0.7).sum())
    assert selected == 23 and spec["early_stopping"]["holdout_frac"] == 0.25
    assert info["rounds"][0]["n_train"] == selected - round(0.25 * selected) == 17
    assert all(r["n_train"] < 36 for r in info["rounds"])  # fewer than all 48 minus the holdout
    assert all(r["validation_scores"] for r in info["rounds"])


@pytest.mark.parametrize("mode", ["full_finetune", "lora"])
def test_text_modes_train_the_student(mode, tiny_classifier, tiny_splits, tmp_path):
    _weak_labels(tiny_splits, tmp_path / "weak.parquet")
    info = _train(
        "student", tmp_path / "weak.parquet", tiny_classifier, tiny_splits, {}, tmp_path, spec={**SPEC, "mode": mode}
    )
    assert info["rounds"][0]["steps"] == 3 and (tmp_path / "model" / "model.safetensors").exists()
    probs = np.stack(
        pq.read_table(tmp_path / "predictions.parquet").column("soft_label").to_numpy(zero_copy_only=False)
    )
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_features_record_their_precision_and_bf16_stays_close(tiny_classifier, tiny_splits, tmp_path, monkeypatch):
    """``auto`` runs the frozen model in bf16 only where the CPU has AMX-BF16 (torch's capability
    query, patched here both ways); the provenance says which ran, and bf16 features stay close."""
    import torch

    inputs = {"test": str(tiny_splits / "test.parquet")}
    got = {}
    for amx in (False, True):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda amx=amx: {"amx_bf16": amx})
        outputs = {"test": str(tmp_path / f"test_{amx}.parquet")}
        extract_features(
            str(tiny_classifier), inputs, outputs, max_length=32, batch_size=8, device="cpu", layer=-1, pooling="auto"
        )
        provenance = read_provenance(outputs["test"])
        assert (provenance["precision"], provenance["precision_setting"]) == ("bf16" if amx else "fp32", "auto")
        got[amx] = read_features(outputs["test"])[1]
    assert got[True].dtype == np.float32
    cosine = (got[True] * got[False]).sum(1) / np.linalg.norm(got[True], axis=1) / np.linalg.norm(got[False], axis=1)
    assert cosine.min() > 0.99
