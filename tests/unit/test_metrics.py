"""Metrics and intervals against values worked out by hand (sklearn only as a cross-check)."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import brier_score_loss, roc_auc_score

from w2s.metrics import (
    accuracy,
    accuracy_standard_error,
    agreement,
    auroc,
    binary_auroc,
    bootstrap_accuracies,
    bootstrap_pgr,
    brier_score,
    conditional_agreement,
    confidence_bin,
    expected_calibration_error,
    mean_t_interval,
    percentile_interval,
    performance_gap_recovered,
    pgr_values,
    reliability_bins,
    subset_accuracy,
)


def test_accuracy_and_standard_error():
    acc = accuracy(np.array([1, 0, 1, 1]), np.array([1, 1, 1, 0]))
    assert acc == 0.5
    # sqrt(0.5 * 0.5 / 4) = 0.25
    assert accuracy_standard_error(acc, 4) == pytest.approx(0.25)
    assert agreement(np.array([0, 1, 2]), np.array([0, 1, 1])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy(np.array([1]), np.array([1, 0]))


def test_pgr_hand_value_and_undefined_guard():
    pgr, note = performance_gap_recovered(weak=0.70, student=0.80, ceiling=0.90, min_gap=0.01)
    assert pgr == pytest.approx(0.5) and note == "ok"
    pgr, note = performance_gap_recovered(weak=0.70, student=0.60, ceiling=0.90)
    assert pgr == pytest.approx(-0.5)
    pgr, note = performance_gap_recovered(weak=0.80, student=0.85, ceiling=0.805, min_gap=0.01)
    assert pgr is None and "below the minimum gap" in note
    pgr, _ = performance_gap_recovered(weak=0.80, student=0.85, ceiling=0.80, min_gap=0.0)
    assert pgr is None


def test_pgr_values_matches_the_scalar_guard():
    weak = np.array([0.7, 0.8, 0.8, 0.9])
    student = np.array([0.8, 0.85, 0.85, 0.8])
    ceiling = np.array([0.9, 0.805, 0.8, 0.7])
    values = pgr_values(weak, student, ceiling, min_gap=0.01)
    assert values[0] == pytest.approx(0.5)
    assert np.isnan(values[1:]).all()  # gap 0.005 < min_gap, gap 0, negative gap


def test_binary_auroc_with_ties():
    # positives score 0.4 and 0.8, negatives 0.1 and 0.4. Pairs (pos, neg):
    # (0.4, 0.1) 1, (0.4, 0.4) tie 1/2, (0.8, 0.1) 1, (0.8, 0.4) 1 -> 3.5 / 4
    scores, positive = np.array([0.1, 0.4, 0.4, 0.8]), np.array([0, 0, 1, 1], dtype=bool)
    assert binary_auroc(scores, positive) == pytest.approx(0.875)
    assert roc_auc_score(positive, scores) == pytest.approx(0.875)
    assert binary_auroc(scores, np.zeros(4, dtype=bool)) is None


def test_auroc_binary_uses_the_positive_class_probability():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.6, 0.4], [0.2, 0.8]])
    assert auroc(probs, np.array([0, 0, 1, 1])) == pytest.approx(0.875)


def test_auroc_multiclass_is_macro_one_vs_rest():
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4], [0.4, 0.5, 0.1]])
    labels = np.array([0, 1, 2, 0])
    # class 0: positives {0.6, 0.4} beat negatives {0.2, 0.3} -> 1
    # class 1: positive 0.5 vs negatives {0.3, 0.3, 0.5} -> (1 + 1 + 1/2) / 3 = 5/6
    # class 2: positive 0.4 vs negatives {0.1, 0.3, 0.1} -> 1
    expected = (1 + 5 / 6 + 1) / 3
    assert auroc(probs, labels) == pytest.approx(expected)
    assert roc_auc_score(labels, probs, multi_class="ovr", average="macro") == pytest.approx(expected)


def test_auroc_multiclass_skips_absent_classes():
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    # class 2 never occurs: only classes 0 and 1 (each AUROC 1) enter the mean
    assert auroc(probs, np.array([0, 1])) == pytest.approx(1.0)


def test_brier_binary_hand_value():
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([0, 1, 1])
    # p_1 = 0.2, 0.7, 0.4 against y = 0, 1, 1: (0.04 + 0.09 + 0.36) / 3 per class, both classes count
    assert brier_score(probs, labels) == pytest.approx(2 * 0.49 / 3)
    assert brier_score_loss(labels, probs[:, 1]) == pytest.approx(0.49 / 3)  # sklearn scores one class


def test_brier_multiclass_hand_value():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    labels = np.array([0, 1])
    # example 1: 0.3^2 + 0.2^2 + 0.1^2 = 0.14; example 2: 0.1^2 + 0.7^2 + 0.6^2 = 0.86 -> mean 0.5
    assert brier_score(probs, labels) == pytest.approx(0.5)


def test_confidence_bins_are_right_closed():
    # 2 bins: [0, 0.5] and (0.5, 1]
    assert confidence_bin(np.array([0.0, 0.25, 0.5, 0.5001, 1.0]), 2).tolist() == [0, 0, 0, 1, 1]


CONFIDENCE = np.array([0.2, 0.45, 0.55, 0.9, 0.95])
CORRECT = np.array([0, 1, 0, 1, 1])


def test_ece_two_bins_by_hand():
    # bin [0, 0.5]: {0.2, 0.45}, mean confidence 0.325, accuracy 1/2 -> gap 0.175, weight 2/5
    # bin (0.5, 1]: {0.55, 0.9, 0.95}, mean confidence 0.8, accuracy 2/3 -> gap 2/15, weight 3/5
    # ECE = 0.4 * 0.175 + 0.6 * 2/15 = 0.07 + 0.08 = 0.15
    assert expected_calibration_error(CONFIDENCE, CORRECT, n_bins=2) == pytest.approx(0.15)


def test_ece_three_bins_by_hand():
    # bin [0, 1/3]: {0.2}, accuracy 0 -> gap 0.2, weight 1/5
    # bin (1/3, 2/3]: {0.45, 0.55}, mean confidence 0.5, accuracy 1/2 -> gap 0
    # bin (2/3, 1]: {0.9, 0.95}, mean confidence 0.925, accuracy 1 -> gap 0.075, weight 2/5
    # ECE = 0.04 + 0 + 0.03 = 0.07
    assert expected_calibration_error(CONFIDENCE, CORRECT, n_bins=3) == pytest.approx(0.07)


def test_reliability_bins_report_empty_bins_as_none():
    bins = reliability_bins(CONFIDENCE, CORRECT, n_bins=4)
    assert bins["count"] == [1, 1, 1, 2]
    bins = reliability_bins(np.array([0.9, 0.95]), np.array([1, 0]), n_bins=2)
    assert bins["count"] == [0, 2]
    assert bins["accuracy"] == [None, 0.5] and bins["mean_confidence"][1] == pytest.approx(0.925)
    assert bins["lower"] == [0.0, 0.5] and bins["upper"] == [0.5, 1.0]


def test_subset_accuracy_and_conditional_agreement():
    labels = np.array([0, 0, 1, 1, 1, 0])
    weak = np.array([0, 1, 1, 0, 1, 1])  # right on 0, 2, 4; wrong on 1, 3, 5
    student = np.array([0, 1, 1, 1, 0, 0])
    # weak-right items: student equals weak on 0 and 2, not 4 -> 2/3
    # weak-wrong items: student equals weak on 1 only -> 1/3 (how often it copies a weak error)
    on_right, on_wrong = conditional_agreement(student, weak, labels)
    assert on_right == pytest.approx(2 / 3) and on_wrong == pytest.approx(1 / 3)
    assert subset_accuracy(student, labels, np.array([1, 1, 0, 0, 0, 0], dtype=bool)) == 0.5
    assert subset_accuracy(student, labels, np.zeros(6, dtype=bool)) is None
    assert conditional_agreement(labels, labels, labels) == (1.0, None)


def test_percentile_interval_ignores_undefined_values():
    # 25th and 75th percentiles of 1..5 (linear interpolation) are 2 and 4
    assert percentile_interval(np.array([1, 2, np.nan, 3, 4, 5]), confidence=0.5) == (2.0, 4.0)
    assert percentile_interval(np.array([np.nan, np.nan]), confidence=0.9) == (None, None)


def test_bootstrap_accuracies_are_paired_and_seeded():
    rng = np.random.default_rng(1)
    a = (rng.random(50) < 0.7).astype(float)
    accs = bootstrap_accuracies(np.vstack([a, a, 1 - a]), n_boot=200, seed=3)
    assert accs.shape == (200, 3)
    # the same example indices are drawn for every model in a resample
    np.testing.assert_array_equal(accs[:, 0], accs[:, 1])
    np.testing.assert_allclose(accs[:, 0] + accs[:, 2], 1.0)
    np.testing.assert_array_equal(accs, bootstrap_accuracies(np.vstack([a, a, 1 - a]), n_boot=200, seed=3))
    assert not np.array_equal(accs, bootstrap_accuracies(np.vstack([a, a, 1 - a]), n_boot=200, seed=4))


def _correct(n_right: int, n: int = 200) -> np.ndarray:
    return (np.arange(n) < n_right).astype(float)


def test_bootstrap_pgr_is_deterministic_and_covers_the_point_estimate():
    weak, student, ceiling = _correct(120), _correct(160), _correct(190)  # 0.60, 0.80, 0.95
    point = (0.80 - 0.60) / (0.95 - 0.60)
    interval = bootstrap_pgr(weak, student, ceiling, n_boot=500, confidence=0.95, seed=0, min_gap=0.01)
    assert interval == bootstrap_pgr(weak, student, ceiling, n_boot=500, confidence=0.95, seed=0, min_gap=0.01)
    assert interval.low < point < interval.high
    # nested correct sets: every resample has ceiling >= student >= weak, so 0 <= PGR <= 1
    assert 0.0 <= interval.low and interval.high <= 1.0
    assert interval.undefined_fraction == 0.0
    narrower = bootstrap_pgr(weak, student, ceiling, n_boot=500, confidence=0.5, seed=0, min_gap=0.01)
    assert interval.low < narrower.low < narrower.high < interval.high


def test_bootstrap_pgr_when_every_resample_is_undefined():
    weak = _correct(150)
    interval = bootstrap_pgr(weak, _correct(170), weak.copy(), n_boot=100, confidence=0.95, seed=0, min_gap=0.01)
    assert interval.low is None and interval.high is None
    assert interval.undefined_fraction == 1.0


def test_mean_t_interval_hand_value():
    # mean 2, sd 1, n 3: half-width t_{0.975, 2} / sqrt(3) with t_{0.975, 2} = 0.95 / sqrt(0.04875)
    mean, low, high = mean_t_interval(np.array([1.0, 2.0, 3.0]), confidence=0.95)
    half = 0.95 / math.sqrt(0.04875) / math.sqrt(3)
    assert mean == 2.0 and low == pytest.approx(2 - half) and high == pytest.approx(2 + half)
    assert mean_t_interval(np.array([0.4, np.nan]), 0.95) == (0.4, None, None)
    assert mean_t_interval(np.array([np.nan]), 0.95) == (None, None, None)


def test_accuracy_of_nothing_is_an_error_and_the_standard_error_is_asymmetric_in_p():
    with pytest.raises(ValueError, match="equal, non-zero lengths; got 0 and 0"):
        accuracy(np.array([]), np.array([]))
    assert accuracy(np.array([2]), np.array([2])) == 1.0
    # sqrt(0.9 * 0.1 / 100) = 0.03
    assert accuracy_standard_error(0.9, 100) == pytest.approx(0.03)


def test_subset_accuracy_reads_a_zero_one_mask_as_booleans():
    student, labels = np.array([0, 1, 1, 1, 0, 0]), np.array([0, 0, 1, 1, 1, 0])
    # items 0 and 1, not indices [1, 1, 0, 0, 0, 0]
    assert subset_accuracy(student, labels, np.array([1, 1, 0, 0, 0, 0])) == 0.5


def test_binary_auroc_with_integer_labels_one_negative_or_no_negatives():
    scores = np.array([0.1, 0.4, 0.4, 0.8])
    assert binary_auroc(scores, np.array([0, 0, 1, 1])) == pytest.approx(0.875)
    # one negative (0.6): positive 0.5 loses, positive 0.9 wins -> 1/2
    assert binary_auroc(np.array([0.6, 0.5, 0.9]), np.array([False, True, True])) == 0.5
    assert binary_auroc(scores, np.ones(4, dtype=bool)) is None


def test_auroc_multiclass_is_none_when_no_class_has_both_positives_and_negatives():
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    assert auroc(probs, np.array([0, 0])) is None


def test_reliability_bins_with_empty_middle_and_top_bins():
    bins = reliability_bins(np.array([0.1, 0.9]), np.array([1, 0]), n_bins=3)
    assert bins["count"] == [1, 0, 1]
    assert bins["mean_confidence"] == [pytest.approx(0.1), None, pytest.approx(0.9)]
    assert bins["accuracy"] == [1.0, None, 0.0]
    bins = reliability_bins(np.array([0.1, 0.2]), np.array([True, False]), n_bins=2)
    assert bins["count"] == [2, 0]
    assert bins["mean_confidence"] == [pytest.approx(0.15), None]
    assert bins["accuracy"] == [0.5, None]


def test_reliability_and_ece_default_to_ten_bins():
    bins = reliability_bins(np.array([0.81, 0.89]), np.array([1, 0]))
    assert bins["lower"] == pytest.approx([k / 10 for k in range(10)])
    assert bins["count"] == [0] * 8 + [2, 0]
    # one bin (0.8, 0.9]: mean confidence 0.85, accuracy 0.5 -> 0.35 (with 11 bins they would split: 0.54)
    assert expected_calibration_error(np.array([0.81, 0.89]), np.array([1, 0])) == pytest.approx(0.35)


def test_ece_of_one_example_and_of_none():
    assert expected_calibration_error(np.array([0.7]), np.array([1]), n_bins=5) == pytest.approx(0.3)
    with pytest.raises(ValueError, match=r"^ECE of zero examples$"):
        expected_calibration_error(np.array([]), np.array([]))


def test_pgr_values_default_minimum_gap_only_excludes_a_zero_gap():
    values = pgr_values(np.array([0.5, 0.5]), np.array([0.6, 0.6]), np.array([0.5, 0.7]))
    assert np.isnan(values[0]) and values[1] == pytest.approx(0.5)


def test_single_precision_inputs_are_computed_in_double_precision():
    weak, student, ceiling = np.float32([0.1]), np.float32([0.2]), np.float32([0.35])
    w, s, c = (float(x[0]) for x in (weak, student, ceiling))
    assert float(pgr_values(weak, student, ceiling)[0]) == pytest.approx((s - w) / (c - w), rel=1e-12)
    values = np.float32([0.41, 0.55, 0.03, 0.75, 0.54, 0.33, 0.79])
    as_double = values.astype(np.float64)
    expected = np.percentile(as_double, [5.0, 95.0])
    assert percentile_interval(values, 0.9) == (
        pytest.approx(expected[0], rel=1e-12),
        pytest.approx(expected[1], rel=1e-12),
    )
    mean, low, high = mean_t_interval(values, 0.9)
    half = stats.t.ppf(0.95, 6) * as_double.std(ddof=1) / math.sqrt(7)
    assert mean == pytest.approx(as_double.mean(), rel=1e-12)
    assert low == pytest.approx(as_double.mean() - half, rel=1e-12)
    # resampled accuracies of 0/1 scores over 5 examples are exactly k / 5 in double precision
    accs = bootstrap_accuracies(np.float32([[1, 0, 1, 1, 0]]), n_boot=50, seed=0)
    assert np.isin(accs, np.arange(6) / 5).all()


def test_percentile_interval_of_one_value_is_that_value():
    assert percentile_interval(np.array([0.3, np.nan]), confidence=0.9) == (0.3, 0.3)


def test_mean_t_interval_of_two_values():
    # mean 0.5, sd sqrt(0.02), half-width t_{0.975, 1} * sd / sqrt(2) = 12.706 * 0.1
    mean, low, high = mean_t_interval(np.array([0.4, 0.6]), confidence=0.95)
    half = stats.t.ppf(0.975, 1) * 0.1
    assert mean == pytest.approx(0.5) and low == pytest.approx(0.5 - half) and high == pytest.approx(0.5 + half)
    assert 12.7 < stats.t.ppf(0.975, 1) < 12.71


def test_bootstrap_resamples_do_not_depend_on_the_chunk_size(monkeypatch):
    rng = np.random.default_rng(2)
    a = (rng.random(50) < 0.6).astype(float)
    correct = np.vstack([a, 1 - a])
    whole = bootstrap_accuracies(correct, n_boot=7, seed=5)
    monkeypatch.setattr("w2s.metrics._MAX_DRAWS_PER_CHUNK", 100)  # two resamples per chunk, the last one short
    np.testing.assert_array_equal(bootstrap_accuracies(correct, n_boot=7, seed=5), whole)
    np.testing.assert_allclose(whole.sum(axis=1), 1.0)


def test_bootstrap_draws_every_example():
    # only example 0 is right: the mean resampled accuracy is about 1/4, and 0 if example 0 were never drawn
    accs = bootstrap_accuracies(np.array([[1.0, 0.0, 0.0, 0.0]]), n_boot=2000, seed=0)
    assert accs.mean() == pytest.approx(0.25, abs=0.02)
    assert set(np.unique(accs)) <= {0.0, 0.25, 0.5, 0.75, 1.0}


def test_bootstrap_pgr_default_minimum_gap_keeps_small_gaps():
    weak, student, ceiling = _correct(120), _correct(160), _correct(190)
    interval = bootstrap_pgr(weak, student, ceiling, n_boot=200, confidence=0.9, seed=0)
    assert interval.undefined_fraction == 0.0
    assert 0.0 <= interval.low < 4 / 7 < interval.high <= 1.0


def test_bootstrap_pgr_leaves_out_resamples_with_a_gap_below_the_minimum():
    # the ceiling gets right only 2 more of 200 examples than the weak model: every resampled gap is
    # a few hundredths at most, below the minimum 0.05, though mostly above 0
    weak = _correct(150)
    interval = bootstrap_pgr(weak, _correct(170), _correct(152), n_boot=200, confidence=0.9, seed=0, min_gap=0.05)
    assert interval.undefined_fraction == 1.0 and interval.low is None
