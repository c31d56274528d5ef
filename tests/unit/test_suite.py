"""The task suite: registry loaders on tiny fixtures laid out like each dataset's hub branch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hub_trees import hub_tree

from w2s.data import SPLITS, prepare_splits
from w2s.suite import SUITE, SuiteError, load_suite
from w2s.tasks import load_task


@pytest.fixture(autouse=True)
def hf_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def boolq_rows(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "question": [f"is thing {i} true" for i in range(n)],
            "answer": [i % 2 == 0 for i in range(n)],
            "passage": [f"Thing {i} is described here." for i in range(n)],
        }
    )


def sciq_rows(n: int, start: int = 0) -> pd.DataFrame:
    ids = range(start, start + n)
    return pd.DataFrame(
        {
            "question": [f"What is element {i}?" for i in ids],
            "distractor3": [f"wrong c{i}" for i in ids],
            "distractor1": [f"wrong a{i}" for i in ids],
            "distractor2": [f"wrong b{i}" for i in ids],
            "correct_answer": [f"right {i}" for i in ids],
            "support": [f"Element {i} is right {i}." for i in ids],
        }
    )


def hub_copy(tmp_path: Path, name: str, splits: dict[str, pd.DataFrame]) -> str:
    """Task ``name``'s hub branch, one frame per split."""
    return hub_tree(tmp_path / "hub", name, splits)


def test_boolq_loader(tmp_path):
    path = hub_copy(tmp_path, "boolq", {"train": boolq_rows(6), "validation": boolq_rows(4)})
    data = load_suite("b", {"name": "boolq", "path": path})
    assert len(data.texts) == 10 and data.label_names == ["false", "true"]
    assert data.texts[0] == "Passage: Thing 0 is described here.\nQuestion: is thing 0 true?"
    assert list(data.labels[:4]) == [1, 0, 1, 0]
    assert len(set(data.groups)) == 10


def test_sciq_loader_balanced_pairs(tmp_path):
    path = hub_copy(tmp_path, "sciq", {s: sciq_rows(5) for s in ("train", "validation", "test")})
    data = load_suite("s", {"name": "sciq", "path": path})
    assert len(data.texts) == 30 and list(data.labels).count(1) == 15
    first = [t for t, g in zip(data.texts, data.groups) if g == "train-q0"]
    assert first[0].endswith("Answer: right 0")
    assert first[1].split("Answer: ")[1] in {"wrong a0", "wrong b0", "wrong c0"}
    again = load_suite("s", {"name": "sciq", "path": path})
    assert again.texts == data.texts


def test_amazon_polarity_loader(tmp_path):
    frame = pd.DataFrame({"label": [0, 1, 1, 0], "title": list("abcd"), "content": ["bad", "good", "great", "awful"]})
    path = hub_copy(tmp_path, "amazon_polarity", {"test": frame})
    data = load_suite("a", {"name": "amazon_polarity", "path": path})
    assert data.texts == ["a\nbad", "b\ngood", "c\ngreat", "d\nawful"]
    assert list(data.labels) == [0, 1, 1, 0] and data.label_names == ["negative", "positive"]


def test_unknown_name_lists_available():
    with pytest.raises(SuiteError, match="available: .*'boolq'.*'sciq'"):
        load_task("x", {"source": "suite", "name": "nope"})
    assert {"boolq", "sciq"} <= set(SUITE)


def test_missing_column_names_task_and_column(tmp_path):
    rows = boolq_rows(4).drop(columns="passage")
    path = hub_copy(tmp_path, "boolq", {"train": rows, "validation": rows})
    with pytest.raises(SuiteError, match=r"'boolq'.*missing column\(s\) \['passage'\]"):
        load_suite("b", {"name": "boolq", "path": path})


def test_row_without_wrong_candidate(tmp_path):
    rows = sciq_rows(3)
    rows.loc[1, ["distractor1", "distractor2", "distractor3"]] = ""
    path = hub_copy(tmp_path, "sciq", {s: rows for s in ("train", "validation", "test")})
    with pytest.raises(SuiteError, match="'sciq': row 1: no wrong candidate"):
        load_suite("s", {"name": "sciq", "path": path})


def test_prepare_splits_keeps_questions_in_one_split(tmp_path):
    path = hub_copy(
        tmp_path, "sciq", {s: sciq_rows(20, 100 * k) for k, s in enumerate(("train", "validation", "test"))}
    )
    sizes = {"weak_train": 20, "transfer": 20, "val": 10, "test": 20}
    spec = {"source": "suite", "name": "sciq", "path": path, "sizes": sizes}
    out = tmp_path / "out"
    manifest = prepare_splits("sciq", spec, 0, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{s}.parquet" for s in SPLITS] + ["manifest.json"])
    assert manifest["n_groups"] == 60
    question_of = {}
    for split in SPLITS:
        frame = pq.read_table(out / f"{split}.parquet").to_pandas()
        assert len(frame) == sizes[split]
        for text in frame["text"]:
            question = text.split("\nQuestion: ")[1].split("\n")[0]
            assert question_of.setdefault(question, split) == split


def test_bad_suite_data_writes_nothing(tmp_path):
    rows = boolq_rows(4).drop(columns="answer")
    path = hub_copy(tmp_path, "boolq", {"train": rows, "validation": rows})
    spec = {"source": "suite", "name": "boolq", "path": path, "sizes": {"weak_train": 1, "transfer": 1, "test": 1}}
    with pytest.raises(SuiteError, match="answer"):
        prepare_splits("boolq", spec, 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_correct_index_out_of_range_names_task_and_row():
    import numpy as np

    from w2s.suite.base import binary_pair

    with pytest.raises(SuiteError, match="'demo': row 7: correct index 4 out of range"):
        binary_pair("demo", 7, "Q", ["a", "b", "c"], 4, np.random.default_rng(0))
