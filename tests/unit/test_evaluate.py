"""Evaluation stage and summaries on hand-made prediction files with hand-computed metrics."""

import json
import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from w2s.cli import main
from w2s.evaluate import EvaluationSettings, Predictions, diagnostics, evaluate_experiment, evaluate_students
from w2s.io import write_parquet
from w2s.metrics import bootstrap_pgr
from w2s.summary import aggregate_seeds, summarize, summary_table
from w2s.tables import prediction_table

GOLD = [0, 1, 1, 0, 1, 0, 1, 1, 0, 0]
IDS = [f"x{i}" for i in range(10)]
# Weak confidence on test, off the 0.1-wide bin edges; its median is (0.74 + 0.81) / 2 = 0.775.
WEAK_CONFIDENCE = [0.55, 0.62, 0.66, 0.72, 0.74, 0.81, 0.86, 0.91, 0.95, 0.98]
SETTINGS = EvaluationSettings(
    min_pgr_gap=0.01,
    bootstrap_samples=300,
    confidence_level=0.95,
    bootstrap_seed=0,
    ece_bins=10,
    confidence_split="median",
)


def _flip(labels, idx):
    return [1 - y if i in idx else y for i, y in enumerate(labels)]


def _probs(hard, confidence):
    """Binary probabilities putting ``confidence`` on the ``hard`` class."""
    confidence = np.broadcast_to(np.asarray(confidence, dtype=np.float32), (len(hard),))
    probs = np.empty((len(hard), 2), dtype=np.float32)
    probs[np.arange(len(hard)), hard] = confidence
    probs[np.arange(len(hard)), 1 - np.asarray(hard)] = 1 - confidence
    return probs


def _split(path, labels, **extra):
    texts = [f"t{i}" for i in range(10)]
    write_parquet(pa.table({"id": IDS, "text": texts, "label": pa.array(labels, pa.int64()), **extra}), path)


def _weak_labels(path, hard, confidence):
    """A weak-label file as label_weak writes it: no split column, no gold."""
    table = prediction_table(IDS, "unused", _probs(hard, confidence)).drop_columns(["split"])
    write_parquet(table.add_column(1, "text", pa.array([f"t{i}" for i in range(10)])), path)


def _strong(path, test_hard, transfer_hard, confidence=0.9):
    tables = [
        prediction_table(IDS, split, _probs(hard, confidence))
        for split, hard in (("transfer", transfer_hard), ("test", test_hard))
    ]
    write_parquet(pa.concat_tables(tables), path)


@pytest.fixture
def files(tmp_path):
    _split(tmp_path / "test.parquet", GOLD)
    _split(tmp_path / "transfer.parquet", GOLD)
    _weak_labels(tmp_path / "weak_test.parquet", _flip(GOLD, {0, 1, 2, 3}), WEAK_CONFIDENCE)  # 6/10 right
    _weak_labels(tmp_path / "weak_transfer.parquet", _flip(GOLD, {0}), 0.9)  # 9/10 right
    _strong(tmp_path / "student.parquet", _flip(GOLD, {0, 1}), _flip(GOLD, {0, 5}))  # test 8/10, transfer 8/10
    _strong(tmp_path / "ceiling.parquet", _flip(GOLD, {0}), GOLD)  # test 9/10
    return tmp_path


def _evaluate(files, ceiling="ceiling.parquet", settings=SETTINGS, experiment=None):
    return evaluate_experiment(
        files / "test.parquet",
        files / "transfer.parquet",
        files / "weak_test.parquet",
        files / "weak_transfer.parquet",
        files / "student.parquet",
        files / ceiling,
        settings,
        experiment or {"task": "t", "seed": 0},
        files / "metrics.json",
    )


