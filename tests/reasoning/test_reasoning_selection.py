"""Which samples become SFT targets and DPO pairs, for every rule, on hand-built samples."""

import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from w2s.io import read_provenance
from w2s.reasoning.selection import (
    DPO_RULES,
    SFT_RULES,
    agrees_with_majority,
    answer_key,
    build_train_set,
    majority_answers,
    needed_generators,
    preference_pairs,
    sft_examples,
    uses_gold,
    write_train_set,
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
    rows = sft_examples(rule, PROBLEMS, SAMPLES, SCORES)  # the default threshold is 0.5
    assert rows["chosen"].tolist() == expected
    assert set(rows["origin"]) == {"gold" if rule == "gold" else f"weak:{rule}"}
    assert (rows["stage"] == "sft").all() and rows["rejected"].tolist() == [None] * len(rows)
    assert rows["question"].tolist() == [{"a": "qa", "b": "qb"}[p] for p in rows["problem_id"]]


def test_delta_pairs_weak_over_weaker_and_drop_identical_texts():
    rows = preference_pairs("delta", PROBLEMS, SAMPLES, max_pairs=2)
    assert list(zip(rows["chosen"], rows["rejected"])) == [("wa0", "xa0"), ("wa1", "xa1"), ("wb0", "xb0")]


def test_delta_pairs_default_to_two_per_problem():
    weak = _samples([("a", s, f"w{s}", "1", True) for s in range(3)])
    weaker = _samples([("a", s, f"x{s}", "1", True) for s in range(3)])
    rows = preference_pairs("delta", PROBLEMS, {"weak": weak, "weaker": weaker})
    assert list(zip(rows["chosen"], rows["rejected"])) == [("w0", "x0"), ("w1", "x1")]


def test_delta_pairs_respect_the_cap_per_problem():
    rows = preference_pairs("delta", PROBLEMS, SAMPLES, max_pairs=1)
    assert list(zip(rows["chosen"], rows["rejected"])) == [("wa0", "xa0"), ("wb0", "xb0")]


@pytest.mark.parametrize("rule", ["correct", "strong_majority"])
def test_split_pairs_respect_the_cap_per_problem(rule):
    # samples 0-2 say 1 (right, the majority), samples 3-4 say 2 (wrong)
    samples = _samples([("a", s, f"s{s}", "1" if s < 3 else "2", s < 3) for s in range(5)])
    rows = preference_pairs(rule, PROBLEMS, {"weak": samples, "strong": samples}, max_pairs=1)
    assert list(zip(rows["chosen"], rows["rejected"])) == [("s0", "s3")]
    rows = preference_pairs(rule, PROBLEMS, {"weak": samples, "strong": samples}, max_pairs=2)
    assert list(zip(rows["chosen"], rows["rejected"])) == [("s0", "s3"), ("s1", "s4")]


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


def test_verified_keeps_a_sample_scored_exactly_at_the_threshold():
    rows = sft_examples("verified", PROBLEMS, SAMPLES, SCORES, threshold=0.6)
    assert rows["chosen"].tolist() == ["wa0", "wb0", "wb1"]


def test_a_weak_sample_without_a_verifier_score_is_an_error():
    with pytest.raises(ValueError, match=r"^1 weak sample\(s\) have no aggregated verifier score$"):
        sft_examples("verified", PROBLEMS, SAMPLES, SCORES.iloc[1:])


def test_unknown_rules_are_errors_that_list_the_known_ones():
    with pytest.raises(ValueError, match=re.escape(f"unknown sft rule 'best'; known: {SFT_RULES}")):
        sft_examples("best", PROBLEMS, SAMPLES)
    with pytest.raises(ValueError, match=re.escape(f"unknown dpo rule 'best'; known: {DPO_RULES}")):
        preference_pairs("best", PROBLEMS, SAMPLES)


def test_verifier_pairs_take_the_top_and_bottom_score_with_ties_to_the_lower_sample_id():
    weak = _samples(
        [(p, s, f"{p}{s}", "1", True) for p, s in [("b", 0), ("b", 1), ("b", 2), ("a", 0), ("a", 1), ("a", 2)]]
    )
    scores = pd.DataFrame(
        {"problem_id": ["b"] * 3 + ["a"] * 3, "sample_id": [0, 1, 2] * 2, "score": [0.9, 0.9, 0.1, 0.75, 0.25, 0.25]}
    )
    rows = preference_pairs("verifier", PROBLEMS, {"weak": weak}, scores)
    # best: first of the tied top (b0); worst: last of the tied bottom (a2); problems in sample order
    assert list(zip(rows["problem_id"], rows["chosen"], rows["rejected"])) == [("b", "b0", "b2"), ("a", "a0", "a2")]
    assert rows["origin"].tolist() == ["verifier", "verifier"]
    # a's gap is exactly 0.5: not above a minimum gap of 0.5
    rows = preference_pairs("verifier", PROBLEMS, {"weak": weak}, scores, min_score_gap=0.5)
    assert rows["chosen"].tolist() == ["b0"]


def test_no_pairs_is_an_empty_table_with_the_train_set_columns():
    rows = preference_pairs("correct", PROBLEMS, {"weak": WEAK[WEAK["correct"]]})
    assert rows.empty and rows.columns.tolist() == ["stage", "problem_id", "question", "chosen", "rejected", "origin"]


def test_train_set_has_sft_then_dpo_rows_from_train_problems_only():
    samples = {name: pd.concat([frame, frame.assign(split="test", problem_id="t")]) for name, frame in SAMPLES.items()}
    rows = build_train_set({"sft": "all", "dpo": "strong_majority"}, PROBLEMS, samples, None, 0.5, 2)
    assert rows["stage"].tolist() == ["sft"] * 4 + ["dpo"]
    assert rows.index.tolist() == [0, 1, 2, 3, 4]
    assert set(rows["problem_id"]) == {"a", "b"}


def test_train_set_passes_the_verifier_scores_to_the_dpo_stage():
    rows = build_train_set({"dpo": "verifier"}, PROBLEMS, SAMPLES, SCORES, 0.5, 2)
    assert list(zip(rows["chosen"], rows["rejected"])) == [("wa0", "wa1")]


def test_pairs_follow_the_order_in_which_problems_appear_in_the_samples():
    weak_b_first = pd.concat([WEAK[WEAK["problem_id"] == "b"], WEAK[WEAK["problem_id"] == "a"]])
    rows = preference_pairs("correct", PROBLEMS, {"weak": weak_b_first})
    assert list(zip(rows["problem_id"], rows["chosen"], rows["rejected"])) == [("b", "wb0", "wb1"), ("a", "wa0", "wa1")]


def test_agreement_is_a_boolean_series_on_the_samples_own_index():
    shuffled = STRONG.set_axis([40, 10, 30, 20, 0]).iloc[::-1]
    agrees = agrees_with_majority(shuffled, majority_answers(STRONG))
    assert agrees.index.tolist() == [0, 20, 30, 10, 40]
    assert agrees.tolist() == [False, False, False, True, True]  # sa0 and sa1 state the majority 5
    assert agrees_with_majority(STRONG.iloc[:0], {}).dtype == bool


def test_empty_selections_are_errors_not_silent_students():
    with pytest.raises(ValueError, match="^sft: verified selected no examples; lower the threshold or sample more$"):
        build_train_set({"sft": "verified"}, PROBLEMS, SAMPLES, SCORES, 0.99, 2)
    no_majority = {**SAMPLES, "strong": STRONG[STRONG["problem_id"] == "b"]}
    with pytest.raises(
        ValueError, match=r"^dpo: strong_majority produced no pairs \(every pair agreed\); sample more per problem$"
    ):
        build_train_set({"dpo": "strong_majority"}, PROBLEMS, no_majority, None, 0.5, 2)
    with pytest.raises(ValueError, match="^a student needs an sft or a dpo stage$"):
        build_train_set({}, PROBLEMS, SAMPLES, None, 0.5, 2)
    with pytest.raises(ValueError, match="^sft: verified needs the weak samples' aggregated verifier scores$"):
        sft_examples("verified", PROBLEMS, SAMPLES, None)
    with pytest.raises(ValueError, match="^dpo: verifier needs the weak samples' aggregated verifier scores$"):
        preference_pairs("verifier", PROBLEMS, SAMPLES, None)


def test_strong_correct_is_rejection_sampling_on_the_strong_models_gold_correct_samples():
    rows = sft_examples("strong_correct", PROBLEMS, SAMPLES)
    assert rows["chosen"].tolist() == ["sa2"] and rows["origin"].unique().tolist() == ["strong:correct"]
    assert uses_gold({"sft": "strong_correct"}) and needed_generators({"sft": "strong_correct"}) == {"strong"}


def test_gold_ceiling_refuses_answer_only_gold_and_names_the_alternative():
    answer_only = PROBLEMS.assign(solution=None)
    message = (
        "sft: gold needs worked solutions, and this task's gold is only final answers; a ceiling fine-tuned on "
        "bare answers learns to skip its reasoning. Use `sft: strong_correct` (rejection sampling on the strong "
        "model's gold-correct samples)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        sft_examples("gold", answer_only, SAMPLES)


@pytest.mark.parametrize(
    "method, expected",
    [
        ({"sft": "all"}, {"weak"}),
        ({"sft": "verified"}, {"weak"}),
        ({"sft": "agreeing"}, {"weak", "strong"}),
        ({"sft": "gold"}, set()),
        ({"sft": "strong_correct"}, {"strong"}),
        ({"sft": "correct"}, {"weak"}),
        ({"dpo": "delta"}, {"weak", "weaker"}),
        ({"dpo": "strong_majority"}, {"strong"}),
        ({"dpo": "verifier"}, {"weak"}),
        ({"dpo": "correct"}, {"weak"}),
        ({"sft": "gold", "dpo": "strong_majority"}, {"strong"}),
        ({"sft": "strong_correct", "dpo": "delta"}, {"weak", "weaker", "strong"}),
    ],
)
def test_needed_generators_lists_exactly_the_samples_each_rule_reads(method, expected):
    assert needed_generators(method) == expected


def _write_inputs(tmp_path):
    PROBLEMS.to_parquet(tmp_path / "problems.parquet")
    paths = {}
    for name, frame in SAMPLES.items():
        # test-split samples in the files must never reach the train set
        pd.concat([frame, frame.assign(split="test", problem_id="t", completion="leak")]).to_parquet(
            tmp_path / f"{name}.parquet"
        )
        paths[name] = str(tmp_path / f"{name}.parquet")
    SCORES.to_parquet(tmp_path / "scores.parquet")
    return str(tmp_path / "problems.parquet"), paths, str(tmp_path / "scores.parquet")


def test_write_train_set_writes_the_selected_rows_with_provenance(tmp_path):
    problems_path, sample_paths, scores_path = _write_inputs(tmp_path)
    out = tmp_path / "train_set.parquet"
    method = {"sft": "verified", "dpo": "delta"}
    counts = write_train_set(method, problems_path, sample_paths, scores_path, 0.7, 1, str(out), {"seed": 3})

    assert counts == {"sft": 1, "dpo": 2}
    written = pd.read_parquet(out)
    assert written.columns.tolist() == ["stage", "problem_id", "question", "chosen", "rejected", "origin"]
    # sft: only wa0 scores >= 0.7; dpo: the first weak/weaker pair of each problem (max_pairs=1)
    assert written["rejected"].isna().tolist() == [True, False, False]
    assert written.fillna("").values.tolist() == [
        ["sft", "a", "qa", "wa0", "", "weak:verified"],
        ["dpo", "a", "qa", "wa0", "xa0", "delta"],
        ["dpo", "b", "qb", "wb0", "xb0", "delta"],
    ]
    assert read_provenance(out) == {"seed": 3, "method": method, "uses_gold": False}


def test_write_train_set_without_scores_or_provenance_keeps_every_column_a_string(tmp_path):
    problems_path, sample_paths, _ = _write_inputs(tmp_path)
    out = tmp_path / "train_set.parquet"
    counts = write_train_set({"sft": "correct"}, problems_path, sample_paths, None, 0.5, 2, str(out))

    assert counts == {"sft": 2}
    assert pd.read_parquet(out)["chosen"].tolist() == ["wa0", "wb0"]
    # an sft-only set has no rejected text, yet the column stays a string column for the trainer
    schema = pq.read_schema(out)
    assert schema.names == ["stage", "problem_id", "question", "chosen", "rejected", "origin"]
    assert all(field.type == pa.string() for field in schema)
    assert read_provenance(out) == {"method": {"sft": "correct"}, "uses_gold": True}
