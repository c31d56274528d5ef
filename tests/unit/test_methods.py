"""W2S methods: each loss against a hand-computed value, the logconf schedule and prior at batch
sizes 1 and 32, confidence selection and weighting, early stopping, and the learners."""

import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from w2s.learners import LinearHead, ProbeLearner, TextLearner
from w2s.losses import LogConfidence, build_loss, ramp
from w2s.methods import ConfidentAgreement, Method
from w2s.train import TrainSettings, Validation, train_loop

LN3 = math.log(3.0)
# logits [0, ln 3] -> p = [1/4, 3/4];  H(p) = 1/4 ln 4 + 3/4 ln 4/3
H_QUARTER = 0.25 * math.log(4) + 0.75 * math.log(4 / 3)


def test_kl_is_xent_minus_weak_entropy():
    # xent = 1/2 ln 4 + 1/2 ln 4/3, H(weak) = ln 2  ->  KL = 1/2 ln 4/3
    value = build_loss("kl")(torch.tensor([[0.0, LN3]]), torch.tensor([[0.5, 0.5]]), 0.0)
    assert value.item() == pytest.approx(0.5 * math.log(4 / 3), rel=1e-5)


def test_product_targets_weak_times_student():
    # weak uniform: target = p itself -> loss = H(p)
    value = build_loss("product")(torch.tensor([[0.0, LN3]]), torch.tensor([[0.5, 0.5]]), 0.0)
    assert value.item() == pytest.approx(H_QUARTER, rel=1e-5)
    # student uniform: target = weak = [0.8, 0.2] -> loss = -(0.8 + 0.2) ln 1/2 = ln 2
    value = build_loss("product")(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.8, 0.2]]), 0.0)
    assert value.item() == pytest.approx(math.log(2), rel=1e-5)


def test_entropy_mixes_xent_and_student_entropy_with_the_ramp():
    # aux 0.5 ramped over 0.2 of training: at progress 0.1, a = 0.25
    # weak [1, 0]: xent = ln 4;  loss = 0.75 ln 4 + 0.25 H(p)
    loss = build_loss("entropy", aux_weight=0.5, warmup_frac=0.2)
    value = loss(torch.tensor([[0.0, LN3]]), torch.tensor([[1.0, 0.0]]), 0.1)
    assert value.item() == pytest.approx(0.75 * math.log(4) + 0.25 * H_QUARTER, rel=1e-5)


def test_weighted_mean_uses_example_weights():
    # example losses ln 4/3 (weight 3) and ln 4 (weight 1): mean(w * loss) = (3 ln 4/3 + ln 4) / 2;
    # weights are not renormalized per batch (train_loop scales them over the training set).
    logits = torch.tensor([[0.0, LN3], [0.0, LN3]])
    weak = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    value = build_loss("xent")(logits, weak, 0.0, torch.tensor([3.0, 1.0]))
    assert value.item() == pytest.approx((3 * math.log(4 / 3) + math.log(4)) / 2, rel=1e-5)


@pytest.mark.parametrize("batch_size", [1, 32])
def test_confidence_weights_are_normalized_over_the_training_set(batch_size):
    # 32 examples, logits fixed (lr 0): example k has loss l_k = ln 4/3 (k even) or ln 4 (k odd) and
    # weight w_k = 3 (even) or 1 (odd); mean weight 2. Each step's loss is sum_batch(w l) / (2 * batch).
    # Batch size 1 used to give back the unweighted l_k (w l / w); now w_k l_k / 2.
    module = torch.nn.Linear(1, 2, bias=False)
    x = torch.zeros(32, 1)
    fixed = torch.tensor([[0.0, LN3]])
    weak = np.array([[0.0, 1.0], [1.0, 0.0]] * 16, dtype=np.float32)
    weights = np.array([3.0, 1.0] * 16, dtype=np.float32)
    settings = TrainSettings(epochs=1, batch_size=batch_size, lr=0.0, weight_decay=0.0, grad_clip=0.0)

    def run(w):
        return train_loop(
            module, lambda index: module(x[index]) + fixed, weak, build_loss("xent"), settings, 0, weights=w
        )["loss_curve"]

    weighted, unweighted = run(weights), run(None)
    per_example = np.array([math.log(4 / 3), math.log(4)] * 16)
    if batch_size == 1:
        expected = sorted(weights * per_example / 2.0)
        np.testing.assert_allclose(sorted(weighted), expected, rtol=1e-5)
        np.testing.assert_allclose(sorted(unweighted), sorted(per_example), rtol=1e-5)
        assert not np.allclose(sorted(weighted), sorted(unweighted))
    else:  # one batch of all 32: sum(w l) / sum(w) either way
        expected = (3 * math.log(4 / 3) + math.log(4)) / 4
        np.testing.assert_allclose(weighted, [expected], rtol=1e-5)
        np.testing.assert_allclose(unweighted, [(math.log(4 / 3) + math.log(4)) / 2], rtol=1e-5)


