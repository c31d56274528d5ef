"""Student losses against values worked out by hand."""

import math
import re

import numpy as np
import pytest
import torch

from w2s.losses import CheckedLoss, Entropy, LogConfidence, LossError, Product, ProductOptions, build_loss


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


def test_losses_built_directly_start_at_progress_zero_with_their_documented_defaults():
    # student p = [1/4, 3/4]; the auxiliary weight a is 0 at progress 0, so the loss is plain xent
    logits = torch.tensor([[0.0, math.log(3.0)]])
    uniform = torch.tensor([[0.5, 0.5]])
    xent = 0.5 * (math.log(4) + math.log(4 / 3))
    assert Entropy()(logits, uniform).item() == pytest.approx(xent, rel=1e-6)
    assert LogConfidence()(logits, uniform).item() == pytest.approx(xent, rel=1e-6)
    # entropy defaults aux_weight 0.5, warmup_frac 0.2: at progress 0.1, a = 0.5 * 0.1 / 0.2 = 0.25
    student_entropy = 0.25 * math.log(4) + 0.75 * math.log(4 / 3)
    expected = 0.75 * xent + 0.25 * student_entropy
    assert Entropy()(logits, uniform, 0.1).item() == pytest.approx(expected, rel=1e-6)
    # product default alpha 1: target ~ [3/4 * 1/4, 1/4 * 3/4] = [1/2, 1/2]
    assert Product()(logits, torch.tensor([[0.75, 0.25]])).item() == pytest.approx(xent, rel=1e-6)


def test_a_checked_loss_passes_its_arguments_and_value_through_unchanged():
    seen = []

    def loss(logits, weak, progress, weights):
        seen.append((progress, weights))
        return torch.tensor(2.5)

    loss.alpha = 0.3
    checked = CheckedLoss("mine", loss)
    weights = torch.tensor([1.0, 3.0])
    assert checked(torch.zeros(2, 2), torch.eye(2), 0.4, weights).item() == 2.5
    checked(torch.zeros(2, 2), torch.eye(2))
    assert seen == [(0.4, weights), (0.0, None)] and checked.alpha == 0.3 and checked.name == "mine"


@pytest.mark.parametrize(
    "value, message",
    [
        (torch.zeros(3), "loss 'mine' returned (3,); it must return a scalar tensor (the mean over the batch) "
         "for logits of shape (3, 2)"),
        (torch.zeros(1, 1), "loss 'mine' returned (1, 1); it must return a scalar tensor"),
        (1.5, "loss 'mine' returned float; it must return a scalar tensor"),
        (torch.tensor(float("nan")), "loss 'mine' returned nan (not finite)"),
        (torch.tensor(float("-inf")), "loss 'mine' returned -inf (not finite)"),
    ],
)  # fmt: skip
def test_a_checked_loss_refuses_anything_but_a_finite_scalar_tensor(value, message):
    checked = CheckedLoss("mine", lambda logits, weak, progress, weights: value)
    with pytest.raises(LossError, match="^" + re.escape(message)):
        checked(torch.zeros(3, 2), torch.full((3, 2), 0.5), 0.0)


def test_options_may_be_a_mapping_or_the_options_dataclass_and_keywords_override_them():
    # alpha 0.5 on weak [0.8, 0.2] and p = [1/4, 3/4]: target ~ [sqrt(0.8) / 4, 3 sqrt(0.2) / 4]
    logits, weak = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[0.8, 0.2]])
    t0, t1 = math.sqrt(0.8) * 0.25, math.sqrt(0.2) * 0.75
    expected = -(t0 * math.log(0.25) + t1 * math.log(0.75)) / (t0 + t1)
    for loss in (
        build_loss("product", ProductOptions(alpha=0.5)),
        build_loss("product", {"alpha": 0.5}),
        build_loss("product", {"alpha": 2.0}, alpha=0.5),
    ):
        assert loss(logits, weak, 0.0).item() == pytest.approx(expected, rel=1e-5)
    assert build_loss("product", ProductOptions(alpha=0.5)).name == "product"


def test_logconf_prior_comes_from_the_weak_targets_unless_given():
    weak = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.8, 0.2]])  # float64, mean [0.65, 0.35]
    prior = build_loss("logconf", weak_targets=weak).prior
    assert prior.dtype == torch.float32
    np.testing.assert_allclose(prior.numpy(), [0.65, 0.35], rtol=1e-6)
    given = torch.tensor([0.5, 0.5])
    assert build_loss("logconf", weak_targets=weak, prior=given).prior is given
    assert build_loss("logconf").prior is None


def test_logconf_defaults_and_a_fresh_running_window():
    loss = LogConfidence(aux_weight=1.0, warmup_frac=0.0, window=4, prior=torch.tensor([0.5, 0.5]))
    # the first example alone sets the threshold (its own p = 3/4), so it is not above it: class 0
    value = loss(torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[0.5, 0.5]]), 0.5)
    assert value.item() == pytest.approx(math.log(4), rel=1e-6)
    assert loss.recent.tolist() == [pytest.approx(0.75)]
    default = LogConfidence()
    assert (default.aux_weight, default.warmup_frac, default.window, default.prior) == (0.5, 0.2, 32, None)


def test_logconf_with_three_classes_hardens_each_student_to_its_own_argmax():
    # a = 1: the target is the student's own argmax; p = [1/5, 3/5, 1/5] and [2/3, 1/6, 1/6]
    logits = torch.tensor([[0.0, math.log(3.0), 0.0], [math.log(4.0), 0.0, 0.0]])
    weak = torch.full((2, 3), 1 / 3)
    value = build_loss("logconf", aux_weight=1.0, warmup_frac=0.0)(logits, weak, 0.5)
    assert value.item() == pytest.approx((math.log(5 / 3) + math.log(3 / 2)) / 2, rel=1e-6)


def test_ramp_options_are_fractions_bounds_included():
    assert torch.isfinite(build_loss("entropy", aux_weight=1.0, warmup_frac=1.0)(torch.zeros(1, 2), torch.eye(2)[:1]))
    for option, value in (("aux_weight", 1.5), ("warmup_frac", -0.1)):
        with pytest.raises(ValueError, match=re.escape(f"{option}={value} must be in [0, 1]")):
            build_loss("entropy", **{option: value})