def test_accuracy_pgr_and_transfer_hand_values(files):
    metrics = _evaluate(files)
    assert metrics["weak_acc"] == 0.6 and metrics["student_acc"] == 0.8 and metrics["ceiling_acc"] == 0.9
    assert metrics["pgr"] == pytest.approx((0.8 - 0.6) / (0.9 - 0.6)) and metrics["pgr_note"] == "ok"
    assert metrics["student_acc_se"] == pytest.approx(np.sqrt(0.8 * 0.2 / 10))
    assert metrics["weak_acc_transfer"] == pytest.approx(0.9)
    assert metrics["student_acc_transfer"] == pytest.approx(0.8)
    assert "ceiling_acc_transfer" not in metrics  # the ceiling trained on transfer gold
    assert metrics["n_test"] == 10 and metrics["n_transfer"] == 10
    assert json.loads((files / "metrics.json").read_text()) == metrics


def test_calibration_hand_values(files):
    metrics = _evaluate(files)
    # student: confidence 0.9 everywhere, accuracy 0.8 -> one bin, ECE 0.1; ceiling accuracy 0.9 -> 0
    assert metrics["student_ece"] == pytest.approx(0.1, abs=1e-6)
    assert metrics["ceiling_ece"] == pytest.approx(0.0, abs=1e-6)
    # weak, wrong on the four least confident items; 10 bins:
    #   (0.5, 0.6] {0.55 wrong}            |0 - 0.55|     x 1
    #   (0.6, 0.7] {0.62, 0.66 wrong}      |0 - 0.64|     x 2
    #   (0.7, 0.8] {0.72 wrong, 0.74 right} |0.5 - 0.73|  x 2
    #   (0.8, 0.9] {0.81, 0.86 right}      |1 - 0.835|    x 2
    #   (0.9, 1.0] {0.91, 0.95, 0.98 right} |1 - 0.94667| x 3
    # ECE = (0.55 + 1.28 + 0.46 + 0.33 + 0.16) / 10 = 0.278
    assert metrics["weak_ece"] == pytest.approx(0.278, abs=1e-6)
    assert metrics["weak_ece_transfer"] == pytest.approx(0.0, abs=1e-6)
    # student Brier, both classes: a right item scores 2 * 0.1^2, a wrong one 2 * 0.9^2: (8 * 0.02 + 2 * 1.62) / 10
    assert metrics["student_brier"] == pytest.approx(0.34, abs=1e-6)
    reliability = metrics["reliability"]["weak"]
    assert reliability["count"] == [0, 0, 0, 0, 0, 1, 2, 2, 2, 3]
    assert reliability["accuracy"] == [None] * 5 + [0.0, 0.0, 0.5, 1.0, 1.0]


def test_auroc_matches_sklearn(files):
    metrics = _evaluate(files)
    weak_p1 = _probs(_flip(GOLD, {0, 1, 2, 3}), WEAK_CONFIDENCE)[:, 1]
    assert metrics["weak_auroc"] == pytest.approx(roc_auc_score(GOLD, weak_p1))
    student_p1 = _probs(_flip(GOLD, {0, 1}), 0.9)[:, 1]
    assert metrics["student_auroc"] == pytest.approx(roc_auc_score(GOLD, student_p1))


def test_diagnostics_hand_values(files):
    metrics = _evaluate(files)
    # weak is wrong on items 0-3; the student is wrong on 0 and 1 (the same flipped label).
    # weak-right items 4-9: student agrees on all 6; weak-wrong items 0-3: agrees on 0 and 1 -> 2/4
    assert metrics["student_weak_agreement"] == pytest.approx(0.8)
    assert metrics["student_weak_agreement_weak_correct"] == pytest.approx(1.0)
    assert metrics["student_weak_agreement_weak_wrong"] == pytest.approx(0.5)
    # weak-confident = confidence above the median 0.775: items 5-9; unsure: items 0-4
    assert metrics["weak_confidence_threshold"] == pytest.approx(0.775)
    assert metrics["n_weak_confident"] == 5 and metrics["n_weak_unsure"] == 5
    assert metrics["student_acc_weak_confident"] == 1.0
    assert metrics["student_acc_weak_unsure"] == pytest.approx(3 / 5)
    assert metrics["weak_acc_weak_confident"] == 1.0 and metrics["weak_acc_weak_unsure"] == pytest.approx(1 / 5)


