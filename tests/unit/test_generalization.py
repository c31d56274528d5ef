"""Misfit, gain, correction/expansion and the blind-spot rate against hand-computed values."""

import math

import numpy as np
import pytest

from w2s.evaluate import Predictions
from w2s.generalization import (
    band_coverage,
    blind_spot_rate,
    confidence_bands,
    correction_expansion,
    gain,
    generalization_metrics,
    misfit,
)
from w2s.methods import Method

STUDENT = np.array([[0.8, 0.2], [0.4, 0.6]])
WEAK = np.array([[0.6, 0.4], [0.7, 0.3]])
LABELS = np.array([0, 1])


def test_misfit_by_hand():
    found = misfit(STUDENT, WEAK)
    assert found["disagreement"] == 0.5  # argmax (0, 1) against (0, 0)
    assert found["sq_distance"] == pytest.approx((0.08 + 0.18) / 2)  # 2 * 0.2^2 and 2 * 0.3^2
    kl_sw = (
        0.8 * math.log(0.8 / 0.6) + 0.2 * math.log(0.2 / 0.4) + 0.4 * math.log(0.4 / 0.7) + 0.6 * math.log(0.6 / 0.3)
    ) / 2
    kl_ws = (
        0.6 * math.log(0.6 / 0.8) + 0.4 * math.log(0.4 / 0.2) + 0.7 * math.log(0.7 / 0.4) + 0.3 * math.log(0.3 / 0.6)
    ) / 2
    assert found["kl_student_weak"] == pytest.approx(kl_sw) and found["kl_weak_student"] == pytest.approx(kl_ws)
    assert kl_sw != pytest.approx(kl_ws)  # the two directions differ here, so swapping them is caught


def test_misfit_is_finite_when_a_weak_probability_is_exactly_zero():
    found = misfit(np.array([[0.9, 0.1]]), np.array([[1.0, 0.0]]))
    # the zero is floored at 1e-7: 0.9 ln 0.9 + 0.1 ln(0.1 / 1e-7)
    assert found["kl_student_weak"] == pytest.approx(0.9 * math.log(0.9) + 0.1 * math.log(0.1 / 1e-7))
    assert np.isfinite(found["kl_weak_student"])
    with pytest.raises(ValueError, match="one shape"):
        misfit(np.ones((2, 2)), np.ones((3, 2)))


def test_gain_by_hand():
    found = gain(STUDENT, WEAK, LABELS)
    # student right on both, teacher on one; Brier: teacher (0.32 + 0.98) / 2, student (0.08 + 0.32) / 2
    assert found["acc_gain"] == 0.5
    assert found["brier_reduction"] == pytest.approx(0.65 - 0.2)


def test_correction_and_expansion_by_hand():
    found = correction_expansion(
        np.array([0, 1, 1, 0, 1]),
        np.array([0, 0, 1, 1, 1]),
        np.array([0, 1, 1, 0, 0]),
        np.array([True, True, True, False, False]),
    )
    assert found["covered_weak_right"] == {"acc": 1.0, "n": 2, "note": "ok"}  # items 0, 2
    assert found["correction"] == {"acc": 1.0, "n": 1, "note": "ok"}  # item 1: teacher wrong, student right
    assert found["expansion"] == {"acc": 0.5, "n": 2, "note": "ok"}  # items 3 (right) and 4 (wrong)


def test_an_empty_subset_is_null_with_its_reason_never_zero():
    found = correction_expansion(np.array([0, 1]), np.array([0, 1]), np.array([0, 1]), np.array([True, True]))
    assert found["expansion"] == {"acc": None, "n": 0, "note": "the teacher covers every item"}
    assert found["correction"]["acc"] is None and found["correction"]["note"].startswith("no covered item")


def test_blind_spot_rate_by_hand():
    student = np.array([[0.9, 0.1], [0.85, 0.15], [0.6, 0.4], [0.1, 0.9]])
    # item 0: confident (0.9 > 0.8) and wrong while the teacher was unsure (0.55 <= 0.6); no other item is
    rate = blind_spot_rate(student, np.array([1, 0, 1, 1]), np.array([0.55, 0.55, 0.55, 0.9]), 0.8, 0.6)
    assert rate == 0.25
    # the same item with a sure teacher is no blind spot
    assert blind_spot_rate(student, np.array([1, 0, 1, 1]), np.array([0.7, 0.55, 0.55, 0.9]), 0.8, 0.6) == 0.0


def test_coverage_is_the_band_a_method_trains_on():
    assert band_coverage(np.array([0.5, 0.7, 0.9]), [0.6, 0.8]).tolist() == [False, True, False]
    assert band_coverage(np.array([0.5, 0.7]), None).tolist() == [True, True]
    assert confidence_bands(
        {
            "xent": {"min_confidence": 0.0, "max_confidence": 1.0},
            "confident_only": {"min_confidence": 0.7, "max_confidence": 1.0},
        }
    ) == {"xent": None, "confident_only": [0.7, 1.0]}


def test_generalization_metrics_name_their_split():
    test = generalization_metrics(STUDENT, WEAK, LABELS, "test", np.array([True, False]), "band", 0.65, 0.75)
    assert test["misfit_sq_distance_test"] == pytest.approx(0.13) and test["acc_gain_test"] == 0.5
    # item 1 is uncovered: the student (0.6 on class 1) gets it right
    assert test["student_acc_expansion"] == 1.0 and test["n_expansion"] == 1 and test["coverage_source"] == "band"
    transfer = generalization_metrics(STUDENT, WEAK, LABELS, "transfer", None, "band", 0.65, 0.75)
    assert "misfit_disagreement_transfer" in transfer and "blind_spot_rate" not in transfer


