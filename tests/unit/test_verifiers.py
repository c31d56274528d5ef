"""Verifier scoring (w2s.verifiers): normalizers, binarizers, the degenerate filter, aggregators, the label
model and its merging of dependent verifiers, the tie and abstention rules."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from w2s import verifiers as V
from w2s.metrics import expected_calibration_error
from w2s.tables import binary_hard_labels

# Synthetic verifiers with known rates: two good, one fair, one near-random, one weak adversarial.
PRIOR = 0.4
TPR = np.array([0.85, 0.75, 0.70, 0.55, 0.35])
FPR = np.array([0.10, 0.20, 0.35, 0.50, 0.55])
N_ITEMS = 2000
ABSTAIN = 0.1


def synthetic(seed: int = 0, abstain: float = ABSTAIN) -> tuple[pd.DataFrame, pd.Series]:
    """Long 0/1 votes of the five verifiers on N_ITEMS items; each vote missing with prob ``abstain``."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(N_ITEMS) < PRIOR).astype(np.int64)
    p_positive = np.where(labels[:, None] == 1, TPR, FPR)
    votes = (rng.random(p_positive.shape) < p_positive).astype(np.float64)
    votes[rng.random(votes.shape) < abstain] = np.nan
    ids = [f"item{i:04d}" for i in range(N_ITEMS)]
    frame = pd.DataFrame(votes, index=ids, columns=[f"v{j}" for j in range(len(TPR))])
    long = frame.rename_axis("item_id").reset_index().melt("item_id", var_name="verifier_id", value_name="raw_score")
    long = long.dropna().assign(candidate_id=V.ITEM_CANDIDATE)
    return long[list(V.SCORE_COLUMNS)].reset_index(drop=True), pd.Series(labels, index=ids)


def accuracy(aggregated: pd.DataFrame, gold: pd.Series) -> float:
    predicted = binary_hard_labels(aggregated["score"].to_numpy())
    return float(np.mean(predicted == gold.reindex(aggregated["item_id"]).to_numpy()))


def long_frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(item, V.ITEM_CANDIDATE, verifier, score) for item, verifier, score in rows], columns=list(V.SCORE_COLUMNS)
    )


# --------------------------------------------------------------------------- label model


def test_label_model_recovers_rates_and_beats_majority_vote():
    """2,000 items, prior 0.4, 10% abstains, seed 0. Measured: largest error of an estimated rate
    against the generating one 0.027 (TPR) / 0.022 (FPR), of an estimated accuracy 0.009; prior
    0.406 (EM converges in 166 iterations). Label-model accuracy 0.889 against majority vote 0.751
    (ties counted positive); for reference, logistic regression on 500 dev labels 0.889 and the
    best single verifier 0.841. Asserted: every rate within 0.05, prior within 0.03, and a gain of
    at least 5 points over majority vote."""
    scores, gold = synthetic()
    aggregated, table, metadata = V.aggregate_weak_labels(scores, {"aggregator": "label_model"}, gold=gold)
    lm = metadata["steps"]["label_model"]
    assert lm["converged"] and lm["identifiable"]
    assert np.abs(table["est_tpr"].to_numpy() - TPR).max() < 0.05
    assert np.abs(table["est_fpr"].to_numpy() - FPR).max() < 0.05
    assert abs(lm["prior"] - PRIOR) < 0.03
    expected_accuracy = PRIOR * TPR + (1 - PRIOR) * (1 - FPR)
    assert np.abs(table["est_accuracy"].to_numpy() - expected_accuracy).max() < 0.05
    # The evaluation-only columns agree with the label model's estimates.
    assert np.abs(table["true_accuracy"] - table["est_accuracy"]).max() < 0.05
    assert table["true_coverage"].between(0.85, 0.95).all()

    majority, _, _ = V.aggregate_weak_labels(scores, {"aggregator": "majority"})
    assert accuracy(aggregated, gold) > accuracy(majority, gold) + 0.05
    assert metadata["uses_labels"] is False and metadata["gold_used_for_evaluation_only"] is True


