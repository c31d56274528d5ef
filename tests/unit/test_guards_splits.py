"""Grouped splits with groups of unequal size: exact split sizes, whole groups, a split that depends
on the seed, and ``check_groups`` on its own."""

import re

import pandas as pd
import pyarrow.parquet as pq
import pytest

from w2s.data import SPLITS, check_groups, prepare_splits
from w2s.labeled import DataError

# 30 groups of sizes 1, 2, 3, 4, 5, 1, 2, ... (90 rows): a greedy fill that took a group without
# checking that it fits would overshoot a split by up to 4 rows.
GROUP_SIZES = [1 + g % 5 for g in range(30)]
SIZES = {"weak_train": 21, "transfer": 20, "val": 0, "test": 21}


def grouped_splits(tmp_path, seed: int) -> dict[str, pd.DataFrame]:
    """Split the grouped task with ``seed``; each split's rows with their group (from the text)."""
    rows = [(f"group {g} item {i}", (g + i) % 2, f"g{g}") for g, size in enumerate(GROUP_SIZES) for i in range(size)]
    path = tmp_path / "grouped.csv"
    pd.DataFrame(rows, columns=["text", "label", "question"]).to_csv(path, index=False)
    spec = {"source": "file", "path": str(path), "sizes": dict(SIZES), "group_column": "question"}
    out = tmp_path / f"out{seed}"
    prepare_splits("grouped", spec, seed, out)
    splits = {s: pq.read_table(out / f"{s}.parquet").to_pandas() for s in SPLITS}
    for frame in splits.values():
        frame["group"] = frame["text"].str.split(" item").str[0]
    return splits


def test_grouped_splits_have_exact_sizes_whole_groups_and_depend_on_the_seed(tmp_path):
    tests = []
    for seed in range(4):
        splits = grouped_splits(tmp_path, seed)
        assert {s: len(f) for s, f in splits.items()} == SIZES, f"seed {seed}"
        for frame in splits.values():  # every group in a split is there whole
            counts = frame["group"].value_counts()
            assert all(counts[g] == GROUP_SIZES[int(g.split()[1])] for g in counts.index)
        check_groups(splits, "grouped")
        tests.append(frozenset(splits["test"]["group"]))
    # Four seeds, four different test splits: intervals over seeds need the split to vary.
    assert len(set(tests)) == 4


def test_check_groups_raises_on_a_shared_group():
    frames = {
        "transfer": pd.DataFrame({"group": ["a", "b", "c"]}),
        "test": pd.DataFrame({"group": ["d", "b"]}),
        "val": pd.DataFrame({"group": ["e"]}),
    }
    with pytest.raises(DataError, match=r"task 'mine': splits 'transfer' and 'test' share 1 groups, e.g. \['b'\]"):
        check_groups(frames, "mine")
    frames["test"] = pd.DataFrame({"group": ["d"]})
    assert check_groups(frames, "mine") is None


def test_check_groups_message_without_a_task_names_three_of_the_shared_groups():
    frames = {"transfer": pd.DataFrame({"group": list("dcba")}), "test": pd.DataFrame({"group": list("abcde")})}
    with pytest.raises(DataError) as info:
        check_groups(frames)
    assert str(info.value) == "task '?': splits 'transfer' and 'test' share 4 groups, e.g. ['a', 'b', 'c']"


