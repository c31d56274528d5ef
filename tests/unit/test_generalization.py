"""Misfit, gain, correction/expansion and the blind-spot rate against hand-computed values."""

import math

import numpy as np
import pytest

from w2s.generalization import (
    band_coverage,
    blind_spot_rate,
    confidence_bands,
    correction_expansion,
    gain,
    generalization_metrics,
    misfit,
)

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
