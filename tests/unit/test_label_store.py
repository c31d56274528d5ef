"""The shared weak-label store: publish, verified fetch, concurrency, corruption, list/show/gc."""

import json
import multiprocessing
import os
import stat

import pyarrow as pa
import pytest

from w2s.io import sha256_file, write_parquet
from w2s.label_store import LabelStore, label_key

KEY_INPUTS = {"task": "rotten_tomatoes", "seed": 0, "weak_model": "minilm", "labeling": {"max_length": 128}}


@pytest.fixture
def label_files(tmp_path):
    files = {}
    for split in ("transfer", "test"):
        path = tmp_path / "labels" / f"{split}.parquet"
        write_parquet(pa.table({"id": [f"{split}-{i}" for i in range(5)], "hard_label": list(range(5))}), path)
        files[f"{split}.parquet"] = path
    return files


def _publish(root: str, files: dict, key: str) -> bool:
    return LabelStore(root).publish(key, files, KEY_INPUTS)


def test_key_depends_on_every_input_but_not_on_order():
    assert label_key(KEY_INPUTS) == label_key(dict(reversed(list(KEY_INPUTS.items()))))
    assert label_key(KEY_INPUTS) != label_key({**KEY_INPUTS, "seed": 1})
    assert len(label_key(KEY_INPUTS)) == 64


def test_publish_then_fetch_verifies_and_copies(tmp_path, label_files):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    assert store.verify(key) is None
    assert store.publish(key, label_files, KEY_INPUTS, provenance={"engine": "vllm"})
    assert not store.publish(key, label_files, KEY_INPUTS)  # second publisher changes nothing
    out = {name: tmp_path / "team_b" / name for name in label_files}
    manifest = store.fetch(key, out)
    assert manifest["key_inputs"] == KEY_INPUTS and manifest["provenance"] == {"engine": "vllm"}
    for name, path in label_files.items():
        assert sha256_file(out[name]) == sha256_file(path)


def test_entries_are_group_shared_not_world_writable(tmp_path, label_files):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    entry = tmp_path / "store" / key[:2] / key
    for path in (entry, *entry.iterdir()):
        mode = path.stat().st_mode
        assert mode & stat.S_IWGRP and not mode & stat.S_IWOTH, (path, oct(mode))


def test_concurrent_publishers_leave_one_valid_entry(tmp_path, label_files):
    root, key = str(tmp_path / "store"), label_key(KEY_INPUTS)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_publish, [(root, label_files, key)] * 8)
    assert sum(results) == 1
    store = LabelStore(root)
    assert store.keys() == [key] and store.verify(key) is not None
    assert not list((tmp_path / "store" / ".tmp").iterdir())


def test_corrupt_entry_is_reported_quarantined_and_replaced(tmp_path, label_files, caplog):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    victim = tmp_path / "store" / key[:2] / key / "test.parquet"
    victim.write_bytes(victim.read_bytes()[:-10])  # truncated
    assert store.verify(key) is None
    assert "is corrupt" in caplog.text
    with pytest.raises(FileNotFoundError):
        store.fetch(key, {"test.parquet": tmp_path / "x.parquet"})
    assert not (tmp_path / "x.parquet").exists()
    assert store.publish(key, label_files, KEY_INPUTS)  # recomputed labels can be published again
    assert store.verify(key) is not None


def test_incomplete_entry_is_never_used(tmp_path, label_files):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    os.remove(tmp_path / "store" / key[:2] / key / "entry.json")
    assert store.verify(key) is None and store.keys() == []


def test_list_show_and_gc(tmp_path, label_files):
    store = LabelStore(str(tmp_path / "store"))
    keys = [label_key({**KEY_INPUTS, "seed": seed}) for seed in (0, 1)]
    for seed, key in enumerate(keys):
        store.publish(key, label_files, {**KEY_INPUTS, "seed": seed})
    table = store.list()
    assert sorted(table["key"]) == sorted(keys) and set(table["seed"]) == {0, 1}
    assert table["bytes"].gt(0).all() and table["published_by"].notna().all()
    assert json.dumps(store.show(keys[0]))
    (tmp_path / "store" / ".tmp" / "leftover").mkdir(parents=True)
    assert len(store.gc(keep={keys[0]}, dry_run=True)) == 2 and len(store.keys()) == 2
    store.gc(keep={keys[0]})
    assert store.keys() == [keys[0]]
    assert not list((tmp_path / "store" / ".tmp").iterdir())


def test_fsspec_url_store(tmp_path, label_files):
    """A non-local fsspec filesystem (memory://) works through the same API."""
    store, key = LabelStore("memory://w2s-test-store"), label_key(KEY_INPUTS)
    assert not store.local
    assert store.publish(key, label_files, KEY_INPUTS)
    out = {name: tmp_path / "fetched" / name for name in label_files}
    store.fetch(key, out)
    assert all(sha256_file(out[n]) == sha256_file(p) for n, p in label_files.items())
    assert store.keys() == [key]
