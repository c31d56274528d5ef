"""Which samples become SFT targets and DPO pairs, for every rule, on hand-built samples."""

import pandas as pd
import pytest

from w2s.reasoning.selection import (
    answer_key,
    build_train_set,
    majority_answers,
    preference_pairs,
    sft_examples,
    uses_gold,
)

PROBLEMS = pd.DataFrame(
    {
        "problem_id": ["a", "b", "t"],
        "split": ["train", "train", "test"],
        "question": ["qa", "qb", "qt"],
        "answer": ["1", "2", "3"],
        "solution": ["sa #### 1", None, "st #### 3"],
    }
)


def _samples(rows, split="train"):
    return pd.DataFrame(
        [
            {"problem_id": p, "sample_id": s, "completion": c, "answer": a, "correct": ok, "split": split}
            for p, s, c, a, ok in rows
        ]
    )


WEAK = _samples(
    [("a", 0, "wa0", "1", True), ("a", 1, "wa1", "5", False), ("b", 0, "wb0", "2", True), ("b", 1, "wb1", None, False)]
)
WEAKER = _samples(
    [("a", 0, "xa0", "9", False), ("a", 1, "xa1", "9", False), ("b", 0, "xb0", "2", True), ("b", 1, "wb1", None, False)]
)  # b/1 same text as the weak's
STRONG = _samples(
    [
        ("a", 0, "sa0", "5", False),
        ("a", 1, "sa1", "5.0", False),
        ("a", 2, "sa2", "1", True),
        ("b", 0, "sb0", None, False),
        ("b", 1, "sb1", None, False),
    ]
)
SCORES = pd.DataFrame({"problem_id": ["a", "a", "b", "b"], "sample_id": [0, 1, 0, 1], "score": [0.8, 0.3, 0.6, 0.6]})
SAMPLES = {"weak": WEAK, "weaker": WEAKER, "strong": STRONG}


def test_answer_keys_group_numbers_by_value():
    assert answer_key("5") == answer_key("5.0") == answer_key("$5")
    assert answer_key("Yes") == answer_key("yes")
    assert answer_key(None) is None


def test_majority_answers_by_hand():
    assert majority_answers(STRONG) == {"a": answer_key("5")}  # b states no answer


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("all", ["wa0", "wa1", "wb0", "wb1"]),
        ("correct", ["wa0", "wb0"]),
        ("agreeing", ["wa1"]),  # the strong majority on a is 5; b has none
        ("verified", ["wa0", "wb0", "wb1"]),  # score >= 0.5
        ("gold", ["sa #### 1"]),  # b has no worked solution; test problems never used
    ],
)
def test_sft_rules(rule, expected):
    rows = sft_examples(rule, PROBLEMS, SAMPLES, SCORES, threshold=0.5)
    assert rows["chosen"].tolist() == expected
    assert (rows["stage"] == "sft").all() and rows["rejected"].isna().all()
    assert rows["question"].tolist() == [{"a": "qa", "b": "qb"}[p] for p in rows["problem_id"]]


def test_delta_pairs_weak_over_weaker_and_drop_identical_texts():
    rows = preference_pairs("delta", PROBLEMS, SAMPLES, max_pairs=2)
    assert list(zip(rows["chosen"], rows["rejected"])) == [("wa0", "xa0"), ("wa1", "xa1"), ("wb0", "xb0")]


def test_delta_pairs_respect_the_cap_per_problem():
    rows = preference_pairs("delta", PROBLEMS, SAMPLES, max_pairs=1)
    assert list(zip(rows["chosen"], rows["rejected"])) == [("wa0", "xa0"), ("wb0", "xb0")]


def test_strong_majority_pairs():
    rows = preference_pairs("strong_majority", PROBLEMS, SAMPLES, max_pairs=2)
    # a: majority 5 (samples 0, 1) over the one that says 1; b: no majority, no pair
    assert list(zip(rows["chosen"], rows["rejected"])) == [("sa0", "sa2")]


def test_verifier_pairs_need_a_score_gap():
    rows = preference_pairs("verifier", PROBLEMS, SAMPLES, SCORES)
    assert list(zip(rows["chosen"], rows["rejected"])) == [("wa0", "wa1")]  # b's two samples tie


def test_correct_pairs_use_gold():
    rows = preference_pairs("correct", PROBLEMS, SAMPLES)
    assert list(zip(rows["chosen"], rows["rejected"])) == [("wa0", "wa1"), ("wb0", "wb1")]
    assert (
        uses_gold({"dpo": "correct"}) and uses_gold({"sft": "gold"}) and not uses_gold({"sft": "all", "dpo": "delta"})
    )


def test_train_set_has_sft_then_dpo_rows_from_train_problems_only():
    samples = {name: pd.concat([frame, frame.assign(split="test", problem_id="t")]) for name, frame in SAMPLES.items()}
    rows = build_train_set({"sft": "all", "dpo": "strong_majority"}, PROBLEMS, samples, None, 0.5, 2)
    assert rows["stage"].tolist() == ["sft"] * 4 + ["dpo"]
    assert set(rows["problem_id"]) == {"a", "b"}


def test_empty_selections_are_errors_not_silent_students():
    with pytest.raises(ValueError, match="selected no examples"):
        build_train_set({"sft": "verified"}, PROBLEMS, SAMPLES, SCORES, 0.99, 2)
    no_majority = {**SAMPLES, "strong": STRONG[STRONG["problem_id"] == "b"]}
    with pytest.raises(ValueError, match="no pairs"):
        build_train_set({"dpo": "strong_majority"}, PROBLEMS, no_majority, None, 0.5, 2)
    with pytest.raises(ValueError, match="sft or a dpo"):
        build_train_set({}, PROBLEMS, SAMPLES, None, 0.5, 2)
    with pytest.raises(ValueError, match="verifier scores"):
        sft_examples("verified", PROBLEMS, SAMPLES, None)


def test_strong_correct_is_rejection_sampling_on_the_strong_models_gold_correct_samples():
    rows = sft_examples("strong_correct", PROBLEMS, SAMPLES)
    assert rows["chosen"].tolist() == ["sa2"] and rows["origin"].unique().tolist() == ["strong:correct"]
    from w2s.reasoning.selection import needed_generators

    assert uses_gold({"sft": "strong_correct"}) and needed_generators({"sft": "strong_correct"}) == {"strong"}


def test_gold_ceiling_refuses_answer_only_gold_and_names_the_alternative():
    answer_only = PROBLEMS.assign(solution=None)
    with pytest.raises(ValueError, match="only final answers.*strong_correct"):
        sft_examples("gold", answer_only, SAMPLES)
