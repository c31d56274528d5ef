"""Plots of a small synthetic grid (two tasks, seeds, strong models, methods, one undefined PGR) are valid PNGs."""

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from matplotlib.image import imread

from w2s.evaluate import EvaluationSettings, evaluate_experiment
from w2s.family_plots import accuracy_series, make_family_plots, model_order, pgr_matrix, pgr_table, strong_axis
from w2s.io import write_parquet
from w2s.pgr_plot import interval_bar, is_fragile, pgr_points
from w2s.plots import PLOT_NAMES, make_plots, pooled_reliability, seed_means
from w2s.summary import aggregate_seeds, summary_table
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
        write_parquet(
            pa.concat_tables([prediction_table(ids, s, probs) for s in ("transfer", "test")]), tmp / f"{role}.parquet"
        )
    experiment = {
        "task": task,
        "seed": seed,
        "weak_model": "small",
        "strong_model": strong,
        "mode": "linear_probe",
        "method": method,
    }
    return evaluate_experiment(
        tmp / "test.parquet",
        tmp / "transfer.parquet",
        tmp / "weak_test.parquet",
        tmp / "weak_transfer.parquet",
        tmp / "student.parquet",
        tmp / "ceiling.parquet",
        EvaluationSettings(bootstrap_samples=200),
        experiment,
        tmp / "metrics.json",
    )


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
    paths = make_plots(
        summary, aggregate_seeds(summary, 0.95), metrics[:1], {name: tmp_path / f"{name}.png" for name in PLOT_NAMES}
    )
    assert all(path.read_bytes()[:8] == PNG_SIGNATURE for path in paths.values())


def test_seed_means_use_seed_spread_or_the_single_run_se(grid):
    summary, _, _ = grid
    means = seed_means(summary, "student_acc").set_index(["task", "strong_model", "method"])
    runs = summary[
        (summary["task"] == "rotten_tomatoes") & (summary["strong_model"] == "base") & (summary["method"] == "xent")
    ]["student_acc"]
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


def test_interval_bar_is_not_clipped_at_the_point_estimate():
    # an interval (0.6, 0.9) that excludes its point estimate 0.5 is drawn as it is
    assert interval_bar(pd.Series({"pgr": 0.5, "low": 0.6, "high": 0.9})) == (0.6, 0.9)
    assert interval_bar(pd.Series({"pgr": 0.5, "low": -0.2, "high": 0.4})) == (-0.2, 0.4)
    assert interval_bar(pd.Series({"pgr": 0.5, "low": np.nan, "high": 0.4})) is None


def test_fragile_pgr_is_marked_above_the_undefined_share():
    assert is_fragile(pd.Series({"undefined_share": 0.03})) and not is_fragile(pd.Series({"undefined_share": 0.025}))
    assert not is_fragile(pd.Series({"undefined_share": np.nan}))


def test_pgr_points_carry_the_undefined_share(grid):
    summary, by_seed, _ = grid
    points = pgr_points(summary, by_seed).set_index(["task", "strong_model", "method"])
    expected = by_seed.set_index(["task", "strong_model", "method"]).loc[
        ("tweet_sentiment", "large", "xent"), "pgr_boot_undefined_frac_max"
    ]
    assert points.loc[("tweet_sentiment", "large", "xent"), "undefined_share"] == expected


# ---------------------------------------------------------------- model-family plots (a hand-built grid)
# Weak accuracy per seed, ceiling accuracy per seed, and the share f of the gap each student recovers:
# student = weak + f * (ceiling - weak) + (-0.01, +0.01) by seed, so the PGR of the mean accuracies is f.
WEAK_ACC = {"small": (0.60, 0.62), "big": (0.70, 0.72)}
CEILING_ACC = {"base": (0.70, 0.72), "medium": (0.80, 0.82), "large": (0.90, 0.92)}
RECOVERED = {
    ("small", "base"): 0.2,
    ("small", "medium"): 0.5,
    ("small", "large"): 0.8,
    ("big", "base"): 0.0,
    ("big", "medium"): 0.3,
    ("big", "large"): 0.6,
}  # big -> base: gap 0, undefined
PARAMS = {"small": 1e6, "big": 4e6, "base": 1e8, "medium": 3e8, "large": 1e9}