def test_fixed_confidence_threshold(files):
    settings = EvaluationSettings(bootstrap_samples=10, confidence_split=0.7)
    metrics = _evaluate(files, settings=settings)
    # confidence > 0.7: items 3-9 (student right on all); <= 0.7: items 0-2 (student right on 2)
    assert metrics["n_weak_confident"] == 7 and metrics["student_acc_weak_confident"] == 1.0
    assert metrics["student_acc_weak_unsure"] == pytest.approx(1 / 3)


def test_pgr_interval_is_fieller_and_unbounded_when_the_gap_is_not_significant(files):
    metrics = _evaluate(files)
    # ceiling - weak per item is 1 on items 1-3, else 0: mean 0.3, se sqrt(0.7 * 0.3 / 9 * 10 / 10) ~ 0.153,
    # below t_{0.975, 9} = 2.262 standard errors from 0, so the Fieller set is unbounded
    assert metrics["pgr_ci_unbounded"] is True
    assert metrics["pgr_ci_low"] is None and metrics["pgr_ci_high"] is None
    assert 0.0 <= metrics["pgr_boot_undefined_frac"] < 1.0
    assert metrics["settings"]["bootstrap_samples"] == 300
    wide = _evaluate(files, settings=EvaluationSettings(bootstrap_samples=10, confidence_level=0.5))
    # at 50%: t_{0.75, 9} = 0.703 standard errors, so the set is bounded and holds the point estimate
    assert wide["pgr_ci_unbounded"] is False and wide["pgr_ci_low"] <= wide["pgr"] <= wide["pgr_ci_high"]


def test_pgr_undefined_when_gap_is_small(files):
    # the ceiling predicts exactly what the weak teacher does: gap 0 on test and in every resample
    _strong(files / "same_as_weak.parquet", _flip(GOLD, {0, 1, 2, 3}), GOLD)
    metrics = _evaluate(files, ceiling="same_as_weak.parquet")
    assert metrics["pgr"] is None and "undefined" in metrics["pgr_note"]
    assert metrics["pgr_ci_low"] is None and metrics["pgr_ci_high"] is None
    assert metrics["pgr_ci_unbounded"] is False  # no interval at all, not an unbounded one
    assert metrics["pgr_boot_undefined_frac"] == 1.0


def test_missing_predictions_are_an_error(files):
    write_parquet(prediction_table(IDS[:5], "test", np.full((5, 2), 0.5, np.float32)), files / "student.parquet")
    message = "student: 5 test examples have no prediction, e.g. ['x5', 'x6', 'x7']"
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        _evaluate(files)


@pytest.mark.parametrize(
    ("file", "split", "named"),
    [
        ("weak_test.parquet", None, "weak: 5 test examples"),
        ("weak_transfer.parquet", None, "weak: 5 transfer examples"),
        ("ceiling.parquet", "test", "ceiling: 5 test examples"),
        ("student.parquet", "transfer", "student: 5 transfer examples"),
    ],
)
def test_missing_predictions_name_the_model_and_the_split(files, file, split, named):
    table = pq.read_table(files / file)
    rows = table.to_pandas()
    dropped = rows["id"].isin(IDS[5:]) & ((rows["split"] == split) if split else True)
    rows = rows[~dropped]
    write_parquet(pa.Table.from_pandas(rows, schema=table.schema, preserve_index=False), files / file)
    with pytest.raises(ValueError, match="^" + re.escape(named)):
        _evaluate(files)


