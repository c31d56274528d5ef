"""Easy-to-hard splits: difficulty levels, pools, disjoint group-aware splits, per-level scores."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from w2s.data import prepare_splits
from w2s.difficulty import assign_difficulty, check_pool_sizes, pool_mask, subset_scores
from w2s.labeled import DataError


def test_levels_from_a_column_and_from_the_length_rule():
    levels = assign_difficulty("t", {"column": "grade", "easy": [3, 4]}, ["a"] * 4, [3, 4, 8, 3])
    assert levels.tolist() == ["easy", "easy", "hard", "easy"]
    # word counts 1, 2, 3, 4: median 2.5, so the two shortest are easy
    levels = assign_difficulty("t", {"rule": "length"}, ["a", "a b", "a b c", "a b c d"], None)
    assert levels.tolist() == ["easy", "easy", "hard", "hard"]
    levels = assign_difficulty("t", {"rule": "length", "easy_quantile": 0.25}, ["a", "a b", "a b c", "a b c d"], None)
    assert levels.tolist() == ["easy", "hard", "hard", "hard"]  # quantile 0.25 of 1..4 is 1.75


def test_an_item_exactly_at_the_length_cutoff_is_easy():
    # word counts 1, 2, 3: the median is 2 itself
    levels = assign_difficulty("t", {"rule": "length"}, ["a", "a b", "a b c"], None)
    assert levels.tolist() == ["easy", "easy", "hard"]


@pytest.mark.parametrize(
    "values, message",
    [
        ([3, None, 4], "difficulty column 'grade' has 1 missing values of 3"),
        ([3, 3, 3], "difficulty column 'grade' has a single value: {'3': 3}"),
        ([8, 9, 9], "difficulty easy values \\['3'\\] must be values of column 'grade'"),
    ],
)
def test_bad_difficulty_columns_name_the_task_column_and_counts(values, message):
    with pytest.raises(DataError, match=f"task 'quiz': {message}"):
        assign_difficulty("quiz", {"column": "grade", "easy": [3]}, ["a"] * len(values), values)


def test_a_level_left_empty_is_an_error():
    with pytest.raises(DataError, match="leaves a level empty: {'easy': 4, 'hard': 0}"):
        assign_difficulty("t", {"rule": "length"}, ["same length"] * 4, None)


def test_a_difficulty_setting_without_a_usable_source_names_the_known_rules():
    with pytest.raises(DataError, match=r"difficulty column 'grade' was not read.*one of \['length'\]"):
        assign_difficulty("t", {"column": "grade", "easy": [3]}, ["a"] * 3, None)
    with pytest.raises(DataError, match=r"needs a column or a rule, one of \['length'\]"):
        assign_difficulty("t", {"rule": "syllables"}, ["a"] * 3, None)
    with pytest.raises(DataError, match=r"difficulty easy values \[\] must be values of column 'grade'"):
        assign_difficulty("t", {"column": "grade"}, ["a"] * 3, [3, 4, 3])


def _task_file(tmp_path, n=400, groups=False):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        hard = i % 2 == 1
        words = " ".join(f"w{i}_{j}" for j in range(12 if hard else 3))
        rows.append(
            {
                "text": f"item {i} {words}",
                "label": int(rng.integers(0, 2)),
                "level": "hard" if hard else "easy",
                "question": f"q{i // 2}" if groups else f"q{i}",
            }
        )
    path = tmp_path / "task.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


SIZES = {"weak_train": 60, "transfer": 60, "val": 20, "test": 50}


def _spec(path, **difficulty):
    return {
        "source": "file",
        "path": str(path),
        "sizes": SIZES,
        "dedupe": True,
        "difficulty": {"column": "level", "easy": ["easy"], **difficulty},
    }


def _levels(out, split):
    return set(pq.read_table(out / f"{split}.parquet").column("difficulty").to_pylist())


def test_easy_to_hard_splits_train_on_easy_and_test_on_hard(tmp_path):
    path = _task_file(tmp_path)
    manifest = prepare_splits("quiz", _spec(path), 0, tmp_path / "out")
    assert _levels(tmp_path / "out", "test") == {"hard"}
    for split in ("weak_train", "transfer", "val"):
        assert _levels(tmp_path / "out", split) == {"easy"}
    assert {s: manifest["splits"][s]["n"] for s in SIZES} == SIZES
    assert manifest["difficulty"]["counts"]["test"] == {"hard": 50}
    other = prepare_splits("quiz", _spec(path), 1, tmp_path / "out1")
    assert other["splits"]["test"]["content_hash"] != manifest["splits"]["test"]["content_hash"]


def test_testing_on_all_scores_both_levels_and_keeps_splits_disjoint(tmp_path):
    path = _task_file(tmp_path)
    prepare_splits("quiz", _spec(path, test="all"), 0, tmp_path / "out")
    test = set(pq.read_table(tmp_path / "out" / "test.parquet").column("id").to_pylist())
    train = set(pq.read_table(tmp_path / "out" / "transfer.parquet").column("id").to_pylist())
    assert _levels(tmp_path / "out", "test") == {"easy", "hard"} and not test & train


def test_groups_never_straddle_the_easy_to_hard_boundary(tmp_path):
    path = _task_file(tmp_path, groups=True)
    spec = _spec(path, test="all")
    spec["group_column"] = "question"
    prepare_splits("quiz", spec, 0, tmp_path / "out")
    frames = {s: pq.read_table(tmp_path / "out" / f"{s}.parquet").to_pandas() for s in SIZES}
    original = pd.read_csv(path).assign(text=lambda f: f["text"].str.strip())
    question = dict(zip(original["text"], original["question"]))
    seen = {s: {question[t] for t in f["text"]} for s, f in frames.items()}
    assert not seen["test"] & (seen["weak_train"] | seen["transfer"] | seen["val"])


def test_a_pool_too_small_is_an_error_before_anything_is_written(tmp_path):
    path = _task_file(tmp_path, n=200)  # 100 easy: 60 + 60 + 20 do not fit
    with pytest.raises(DataError, match="easy-to-hard split cannot be filled"):
        prepare_splits("quiz", _spec(path), 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match="needs 50 of 4"):
        check_pool_sizes("quiz", np.array(["easy"] * 300 + ["hard"] * 4), {"train": "easy", "test": "hard"}, SIZES)


def test_pool_sizes_follow_the_train_and_test_pools_the_setting_names():
    levels = np.array(["easy"] * 50 + ["hard"] * 140)
    # hard-to-easy: 140 hard items hold weak_train + transfer + val, the 50 easy ones the test split
    check_pool_sizes("quiz", levels, {"train": "hard", "test": "easy"}, SIZES)
    with pytest.raises(DataError, match="need 140 of 50 left"):
        check_pool_sizes("quiz", levels, {"train": "easy", "test": "hard"}, SIZES)


def test_an_unknown_pool_names_the_known_ones():
    with pytest.raises(DataError, match=r"difficulty pool 'medium' is not one of \('easy', 'hard', 'all'\)"):
        pool_mask(np.array(["easy", "hard"]), "medium")


def test_training_pool_counts_only_items_the_test_split_leaves():
    # training and testing on all 170 items: the test split takes 50, leaving 120 for 140
    with pytest.raises(DataError) as error:
        check_pool_sizes("quiz", np.array(["easy"] * 100 + ["hard"] * 70), {"train": "all", "test": "all"}, SIZES)
    assert str(error.value) == (
        "task 'quiz': easy-to-hard split cannot be filled: test from 'all' needs 50 of 170; "
        "weak_train + transfer + val from 'all' need 140 of 120 left; items per level: {'easy': 100, 'hard': 70}"
    )


def test_pools_default_to_training_on_easy_and_testing_on_hard():
    with pytest.raises(DataError) as error:  # one easy item short
        check_pool_sizes("quiz", np.array(["easy"] * 139 + ["hard"] * 50), {}, SIZES)
    assert str(error.value) == (
        "task 'quiz': easy-to-hard split cannot be filled: test from 'hard' needs 50 of 50; "
        "weak_train + transfer + val from 'easy' need 140 of 139 left; items per level: {'easy': 139, 'hard': 50}"
    )


def test_subset_scores_by_hand_and_an_empty_level_is_null():
    levels = np.array(["easy", "easy", "hard", "hard", "hard"])
    scores = subset_scores(
        {"student": np.array([1, 0, 1, 1, 0], bool), "weak": np.array([1, 1, 0, 0, 0], bool)}, levels
    )
    assert scores["student_acc_easy"] == 0.5 and scores["student_acc_hard"] == pytest.approx(2 / 3)
    assert scores["weak_acc_easy"] == 1.0 and scores["weak_acc_hard"] == 0.0
    assert (scores["n_test_easy"], scores["n_test_hard"]) == (2, 3)
    hard_only = subset_scores({"student": np.array([1, 0], bool)}, np.array(["hard", "hard"]))
    assert hard_only["student_acc_easy"] is None and hard_only["acc_easy_note"] == "the test split has no easy items"
