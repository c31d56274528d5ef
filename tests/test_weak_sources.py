"""Ensembles of weak teachers and weak labels degraded to a target accuracy, against hand values."""

import numpy as np
import pyarrow as pa
import pytest

from w2s.io import read_provenance, write_parquet
from w2s.labeling import label_table
from w2s.weak_sources import combine, combine_weak_labels, degrade, degrade_weak_labels, read_weak_labels

A = np.array([[0.9, 0.1], [0.4, 0.6]], dtype=np.float32)
B = np.array([[0.5, 0.5], [0.2, 0.8]], dtype=np.float32)
C = np.array([[0.3, 0.7], [0.1, 0.9]], dtype=np.float32)


def test_mean_geometric_and_vote_by_hand():
    np.testing.assert_allclose(combine([A, B], "mean"), [[0.7, 0.3], [0.3, 0.7]], rtol=1e-6)
    # geometric: sqrt(.9*.5) = .6708, sqrt(.1*.5) = .2236 -> normalized .75, .25
    np.testing.assert_allclose(combine([A, B], "geometric")[0], [0.75, 0.25], rtol=1e-5)
    # votes on row 0: A says 0, B ties (argmax -> 0), C says 1 -> [2/3, 1/3]
    np.testing.assert_allclose(combine([A, B, C], "vote"), [[2 / 3, 1 / 3], [0.0, 1.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="unknown combine rule"):
        combine([A, B], "median")


def test_degrade_hits_the_target_exactly_and_keeps_confidences():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 1.0, 200)
    probs = np.stack([p, 1 - p], axis=1).astype(np.float32)
    gold = np.where(rng.uniform(size=200) < 0.85, 0, 1)  # teacher says 0 everywhere: 85%-ish right
    for target in (0.6, 0.7, 0.95):
        degraded = degrade(probs, gold, target, seed=0)
        assert (degraded.argmax(1) == gold).mean() == pytest.approx(round(target * 200) / 200)
        np.testing.assert_allclose(np.sort(degraded.max(1)), np.sort(probs.max(1)))
    np.testing.assert_array_equal(degrade(probs, gold, 0.7, seed=3), degrade(probs, gold, 0.7, seed=3))


def _labels(path, probs, ids=("a", "b")):
    write_parquet(label_table(pa.table({"id": list(ids), "text": ["x", "y"]}), probs), path)


def test_combine_files_keeps_schema_and_records_members(tmp_path):
    _labels(tmp_path / "a.parquet", A)
    _labels(tmp_path / "b.parquet", B)
    combine_weak_labels({"a": str(tmp_path / "a.parquet"), "b": str(tmp_path / "b.parquet")}, "mean",
                        tmp_path / "out.parquet", {"task": "t"})
    table, probs = read_weak_labels(tmp_path / "out.parquet")
    np.testing.assert_allclose(probs, [[0.7, 0.3], [0.3, 0.7]], rtol=1e-6)
    provenance = read_provenance(tmp_path / "out.parquet")
    assert provenance["source"] == "ensemble" and set(provenance["members"]) == {"a", "b"}
    _labels(tmp_path / "c.parquet", C, ids=("b", "a"))
    with pytest.raises(ValueError, match="labels other examples"):
        combine_weak_labels({"a": str(tmp_path / "a.parquet"), "c": str(tmp_path / "c.parquet")}, "mean",
                            tmp_path / "bad.parquet", {})
    assert not (tmp_path / "bad.parquet").exists()


def test_degrade_file_flags_gold_use(tmp_path):
    _labels(tmp_path / "weak.parquet", A)  # predicts [0, 1]
    write_parquet(pa.table({"id": ["b", "a"], "text": ["y", "x"], "label": pa.array([1, 0], pa.int64())}),
                  tmp_path / "gold.parquet")
    achieved = degrade_weak_labels(str(tmp_path / "weak.parquet"), str(tmp_path / "gold.parquet"), 0.5, 0,
                                   tmp_path / "out.parquet", {})
    assert achieved == 0.5
    provenance = read_provenance(tmp_path / "out.parquet")
    assert provenance["uses_gold"] is True and provenance["achieved_accuracy"] == 0.5