def _cli(files, methods, students, outputs):
    main(
        [
            "evaluate",
            "--test",
            str(files / "test.parquet"),
            "--transfer",
            str(files / "transfer.parquet"),
            "--weak-test",
            str(files / "weak_test.parquet"),
            "--weak-transfer",
            str(files / "weak_transfer.parquet"),
            "--methods",
            *methods,
            "--students",
            *[str(files / s) for s in students],
            "--ceiling",
            str(files / "ceiling.parquet"),
            "--settings",
            json.dumps(
                {
                    "bootstrap_samples": 50,
                    "confidence_level": 0.9,
                    "bootstrap_seed": 7,
                    "ece_bins": 5,
                    "confidence_split": 0.8,
                    "blind_spot_confidence": 0.7,
                }
            ),
            "--experiment",
            '{"task": "t"}',
            "--outputs",
            *[str(files / o) for o in outputs],
        ]
    )


def test_cli_scores_every_method_of_a_pair_and_passes_every_setting(files):
    # The second method's "student" is the ceiling's predictions: its student accuracy is the ceiling's.
    _cli(files, ["a", "b"], ["student.parquet", "ceiling.parquet"], ["a.json", "b.json"])
    a, b = (json.loads((files / name).read_text()) for name in ("a.json", "b.json"))
    assert (a["task"], a["method"], b["method"]) == ("t", "a", "b")
    assert a["student_acc"] == _evaluate(files)["student_acc"] and b["student_acc"] == b["ceiling_acc"]
    assert a["settings"] == {
        "min_pgr_gap": 0.01,
        "bootstrap_samples": 50,
        "confidence_level": 0.9,
        "bootstrap_seed": 7,
        "ece_bins": 5,
        "confidence_split": 0.8,
        "blind_spot_confidence": 0.7,
    }
    assert len(a["reliability"]["weak"]["count"]) == 5 and a["weak_confidence_threshold"] == 0.8


def test_cli_needs_one_student_and_one_output_per_method(files):
    with pytest.raises(SystemExit, match="2 methods, 1 student prediction files and 2 outputs"):
        _cli(files, ["a", "b"], ["student.parquet"], ["a.json", "b.json"])
    assert not (files / "a.json").exists()


@pytest.mark.parametrize("split", ["median", 0.0, 1.0, 0, 1])
def test_a_confidence_split_at_either_end_of_the_unit_interval_is_accepted(split):
    assert EvaluationSettings(confidence_split=split).confidence_split == split


@pytest.mark.parametrize("split", [1.5, -0.1, "mean"])
def test_a_bad_confidence_split_is_refused(split):
    with pytest.raises(ValueError, match=r"confidence_split must be 'median' or a number in \[0, 1\], got"):
        EvaluationSettings(confidence_split=split)


def test_an_item_exactly_at_the_confidence_split_counts_as_unsure():
    labels = np.array([0, 1, 1, 0])
    # weak wrong on item 2, student wrong on item 0; confidences exact in binary
    weak = Predictions(np.zeros((4, 2)), np.array([0, 1, 0, 0]), np.array([0.5, 0.75, 0.75, 0.875]))
    student = Predictions(np.zeros((4, 2)), np.array([1, 1, 1, 0]), np.full(4, 0.9))
    fixed = diagnostics(student, weak, labels, 0.75)
    assert fixed["weak_confidence_threshold"] == 0.75
    assert (fixed["n_weak_confident"], fixed["n_weak_unsure"]) == (1, 3)
    assert fixed["student_acc_weak_confident"] == 1.0 and fixed["student_acc_weak_unsure"] == pytest.approx(2 / 3)
    assert fixed["weak_acc_weak_confident"] == 1.0 and fixed["weak_acc_weak_unsure"] == pytest.approx(2 / 3)
    # the median of 0.5, 0.75, 0.75, 0.875 is 0.75 too
    assert diagnostics(student, weak, labels, "median") == fixed