def test_label_model_is_deterministic_and_order_free():
    scores, _ = synthetic()
    first = V.aggregate_weak_labels(scores, {})
    second = V.aggregate_weak_labels(scores, {})
    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])
    assert json.dumps(first[2], sort_keys=True) == json.dumps(second[2], sort_keys=True)
    # Shuffling the rows (same first-appearance order of verifiers) changes no score.
    shuffled = scores.sample(frac=1.0, random_state=1)
    shuffled = pd.concat([scores.iloc[[0, 1800, 3600, 5400, 7200]], shuffled]).drop_duplicates()
    again = V.aggregate_weak_labels(shuffled, {})[0].set_index("item_id")["score"]
    pd.testing.assert_series_equal(again.reindex(first[0]["item_id"]), first[0].set_index("item_id")["score"])


def test_label_model_by_hand_on_two_voters():
    # One item, tpr 0.8 / fpr 0.2 for both, prior 0.5: two positive votes give odds 16:1.
    posterior = V.label_model_posterior(
        np.array([[1.0, 1.0], [1.0, np.nan], [np.nan, np.nan]]), [0.8, 0.8], [0.2, 0.2], 0.5
    )
    np.testing.assert_allclose(posterior, [16 / 17, 0.8, 0.5])


# --------------------------------------------------------------------------- normalizers


def test_minmax_by_hand_fitted_on_fit_values_only():
    params = V.fit_normalizer(np.array([2.0, 4.0, np.nan, 6.0]), "minmax")
    assert params == {"method": "minmax", "min": 2.0, "max": 6.0}
    out = V.apply_normalizer(params, np.array([3.0, 6.0, 8.0, 0.0, np.nan]))
    np.testing.assert_allclose(out, [0.25, 1.0, 1.0, 0.0, np.nan])


