"""Every student loss against hand-worked values where a planted bug would change the number:
non-default options, example weights, one-hot weak labels (a probability of exactly 0), and the
gradient that each auxiliary term adds (or, for a detached target, must not add)."""

import math

import numpy as np
import pytest
import torch

from w2s.losses import build_loss
from w2s.methods import Method

LN3 = math.log(3.0)
LN4, LN4_3 = math.log(4.0), math.log(4.0 / 3.0)
# Two students: logits [0, ln 3] -> p = [1/4, 3/4] and [ln 3, 0] -> p = [3/4, 1/4].
LOGITS = [[0.0, LN3], [LN3, 0.0]]
# Both have entropy H(1/4, 3/4).
H_QUARTER = 0.25 * LN4 + 0.75 * LN4_3
ONE_HOT = [[1.0, 0.0], [1.0, 0.0]]  # weak says class 0 for both, with probability exactly 1 (and 0)


def loss_value(name: str, logits, weak, progress: float = 0.0, weights=None, **options) -> torch.Tensor:
    """The one place a loss is built and called: ``name`` with ``options``, on plain lists."""
    loss = build_loss(name, **options)
    weights = None if weights is None else torch.tensor(weights)
    return loss(torch.tensor(logits), torch.tensor(weak), progress, weights)


def method(loss: str, **options) -> Method:
    """The one place a method is built: a config entry naming ``loss`` with its options."""
    return Method.from_config({"loss": loss, "loss_options": options})


def per_example_one_hot(name: str) -> list[float]:
    """Hand-worked per-example losses on LOGITS with ONE_HOT weak labels and CASES' options."""
    xent = [LN4, LN4_3]  # -ln 1/4 and -ln 3/4
    if name in ("xent", "xent_hard", "kl", "product"):
        # kl: H(one-hot) = 0; product: weak^alpha * p is one-hot again
        return xent
    if name == "entropy":  # a = 0.4 * min(1, 0.25 / 0.5) = 0.2
        return [0.8 * x + 0.2 * H_QUARTER for x in xent]
    if name == "logconf":
        # a = 0.4; prior 1/2: threshold = median of positive probs [3/4, 1/4] = 1/2, so the first
        # student hardens to class 1 and the second to class 0. Targets: [0.6, 0.4] and [1, 0].
        return [0.6 * LN4 + 0.4 * LN4_3, LN4_3]
    raise AssertionError(name)