def test_pgr_is_undefined_below_the_configured_minimum_gap_and_so_are_most_resamples(files):
    metrics = _evaluate(files, settings=EvaluationSettings(min_pgr_gap=0.5, bootstrap_samples=400, bootstrap_seed=3))
    # ceiling - weak = 0.9 - 0.6 = 0.3 on test
    assert metrics["pgr"] is None
    assert metrics["pgr_note"] == "undefined: ceiling - weak = 0.3000 is below the minimum gap 0.5000"
    assert metrics["pgr_ci_low"] is None and metrics["pgr_ci_unbounded"] is False
    # a resample's gap is the share of its 10 draws that fall on items 1-3 (ceiling right, weak wrong):
    # at least 0.5 with probability P(Binomial(10, 0.3) >= 5) = 0.15, so about 85% of resamples are undefined
    assert 0.75 < metrics["pgr_boot_undefined_frac"] < 0.95


def test_the_bootstrap_uses_the_configured_seed_and_sample_count(files):
    settings = EvaluationSettings(min_pgr_gap=0.35, bootstrap_samples=20000, bootstrap_seed=11)
    metrics = _evaluate(files, settings=settings)
    weak, student, ceiling = (
        (np.array(_flip(GOLD, wrong)) == GOLD).astype(float) for wrong in ({0, 1, 2, 3}, {0, 1}, {0})
    )
    expected = bootstrap_pgr(weak, student, ceiling, n_boot=20000, confidence=0.95, seed=11, min_gap=0.35)
    # about 65% undefined (fewer than 4 of 10 draws on items 1-3); another seed would miss this exact share
    assert metrics["pgr_boot_undefined_frac"] == expected.undefined_fraction
    assert 0.6 < expected.undefined_fraction < 0.7


def test_calibration_uses_the_configured_number_of_bins(files):
    metrics = _evaluate(files, settings=EvaluationSettings(bootstrap_samples=10, ece_bins=2))
    # two bins: every weak confidence is in (0.5, 1], accuracy 0.6 against mean confidence 7.8 / 10
    assert metrics["weak_ece"] == pytest.approx(0.18, abs=1e-6)
    assert metrics["reliability"]["weak"]["count"] == [0, 10]


def test_coverage_and_blind_spots_follow_each_methods_confidence_band(files):
    # student confidence 0.97 on item 0 and 0.9 elsewhere; wrong on items 0 and 1
    _strong(files / "student.parquet", _flip(GOLD, {0, 1}), _flip(GOLD, {0, 5}), [0.97] + [0.9] * 9)
    settings = EvaluationSettings(bootstrap_samples=10, confidence_split=0.7, blind_spot_confidence=0.95)
    out = evaluate_students(
        files / "test.parquet",
        files / "transfer.parquet",
        files / "weak_test.parquet",
        files / "weak_transfer.parquet",
        {"banded": files / "student.parquet", "all": files / "student.parquet"},
        files / "ceiling.parquet",
        settings,
        {"task": "t", "seed": 0},
        {"banded": files / "banded.json", "all": files / "all.json"},
        bands={"banded": [0.7, 0.9]},
    )
    banded, everything = out["banded"], out["all"]
    assert json.loads((files / "banded.json").read_text()) == banded and banded["method"] == "banded"
    # weak confidence in [0.7, 0.9]: items 3-6; weak wrong on 0-3
    assert banded["coverage_source"] == "weak confidence in [0.7, 0.9]"
    assert (banded["n_covered_weak_right"], banded["student_acc_covered_weak_right"]) == (3, 1.0)
    assert (banded["n_correction"], banded["student_acc_correction"]) == (1, 1.0)
    assert banded["n_expansion"] == 6 and banded["student_acc_expansion"] == pytest.approx(4 / 6)
    assert everything["coverage_source"] == "all items (no confidence band)" and everything["n_expansion"] == 0
    assert everything["expansion_note"] == "the teacher covers every item"
    # confidently wrong (above 0.95): item 0 only; the teacher is unsure (at most 0.7) on items 0-2
    for metrics in (banded, everything):
        assert metrics["blind_spot_rate"] == pytest.approx(0.1) and metrics["blind_spot_student_threshold"] == 0.95
        assert metrics["weak_confidence_threshold"] == 0.7


