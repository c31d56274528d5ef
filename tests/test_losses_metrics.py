"""Losses and metrics against values worked out by hand."""

import math

import numpy as np
import pytest
import torch

from w2s.losses import get_loss, hard_cross_entropy, soft_cross_entropy
from w2s.metrics import accuracy, accuracy_standard_error, agreement, performance_gap_recovered


def test_soft_cross_entropy_hand_value():
    # logits [0, ln 3] -> softmax [1/4, 3/4]; target [0.5, 0.5]
    # loss = -(0.5 ln 1/4 + 0.5 ln 3/4) = 0.5 (ln 4 + ln 4/3)
    logits = torch.tensor([[0.0, math.log(3.0)]])
    targets = torch.tensor([[0.5, 0.5]])
    expected = 0.5 * (math.log(4) + math.log(4 / 3))
    assert soft_cross_entropy(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_soft_cross_entropy_averages_over_examples():
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # example 1: -ln 1/2; example 2: -ln 3/4
    expected = (math.log(2) + math.log(4 / 3)) / 2
    assert soft_cross_entropy(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_hard_cross_entropy_uses_argmax_of_soft_targets():
    logits = torch.tensor([[0.0, math.log(3.0)]])
    targets = torch.tensor([[0.4, 0.6]])  # argmax is class 1 -> -ln 3/4
    assert hard_cross_entropy(logits, targets).item() == pytest.approx(math.log(4 / 3), rel=1e-6)


def test_get_loss_rejects_unknown_name():
    assert get_loss("xent") is soft_cross_entropy
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        get_loss("nope")


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