CASES = {
    "xent": {},
    "xent_hard": {},
    "kl": {},
    "product": {"alpha": 0.5},
    "entropy": {"aux_weight": 0.4, "warmup_frac": 0.5},
    "logconf": {"aux_weight": 0.4, "warmup_frac": 0.0, "window": 2, "prior": torch.tensor([0.5, 0.5])},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_hot_weak_labels_give_finite_hand_values(name):
    value = loss_value(name, LOGITS, ONE_HOT, 0.25, **CASES[name])
    assert torch.isfinite(value)
    assert value.item() == pytest.approx(np.mean(per_example_one_hot(name)), rel=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_weights_scale_each_example(name):
    # weights 3 and 1, not renormalized per batch: (3 l1 + l2) / 2
    first, second = per_example_one_hot(name)
    value = loss_value(name, LOGITS, ONE_HOT, 0.25, weights=[3.0, 1.0], **CASES[name])
    assert value.item() == pytest.approx((3 * first + second) / 2, rel=1e-5)


def test_kl_with_a_zero_weak_probability_has_a_finite_gradient():
    logits = torch.tensor([[0.0, LN3]], requires_grad=True)
    value = build_loss("kl")(logits, torch.tensor([[1.0, 0.0]]), 0.0)
    value.backward()
    assert value.item() == pytest.approx(LN4, rel=1e-6)  # KL(one-hot || p) = -ln p_0
    np.testing.assert_allclose(logits.grad.numpy(), [[0.25 - 1.0, 0.75]], rtol=1e-6)


def test_product_alpha_changes_the_target():
    # p = [1/4, 3/4], weak [0.8, 0.2]: weak^0.5 * p ~ [sqrt .8 / 4, 3 sqrt .2 / 4] ~ [2, 3] -> target [0.4, 0.6]
    value = loss_value("product", [[0.0, LN3]], [[0.8, 0.2]], alpha=0.5)
    assert value.item() == pytest.approx(0.4 * LN4 + 0.6 * LN4_3, rel=1e-5)
    # alpha 1: [0.8 / 4, 0.2 * 3 / 4] ~ [4, 3] -> target [4/7, 3/7]
    value = loss_value("product", [[0.0, LN3]], [[0.8, 0.2]], alpha=1.0)
    assert value.item() == pytest.approx(4 / 7 * LN4 + 3 / 7 * LN4_3, rel=1e-5)


def test_entropy_ramp_uses_its_options():
    # aux 0.4 over half of training: a = 0.2 at progress 0.25, flat 0.4 after 0.5; weak [0.5, 0.5]
    xent_uniform = 0.5 * LN4 + 0.5 * LN4_3
    for progress, a in ((0.25, 0.2), (0.9, 0.4)):
        value = loss_value("entropy", [[0.0, LN3]], [[0.5, 0.5]], progress, aux_weight=0.4, warmup_frac=0.5)
        assert value.item() == pytest.approx((1 - a) * xent_uniform + a * H_QUARTER, rel=1e-5)


# Four students with positive-class probabilities 0.2, 0.4, 0.6, 0.8 (logits [0, ln p/(1-p)]).
POSITIVE = [0.2, 0.4, 0.6, 0.8]
FOUR = [[0.0, math.log(p / (1 - p))] for p in POSITIVE]
UNIFORM4 = [[0.5, 0.5]] * 4


def logconf_four_hand_value() -> float:
    """aux 0.8 over 0.4 of training, at progress 0.2: a = 0.4; prior [1/4, 3/4]: the threshold is the
    1/4 quantile of [0.2, 0.4, 0.6, 0.8] = 0.2 + 0.75 * 0.2 = 0.35, so the students harden to classes
    [0, 1, 1, 1]. Weak uniform: the hardened class gets 0.6 * 0.5 + 0.4 = 0.7, the other 0.3."""
    hard = [0, 1, 1, 1]
    total = 0.0
    for p, h in zip(POSITIVE, hard):
        p_hard, p_other = (p, 1 - p) if h == 1 else (1 - p, p)
        total += -(0.7 * math.log(p_hard) + 0.3 * math.log(p_other))
    return total / 4


LOGCONF_OPTIONS = {"aux_weight": 0.8, "warmup_frac": 0.4, "window": 2, "prior": torch.tensor([0.25, 0.75])}


def check_logconf_four_then_one(loss) -> None:
    """The batch of four at its hand value, then one more student at p = 0.45: the window of 2 keeps
    [0.6, 0.8] from the batch and pools the last 2 values, [0.8, 0.45]; their 1/4 quantile is
    0.45 + 0.25 * 0.35 = 0.5375 > 0.45, so it hardens to class 0 (target [0.7, 0.3]). The default
    window of 32 would pool all five values (1/4 quantile 0.4) and harden it to class 1."""
    value = loss(torch.tensor(FOUR), torch.tensor(UNIFORM4), 0.2)
    assert value.item() == pytest.approx(logconf_four_hand_value(), rel=1e-5)
    value = loss(torch.tensor([[0.0, math.log(0.45 / 0.55)]]), torch.tensor([[0.5, 0.5]]), 0.2)
    assert value.item() == pytest.approx(-(0.7 * math.log(0.55) + 0.3 * math.log(0.45)), rel=1e-5)
    # Then p = 0.9: the pool [0.45, 0.9] has 1/4 quantile 0.5625, so class 1 (target [0.3, 0.7]);
    # a threshold from this batch alone would be 0.9 itself and harden it to class 0.
    value = loss(torch.tensor([[0.0, math.log(0.9 / 0.1)]]), torch.tensor([[0.5, 0.5]]), 0.2)
    assert value.item() == pytest.approx(-(0.3 * math.log(0.1) + 0.7 * math.log(0.9)), rel=1e-5)


def test_logconf_options_prior_ramp_and_window():
    check_logconf_four_then_one(build_loss("logconf", **LOGCONF_OPTIONS))


def test_method_passes_its_options_to_the_loss():
    # The prior comes from the weak targets the method is given: mean [0.25, 0.75].
    weak_targets = np.array([[0.5, 0.5], [0.0, 1.0], [0.0, 1.0], [0.5, 0.5]], dtype=np.float32)
    check_logconf_four_then_one(method("logconf", aux_weight=0.8, warmup_frac=0.4, window=2).build_loss(weak_targets))
    value = method("product", alpha=0.5).build_loss(weak_targets)(
        torch.tensor([[0.0, LN3]]), torch.tensor([[0.8, 0.2]]), 0.0
    )
    assert value.item() == pytest.approx(0.4 * LN4 + 0.6 * LN4_3, rel=1e-5)
    value = method("entropy", aux_weight=0.4, warmup_frac=0.5).build_loss(weak_targets)(
        torch.tensor([[0.0, LN3]]), torch.tensor([[0.5, 0.5]]), 0.25
    )
    assert value.item() == pytest.approx(0.8 * (0.5 * LN4 + 0.5 * LN4_3) + 0.2 * H_QUARTER, rel=1e-5)


def gradient(name: str, logits, weak, progress: float = 1.0, **options) -> np.ndarray:
    z = torch.tensor(logits, requires_grad=True)
    build_loss(name, **options)(z, torch.tensor(weak), progress).backward()
    return z.grad.numpy()


def test_entropy_term_carries_its_gradient():
    # d/dz [(1 - a) xent(w) + a H(p)] = (1 - a)(p - w) + a dH/dz, with dH/dz_j = -p_j (ln p_j + H).
    # p = [1/4, 3/4], w = [1, 0], a = 0.5.
    p = np.array([0.25, 0.75])
    d_entropy = -p * (np.log(p) + H_QUARTER)  # [0.20599, -0.20599]
    expected = 0.5 * (p - [1.0, 0.0]) + 0.5 * d_entropy
    got = gradient("entropy", [[0.0, LN3]], [[1.0, 0.0]], aux_weight=0.5, warmup_frac=0.0)
    np.testing.assert_allclose(got, [expected], rtol=1e-5)
    assert got[0, 0] == pytest.approx(-0.27200, abs=1e-5)  # -0.375 if the entropy term had no gradient


def test_logconf_hardened_target_carries_no_gradient():
    # Gradient of mean cross-entropy to a fixed target t: (p - t) / n. Targets as in the one-hot case.
    got = gradient("logconf", LOGITS, ONE_HOT, **CASES["logconf"])
    expected = np.array([[0.25 - 0.6, 0.75 - 0.4], [0.75 - 1.0, 0.25 - 0.0]]) / 2
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_product_target_carries_no_gradient():
    # target [0.4, 0.6] (alpha 0.5, weak [0.8, 0.2]) is held fixed: gradient p - t
    got = gradient("product", [[0.0, LN3]], [[0.8, 0.2]], alpha=0.5)
    np.testing.assert_allclose(got, [[0.25 - 0.4, 0.75 - 0.6]], rtol=1e-5)


def test_kl_gradient_is_the_xent_gradient():
    # H(weak) does not depend on the student: gradient p - w, as for xent
    got = gradient("kl", [[0.0, LN3]], [[0.7, 0.3]])
    np.testing.assert_allclose(got, [[0.25 - 0.7, 0.75 - 0.3]], rtol=1e-5)
    np.testing.assert_allclose(got, gradient("xent", [[0.0, LN3]], [[0.7, 0.3]]), rtol=1e-6)


def test_hard_and_kl_losses_per_example_on_disagreeing_weak_labels():
    # weak [0.4, 0.6] and [0.7, 0.3] on students [1/4, 3/4] and [3/4, 1/4]: each row's own argmax
    # (class 1, class 0) -> -ln 3/4 twice for xent_hard.
    weak = [[0.4, 0.6], [0.7, 0.3]]
    assert loss_value("xent_hard", LOGITS, weak).item() == pytest.approx(LN4_3, rel=1e-6)

    # kl per row: xent - H(weak); xent_1 = 0.4 ln 4 + 0.6 ln 4/3, xent_2 = 0.7 ln 4/3 + 0.3 ln 4
    def entropy(p):
        return -sum(q * math.log(q) for q in p)

    expected = ((0.4 * LN4 + 0.6 * LN4_3 - entropy(weak[0])) + (0.7 * LN4_3 + 0.3 * LN4 - entropy(weak[1]))) / 2
    assert loss_value("kl", LOGITS, weak).item() == pytest.approx(expected, rel=1e-5)


def test_option_bounds_are_inclusive_and_named():
    # alpha 0 ignores the weak labels: target = p, loss = H(p); window 1 is the smallest allowed
    assert loss_value("product", [[0.0, LN3]], [[0.8, 0.2]], alpha=0.0).item() == pytest.approx(H_QUARTER, rel=1e-5)
    assert torch.isfinite(loss_value("logconf", [[0.0, LN3]], [[0.8, 0.2]], 1.0, window=1))
    with pytest.raises(ValueError, match="alpha=-1"):
        build_loss("product", alpha=-1.0)
    with pytest.raises(ValueError, match="window=0"):
        build_loss("logconf", window=0)