def test_students_and_outputs_must_name_the_same_methods():
    with pytest.raises(
        ValueError, match=re.escape("students ['a', 'b'] and outputs ['a', 'c'] name different methods")
    ):
        evaluate_students(*["unused"] * 4, {"a": "x", "b": "y"}, "unused", SETTINGS, {}, {"a": "x", "c": "z"})


def test_accuracy_on_easy_and_hard_test_items(files):
    _split(files / "test.parquet", GOLD, difficulty=["easy"] * 5 + ["hard"] * 5)
    metrics = _evaluate(files)
    # weak wrong on 0-3, student on 0-1, ceiling on 0: all of them easy items
    assert (metrics["n_test_easy"], metrics["n_test_hard"]) == (5, 5)
    assert metrics["weak_acc_easy"] == pytest.approx(1 / 5) and metrics["weak_acc_hard"] == 1.0
    assert metrics["student_acc_easy"] == pytest.approx(3 / 5) and metrics["ceiling_acc_easy"] == pytest.approx(4 / 5)
    assert metrics["student_acc_hard"] == 1.0 and metrics["ceiling_acc_hard"] == 1.0
    assert metrics["weak_acc"] == 0.6 and metrics["pgr"] == pytest.approx(2 / 3)  # beside the overall scores


def test_predictions_from_probs_hold_what_a_prediction_file_would():
    # float32 as in the files: 0.5 + 1e-9 rounds to 0.5, a tie that goes to the lowest class
    probs = np.array([[0.5, 0.5 + 1e-9, 0.0], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    predictions = Predictions.from_probs(probs)
    as_stored = probs.astype(np.float32).astype(np.float64)
    assert predictions.probs.dtype == np.float64 and predictions.confidence.dtype == np.float64
    np.testing.assert_array_equal(predictions.probs, as_stored)
    np.testing.assert_array_equal(predictions.hard, [0, 2, 0])
    np.testing.assert_array_equal(predictions.confidence, [0.5, as_stored[1, 2], as_stored[2, 0]])
    np.testing.assert_array_equal(predictions.correct(np.array([0, 2, 1])), [True, True, False])


def _metrics_row(seed, pgr, weak_model="w", method="xent", **extra):
    return {
        "task": "t",
        "seed": seed,
        "weak_model": weak_model,
        "strong_model": "s",
        "mode": "linear_probe",
        "method": method,
        "weak_acc": 0.6 + seed / 100,
        "weak_acc_se": 0.01,
        "pgr": pgr,
        "pgr_note": "ok" if pgr is not None else "undefined",
        "reliability": {"weak": {"count": [1]}},
        **extra,
    }


def test_summary_has_axes_first_one_row_per_experiment_and_no_nested_keys(tmp_path):
    paths = []
    for seed in (1, 0):
        path = tmp_path / f"m{seed}.json"
        path.write_text(json.dumps(_metrics_row(seed, None)))
        paths.append(path)
    out = {name: tmp_path / name for name in ("s.parquet", "s.csv", "b.parquet", "b.csv", "s.html")}
    summary, by_seed = summarize(paths, *out.values(), confidence_level=0.95)
    assert list(summary.columns[:8]) == [
        "task",
        "weak_model",
        "strong_model",
        "mode",
        "method",
        "seed",
        "weak_acc",
        "weak_acc_se",
    ]
    assert "reliability" not in summary
    assert summary["seed"].tolist() == [0, 1]
    assert pd.read_parquet(out["s.parquet"]).shape == (2, 10)  # 6 axes, weak_acc(_se), pgr, pgr_note
    assert pd.read_parquet(out["s.parquet"])["pgr"].isna().all()  # undefined PGR: a null float, not a string
    assert pd.read_csv(out["s.csv"])["weak_acc"].tolist() == [0.6, 0.61]
    assert pd.read_csv(out["b.csv"])["n_seeds"].tolist() == [2]
    assert "undefined" in out["s.html"].read_text()


def test_seed_aggregation_hand_values():
    rows = [_metrics_row(seed, pgr) for seed, pgr in enumerate([0.5, 0.7, 0.6])]
    rows += [_metrics_row(0, 0.4, weak_model="w2"), _metrics_row(1, None, weak_model="w2")]
    rows += [_metrics_row(0, 0.3, method="xent_hard")]
    by_seed = aggregate_seeds(summary_table(rows), confidence_level=0.95).set_index(["weak_model", "method"])

    three = by_seed.loc[("w", "xent")]
    # PGR 0.5, 0.7, 0.6: mean 0.6, sd 0.1, half-width t_{0.975, 2} * 0.1 / sqrt(3), t_{0.975, 2} = 4.302653
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert three["n_seeds"] == 3 and three["seeds"] == "0,1,2" and three["n_seeds_pgr_defined"] == 3
    assert three["pgr_mean"] == pytest.approx(0.6)
    assert three["pgr_seed_ci_low"] == pytest.approx(0.6 - half, rel=1e-6)
    assert three["pgr_seed_ci_high"] == pytest.approx(0.6 + half, rel=1e-6)
    assert three["pgr_seed_sd"] == pytest.approx(0.1)
    assert three["weak_acc_mean"] == pytest.approx(0.61) and three["weak_acc_sd"] == pytest.approx(0.01)
    assert "weak_acc_se_mean" not in by_seed and "seed_mean" not in by_seed

    # one of two seeds undefined: the mean is over the defined one, no interval
    partial = by_seed.loc[("w2", "xent")]
    assert partial["n_seeds"] == 2 and partial["n_seeds_pgr_defined"] == 1
    assert partial["pgr_mean"] == pytest.approx(0.4) and np.isnan(partial["pgr_seed_ci_low"])

    single = by_seed.loc[("w", "xent_hard")]
    assert single["n_seeds"] == 1 and single["pgr_mean"] == pytest.approx(0.3) and np.isnan(single["weak_acc_sd"])


def test_pgr_of_means_over_seeds_hand_values():
    accs = [(0.60, 0.70, 0.80), (0.62, 0.74, 0.82), (0.58, 0.69, 0.84)]  # weak, student, ceiling per seed
    rows = [
        _metrics_row(seed, (s - w) / (c - w), student_acc=s, ceiling_acc=c, settings={"min_pgr_gap": 0.01})
        | {"weak_acc": w}
        for seed, (w, s, c) in enumerate(accs)
    ]
    row = aggregate_seeds(summary_table(rows), confidence_level=0.95).iloc[0]
    # means 0.60, 0.71, 0.82: (0.71 - 0.60) / (0.82 - 0.60) = 0.5
    assert row["pgr_of_means"] == pytest.approx(0.5)
    # per-seed PGRs 0.5, 0.6, 11/26: their mean differs from the PGR of the means
    assert row["pgr_mean"] == pytest.approx((0.5 + 0.6 + 11 / 26) / 3)
    assert row["n_seeds_pgr_undefined"] == 0
    # Fieller over seeds: a = (0.10, 0.12, 0.11), b = (0.20, 0.20, 0.26); q = t^2 / 3
    a, b = np.array([0.10, 0.12, 0.11]), np.array([0.20, 0.20, 0.26])
    q = 4.302653**2 / 3
    quad, half, const = 0.22**2 - q * b.var(ddof=1), 0.11 * 0.22 - q * np.cov(a, b)[0, 1], 0.11**2 - q * a.var(ddof=1)
    root = math.sqrt(half**2 - quad * const)
    assert row["pgr_of_means_ci_low"] == pytest.approx((half - root) / quad, rel=1e-5)
    assert row["pgr_of_means_ci_high"] == pytest.approx((half + root) / quad, rel=1e-5)


def test_pgr_of_means_is_null_when_the_mean_gap_is_too_small():
    rows = [
        _metrics_row(seed, None, student_acc=0.7, ceiling_acc=0.605, settings={"min_pgr_gap": 0.01}) | {"weak_acc": 0.6}
        for seed in range(2)
    ]
    row = aggregate_seeds(summary_table(rows), confidence_level=0.95).iloc[0]
    assert np.isnan(row["pgr_of_means"]) and np.isnan(row["pgr_of_means_ci_low"])
    assert row["n_seeds_pgr_undefined"] == 2


def test_summary_carries_parameter_counts(tmp_path):
    from test_model_size import _write_safetensors

    _write_safetensors(tmp_path / "model.safetensors", {"w": [3, 4]})
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_metrics_row(0, 0.5)))
    out = [tmp_path / name for name in ("s.parquet", "s.csv", "b.parquet", "b.csv", "s.html")]
    models = {"w": {"checkpoint": str(tmp_path)}, "s": {"checkpoint": str(tmp_path / "absent")}}
    summary, _ = summarize([path], *out, confidence_level=0.95, models=models)
    assert summary["weak_params"].tolist() == [12.0] and summary["strong_params"].isna().all()