def test_logconf_ramp_is_linear_then_flat():
    # The known reference bug ramps to warmup_frac * aux_weight and then jumps; ours reaches aux_weight smoothly.
    assert [ramp(p, 0.5, 0.2) for p in (0.0, 0.1, 0.2, 0.5, 1.0)] == pytest.approx([0.0, 0.25, 0.5, 0.5, 0.5])
    assert ramp(0.0, 0.5, 0.0) == 0.5  # no warmup set: full weight, no crash


def test_logconf_hand_value():
    # p1 = [3/4, 1/4], prior 1/2 -> threshold = median = 1/2 -> hardened [class 1, class 0].
    # a = 0.5: targets [1/4, 3/4] and [3/4, 1/4]; each example's cross-entropy is H(1/4, 3/4).
    loss = LogConfidence(aux_weight=0.5, warmup_frac=0.0, window=1, prior=torch.tensor([0.5, 0.5]))
    logits = torch.tensor([[0.0, LN3], [LN3, 0.0]])
    value = loss(logits, torch.full((2, 2), 0.5), 1.0)
    assert value.item() == pytest.approx(H_QUARTER, rel=1e-5)


def test_logconf_prior_at_batch_size_32():
    torch.manual_seed(0)
    loss = LogConfidence(window=32, prior=torch.tensor([0.75, 0.25]))
    hardened = loss.harden(torch.randn(32, 2), torch.full((32, 2), 0.5))
    assert hardened[:, 1].sum().item() == 8  # exactly 25% of the batch hardened to the positive class


def test_logconf_prior_at_batch_size_1_uses_the_running_window():
    torch.manual_seed(0)
    loss = LogConfidence(window=32, prior=torch.tensor([0.75, 0.25]))
    positives = [loss.harden(torch.randn(1, 2), torch.full((1, 2), 0.5))[0, 1].item() for _ in range(400)]
    # A batch-only threshold would make every single example its own quantile (always class 0).
    assert np.mean(positives[32:]) == pytest.approx(0.25, abs=0.07)


def test_method_selects_a_confidence_band_and_weights_by_confidence():
    weak = np.array([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]], dtype=np.float32)
    keep, weights = Method(min_confidence=0.6, weighting="confidence").select(weak)
    assert keep.tolist() == [0, 1]
    np.testing.assert_allclose(weights, [0.8, 0.2], rtol=1e-6)  # (conf - 1/2) / (1 - 1/2)
    keep, weights = Method(max_confidence=0.7).select(weak)
    assert keep.tolist() == [1, 2] and weights is None
    with pytest.raises(ValueError, match="no weak label has confidence"):
        Method(min_confidence=0.95).select(weak)
    with pytest.raises(ValueError, match="unknown method settings"):
        Method.from_config({"los": "xent"})


def test_logconf_method_gets_the_prior_of_all_weak_labels():
    weak = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.8, 0.2]], dtype=np.float32)
    loss = Method(loss="logconf").build_loss(weak)
    np.testing.assert_allclose(loss.prior.numpy(), [0.65, 0.35], rtol=1e-6)


