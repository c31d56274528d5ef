"""Student losses against values worked out by hand."""

import math

import pytest
import torch

from w2s.losses import build_loss


def test_soft_cross_entropy_hand_value():
    # logits [0, ln 3] -> softmax [1/4, 3/4]; target [0.5, 0.5]
    # loss = -(0.5 ln 1/4 + 0.5 ln 3/4) = 0.5 (ln 4 + ln 4/3)
    logits = torch.tensor([[0.0, math.log(3.0)]])
    targets = torch.tensor([[0.5, 0.5]])
    expected = 0.5 * (math.log(4) + math.log(4 / 3))
    assert build_loss("xent")(logits, targets, 0.0).item() == pytest.approx(expected, rel=1e-6)


def test_soft_cross_entropy_averages_over_examples():
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # example 1: -ln 1/2; example 2: -ln 3/4
    expected = (math.log(2) + math.log(4 / 3)) / 2
    assert build_loss("xent")(logits, targets, 0.0).item() == pytest.approx(expected, rel=1e-6)


def test_hard_cross_entropy_uses_argmax_of_soft_targets():
    logits = torch.tensor([[0.0, math.log(3.0)]])
    targets = torch.tensor([[0.4, 0.6]])  # argmax is class 1 -> -ln 3/4
    assert build_loss("xent_hard")(logits, targets, 0.0).item() == pytest.approx(math.log(4 / 3), rel=1e-6)


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        build_loss("nope")