def _family_summary(seeds=(0, 1), strong_params=PARAMS) -> pd.DataFrame:
    rows = []
    for (weak, strong), f in RECOVERED.items():
        for seed in seeds:
            w, c = WEAK_ACC[weak][seed], CEILING_ACC[strong][seed]
            student = w + f * (c - w) + (-0.01, 0.01)[seed]
            pgr = (student - w) / (c - w) if c - w >= 0.01 else np.nan
            for method, shift in (("xent", 0.0), ("other", 0.05)):
                rows.append(
                    {
                        "task": "toy",
                        "weak_model": weak,
                        "strong_model": strong,
                        "mode": "linear_probe",
                        "method": method,
                        "seed": seed,
                        "weak_acc": w,
                        "weak_acc_se": 0.015,
                        "student_acc": student + shift,
                        "student_acc_se": 0.014,
                        "ceiling_acc": c,
                        "ceiling_acc_se": 0.013,
                        "pgr": pgr,
                        "pgr_ci_low": pgr - 0.1,
                        "pgr_ci_high": pgr + 0.1,
                        "min_pgr_gap": 0.01,
                        "weak_params": PARAMS[weak],
                        "strong_params": strong_params.get(strong, np.nan),
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture()
def family():
    summary = _family_summary()
    return summary, aggregate_seeds(summary, 0.95)


def test_models_are_ordered_by_size_else_by_the_given_order(family):
    summary, _ = family
    assert model_order(summary, "strong") == ["base", "medium", "large"]
    assert model_order(summary, "weak", ["big", "small"]) == ["small", "big"]  # sizes known: by size
    unknown = _family_summary(strong_params={"base": 1e8})
    assert model_order(unknown, "strong", ["large", "base"]) == ["large", "base", "medium"]
    assert strong_axis(unknown, ["large", "base"]) == ({"large": 0.0, "base": 1.0, "medium": 2.0}, False)
    assert strong_axis(summary) == ({"base": 1e8, "medium": 3e8, "large": 1e9}, True)


def test_accuracy_series_are_means_over_seeds_with_their_standard_error(family):
    summary, _ = family
    series = accuracy_series(summary, "xent").set_index(["kind", "weak_model", "strong_model"], drop=False)
    # small -> medium: seeds 0.60 + 0.5 * 0.2 - 0.01 = 0.69 and 0.62 + 0.1 + 0.01 = 0.73
    point = series.loc[("student", "small", "medium")]
    assert point["mean"] == pytest.approx(0.71) and point["err"] == pytest.approx(0.02) and point["x"] == 3e8
    ceiling = series[series["kind"] == "ceiling"].set_index("strong_model")
    assert ceiling.loc["large", "mean"] == pytest.approx(0.91) and ceiling.loc["large", "err"] == pytest.approx(0.01)
    weak = series[series["kind"] == "weak"].set_index("weak_model")
    assert weak.loc["big", "mean"] == pytest.approx(0.71) and np.isnan(weak.loc["big", "x"])
    assert len(series) == 6 + 3 + 2
    other = accuracy_series(summary, "other").set_index(["kind", "weak_model", "strong_model"])
    assert other.loc[("student", "small", "medium"), "mean"] == pytest.approx(0.76)  # the method's own students


def test_accuracy_series_single_seed_uses_the_runs_standard_error():
    series = accuracy_series(_family_summary(seeds=(0,)), "xent")
    student = series[series["kind"] == "student"]
    assert (student["err"] == 0.014).all() and (student["n_seeds"] == 1).all()


def test_an_unknown_method_is_named(family):
    summary, _ = family
    with pytest.raises(ValueError, match="'nope' is not in the summary"):
        accuracy_series(summary, "nope")


def test_pgr_table_and_heatmap_matrix_hold_the_pgr_of_means(family):
    summary, by_seed = family
    table = pgr_table(summary, by_seed)
    values, present = pgr_matrix(table, "toy", "xent", ["small", "big"], ["base", "medium", "large"])
    expected = np.array([[0.2, 0.5, 0.8], [np.nan, 0.3, 0.6]])
    np.testing.assert_allclose(values.to_numpy(), expected, atol=1e-9)
    assert present.to_numpy().all()
    row = table.set_index(["weak", "strong", "method"]).loc[("small", "medium", "xent")]
    group = by_seed.set_index(["weak_model", "strong_model", "method"]).loc[("small", "medium", "xent")]
    assert row["low"] == group["pgr_of_means_ci_low"] and row["high"] == group["pgr_of_means_ci_high"]
    assert row["low"] < 0.5 < row["high"] and row["n_seeds"] == 2 and row["interval"] == "Fieller over seeds"
    undefined = table.set_index(["weak", "strong", "method"]).loc[("big", "base", "xent")]
    assert np.isnan(undefined["pgr"]) and undefined["interval"] == "undefined"


def test_pgr_table_with_one_seed_takes_the_runs_interval():
    summary = _family_summary(seeds=(0,))
    row = (
        pgr_table(summary, aggregate_seeds(summary, 0.95))
        .set_index(["weak", "strong", "method"])
        .loc[("small", "medium", "xent")]
    )
    # seed 0: student 0.69, weak 0.60, ceiling 0.80: PGR 0.45, the run's interval 0.35 to 0.55
    assert row["pgr"] == pytest.approx(0.45) and row["low"] == pytest.approx(0.35)
    assert row["high"] == pytest.approx(0.55) and row["interval"] == "Fieller over test examples"


def test_pgr_matrix_leaves_pairs_not_in_the_grid_absent(family):
    summary, by_seed = family
    table = pgr_table(summary, by_seed)
    table = table[~((table["weak"] == "big") & (table["strong"] == "large"))]
    values, present = pgr_matrix(table, "toy", "xent", ["small", "big"], ["base", "medium", "large"])
    assert not present.loc["big", "large"] and np.isnan(values.loc["big", "large"]) and present.loc["big", "base"]


def test_family_plots_and_tables_are_written(family, tmp_path):
    summary, by_seed = family
    outputs = {
        "accuracy_vs_strong_size": tmp_path / "acc.png",
        "pgr_heatmap": tmp_path / "heat.png",
        "pgr_table_csv": tmp_path / "pgr.csv",
        "pgr_table_md": tmp_path / "pgr.md",
    }
    paths = make_family_plots(summary, by_seed, "xent", outputs, ["big", "small"], ["large", "medium", "base"])
    for name in ("accuracy_vs_strong_size", "pgr_heatmap"):
        assert paths[name].read_bytes()[:8] == PNG_SIGNATURE
        assert imread(paths[name])[..., :3].std() > 0.01
    csv = pd.read_csv(outputs["pgr_table_csv"]).set_index(["weak", "strong", "method"])
    assert len(csv) == 12 and csv.loc[("small", "large", "xent"), "pgr"] == pytest.approx(0.8)
    assert np.isnan(csv.loc[("big", "base", "xent"), "pgr"]) and (csv["n_seeds"] == 2).all()
    lines = outputs["pgr_table_md"].read_text().splitlines()
    assert lines[0].startswith("| task | weak | strong | method | PGR | interval low | interval high | n seeds")
    cells = {
        tuple(c.strip() for c in line.strip("|").split("|"))[1:4]: [c.strip() for c in line.strip("|").split("|")]
        for line in lines[2:]
    }
    assert cells[("small", "medium", "xent")][4] == "0.500" and cells[("small", "medium", "xent")][7] == "2"
    assert cells[("big", "base", "xent")][4] == "undef."
    assert cells[("small", "medium", "other")][4] == f"{0.75:.3f}"  # (0.76 - 0.61) / 0.2


def test_family_plots_need_every_output_path(family, tmp_path):
    summary, by_seed = family
    with pytest.raises(ValueError, match="pgr_table_md"):
        make_family_plots(summary, by_seed, "xent", {"pgr_heatmap": tmp_path / "h.png"})


def test_family_plots_of_one_pair_with_unknown_sizes(tmp_path):
    summary = _family_summary(seeds=(0,), strong_params={})
    summary = summary[(summary["weak_model"] == "small") & (summary["strong_model"] == "medium")]
    outputs = {
        name: tmp_path / f"{name}.out"
        for name in ("accuracy_vs_strong_size", "pgr_heatmap", "pgr_table_csv", "pgr_table_md")
    }
    make_family_plots(summary, aggregate_seeds(summary, 0.95), "xent", outputs, ["small"], ["medium"])
    assert outputs["pgr_heatmap"].read_bytes()[:8] == PNG_SIGNATURE
    assert outputs["accuracy_vs_strong_size"].read_bytes()[:8] == PNG_SIGNATURE


def _one_group(seeds: int, pgrs: list[float], **by_seed_fields) -> tuple[pd.DataFrame, pd.DataFrame]:
    axes = {"task": "toy", "weak_model": "w", "strong_model": "s", "mode": "linear_probe", "method": "xent"}
    summary = pd.DataFrame(
        [
            {
                **axes,
                "seed": seed,
                "pgr": pgr,
                "pgr_ci_kind": "two_rays",
                "pgr_ci_low": np.nan,
                "pgr_ci_high": np.nan,
                "pgr_ci_ray_low": -3.36,
                "pgr_ci_ray_high": 1.51,
                "pgr_ci_unbounded": True,
            }
            for seed, pgr in zip(range(seeds), pgrs)
        ]
    )
    by_seed = pd.DataFrame(
        [
            {
                **axes,
                "n_seeds": seeds,
                "n_seeds_pgr_defined": int(np.isfinite(pgrs).sum()),
                "pgr_mean": np.nanmean(pgrs),
                "pgr_seed_ci_low": np.nan,
                "pgr_seed_ci_high": np.nan,
                **by_seed_fields,
            }
        ]
    )
    return summary, by_seed


def test_pgr_points_with_one_seed_keep_a_two_ray_set():
    summary, by_seed = _one_group(1, [2.5], pgr_of_means=2.5)
    point = pgr_points(summary, by_seed).iloc[0]
    assert point["kind"] == "two_rays" and point["interval"] == "Fieller over test examples"
    assert (point["ray_low"], point["ray_high"]) == (-3.36, 1.51)
    assert interval_bar(point) is None  # the rays are drawn as rays, never as the bar [-3.36, 1.51]


def test_pgr_points_with_one_defined_seed_of_two_show_the_pgr_of_means():
    # seed 1's PGR is undefined: the group's PGR is that of the seed means, with its set over seeds
    summary, by_seed = _one_group(
        2,
        [0.9, np.nan],
        pgr_of_means=0.4,
        pgr_of_means_ci_kind="everything",
        pgr_of_means_ci_low=None,
        pgr_of_means_ci_high=None,
        pgr_of_means_ci_unbounded=True,
    )
    point = pgr_points(summary, by_seed).iloc[0]
    assert point["pgr"] == 0.4 and point["kind"] == "everything" and point["interval"] == "Fieller over seeds"


def test_pgr_table_names_a_two_ray_set_and_its_roots():
    summary = _family_summary(seeds=(0,))
    is_pair = (summary["weak_model"] == "small") & (summary["strong_model"] == "medium")
    summary.loc[is_pair, ["pgr_ci_kind", "pgr_ci_ray_low", "pgr_ci_ray_high"]] = ["two_rays", -3.36, 1.51]
    summary.loc[is_pair, ["pgr_ci_low", "pgr_ci_high"]] = np.nan
    row = (
        pgr_table(summary, aggregate_seeds(summary, 0.95))
        .set_index(["weak", "strong", "method"])
        .loc[("small", "medium", "xent")]
    )
    assert (row["low"], row["high"]) == (-3.36, 1.51)
    assert row["interval"] == "two rays (Fieller over test examples)"


def test_plot_pgr_draws_two_ray_and_unbounded_sets(tmp_path):
    from w2s.pgr_plot import plot_pgr

    summary, by_seed = _one_group(1, [2.5], pgr_of_means=2.5)
    other_summary, other = _one_group(1, [0.3], pgr_of_means=0.3)
    other_summary["method"] = other["method"] = "product"
    other_summary["pgr_ci_kind"] = "everything"
    path = plot_pgr(pd.concat([summary, other_summary]), pd.concat([by_seed, other]), tmp_path / "pgr.png")
    assert imread(path).shape[0] > 100