def test_early_stopping_keeps_the_best_weights_and_stops_after_patience():
    torch.manual_seed(0)
    module = torch.nn.Linear(2, 2)
    x = torch.randn(8, 2)
    scores = iter([0.5, 0.9, 0.8, 0.7, 0.6, 0.5])
    snapshots = []

    def score() -> float:
        snapshots.append(module.weight.detach().clone())
        return next(scores)

    settings = TrainSettings(epochs=10, batch_size=4, lr=0.1)
    result = train_loop(
        module,
        lambda index: module(x[index]),
        np.eye(2, dtype=np.float32)[[0, 1] * 4],
        build_loss("xent"),
        settings,
        0,
        validation=Validation(score, every=2, patience=1),
    )
    assert result["best_step"] == 4 and result["steps"] == 8  # evals at 2, 4 (best), 6, 8 -> stop
    assert torch.equal(module.weight, snapshots[1])


def test_probe_learner_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    features = {
        "transfer": rng.normal(size=(20, 4)).astype(np.float32),
        "test": rng.normal(size=(5, 4)).astype(np.float32),
    }
    learner = ProbeLearner(features, num_classes=2, seed=0, l2=0.1)
    assert learner.penalty().item() == pytest.approx(0.1 * learner.module.linear.weight.pow(2).sum().item())
    learner.save(tmp_path / "model", {"role": "test"})
    loaded = LinearHead.load(tmp_path / "model" / "probe.safetensors")
    np.testing.assert_array_equal(loaded.predict_proba(features["test"]), learner.predict("test"))


def test_lora_trains_adapters_only_and_saves_a_plain_checkpoint(tiny_classifier, tmp_path):
    texts = {"transfer": ["good film", "bad film", "great", "awful"], "test": ["fine"]}
    learner = TextLearner(
        str(tiny_classifier),
        ["neg", "pos"],
        texts,
        0,
        torch.device("cpu"),
        16,
        8,
        lora={"r": 4, "alpha": 8, "dropout": 0.0},
    )
    trainable = [n for n, p in learner.module.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    train_loop(
        learner.module,
        learner.logits_of,
        np.eye(2, dtype=np.float32)[[1, 0, 1, 0]],
        build_loss("xent"),
        TrainSettings(epochs=1, batch_size=2, lr=1e-3),
        0,
    )
    learner.save(tmp_path / "model", {})
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model")
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_a_registered_selection_rule_runs_inside_the_confidence_band():
    from dataclasses import dataclass

    from w2s.registry import SELECTION_REGISTRY

    @dataclass(frozen=True)
    class TopOptions:
        keep: int = 1

    @SELECTION_REGISTRY.register("top_test", options=TopOptions)
    class Top:
        """The ``keep`` most confident rows, each weighted 2."""

        def __init__(self, keep: int = 1):
            self.keep = keep

        def __call__(self, weak):
            order = np.sort(np.argsort(-weak.max(axis=1))[: self.keep])
            return order, np.full(len(order), 2.0)

    try:
        weak = np.array([[0.55, 0.45], [0.9, 0.1], [0.2, 0.8], [0.65, 0.35]])
        keep, weights = Method(min_confidence=0.6, weighting="top_test", weighting_options={"keep": 2}).select(weak)
        # the band keeps rows 1, 2, 3 (confidence 0.9, 0.8, 0.65); the rule keeps its two most confident
        assert keep.tolist() == [1, 2] and weights.tolist() == [2.0, 2.0]
        assert weights.dtype == np.float32  # the rule's float64 weights, in the precision training uses
        with pytest.raises(ValueError, match="unknown option 'kep' for selection rule 'top_test'"):
            Method(weighting="top_test", weighting_options={"kep": 2})
    finally:
        SELECTION_REGISTRY.unregister("top_test")


def test_a_selection_rule_giving_weights_for_other_rows_than_it_keeps_is_an_error():
    from w2s.registry import SELECTION_REGISTRY

    @SELECTION_REGISTRY.register("short_weights_test")
    class ShortWeights:
        def __call__(self, weak):
            return np.arange(len(weak)), np.ones(len(weak) - 1)

    try:
        message = "selection rule 'short_weights_test' gave 2 weights for 3 examples"
        with pytest.raises(ValueError, match=f"^{message}$"):
            Method(weighting="short_weights_test").select(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    finally:
        SELECTION_REGISTRY.unregister("short_weights_test")


def test_a_rule_that_needs_a_student_is_told_when_there_is_none():
    method = Method(weighting="confident_agreement")
    with pytest.raises(
        ValueError, match="^selection rule 'confident_agreement' needs the first student's predictions$"
    ):
        method.select(np.array([[0.9, 0.1], [0.2, 0.8]]))


def test_a_method_checks_its_loss_options_when_it_is_built():
    with pytest.raises(ValueError, match="unknown option 'windw' for loss 'logconf'"):
        Method(loss="logconf", loss_options={"windw": 5})


# Three classes. Rows: 0 agrees at exactly the default 0.8; 1 disagrees though the student is
# confident; 2 agrees but the student is unsure; 3 agrees confidently; 4 disagrees, unsure.
AGREEMENT_WEAK = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.8, 0.1], [0.4, 0.35, 0.25]])
AGREEMENT_STUDENT = np.array([[0.1, 0.1, 0.8], [0.02, 0.95, 0.03], [0.3, 0.5, 0.2], [0.05, 0.9, 0.05], [0.3, 0.4, 0.3]])


