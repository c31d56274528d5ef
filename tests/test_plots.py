"""Plots of a small synthetic grid (two tasks, seeds, strong models, methods, one undefined PGR) are valid PNGs."""

import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from matplotlib.image import imread

from w2s.evaluate import EvaluationSettings, aggregate_seeds, evaluate_experiment, summary_table
from w2s.io import write_parquet
from w2s.plots import PLOT_NAMES, make_plots, pgr_points, pooled_reliability, seed_means
from w2s.tables import prediction_table

N = 120
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Probability of a right answer per model; "tiny" as a strong model is no better than its teacher.
SKILL = {"weak": 0.65, "base": 0.78, "large": 0.88, "tiny": 0.65}


def _predictions(rng, gold, skill, same_as=None):
    """Binary probabilities right with probability ``skill``, confidence loosely tracking correctness."""
    right = rng.random(len(gold)) < skill if same_as is None else same_as
    hard = np.where(right, gold, 1 - gold)
    confidence = np.clip(np.where(right, 0.8, 0.65) + rng.normal(0, 0.1, len(gold)), 0.5, 0.999)
    probs = np.empty((len(gold), 2), dtype=np.float32)
    probs[np.arange(len(gold)), hard] = confidence
    probs[np.arange(len(gold)), 1 - hard] = 1 - confidence
    return probs, right


def _run(tmp: Path, task: str, seed: int, strong: str, method: str) -> dict:
    rng = np.random.default_rng(zlib.crc32(f"{task}/{seed}/{strong}/{method}".encode()))
    ids = [f"{task}-{i}" for i in range(N)]
    gold = rng.integers(0, 2, N)
    for split in ("test", "transfer"):
        write_parquet(pa.table({"id": ids, "text": ids, "label": pa.array(gold, pa.int64())}), tmp / f"{split}.parquet")
    weak_probs, weak_right = _predictions(rng, gold, SKILL["weak"])
    for split in ("test", "transfer"):
        write_parquet(prediction_table(ids, split, weak_probs).drop_columns(["split"]), tmp / f"weak_{split}.parquet")
    student_skill = SKILL[strong] - (0.05 if method == "xent_hard" else 0.0)
    for role, skill in (("student", student_skill), ("ceiling", SKILL[strong])):
        probs, _ = _predictions(rng, gold, skill, same_as=weak_right if strong == "tiny" else None)
        write_parquet(pa.concat_tables([prediction_table(ids, s, probs) for s in ("transfer", "test")]),
                      tmp / f"{role}.parquet")
    experiment = {"task": task, "seed": seed, "weak_model": "small", "strong_model": strong, "mode": "linear_probe",
                  "method": method}
    return evaluate_experiment(tmp / "test.parquet", tmp / "transfer.parquet", tmp / "weak_test.parquet",
                               tmp / "weak_transfer.parquet", tmp / "student.parquet", tmp / "ceiling.parquet",
                               EvaluationSettings(bootstrap_samples=200), experiment, tmp / "metrics.json")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grid")
    metrics = [
        _run(tmp, task, seed, strong, method)
        for task in ("rotten_tomatoes", "tweet_sentiment")
        for seed in (0, 1, 2)
        for strong in ("base", "large")
        for method in ("xent", "xent_hard")
    ]
    metrics.append(_run(tmp, "rotten_tomatoes", 0, "tiny", "xent"))  # ceiling copies weak: undefined PGR
    summary = summary_table(metrics)
    return summary, aggregate_seeds(summary, 0.95), metrics


def test_every_plot_is_a_valid_png(grid, tmp_path):
    summary, by_seed, metrics = grid
    paths = make_plots(summary, by_seed, metrics, {name: tmp_path / f"{name}.png" for name in PLOT_NAMES})
    assert set(paths) == set(PLOT_NAMES)
    for path in paths.values():
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        image = imread(path)
        assert image.shape[0] > 200 and image.shape[1] > 200
        assert image[..., :3].std() > 0.01  # something was drawn
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no leftovers


def test_make_plots_needs_every_output_path(grid, tmp_path):
    summary, by_seed, metrics = grid
    with pytest.raises(ValueError, match="calibration"):
        make_plots(summary, by_seed, metrics, {name: tmp_path / name for name in PLOT_NAMES[:3]})


def test_a_single_run_plots_too(grid, tmp_path):
    _, _, metrics = grid
    summary = summary_table(metrics[:1])
    paths = make_plots(summary, aggregate_seeds(summary, 0.95), metrics[:1],
                       {name: tmp_path / f"{name}.png" for name in PLOT_NAMES})
    assert all(path.read_bytes()[:8] == PNG_SIGNATURE for path in paths.values())


def test_seed_means_use_seed_spread_or_the_single_run_se(grid):
    summary, _, _ = grid
    means = seed_means(summary, "student_acc").set_index(["task", "strong_model", "method"])
    runs = summary[(summary["task"] == "rotten_tomatoes") & (summary["strong_model"] == "base")
                   & (summary["method"] == "xent")]["student_acc"]
    three = means.loc[("rotten_tomatoes", "base", "xent")]
    assert three["mean"] == pytest.approx(runs.mean()) and three["err"] == pytest.approx(runs.std() / np.sqrt(3))
    single = means.loc[("rotten_tomatoes", "tiny", "xent")]
    tiny_se = summary.loc[summary["strong_model"] == "tiny", "student_acc_se"].iloc[0]
    assert single["err"] == pytest.approx(tiny_se)


def test_pgr_points_pick_the_interval(grid):
    summary, by_seed, _ = grid
    points = pgr_points(summary, by_seed).set_index(["task", "strong_model", "method"])
    assert points.loc[("tweet_sentiment", "large", "xent"), "interval"] == "t over seeds"
    tiny = points.loc[("rotten_tomatoes", "tiny", "xent")]
    assert np.isnan(tiny["pgr"])


def test_pooled_reliability_weights_by_count():
    a = {"count": [2, 0], "mean_confidence": [0.2, None], "accuracy": [0.5, None]}
    b = {"count": [1, 3], "mean_confidence": [0.5, 0.8], "accuracy": [1.0, 1.0]}
    pooled = pooled_reliability([a, b])
    # bin 1: (2 * 0.2 + 1 * 0.5) / 3 = 0.3 confidence, (2 * 0.5 + 1) / 3 = 2/3 accuracy
    assert pooled["count"].tolist() == [3, 3]
    assert pooled["confidence"][0] == pytest.approx(0.3) and pooled["accuracy"][0] == pytest.approx(2 / 3)
    assert pooled["confidence"][1] == pytest.approx(0.8)
