"""Grouped splits with groups of unequal size: exact split sizes, whole groups, a split that depends
on the seed, and ``check_groups`` on its own."""

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