def test_confident_agreement_needs_both_agreement_and_confidence_at_or_above_the_threshold():
    selected, weights = ConfidentAgreement()(AGREEMENT_WEAK, AGREEMENT_STUDENT)
    assert selected.tolist() == [0, 3] and weights is None
    assert ConfidentAgreement(0.85)(AGREEMENT_WEAK, AGREEMENT_STUDENT)[0].tolist() == [3]
    # through a method, as indices of the whole transfer set: the band [0.5, 1] drops rows 2 and 4
    method = Method(min_confidence=0.5, weighting="confident_agreement")
    assert method.select(AGREEMENT_WEAK, student=AGREEMENT_STUDENT)[0].tolist() == [0, 3]


def test_confident_agreement_without_a_student_names_what_it_needs():
    with pytest.raises(
        ValueError, match=r"^selection rule 'confident_agreement' needs the first student's predictions$"
    ):
        ConfidentAgreement()(AGREEMENT_WEAK)


def test_confident_agreement_threshold_must_be_a_probability_bounds_included():
    def method(threshold):
        return Method(weighting="confident_agreement", weighting_options={"min_student_confidence": threshold})

    assert method(0.0).select(AGREEMENT_WEAK, student=AGREEMENT_STUDENT)[0].tolist() == [0, 2, 3]
    with pytest.raises(ValueError, match="selection rule 'confident_agreement' kept no weak label"):
        method(1.0).select(AGREEMENT_WEAK, student=AGREEMENT_STUDENT)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"min_student_confidence={bad} must be in \[0, 1\]"):
            method(bad)


def test_resolved_method_fills_every_option_with_its_default_and_keeps_given_ones():
    given = Method(
        loss="entropy",
        loss_options={"aux_weight": 0.3},
        min_confidence=0.6,
        max_confidence=0.9,
        weighting="confident_agreement",
        weighting_options={"min_student_confidence": 0.7},
        relabel_rounds=2,
    )
    assert given.resolved() == {
        "loss": "entropy",
        "loss_options": {"aux_weight": 0.3, "warmup_frac": 0.2},
        "min_confidence": 0.6,
        "max_confidence": 0.9,
        "weighting": "confident_agreement",
        "weighting_options": {"min_student_confidence": 0.7},
        "relabel_rounds": 2,
    }
    defaults = Method(loss="product", weighting="confident_agreement").resolved()
    assert defaults["loss_options"] == {"alpha": 1.0} and defaults["weighting_options"] == {
        "min_student_confidence": 0.8
    }
    # a loss and a rule without options resolve to empty option mappings
    plain = Method(loss="xent", weighting="none").resolved()
    assert plain["loss_options"] == {} and plain["weighting_options"] == {}