def test_a_method_spec_without_confidence_keys_keeps_every_label():
    # the API passes a bare method spec, so missing keys mean the band [0, 1]
    methods = {"plain": {}, "floor": {"min_confidence": 0.6}, "ceiling": {"max_confidence": 0.9}}
    assert confidence_bands(methods) == {"plain": None, "floor": [0.6, 1.0], "ceiling": [0.0, 0.9]}


def test_disagreement_is_the_share_of_items_whose_argmax_differs():
    student = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    weak = np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4]])
    assert misfit(student, weak)["disagreement"] == pytest.approx(1 / 3)  # only item 1 differs


def test_misfit_rejects_one_dimensional_and_empty_inputs():
    with pytest.raises(ValueError, match="one shape"):
        misfit(np.array([0.2, 0.8]), np.array([0.3, 0.7]))
    with pytest.raises(ValueError, match="non-empty"):
        misfit(np.empty((0, 2)), np.empty((0, 2)))


def test_gain_with_three_classes_by_hand():
    student = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    weak = np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1], [0.3, 0.4, 0.3]])
    labels = np.array([0, 1, 2])
    found = gain(student, weak, labels)
    assert found["acc_gain"] == pytest.approx(1 - 1 / 3)  # the student gets all three, the teacher only item 0
    one_hot = np.eye(3)[labels]
    weak_brier, student_brier = (np.mean(np.sum((p - one_hot) ** 2, axis=1)) for p in (weak, student))
    assert found["brier_reduction"] == pytest.approx(weak_brier - student_brier)


def test_coverage_given_as_zero_one_flags_counts_like_booleans():
    found = correction_expansion(
        np.array([0, 1, 1, 0]), np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), np.array([1, 1, 0, 0])
    )
    assert found["covered_weak_right"] == {"acc": 1.0, "n": 1, "note": "ok"}  # item 0
    assert found["correction"] == {"acc": 1.0, "n": 1, "note": "ok"}  # item 1
    assert found["expansion"] == {"acc": 0.5, "n": 2, "note": "ok"}  # items 2 (right) and 3 (wrong)


def test_a_teacher_wrong_on_every_covered_item_leaves_no_covered_right_subset():
    found = correction_expansion(np.array([0, 1]), np.array([1, 0]), np.array([0, 1]), np.array([True, True]))
    assert found["covered_weak_right"] == {"acc": None, "n": 0, "note": "no covered item the teacher got right"}
    assert found["correction"] == {"acc": 1.0, "n": 2, "note": "ok"}


def test_correction_expansion_rejects_inputs_of_different_lengths():
    with pytest.raises(ValueError, match="^student, weak, labels and coverage must have one length$"):
        correction_expansion(np.array([0, 1]), np.array([0, 1]), np.array([0, 1]), np.array([True]))


def test_blind_spot_thresholds_are_strict_for_the_student_and_inclusive_for_the_teacher():
    student = np.array([[0.9, 0.1], [0.8, 0.2], [0.9, 0.1], [0.05, 0.95]])
    labels = np.array([1, 1, 0, 0])
    # item 0: confidently wrong, teacher exactly at 0.6 counts as unsure -> a blind spot
    # item 1: wrong but exactly at the student threshold 0.8 is not confident; item 2: right
    # item 3: confidently wrong (argmax 1) while the teacher was unsure -> a blind spot
    rate = blind_spot_rate(student, labels, np.array([0.6, 0.5, 0.5, 0.3]), 0.8, 0.6)
    assert rate == 0.5


def test_blind_spot_rate_of_one_item_and_of_none():
    assert blind_spot_rate(np.array([[0.9, 0.1]]), np.array([1]), np.array([0.5]), 0.8, 0.6) == 1.0
    with pytest.raises(ValueError, match="^blind-spot rate of zero items$"):
        blind_spot_rate(np.empty((0, 2)), np.array([], dtype=int), np.array([]), 0.8, 0.6)


def test_band_coverage_includes_both_edges_and_is_a_boolean_mask():
    covered = band_coverage(np.array([0.59, 0.6, 0.8, 0.81]), (0.6, 0.8))
    assert covered.tolist() == [False, True, True, False]
    assert band_coverage(np.array([0.5, 0.7]), None).dtype == bool


def test_generalization_metrics_report_the_blind_spot_rate_of_the_test_split():
    student = np.array([[0.9, 0.1], [0.2, 0.8], [0.95, 0.05], [0.1, 0.9]])
    weak = np.array([[0.55, 0.45], [0.4, 0.6], [0.58, 0.42], [0.2, 0.8]])
    labels = np.array([1, 1, 0, 0])
    found = generalization_metrics(student, weak, labels, "test", np.ones(4, dtype=bool), "all", 0.6, 0.85)
    # teacher confidences 0.55, 0.6, 0.58, 0.8: only item 0 is confidently wrong (0.9 > 0.85) under an
    # unsure teacher; item 3 is confidently wrong too, but its teacher was sure (0.8 > 0.6)
    assert found["blind_spot_rate"] == 0.25
    assert found["blind_spot_student_threshold"] == 0.85


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_rows_and_evaluation_coverage_agree_on_a_band_edge_equal_to_a_vote_fraction(dtype):
    # 0.7, 0.9 and 5/6 are not exact in binary; in float32 0.7 rounds below the decimal 0.7
    weak = np.array([[0.7, 0.3], [0.9, 0.1], [5 / 6, 1 / 6], [0.5, 0.5], [0.69, 0.31]], dtype=dtype)
    method = Method.from_config({"min_confidence": 0.7, "max_confidence": 0.9})
    trained, _ = method.select(weak)
    covered = band_coverage(Predictions.from_probs(weak).confidence, (0.7, 0.9))
    assert trained.tolist() == [0, 1, 2]
    assert np.flatnonzero(covered).tolist() == [0, 1, 2]
