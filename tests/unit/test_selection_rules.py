"""Selection rules by hand: confident self-retraining keeps what a first student confidently agrees on."""

import numpy as np
import pytest

from w2s.methods import Method

WEAK = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55]])
STUDENT = np.array([[0.95, 0.05], [0.3, 0.7], [0.1, 0.9], [0.6, 0.4]])


def method(**config) -> Method:
    return Method.from_config({"weighting": "confident_agreement", **config})


def test_confident_agreement_keeps_confident_items_the_student_agrees_on():
    # item 0: agrees, 0.95; item 1: disagrees; item 2: agrees, 0.9; item 3: disagrees
    selected, weights = method().select(WEAK, student=STUDENT)
    assert selected.tolist() == [0, 2] and weights is None
    stricter = method(weighting_options={"min_student_confidence": 0.92})
    assert stricter.select(WEAK, student=STUDENT)[0].tolist() == [0]
    assert method().needs_student() and not Method.from_config({}).needs_student()


def test_confident_agreement_works_inside_the_confidence_band():
    # band [0.7, 1]: items 0 and 2; both kept by the rule, as indices of the whole transfer set
    selected, _ = method(min_confidence=0.7).select(WEAK, student=STUDENT)
    assert selected.tolist() == [0, 2]
    selected, _ = method(min_confidence=0.85).select(WEAK, student=STUDENT)
    assert selected.tolist() == [0]


def test_confident_agreement_without_a_student_or_with_bad_options_is_an_error():
    with pytest.raises(ValueError, match="needs the first student's predictions"):
        method().select(WEAK)
    with pytest.raises(ValueError, match="min_student_confidence"):
        method(weighting_options={"min_student_confidence": 1.5})


def test_a_confident_agreement_student_trains_a_first_student_then_drops_doubtful_labels():
    from w2s.api import Labels, Split, train_student

    rng = np.random.default_rng(0)
    n = 400
    gold = rng.integers(0, 2, n)
    features = rng.normal(size=(n, 8)) + 2.0 * gold[:, None] * np.eye(8)[0]  # class shifts one direction
    flipped = rng.random(n) < 0.2
    weak_hard = np.where(flipped, 1 - gold, gold)
    weak = np.column_stack([1 - weak_hard, weak_hard]) * 0.8 + 0.1  # confidence 0.9 on every label
    transfer = Split([f"t{i}" for i in range(n)], ["x"] * n, gold)
    test = Split([f"s{i}" for i in range(n)], ["x"] * n, gold)
    student = train_student(
        transfer,
        Labels(transfer.ids, weak),
        test,
        ["a", "b"],
        "unused",
        seed=3,
        method={"weighting": "confident_agreement", "weighting_options": {"min_student_confidence": 0.7}},
        spec={"mode": "linear_probe", "probe": {"epochs": 20, "batch_size": 32, "lr": 0.05}},
        features={"transfer": features, "test": features},
        device="cpu",
    )
    first, final = student.info["rounds"]
    assert first["round"] == -1 and first["n_train"] == n  # the first student saw every weak label
    assert final["round"] == 0 and 0 < final["n_train"] < n


def test_two_spellings_of_one_method_resolve_to_one_record_identity():
    from w2s.config import resolved_method

    omitted = resolved_method({"loss": "logconf"})
    explicit = resolved_method({"loss": "logconf", "loss_options": {"aux_weight": 0.5, "warmup_frac": 0.2}})
    assert omitted == explicit and omitted["loss_options"] == {"aux_weight": 0.5, "warmup_frac": 0.2, "window": 32}
    assert resolved_method({"loss": "logconf", "loss_options": {"window": 8}}) != omitted
