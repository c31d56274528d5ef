"""Gold-free weak verifiers of sampled solutions (w2s.reasoning.checks) and their aggregation
(w2s.reasoning.scoring.aggregate_checks)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from w2s import verifiers
from w2s.reasoning.checks import (
    CHECKS,
    arithmetic_score,
    arithmetic_steps,
    confidence_scores,
    consistency_scores,
    format_scores,
    score_samples,
)
from w2s.reasoning.scoring import aggregate_checks

ALL_CHECKS = ["consistency", "arithmetic", "format", "confidence"]


def make_samples(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (problem_id, sample_id, answer, finish_reason, completion, mean_logprob, split)."""
    columns = ["problem_id", "sample_id", "answer", "finish_reason", "completion", "mean_logprob", "split"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["sample_id"] = frame["sample_id"].astype("int32")
    frame["mean_logprob"] = frame["mean_logprob"].astype("float64")
    return frame


@pytest.fixture
def samples() -> pd.DataFrame:
    """Problem p1: four samples answering 4, 4, 5 and nothing; problem p2: two samples, both 9."""
    return make_samples(
        [
            ("p1", 0, "4", "stop", "2 + 2 = 4\n#### 4", math.log(0.5), "train"),
            ("p1", 1, "4", "stop", "2 * 2 = 4 and 1 + 1 = 3\n#### 4", math.log(0.25), "train"),
            ("p1", 2, "5", "length", "2 + 2 = 5\n#### 5", 0.0, "train"),
            ("p1", 3, None, "stop", "I am not sure.", math.log(0.75), "train"),
            ("p2", 0, "9", "stop", "3 x 3 = 9\n#### 9", math.log(0.5), "test"),
            ("p2", 1, "9", "length", "Nine. #### 9", math.log(0.5), "test"),
        ]
    )


# Hand-computed per-sample check scores of the fixture, in row order.
EXPECTED = {
    "consistency": [0.5, 0.5, 0.25, 0.0, 1.0, 1.0],
    "arithmetic": [1.0, 0.5, 0.0, 0.5, 1.0, 0.5],
    "format": [1.0, 1.0, 0.0, 0.0, 1.0, 0.0],
    "confidence": [0.5, 0.25, 1.0, 0.75, 0.5, 0.5],
}


# --------------------------------------------------------------------------- arithmetic


SOLUTION_WITH_A_WRONG_STEP = (
    "Tom starts with 3 + 4 = 7 apples.\n"
    "He buys 2 * 5 = 11 more.\n"  # wrong: 10
    "Then he has 7 + 10 = 17 apples, gives away 17 - 5 = 12 and splits them: 12 / 4 = 3.\n"
    "#### 3"
)


def test_arithmetic_steps_count_right_and_written_steps():
    assert arithmetic_steps(SOLUTION_WITH_A_WRONG_STEP) == (4, 5)
    assert arithmetic_score(SOLUTION_WITH_A_WRONG_STEP) == pytest.approx(4 / 5)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3 x 4 = 12", (1, 1)),
        ("6 × 7 = 42 and 8 ÷ 2 = 4", (2, 2)),
        ("10-3=7", (1, 1)),
        ("3 - 4 = -1", (1, 1)),
        ("-3 + 5 = 2", (1, 1)),
        ("1,200 + 300 = 1,500", (1, 1)),
        ("2.5 * 4 = 10.0", (1, 1)),
        ("6 x 0.6666666666666666 = 4.0", (1, 1)),  # relative tolerance 1e-4
        ("10 / 3 = 3.3333", (1, 1)),
        ("10 / 3 = 3.3", (0, 1)),
        ("3 + 4 = 8", (0, 1)),
        ("10 / 0 = 5", (0, 1)),  # division by zero: written, never right
        ("8 ÷ 0 = 0", (0, 1)),
        ("2x + 3 = 7", (0, 0)),  # algebra, not arithmetic
        ("He paid $5 + $3 = $8", (0, 0)),  # dollar signs are not read as numbers
        ("Just a guess. #### 5", (0, 0)),
        ("", (0, 0)),
        (None, (0, 0)),
    ],
)
def test_arithmetic_steps(text, expected):
    assert arithmetic_steps(text) == expected


@pytest.mark.parametrize("text", ["No arithmetic here. #### 5", "", None])
def test_arithmetic_score_is_one_half_without_steps(text):
    assert arithmetic_score(text) == 0.5


def test_arithmetic_score_counts_division_by_zero_as_a_wrong_step():
    assert arithmetic_score("3 + 4 = 7 and 10 / 0 = 5") == 0.5
    assert arithmetic_score("10 / 0 = 5") == 0.0