def test_misfit_and_gain_recompute_from_the_parquet_files(files):
    import pyarrow.parquet as pq

    from w2s.tables import soft_labels

    metrics = _evaluate(files)
    ids = pq.read_table(files / "test.parquet").column("id").to_pylist()
    weak_table, student_table = pq.read_table(files / "weak_test.parquet"), pq.read_table(files / "student.parquet")
    student_table = student_table.filter(pq.read_table(files / "student.parquet").column("split").to_numpy() == "test")
    weak = dict(zip(weak_table.column("id").to_pylist(), soft_labels(weak_table).astype(float)))
    student = dict(zip(student_table.column("id").to_pylist(), soft_labels(student_table).astype(float)))
    sq = np.mean([np.sum((student[i] - weak[i]) ** 2) for i in ids])
    disagree = np.mean([student[i].argmax() != weak[i].argmax() for i in ids])
    assert metrics["misfit_sq_distance_test"] == pytest.approx(sq)
    assert metrics["misfit_disagreement_test"] == pytest.approx(disagree)
    assert metrics["acc_gain_test"] == pytest.approx(metrics["student_acc"] - metrics["weak_acc"])
    assert metrics["brier_reduction_test"] == pytest.approx(metrics["weak_brier"] - metrics["student_brier"])
    assert metrics["n_expansion"] == 0 and metrics["student_acc_expansion"] is None  # no band: all covered
    assert "misfit_kl_student_weak_transfer" in metrics and "pgr_ci_kind" in metrics


def test_the_label_models_convergence_reaches_the_metrics_of_an_aggregated_source(files):
    table = pq.read_table(files / "weak_test.parquet")
    summary = {"n_iter": 59, "converged": True, "final_change": 7.6e-7, "tol": 1e-6}
    write_parquet(
        table,
        files / "weak_test.parquet",
        provenance={"settings": {"aggregator": "label_model"}, "label_model_summary": summary},
    )
    metrics = _evaluate(files)
    assert (metrics["weak_label_model_n_iter"], metrics["weak_label_model_converged"]) == (59, True)
    assert metrics["weak_label_model_final_change"] == 7.6e-7 and metrics["weak_acc"] == 0.6  # added to the rest
    write_parquet(
        table,
        files / "weak_test.parquet",
        provenance={"settings": {"aggregator": "mean"}, "label_model_summary": summary},
    )
    assert "weak_label_model_n_iter" not in _evaluate(files)  # the label model did not make these labels
    write_parquet(table, files / "weak_test.parquet", provenance={"label_model_summary": summary})
    assert "weak_label_model_n_iter" not in _evaluate(files)  # no aggregator named