def test_groups_that_cannot_fill_a_split_exactly_are_an_error(tmp_path):
    # every group holds two rows, so no set of whole groups makes three
    rows = [(f"group {g} item {i}", i, f"g{g}") for g in range(10) for i in range(2)]
    path = tmp_path / "pairs.csv"
    pd.DataFrame(rows, columns=["text", "label", "question"]).to_csv(path, index=False)
    spec = {"source": "file", "path": str(path), "group_column": "question"}
    spec["sizes"] = {"weak_train": 3, "transfer": 2, "test": 2}
    with pytest.raises(
        DataError, match=r"groups cannot fill split 'weak_train' to 3 examples \(got 2\); lower the sizes"
    ):
        prepare_splits("pairs", spec, 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def easy_hard_file(tmp_path, n_easy: int, n_hard: int, paired: bool = False):
    """Easy items e0, e1, ... and hard items h0, h1, ...; with ``paired``, e{i} and h{i} share a group."""
    rows = [(f"e{i}", i % 2, "easy", f"p{i}") for i in range(n_easy)]
    rows += [(f"h{i}", i % 2, "hard", f"p{i}" if paired else f"h{i}") for i in range(n_hard)]
    path = tmp_path / "levels.csv"
    pd.DataFrame(rows, columns=["text", "label", "level", "pair"]).to_csv(path, index=False)
    return path


def easy_hard_spec(path, sizes: dict, groups: bool = False, **pools) -> dict:
    spec = {"source": "file", "path": str(path), "sizes": sizes}
    spec["difficulty"] = {"column": "level", "easy": ["easy"], **pools}
    return {**spec, "group_column": "pair"} if groups else spec


def test_pools_exactly_the_requested_sizes_are_used_whole(tmp_path):
    # 6 hard items for a test split of 6; 12 easy items for 5 + 4 + 3 training items
    path = easy_hard_file(tmp_path, n_easy=12, n_hard=6)
    sizes = {"weak_train": 5, "transfer": 4, "val": 3, "test": 6}
    manifest = prepare_splits("levels", easy_hard_spec(path, sizes), 0, tmp_path / "out")
    splits = {s: pq.read_table(tmp_path / "out" / f"{s}.parquet").to_pandas() for s in SPLITS}
    assert {s: len(f) for s, f in splits.items()} == sizes
    assert sorted(splits["test"]["text"]) == sorted(f"h{i}" for i in range(6))
    train = pd.concat([splits[s] for s in ("weak_train", "transfer", "val")])
    assert sorted(train["text"]) == sorted(f"e{i}" for i in range(12))
    assert set(train["difficulty"]) == {"easy"} and set(splits["test"]["difficulty"]) == {"hard"}
    assert manifest["difficulty"] == {
        "setting": {"column": "level", "easy": ["easy"]},
        "counts": {"weak_train": {"easy": 5}, "transfer": {"easy": 4}, "val": {"easy": 3}, "test": {"hard": 6}},
    }


def test_a_test_split_that_takes_the_groups_of_easy_items_can_leave_too_few(tmp_path):
    # 10 easy/hard pairs: a test split of 4 hard items takes 4 groups, so 6 easy items are left
    path = easy_hard_file(tmp_path, n_easy=10, n_hard=10, paired=True)
    sizes = {"weak_train": 3, "transfer": 3, "val": 1, "test": 4}
    message = (
        "task 'levels': the training pool 'easy' has 6 items left after the test split, "
        "fewer than weak_train + transfer + val = 7"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        prepare_splits("levels", easy_hard_spec(path, sizes, groups=True), 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # exactly as many as are left is enough
    sizes = {"weak_train": 3, "transfer": 2, "val": 1, "test": 4}
    prepare_splits("levels", easy_hard_spec(path, sizes, groups=True), 0, tmp_path / "out")
    splits = {s: pq.read_table(tmp_path / "out" / f"{s}.parquet").to_pandas() for s in SPLITS}
    assert {s: len(f) for s, f in splits.items()} == sizes
    test_pairs = {t[1:] for t in splits["test"]["text"]}
    train_pairs = {t[1:] for s in ("weak_train", "transfer", "val") for t in splits[s]["text"]}
    assert not test_pairs & train_pairs and len(train_pairs) == 6


def test_a_short_training_pool_is_named_as_the_setting_gives_it(tmp_path):
    # training on all levels: the 4 test groups take 8 of the 20 items, 12 are left
    path = easy_hard_file(tmp_path, n_easy=10, n_hard=10, paired=True)
    sizes = {"weak_train": 6, "transfer": 6, "val": 1, "test": 4}
    message = (
        "the training pool 'all' has 12 items left after the test split, fewer than weak_train + transfer + val = 13"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        prepare_splits("levels", easy_hard_spec(path, sizes, groups=True, train="all"), 0, tmp_path / "out")


def test_a_hard_pool_smaller_than_the_test_split_is_an_error_naming_the_task(tmp_path):
    path = easy_hard_file(tmp_path, n_easy=14, n_hard=5)
    sizes = {"weak_train": 5, "transfer": 4, "val": 3, "test": 6}
    with pytest.raises(
        DataError, match="task 'levels': easy-to-hard split cannot be filled: test from 'hard' needs 6 of 5"
    ):
        prepare_splits("levels", easy_hard_spec(path, sizes), 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_group_ids_are_used_exactly_as_given_even_with_a_trailing_nul(tmp_path):
    # numpy's fixed-width strings drop trailing NULs, which would no longer match the ids in the data
    rows = [(f"group {g} item {i}", i, f"g{g}\x00") for g in range(6) for i in range(2)]
    path = tmp_path / "nul.parquet"
    pd.DataFrame(rows, columns=["text", "label", "question"]).to_parquet(path, index=False)
    sizes = {"weak_train": 4, "transfer": 4, "test": 4}
    spec = {"source": "file", "path": str(path), "sizes": sizes, "group_column": "question"}
    manifest = prepare_splits("nul", spec, 0, tmp_path / "out")
    assert manifest["n_groups"] == 6
    assert {s: manifest["splits"][s]["n"] for s in SPLITS} == {**sizes, "val": 0}


def test_the_length_rule_puts_the_longest_texts_in_the_test_split(tmp_path):
    rows = [(f"short{i}", i % 2) for i in range(4)] + [(f"long{i} a b c d", i % 2) for i in range(4)]
    path = tmp_path / "lengths.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    sizes = {"weak_train": 2, "transfer": 2, "test": 4}
    spec = {"source": "file", "path": str(path), "sizes": sizes, "difficulty": {"rule": "length"}}
    prepare_splits("lengths", spec, 0, tmp_path / "out")
    test = pq.read_table(tmp_path / "out" / "test.parquet").to_pandas()
    assert sorted(test["text"]) == [f"long{i} a b c d" for i in range(4)]


def test_a_difficulty_without_a_column_or_rule_is_an_error_naming_the_task(tmp_path):
    path = easy_hard_file(tmp_path, n_easy=12, n_hard=6)
    spec = {"source": "file", "path": str(path), "sizes": {"weak_train": 2, "transfer": 2, "test": 2}}
    spec["difficulty"] = {"easy": ["easy"]}
    with pytest.raises(DataError, match="task 'levels': difficulty needs a column or a rule"):
        prepare_splits("levels", spec, 0, tmp_path / "out")


def test_a_text_repeated_in_two_groups_is_kept_once(tmp_path):
    rows = [(f"group {g} item {i}", i, f"g{g}") for g in range(6) for i in range(2)] + [("group 0 item 0", 0, "g5")]
    path = tmp_path / "repeat.csv"
    pd.DataFrame(rows, columns=["text", "label", "question"]).to_csv(path, index=False)
    sizes = {"weak_train": 4, "transfer": 4, "test": 4}
    spec = {"source": "file", "path": str(path), "sizes": sizes, "group_column": "question"}
    manifest = prepare_splits("repeat", spec, 0, tmp_path / "out")
    assert manifest["n_dropped_duplicates"] == 1 and manifest["n_available"] == 12