def test_arithmetic_steps_survive_a_huge_number():
    huge = "1" * 400  # degenerate generations can repeat digits
    assert arithmetic_steps(f"{huge} + 1 = 2 and 2 + 2 = 4") == (1, 2)


# --------------------------------------------------------------------------- consistency, format, confidence


def test_consistency_scores_share_of_same_answer(samples):
    np.testing.assert_allclose(consistency_scores(samples), EXPECTED["consistency"])


def test_consistency_scores_one_problem_with_a_missing_answer():
    frame = make_samples([("p", i, a, "stop", "", 0.0, "train") for i, a in enumerate(["4", "4", "5", None])])
    np.testing.assert_allclose(consistency_scores(frame), [0.5, 0.5, 0.25, 0.0])


def test_consistency_scores_follow_row_order(samples):
    shuffled = samples.iloc[[5, 2, 0, 3, 4, 1]]
    expected = np.asarray(EXPECTED["consistency"])[[5, 2, 0, 3, 4, 1]]
    np.testing.assert_allclose(consistency_scores(shuffled), expected)
    # ... also with a non-default index
    np.testing.assert_allclose(consistency_scores(shuffled.reset_index(drop=True)), expected)


def test_consistency_scores_are_zero_when_no_sample_answers():
    frame = make_samples([("p", i, None, "stop", "", 0.0, "train") for i in range(3)])
    np.testing.assert_array_equal(consistency_scores(frame), [0.0, 0.0, 0.0])


def test_consistency_scores_same_answer_in_different_problems_is_not_shared():
    frame = make_samples(
        [
            ("a", 0, "4", "stop", "", 0.0, "train"),
            ("b", 0, "4", "stop", "", 0.0, "train"),
            ("b", 1, "3", "stop", "", 0.0, "train"),
        ]
    )
    np.testing.assert_allclose(consistency_scores(frame), [1.0, 0.5, 0.5])


def test_consistency_scores_treat_equal_numbers_as_the_same_answer():
    frame = make_samples([("p", i, a, "stop", "", 0.0, "train") for i, a in enumerate(["1,234", "1234", "0.5", "1/2"])])
    np.testing.assert_allclose(consistency_scores(frame), [0.5, 0.5, 0.5, 0.5])


def test_format_scores(samples):
    np.testing.assert_array_equal(format_scores(samples), EXPECTED["format"])
    assert format_scores(samples).dtype == np.float64


def test_confidence_scores_are_exp_mean_logprob(samples):
    np.testing.assert_allclose(confidence_scores(samples), EXPECTED["confidence"])


def test_confidence_scores_keep_nan_as_abstain():
    frame = make_samples(
        [
            ("p", 0, "1", "stop", "", -1.0, "train"),
            ("p", 1, "1", "stop", "", np.nan, "train"),
            ("p", 2, "1", "stop", "", None, "train"),
        ]
    )
    scores = confidence_scores(frame)
    assert scores[0] == pytest.approx(math.exp(-1.0))
    assert np.isnan(scores[1]) and np.isnan(scores[2])


def test_every_check_returns_one_score_per_sample_in_unit_interval(samples):
    assert sorted(CHECKS) == sorted(ALL_CHECKS)
    for name, check in CHECKS.items():
        scores = check(samples)
        assert scores.shape == (len(samples),), name
        np.testing.assert_allclose(scores, EXPECTED[name], err_msg=name)
        assert ((scores >= 0) & (scores <= 1)).all(), name


# --------------------------------------------------------------------------- score_samples


def test_score_samples_long_table(samples):
    long = score_samples(samples, ["consistency", "format"])
    assert list(long.columns) == ["item_id", "candidate_id", "verifier_id", "raw_score"]
    assert len(long) == 2 * len(samples)
    assert long["verifier_id"].tolist() == ["check:consistency"] * 6 + ["check:format"] * 6
    assert long["item_id"].tolist() == ["p1", "p1", "p1", "p1", "p2", "p2"] * 2
    assert long["candidate_id"].tolist() == ["0", "1", "2", "3", "0", "1"] * 2
    np.testing.assert_allclose(long["raw_score"], EXPECTED["consistency"] + EXPECTED["format"])
    # The table is a valid w2s.verifiers score table.
    assert len(verifiers.check_scores(long)) == len(long)


def test_score_samples_keeps_nan_confidence():
    frame = make_samples([("p", 0, "1", "stop", "", np.nan, "train"), ("p", 1, "1", "stop", "", 0.0, "train")])
    long = score_samples(frame, ["confidence"])
    assert np.isnan(long["raw_score"].iloc[0])
    assert long["raw_score"].iloc[1] == 1.0