def test_quantile_by_hand():
    params = V.fit_normalizer(np.array([5.0, 1.0, 3.0, 2.0, 4.0]), "quantile", n_quantiles=5)
    assert params["quantiles"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert params["probs"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    np.testing.assert_allclose(
        V.apply_normalizer(params, np.array([2.5, 3.0, 0.0, 10.0, np.nan])), [0.375, 0.5, 0.0, 1.0, np.nan]
    )


def test_quantile_maps_tied_values_to_the_middle_of_their_range():
    params = V.fit_normalizer(np.array([0.0, 0.0, 1.0, 1.0]), "quantile", n_quantiles=4)
    np.testing.assert_allclose(V.apply_normalizer(params, np.array([0.0, 1.0, 0.5])), [1 / 6, 5 / 6, 0.5])


def test_none_normalizer_and_json_round_trip():
    values = np.array([-3.0, np.nan, 7.5])
    np.testing.assert_array_equal(V.apply_normalizer(V.fit_normalizer(values, "none"), values), values)
    params = V.fit_normalizer(np.arange(50.0), "quantile", n_quantiles=11)
    restored = json.loads(json.dumps(params))
    np.testing.assert_array_equal(V.apply_normalizer(restored, values), V.apply_normalizer(params, values))


# --------------------------------------------------------------------------- binarizers


def test_threshold_binarizer():
    np.testing.assert_array_equal(V.binarize(np.array([0.2, 0.5, 0.7, np.nan]), 0.5), [0.0, 1.0, 1.0, np.nan])


def test_class_balance_threshold_by_hand():
    values = np.arange(1.0, 11.0)
    assert V.class_balance_threshold(values, 0.3) == 8.0  # 8, 9, 10 vote positive
    assert V.class_balance_threshold(np.append(values, np.nan), 0.3) == 8.0
    assert V.class_balance_threshold(values, 0.01) == 10.0  # at least one positive


def test_estimate_positive_rate_is_the_median_verifier_rate():
    normalized = np.column_stack(
        [
            [0.9, 0.1, 0.1, 0.1, 0.1],  # 0.2
            [0.9, 0.9, 0.1, 0.1, np.nan],  # 0.5 of its 4 scores
            [0.9, 0.9, 0.9, 0.9, 0.1],  # 0.8
        ]
    )
    assert V.estimate_positive_rate(normalized, 0.5) == pytest.approx(0.5)


def test_class_balance_in_fit_assumed_and_estimated():
    # At 0.5, v0 votes positive on 5 of 10, v1 (shifted up) on all 10, v2 on 4 of 10.
    items = [f"i{k}" for k in range(10)]
    v0 = np.linspace(0.05, 0.95, 10)  # 0.05, 0.15, .., 0.95
    v1 = v0 * 0.3 + 0.6  # 0.615 .. 0.885
    v2 = v0[::-1] * 0.5 + 0.2  # 0.675, 0.625, .., 0.225
    rows = [(i, "v0", a) for i, a in zip(items, v0)] + [(i, "v1", b) for i, b in zip(items, v1)]
    rows += [(i, "v2", c) for i, c in zip(items, v2)]
    scores = long_frame(rows)
    settings = {"binarize": "class_balance", "aggregator": "majority"}
    model = V.fit(scores, {**settings, "positive_rate": 0.3})
    binarize = model["steps"]["binarize"]
    assert binarize["positive_rate_source"] == "assumed"
    assert binarize["thresholds"]["v0"] == pytest.approx(v0[7])
    assert binarize["thresholds"]["v1"] == pytest.approx(v1[7])
    assert binarize["thresholds"]["v2"] == pytest.approx(sorted(v2)[7])
    model = V.fit(scores, settings)
    assert model["steps"]["binarize"]["positive_rate_source"] == "estimated"
    assert model["steps"]["binarize"]["positive_rate"] == pytest.approx(0.5)  # median of 0.5, 1.0, 0.4
    assert model["steps"]["binarize"]["uses_labels"] is False


# --------------------------------------------------------------------------- degenerate verifiers


def test_degenerate_filter_records_reasons():
    rng = np.random.default_rng(0)
    items = [f"i{k}" for k in range(200)]
    good = rng.random(200)
    rows = []
    for k, item in enumerate(items):
        rows += [
            (item, "good", good[k]),
            (item, "good2", 1 - good[k] ** 2),
            (item, "const", 0.7),
            (item, "always_yes", 0.6 + 0.3 * good[k]),
            (item, "rare", 0.9 if k == 0 else 0.1),
        ]
    rows += [("i_late", "late", 0.8)]  # scores only an item outside the fit split
    scores = long_frame(rows)
    aggregated, table, metadata = V.aggregate_weak_labels(scores, {"aggregator": "majority"}, fit_items=items)
    reasons = table.set_index("verifier_id")["drop_reason"].to_dict()
    assert reasons["good"] == "" and reasons["good2"] == ""
    assert reasons["const"] == "constant_score"
    assert reasons["always_yes"] == "constant_vote"
    assert reasons["rare"] == "positive_rate 0.0050 < 0.02"
    assert reasons["late"] == "no_votes"
    assert metadata["kept"] == ["good", "good2"]
    assert table.set_index("verifier_id")["kept"].to_dict()["late"] is False
    # The unfitted item is still scored: none of its verifiers was kept, so it has no votes and the prior.
    late = aggregated.set_index("item_id").loc["i_late"]
    assert late["n_votes"] == 0 and late["score"] == pytest.approx(metadata["prior"])

    kept_all = V.fit(scores, {"aggregator": "majority", "drop_degenerate": False}, fit_items=items)
    assert kept_all["kept"] == ["good", "good2", "const", "always_yes", "rare"]  # only silent ones go


def test_every_verifier_dropped_raises():
    scores = long_frame([("a", "v", 0.7), ("b", "v", 0.7)])
    with pytest.raises(ValueError, match="every verifier was dropped"):
        V.fit(scores, {})


# --------------------------------------------------------------------------- aggregators


def test_simple_aggregators_by_hand():
    scores = long_frame(
        [
            ("a", "v0", 0.9),
            ("a", "v1", 0.2),
            ("a", "v2", 0.7),
            ("b", "v1", 0.4),
            ("b", "v2", np.nan),  # v0 abstains by a missing row, v2 by NaN
            ("c", "v0", 0.1),
            ("c", "v1", 0.8),
            ("c", "v2", 0.3),
            ("d", "v0", 0.6),
            ("d", "v1", 0.3),
            ("d", "v2", 0.2),
        ]
    )
    base = {"drop_degenerate": False}

    def scores_of(aggregator: str, **extra) -> dict:
        aggregated, _, metadata = V.aggregate_weak_labels(scores, {**base, "aggregator": aggregator, **extra})
        assert metadata["steps"]["aggregate"]["uses_labels"] is False
        return aggregated.set_index("item_id")["score"].round(6).to_dict()

    assert scores_of("majority") == pytest.approx({"a": 2 / 3, "b": 0.0, "c": 1 / 3, "d": 1 / 3}, abs=1e-6)
    assert scores_of("mean") == pytest.approx({"a": 0.6, "b": 0.4, "c": 0.4, "d": 1.1 / 3}, abs=1e-6)
    assert scores_of("first") == {"a": 0.9, "b": 0.4, "c": 0.1, "d": 0.6}  # b: v0 abstains, v1 answers
    assert scores_of("first", first_verifier="v2") == {"a": 0.7, "b": 0.4, "c": 0.3, "d": 0.2}
    aggregated, _, _ = V.aggregate_weak_labels(scores, {**base, "aggregator": "mean"})
    assert aggregated.set_index("item_id")["n_votes"].to_dict() == {"a": 3, "b": 1, "c": 3, "d": 3}


def test_averaging_aggregators_need_unit_scores():
    scores = long_frame([("a", "v0", 3.0), ("b", "v0", -1.0), ("a", "v1", 0.2), ("b", "v1", 0.9)])
    with pytest.raises(ValueError, match="normalize"):
        V.aggregate_weak_labels(scores, {"aggregator": "mean", "drop_degenerate": False})
    aggregated, _, _ = V.aggregate_weak_labels(
        scores, {"aggregator": "mean", "normalize": "minmax", "drop_degenerate": False}
    )
    assert aggregated.set_index("item_id")["score"].round(6).to_dict() == {"a": 0.5, "b": 0.5}


def test_abstains_as_nan_or_missing_rows_are_the_same():
    scores, _ = synthetic()
    with_nan = scores.pivot(index="item_id", columns="verifier_id", values="raw_score").reset_index()
    with_nan = with_nan.melt("item_id", var_name="verifier_id", value_name="raw_score").assign(
        candidate_id=V.ITEM_CANDIDATE
    )
    assert with_nan["raw_score"].isna().any()
    a = V.aggregate_weak_labels(scores, {})[0].set_index("item_id")
    b = V.aggregate_weak_labels(with_nan, {})[0].set_index("item_id").reindex(a.index)
    pd.testing.assert_frame_equal(a, b)
    assert (
        a["n_votes"]
        == (~scores.pivot(index="item_id", columns="verifier_id", values="raw_score").reindex(a.index).isna()).sum(
            axis=1
        )
    ).all()


def test_label_using_aggregators_are_flagged():
    scores, gold = synthetic()
    dev = gold.iloc[:500]
    best, _, best_meta = V.aggregate_weak_labels(scores, {"aggregator": "best_single"}, dev)
    logistic, _, logistic_meta = V.aggregate_weak_labels(scores, {"aggregator": "logistic"}, dev)
    label_model, _, lm_meta = V.aggregate_weak_labels(scores, {"aggregator": "label_model"}, dev)
    assert best_meta["uses_labels"] is True and best_meta["steps"]["aggregate"]["uses_labels"] is True
    assert logistic_meta["uses_labels"] is True and logistic_meta["steps"]["aggregate"]["uses_labels"] is True
    assert lm_meta["uses_labels"] is False  # dev labels passed but never read
    assert best_meta["steps"]["aggregate"]["verifier"] == "v0"  # the most accurate one
    # Dev items on which some verifier voted (one of the 500 has all five abstaining).
    assert (
        best_meta["steps"]["aggregate"]["n_dev"] == scores.loc[scores["item_id"].isin(dev.index), "item_id"].nunique()
    )
    # The supervised reference and the unsupervised label model land close together.
    assert abs(accuracy(logistic, gold) - accuracy(label_model, gold)) < 0.03
    assert accuracy(best, gold) < accuracy(label_model, gold)
    with pytest.raises(ValueError, match="needs dev labels"):
        V.aggregate_weak_labels(scores, {"aggregator": "logistic"})


def test_fit_on_one_split_apply_to_another_through_json():
    scores, gold = synthetic()
    fit_items = gold.index[:1000]
    settings = {"normalize": "quantile", "aggregator": "label_model"}
    model = json.loads(json.dumps(V.fit(scores, settings, fit_items=fit_items)))
    in_fit = scores["item_id"].isin(set(fit_items))
    assert model["n_fit_units"] == scores.loc[in_fit, "item_id"].nunique()
    held_out = scores[~in_fit]
    direct = V.apply(model, held_out)
    assert len(direct) == held_out["item_id"].nunique() and direct["score"].between(0, 1).all()
    joint, _, _ = V.aggregate_weak_labels(scores, settings, fit_items=fit_items)
    pd.testing.assert_frame_equal(
        direct.reset_index(drop=True), joint[joint["item_id"].isin(direct["item_id"])].reset_index(drop=True)
    )
    with pytest.raises(ValueError, match="not in the fitted model"):
        V.apply(model, long_frame([("x", "new_verifier", 0.5)]))


def test_multiple_candidates_per_item_are_scored_separately():
    scores, _ = synthetic(abstain=0.0)
    # The same votes presented as two candidates of 1,000 items.
    half = scores["item_id"].str[4:].astype(int) % 2
    as_candidates = scores.assign(
        item_id="q" + (scores["item_id"].str[4:].astype(int) // 2).astype(str), candidate_id="c" + half.astype(str)
    )
    a, _, _ = V.aggregate_weak_labels(scores, {})
    b, _, _ = V.aggregate_weak_labels(as_candidates, {})
    assert b.groupby("item_id").size().eq(2).all()
    np.testing.assert_allclose(np.sort(a["score"]), np.sort(b["score"]))


def test_settings_are_checked():
    with pytest.raises(ValueError, match="unknown verifier settings"):
        V.resolve_settings({"agregator": "mean"})
    with pytest.raises(ValueError, match="aggregator"):
        V.resolve_settings({"aggregator": "median"})
    with pytest.raises(ValueError, match="positive_rate"):
        V.resolve_settings({"positive_rate": 1.5})
    assert V.resolve_settings(None) == V.DEFAULT_SETTINGS


def test_score_table_checks():
    with pytest.raises(ValueError, match="duplicate"):
        V.check_scores(long_frame([("a", "v", 0.1), ("a", "v", 0.2)]))
    with pytest.raises(ValueError, match="lacks columns"):
        V.check_scores(pd.DataFrame({"item_id": ["a"]}))


# --------------------------------------------------------------------------- sources, tables and files


def test_scores_from_labeling_functions_leave_abstains_out():
    functions = {"len": lambda t: 1.0 if len(t) > 3 else None, "nan": lambda t: float("nan")}
    scores = V.scores_from_labeling_functions(["a", "b"], ["long text", "no"], functions)
    assert scores.to_dict("records") == [
        {"item_id": "a", "candidate_id": V.ITEM_CANDIDATE, "verifier_id": "len", "raw_score": 1.0}
    ]


# --------------------------------------------------------------------------- dependent verifiers


def correlated_teachers(seed: int = 0, n: int = 4000) -> tuple[pd.DataFrame, pd.Series]:
    """Two teachers with accuracy 0.80 that agree on 94% of items (the second copies the first with
    probability 0.8125, else votes on its own: 0.8125 + 0.1875 * 0.68 = 0.94), with soft scores,
    and four labeling functions independent given the class (accuracy 0.70-0.80, coverage 0.5-0.9)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)

    def vote(accuracy: float) -> np.ndarray:
        return np.where(rng.random(n) < accuracy, y, 1 - y)

    a = vote(0.8)
    b = np.where(rng.random(n) < 0.8125, a, vote(0.8))
    columns = {}
    for name, v in (("teacher_a", a), ("teacher_b", b)):
        margin = rng.uniform(0.05, 0.45, n)
        columns[name] = np.where(v == 1, 0.5 + margin, 0.5 - margin)
    for name, acc, coverage in (("lf0", 0.75, 0.9), ("lf1", 0.70, 0.7), ("lf2", 0.80, 0.5), ("lf3", 0.72, 0.8)):
        columns[name] = np.where(rng.random(n) < coverage, vote(acc).astype(np.float64), np.nan)
    ids = [f"i{k}" for k in range(n)]
    frame = pd.DataFrame(columns, index=pd.Index(ids, name="item_id"))
    long = frame.reset_index().melt("item_id", var_name="verifier_id", value_name="raw_score").dropna()
    return long.assign(candidate_id=V.ITEM_CANDIDATE)[list(V.SCORE_COLUMNS)], pd.Series(y, index=ids)


def test_correlated_teachers_are_merged_and_the_aggregate_is_calibrated():
    """Without merging, EM rates the two teachers at ~0.96 (truth 0.80) and the aggregate's ECE is
    ~0.08. Merged: every estimate within 0.05 of its gold accuracy and ECE below 0.05."""
    scores, gold = correlated_teachers()
    aggregated, table, metadata = V.aggregate_weak_labels(scores, {"aggregator": "label_model"}, gold=gold)
    lm = metadata["steps"]["label_model"]
    assert lm["merged"] == [["teacher_a", "teacher_b"]]
    assert [m["pair"] for m in lm["merges"]] == [["teacher_a", "teacher_b"]]
    assert lm["merges"][0]["observed"] == pytest.approx(0.94, abs=0.01)
    assert not any(d["dependent"] for d in lm["dependence"])  # none left after the merge
    assert lm["converged"] and lm["n_iter"] < 200
    assert np.abs(table["est_accuracy"] - table["true_accuracy"]).max() < 0.05
    assert set(table["verifier_id"]) == {
        "teacher_a",
        "teacher_b",
        "lf0",
        "lf1",
        "lf2",
        "lf3",
        "merged:teacher_a+teacher_b",
    }
    assert table.set_index("verifier_id").loc["teacher_a", "merged_into"] == "merged:teacher_a+teacher_b"
    p = aggregated["score"].to_numpy()
    hard = binary_hard_labels(p)
    confidence = np.where(hard == 1, p, 1 - p)
    correct = hard == gold.reindex(aggregated["item_id"]).to_numpy()
    assert expected_calibration_error(confidence, correct) < 0.05

    # The defect this fixes: the unmerged model is overconfident about the pair.
    _, unmerged, _ = V.aggregate_weak_labels(scores, {"merge_dependent": False}, gold=gold)
    teachers = unmerged.set_index("verifier_id").loc[["teacher_a", "teacher_b"]]
    assert (teachers["est_accuracy"] - teachers["true_accuracy"]).min() > 0.1


def test_independent_verifiers_are_not_merged():
    scores, _ = synthetic()
    lm = V.fit(scores, {})["steps"]["label_model"]
    assert lm["merged"] == [] and lm["merges"] == [] and len(lm["dependence"]) == 10
    assert max(abs(d["excess"]) for d in lm["dependence"]) < 0.05


def test_predicted_agreement_by_hand():
    from w2s.verifiers.label_model import predicted_agreement

    # prior 0.5, both tpr 0.8 / fpr 0.2: 0.5 (0.64 + 0.04) + 0.5 (0.04 + 0.64) = 0.68
    rates = {"tpr": 0.8, "fpr": 0.2}
    assert predicted_agreement(rates, rates, 0.5) == pytest.approx(0.68)


def test_unvoted_units_get_the_prior_class():
    # Three agreeing verifiers vote on 12 items (3 positive); nobody votes on d. The label-model
    # prior is then about 1/4, so d's score is that prior and its class 0, for every aggregator
    # (it was 0.5 before: a tie, class 0 by luck of the tie rule rather than by the prior).
    rows = [(f"i{k}", v, float(k < 3)) for k in range(12) for v in ("v0", "v1", "v2")] + [("d", "v0", np.nan)]
    scores = long_frame(rows)
    for aggregator in ("majority", "mean", "first", "label_model"):
        model = V.fit(scores, {"aggregator": aggregator, "drop_degenerate": False})
        out = V.apply(model, scores).set_index("item_id")
        assert out.loc["d", "n_votes"] == 0
        assert 0.2 < model["prior"] < 0.35
        assert out.loc["d", "score"] == pytest.approx(model["prior"])
        assert binary_hard_labels(out["score"].to_numpy()).tolist() == [1] * 3 + [0] * 10
    # With the prior above one half the unvoted item is class 1.
    flipped = scores.assign(raw_score=1.0 - scores["raw_score"])
    model = V.fit(flipped, {"aggregator": "majority", "drop_degenerate": False})
    assert binary_hard_labels(V.apply(model, flipped)["score"].to_numpy())[-1] == 1