@pytest.mark.parametrize("checks", [["length"], ["consistency", "gold"], ["Consistency"]])
def test_score_samples_rejects_unknown_checks(samples, checks):
    with pytest.raises(ValueError, match="unknown verifier checks"):
        score_samples(samples, checks)


# --------------------------------------------------------------------------- aggregate_checks


def test_aggregate_checks_mean_is_the_mean_of_the_checks(samples):
    table, model = aggregate_checks(samples, ALL_CHECKS, {"aggregator": "mean"})
    check_columns = [f"check:{name}" for name in ALL_CHECKS]
    assert len(table) == len(samples)
    assert set(table.columns) == {"problem_id", "split", "sample_id", "score", *check_columns}
    # One row per sample, in the samples' order, with their split.
    assert table["problem_id"].tolist() == samples["problem_id"].tolist()
    assert table["sample_id"].tolist() == samples["sample_id"].tolist()
    assert table["split"].tolist() == samples["split"].tolist()
    for name in ALL_CHECKS:
        np.testing.assert_allclose(table[f"check:{name}"], EXPECTED[name], err_msg=name)
    expected_score = np.mean([EXPECTED[name] for name in ALL_CHECKS], axis=0)
    np.testing.assert_allclose(table["score"], expected_score)
    np.testing.assert_allclose(table["score"], table[check_columns].mean(axis=1))
    assert table["score"].iloc[0] == pytest.approx((0.5 + 1.0 + 1.0 + 0.5) / 4)
    assert model["settings"]["aggregator"] == "mean"
    assert model["uses_labels"] is False


def test_aggregate_checks_default_is_the_mean(samples):
    table, model = aggregate_checks(samples, ALL_CHECKS)
    assert model["settings"]["aggregator"] == "mean"
    np.testing.assert_allclose(table["score"], np.mean([EXPECTED[name] for name in ALL_CHECKS], axis=0))


def test_aggregate_checks_mean_skips_abstaining_confidence(samples):
    samples.loc[[0, 2], "mean_logprob"] = np.nan
    table, _ = aggregate_checks(samples, ALL_CHECKS, {"aggregator": "mean"})
    assert np.isnan(table["check:confidence"].iloc[0])
    assert table["score"].iloc[0] == pytest.approx((0.5 + 1.0 + 1.0) / 3)
    assert table["score"].iloc[2] == pytest.approx((0.25 + 0.0 + 0.0) / 3)
    assert table["score"].iloc[1] == pytest.approx((0.5 + 0.5 + 1.0 + 0.25) / 4)


def test_aggregate_checks_label_model_scores_are_the_posterior_of_the_raw_checks(samples):
    # The aggregate is clipped to [0, 1] and filled, so a range check on it cannot fail: recompute
    # the posterior by hand from the raw check outputs and the fitted rates instead.
    table, model = aggregate_checks(samples, ALL_CHECKS, {"aggregator": "label_model"})
    assert len(table) == len(samples) and model["uses_labels"] is False
    lm = model["steps"]["label_model"]
    assert all(len(group) == 1 for group in lm["groups"])  # six samples: too few to test a pair
    log_odds = np.full(len(samples), np.log(lm["prior"] / (1 - lm["prior"])))
    for verifier, tpr, fpr in zip(lm["verifiers"], lm["tpr"], lm["fpr"]):
        raw = table[verifier].to_numpy()
        vote = raw >= model["steps"]["binarize"]["thresholds"][verifier]
        tpr, fpr = np.clip([tpr, fpr], 1e-6, 1 - 1e-6)
        step = np.where(vote, np.log(tpr / fpr), np.log((1 - tpr) / (1 - fpr)))
        log_odds += np.where(np.isnan(raw), 0.0, step)
    np.testing.assert_allclose(table["score"], 1 / (1 + np.exp(-log_odds)), rtol=1e-6)


def test_aggregate_checks_scores_are_per_problem_and_sample_not_by_row(samples):
    # Samples of two problems share sample ids 0 and 1; each row still gets its own scores.
    table, _ = aggregate_checks(samples.iloc[::-1].reset_index(drop=True), ["consistency"], {"aggregator": "mean"})
    np.testing.assert_allclose(table["check:consistency"], EXPECTED["consistency"][::-1])
    np.testing.assert_allclose(table["score"], EXPECTED["consistency"][::-1])


@pytest.mark.parametrize("aggregator", ["logistic", "best_single"])
def test_aggregate_checks_rejects_label_using_aggregators(samples, aggregator):
    with pytest.raises(ValueError, match="needs gold labels"):
        aggregate_checks(samples, ALL_CHECKS, {"aggregator": aggregator})


def test_aggregate_checks_rejects_unknown_checks(samples):
    with pytest.raises(ValueError, match="unknown verifier checks"):
        aggregate_checks(samples, ["consistency", "length"])
