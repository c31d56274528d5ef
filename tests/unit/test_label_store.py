"""The shared weak-label store: publish, verified fetch, precision check, durable writes, concurrency,
corruption, list/show/gc."""

import errno
import getpass
import importlib.metadata
import json
import multiprocessing
import os
import re
import socket
import stat
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
import torch
from fsspec.implementations.memory import MemoryFileSystem

from w2s import label_store
from w2s.io import sha256_file, write_json, write_parquet
from w2s.label_store import LabelStore, PrecisionMismatch, label_key
from w2s.runtime import engine_dtype, resolve_precision

KEY_INPUTS = {"task": "rotten_tomatoes", "seed": 0, "weak_model": "minilm", "labeling": {"max_length": 128}}
FP32 = {"train_precision": "fp32", "train_device": "cpu", "engine_dtype": "float32", "engine_device": "cpu"}
BF16 = {"train_precision": "bf16", "train_device": "cpu", "engine_dtype": "bfloat16", "engine_device": "cpu"}
AUTO = {"train_precision": "auto", "train_device": "cpu", "engine_dtype": "auto", "engine_device": "cpu"}


def write_labels(directory: Path, train_precision: str = "fp32", dtype: str = "float32") -> dict:
    """Weak-label files as label_weak writes them: provenance naming the engine dtype that ran and the
    teacher checkpoint, whose train_info.json records the training precision that ran."""
    teacher = directory / "teacher"
    write_json({"precision": train_precision}, teacher / "train_info.json")
    write_json({"model_type": "bert"}, teacher / "config.json")
    files = {}
    for split in ("transfer", "test"):
        path = directory / "labels" / f"{split}.parquet"
        write_parquet(
            pa.table({"id": [f"{split}-{i}" for i in range(5)], "hard_label": list(range(5))}),
            path,
            provenance={"dtype": dtype, "teacher_checkpoint": str(teacher), "split": split},
        )
        files[f"{split}.parquet"] = path
    return files


@pytest.fixture
def label_files(tmp_path):
    return write_labels(tmp_path)


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


def test_entry_records_what_ran_and_the_versions(tmp_path, label_files):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    entry = json.loads((tmp_path / "store" / key[:2] / key / "entry.json").read_text())
    assert entry["precision"] == {"train_precision": "fp32", "engine_dtype": "float32"}
    assert entry["model_type"] == "bert"
    assert entry["versions"]["torch"] == importlib.metadata.version("torch")
    assert entry["versions"]["transformers"] == importlib.metadata.version("transformers")
    try:
        vllm = importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        vllm = None
    assert entry["versions"].get("vllm") == vllm


def test_files_that_disagree_on_their_precision_are_not_published(tmp_path):
    files = write_labels(tmp_path / "a")
    files["test.parquet"] = write_labels(tmp_path / "b", dtype="bfloat16")["test.parquet"]
    with pytest.raises(ValueError, match="different precisions"):
        LabelStore(str(tmp_path / "store")).publish(label_key(KEY_INPUTS), files, KEY_INPUTS)


def test_fetch_with_the_recorded_precision_is_a_hit(tmp_path, label_files):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    out = {name: tmp_path / "team_b" / name for name in label_files}
    store.fetch(key, out, precision=FP32)
    assert all(sha256_file(out[n]) == sha256_file(p) for n, p in label_files.items())


def test_fetch_at_another_precision_is_refused_naming_both_and_leaves_local_files(tmp_path, label_files):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    local = tmp_path / "team_b" / "transfer.parquet"
    local.parent.mkdir()
    local.write_bytes(b"this team's own labels")
    out = {"transfer.parquet": local, "test.parquet": tmp_path / "team_b" / "test.parquet"}
    with pytest.raises(PrecisionMismatch) as refused:
        store.fetch(key, out, precision=BF16)
    message = str(refused.value)
    assert "engine_dtype float32" in message and "engine_dtype bfloat16" in message
    assert "train_precision fp32" in message and "train_precision bf16" in message and key in message
    assert local.read_bytes() == b"this team's own labels"
    assert sorted(p.name for p in local.parent.iterdir()) == ["transfer.parquet"]  # no temp files either


def test_auto_is_resolved_where_the_fetch_runs(tmp_path):
    """An entry made where ``auto`` resolves as here is a hit; one made at the other precision is refused."""
    cpu = torch.device("cpu")
    here = {"train_precision": resolve_precision("auto", cpu), "engine_dtype": engine_dtype("auto", "cpu", "bert")}
    other = {
        "train_precision": {"fp32": "bf16", "bf16": "fp32"}[here["train_precision"]],
        "engine_dtype": {"float32": "bfloat16", "bfloat16": "float32"}[here["engine_dtype"]],
    }
    store = LabelStore(str(tmp_path / "store"))
    same, differs = label_key(KEY_INPUTS), label_key({**KEY_INPUTS, "seed": 1})
    store.publish(same, write_labels(tmp_path / "same", here["train_precision"], here["engine_dtype"]), KEY_INPUTS)
    store.publish(
        differs, write_labels(tmp_path / "other", other["train_precision"], other["engine_dtype"]), KEY_INPUTS
    )
    store.fetch(same, {"test.parquet": tmp_path / "out" / "test.parquet"}, precision=AUTO)
    with pytest.raises(
        PrecisionMismatch, match=f"engine_dtype {other['engine_dtype']}.*engine_dtype {here['engine_dtype']}"
    ):
        store.fetch(differs, {"test.parquet": tmp_path / "out2" / "test.parquet"}, precision=AUTO)
    assert not (tmp_path / "out2").exists()


def test_an_entry_without_a_recorded_precision_is_refused(tmp_path, label_files):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    manifest_path = tmp_path / "store" / key[:2] / key / "entry.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["precision"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(PrecisionMismatch, match="computed at no recorded precision, but"):
        store.fetch(key, {"test.parquet": tmp_path / "out" / "test.parquet"}, precision=FP32)


def test_failed_local_publish_raises_naming_the_entry(tmp_path, label_files, monkeypatch):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)

    def rename(source, target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(label_store.os, "rename", rename)
    with pytest.raises(OSError, match=f"could not publish label store entry .*{key}"):
        store.publish(key, label_files, KEY_INPUTS)
    assert store.keys() == [] and not list((tmp_path / "store" / ".tmp").iterdir())


def test_incomplete_leftover_under_the_entry_name_is_moved_aside(tmp_path, label_files, caplog):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    leftover = tmp_path / "store" / key[:2] / key
    leftover.mkdir(parents=True)
    (leftover / "transfer.parquet").write_bytes(b"")  # a crashed copy: no entry.json
    assert store.publish(key, label_files, KEY_INPUTS)
    assert store.verify(key) is not None and len(list((tmp_path / "store" / ".corrupt").iterdir())) == 1
    assert f"label store entry {leftover} is incomplete (no entry.json); moved aside" in caplog.messages


def test_local_publish_flushes_files_and_directories_around_the_rename(tmp_path, label_files, monkeypatch):
    events = []
    real_fsync, real_rename = label_store._fsync, os.rename
    monkeypatch.setattr(label_store, "_fsync", lambda path: (events.append(("fsync", Path(path))), real_fsync(path)))
    monkeypatch.setattr(label_store.os, "rename", lambda a, b: (events.append(("rename", Path(a))), real_rename(a, b)))
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    renamed = [i for i, (kind, _) in enumerate(events) if kind == "rename"]
    assert len(renamed) == 1
    staging = events[renamed[0]][1]
    before = {path for _, path in events[: renamed[0]]}
    assert {staging / name for name in [*label_files, "entry.json"]} | {staging} <= before
    assert events[renamed[0] + 1 :] == [("fsync", tmp_path / "store" / key[:2])]


def test_remote_publish_writes_entry_json_last(tmp_path, label_files, monkeypatch):
    """When entry.json is opened for writing, every file of the entry is already there, whole."""
    store, key = LabelStore("memory://w2s-order-store"), label_key(KEY_INPUTS)
    seen, real_open = [], store.fs.open

    def watching_open(path, mode="rb", **kwargs):
        if path.endswith("/entry.json") and "w" in mode:
            seen.append(
                {
                    name: store.fs.exists(f"{store.entry_dir(key)}/{name}")
                    and store.fs.size(f"{store.entry_dir(key)}/{name}") == os.path.getsize(local)
                    for name, local in label_files.items()
                }
            )
        return real_open(path, mode, **kwargs)

    monkeypatch.setattr(store.fs, "open", watching_open)  # the process's one memory filesystem: this test only
    try:
        assert store.publish(key, label_files, KEY_INPUTS)
    finally:
        store.fs.rm(store.base, recursive=True)
    assert seen and all(files == {name: True for name in label_files} for files in seen)


def test_failed_remote_publish_raises_naming_the_url(tmp_path, label_files, monkeypatch):
    store, key = LabelStore("memory://w2s-failing-store"), label_key(KEY_INPUTS)

    def put(source, target, **kw):
        raise OSError("connection reset")

    # fsspec shares one memory filesystem per process: patch it for this test only
    monkeypatch.setattr(store.fs, "put", put)
    with pytest.raises(OSError, match=f"memory://w2s-failing-store/{key[:2]}/{key}: connection reset"):
        store.publish(key, label_files, KEY_INPUTS)
    assert store.verify(key) is None


@pytest.mark.parametrize("capability, recorded", [((7, 0), ("fp32", "float16")), ((8, 0), ("bf16", "bfloat16"))])
def test_auto_on_a_gpu_resolves_by_its_capability_and_the_recorded_model_type(
    tmp_path, monkeypatch, capability, recorded
):
    """A V100-class entry (fp32 teacher, float16 engine for a bert model) is a hit on a 7.0 device and an
    A100-class entry on an 8.0 device; the other device refuses each (a patched CUDA device)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "patched")
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, write_labels(tmp_path, *recorded), KEY_INPUTS)
    on_gpu = {"train_precision": "auto", "train_device": "cuda", "engine_dtype": "auto", "engine_device": "cuda"}
    store.fetch(key, {"test.parquet": tmp_path / "out" / "test.parquet"}, precision=on_gpu)
    other = (8, 0) if capability == (7, 0) else (7, 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: other)
    with pytest.raises(PrecisionMismatch, match=f"engine_dtype {recorded[1]}"):
        store.fetch(key, {"test.parquet": tmp_path / "out2" / "test.parquet"}, precision=on_gpu)


LIST_COLUMNS = ["key", "published_by", "host", "published_at", "bytes", "task", "seed", "weak_checkpoint"]


def test_list_has_its_columns_even_for_an_empty_store(tmp_path):
    table = LabelStore(str(tmp_path / "store")).list()
    assert list(table.columns) == LIST_COLUMNS and table.empty


def test_list_shows_each_entry_as_recorded(tmp_path, label_files):
    store = LabelStore(str(tmp_path / "store"))
    inputs = {
        "a": {"task": "rotten_tomatoes", "seed": 0, "weak_checkpoint": "builtin:minilm"},
        "b": {"task": "sst2", "seed": 4, "weak_checkpoint": "/models/teacher"},
    }
    keys = {name: label_key(key_inputs) for name, key_inputs in inputs.items()}
    for name, key in keys.items():
        store.publish(key, label_files, inputs[name])
    table = store.list().set_index("key")
    assert list(table.reset_index().columns) == LIST_COLUMNS
    size = sum(os.path.getsize(path) for path in label_files.values())
    for name, key in keys.items():
        manifest = store.show(key)
        row = table.loc[key]
        assert row["host"] == socket.gethostname() == manifest["host"]
        assert row["published_at"] == manifest["published_at"]
        assert row["published_by"] == manifest["published_by"]
        assert row["bytes"] == size
        assert (row["task"], row["seed"], row["weak_checkpoint"]) == tuple(inputs[name].values())


def test_list_shows_an_entry_whose_manifest_records_no_files_or_key_inputs(tmp_path):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    write_json({"published_by": "someone"}, tmp_path / "store" / key[:2] / key / "entry.json")
    rows = store.list().to_dict("records")
    assert len(rows) == 1
    assert rows[0]["key"] == key and rows[0]["published_by"] == "someone" and rows[0]["bytes"] == 0
    assert rows[0]["task"] is None and rows[0]["seed"] is None and rows[0]["host"] is None


@pytest.fixture
def fresh_entry_cache(monkeypatch):
    """has_entry remembers its answers for the process: start each test without them."""
    monkeypatch.setattr(label_store, "_STORES", {})
    monkeypatch.setattr(label_store, "_VERIFIED", {})


def test_has_entry_asks_the_named_store_and_remembers_the_answer(tmp_path, label_files, fresh_entry_cache):
    empty, full = str(tmp_path / "empty"), str(tmp_path / "full")
    key, absent = label_key(KEY_INPUTS), label_key({**KEY_INPUTS, "seed": 9})
    LabelStore(full).publish(key, label_files, KEY_INPUTS)
    assert label_store.has_entry(empty, key) is False
    assert label_store.has_entry(full, key) is True
    assert label_store.has_entry(full, absent) is False
    # asked once per key and process: an entry published later is not seen by this process
    LabelStore(empty).publish(key, label_files, KEY_INPUTS)
    assert label_store.has_entry(empty, key) is False


def test_has_entry_is_false_for_a_corrupt_entry(tmp_path, label_files, fresh_entry_cache):
    root, key = str(tmp_path / "store"), label_key(KEY_INPUTS)
    LabelStore(root).publish(key, label_files, KEY_INPUTS)
    victim = tmp_path / "store" / key[:2] / key / "transfer.parquet"
    victim.write_bytes(victim.read_bytes()[:-10])
    assert label_store.has_entry(root, key) is False


def labels_made_for(path: Path, key: str | None) -> Path:
    provenance = {"dtype": "float32"} if key is None else {"dtype": "float32", "store_key": key}
    write_parquet(pa.table({"id": ["a"], "hard_label": [1]}), path, provenance=provenance)
    return path


def test_made_for_key_reads_the_store_key_from_the_provenance(tmp_path):
    key, other = label_key(KEY_INPUTS), label_key({**KEY_INPUTS, "seed": 1})
    labels = labels_made_for(tmp_path / "labels.parquet", key)
    assert label_store.made_for_key(labels, key) is True
    assert label_store.made_for_key(str(labels), key) is True
    assert label_store.made_for_key(labels, other) is False
    assert label_store.made_for_key(labels_made_for(tmp_path / "unkeyed.parquet", None), key) is False
    assert label_store.made_for_key(tmp_path / "missing.parquet", key) is False


def test_labels_are_computed_locally_only_with_this_runs_teacher_and_key(tmp_path):
    key, other = label_key(KEY_INPUTS), label_key({**KEY_INPUTS, "seed": 1})
    labels = labels_made_for(tmp_path / "labels.parquet", key)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    assert label_store.computed_locally(labels, teacher, key) is True
    assert label_store.computed_locally(str(labels), str(teacher), key) is True
    assert label_store.computed_locally(labels, tmp_path / "no_teacher", key) is False  # fetched from the store
    assert label_store.computed_locally(labels, teacher, other) is False  # made for another key
    assert label_store.computed_locally(tmp_path / "missing.parquet", teacher, key) is False


def publish_aged(store: LabelStore, files: dict, seed: int, age: timedelta) -> str:
    """Publish an entry and set its recorded publication time ``age`` before now."""
    key = label_key({**KEY_INPUTS, "seed": seed})
    store.publish(key, files, KEY_INPUTS)
    manifest_path = Path(store.entry_dir(key)) / "entry.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["published_at"] = (datetime.now(timezone.utc) - age).isoformat(timespec="seconds")
    manifest_path.write_text(json.dumps(manifest))
    return key


def test_gc_removes_entries_at_least_the_given_number_of_days_old(tmp_path, label_files):
    store = LabelStore(str(tmp_path / "store"))
    day, hour = timedelta(days=1), timedelta(hours=1)
    fresh = publish_aged(store, label_files, 0, 3 * day - hour)
    just_old = publish_aged(store, label_files, 1, 3 * day + hour)
    older = publish_aged(store, label_files, 2, 30 * day)
    assert sorted(store.gc(older_than_days=3, dry_run=True)) == sorted(store.entry_dir(k) for k in (just_old, older))
    assert store.gc(older_than_days=31) == [] and len(store.keys()) == 3
    store.gc(older_than_days=3)
    assert store.keys() == [fresh]


def test_gc_removes_a_stray_directory_named_like_an_entry(tmp_path, label_files):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    strays = [tmp_path / "store" / key[:2] / (key + suffix) for suffix in (" ", "X")]
    for stray in strays:
        stray.mkdir()
    assert sorted(store.gc()) == sorted(str(stray) for stray in strays)
    assert store.keys() == [key] and not any(stray.exists() for stray in strays)


def test_a_refused_fetch_lists_each_precision_in_full(tmp_path, label_files):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    expected = (
        f"label store entry {key} under {tmp_path / 'store'} was computed at engine_dtype float32, "
        "train_precision fp32, but this run resolves engine_dtype bfloat16, train_precision bf16 here; "
        "nothing was copied and the local files are unchanged. Labels are shared only at one precision: "
        "set the precision this run should use explicitly in the config (weak.train.precision, "
        "labeling.dtype or reasoning.engine.dtype), which gives its own key, or run where the entry's "
        "precision resolves."
    )
    with pytest.raises(PrecisionMismatch) as refused:
        store.fetch(key, {"test.parquet": tmp_path / "out" / "test.parquet"}, precision=BF16)
    assert str(refused.value) == expected


def test_show_of_a_missing_entry_names_the_key_and_the_store(tmp_path):
    root, key = str(tmp_path / "store"), label_key(KEY_INPUTS)
    with pytest.raises(KeyError, match=f"no entry {key} under {re.escape(root)}"):
        LabelStore(root).show(key)


def test_an_entry_missing_one_of_its_files_is_quarantined(tmp_path, label_files, caplog):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    os.remove(tmp_path / "store" / key[:2] / key / "transfer.parquet")
    assert store.verify(key) is None
    assert (
        f"label store entry {key} is corrupt (['transfer.parquet']); moved aside, labels will be recomputed"
        in caplog.messages
    )
    assert not (tmp_path / "store" / key[:2] / key).exists() and store.keys() == []
    (aside,) = (tmp_path / "store" / ".corrupt").iterdir()
    assert re.fullmatch(rf"{key}\.[0-9a-f]{{8}}", aside.name)
    assert sorted(p.name for p in aside.iterdir()) == ["entry.json", "test.parquet"]
    # a second corrupt entry of that key is moved aside beside the first
    store.publish(key, label_files, KEY_INPUTS)
    os.remove(tmp_path / "store" / key[:2] / key / "test.parquet")
    assert store.verify(key) is None
    assert len(list((tmp_path / "store" / ".corrupt").iterdir())) == 2


def test_a_file_that_changes_while_fetched_leaves_the_output_alone(tmp_path, label_files, monkeypatch):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    local = tmp_path / "team_b" / "test.parquet"
    local.parent.mkdir()
    local.write_bytes(b"this team's own labels")

    def get(source, target, **kwargs):
        Path(target).write_bytes(b"rewritten by someone else")

    monkeypatch.setattr(store.fs, "get", get)
    with pytest.raises(OSError, match=f"label store entry {key}: test.parquet changed while it was copied"):
        store.fetch(key, {"test.parquet": local})
    assert local.read_bytes() == b"this team's own labels"
    assert [p.name for p in local.parent.iterdir()] == ["test.parquet"]


def test_the_manifest_records_the_files_and_who_published_them(tmp_path, label_files):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    store.publish(key, label_files, KEY_INPUTS)
    manifest = store.show(key)
    assert manifest["key"] == key and manifest["key_inputs"] == KEY_INPUTS and manifest["provenance"] == {}
    assert manifest["files"] == {
        name: {"sha256": sha256_file(path), "bytes": os.path.getsize(path)} for name, path in label_files.items()
    }
    assert manifest["published_by"] == getpass.getuser() and manifest["host"] == socket.gethostname()
    published = datetime.fromisoformat(manifest["published_at"])
    assert published.utcoffset() == timedelta(0)
    assert before <= published <= datetime.now(timezone.utc)


def test_files_without_an_engine_dtype_are_not_published(tmp_path):
    path = tmp_path / "labels.parquet"
    write_parquet(pa.table({"id": ["a"]}), path, provenance={"split": "test"})
    expected = (
        f"test.parquet ({path}) records no engine dtype in its provenance; "
        "the store cannot say what precision it was computed at"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        LabelStore(str(tmp_path / "store")).publish(label_key(KEY_INPUTS), {"test.parquet": path}, KEY_INPUTS)
    assert LabelStore(str(tmp_path / "store")).keys() == []


def test_labels_whose_teacher_has_no_train_info_are_not_published(tmp_path):
    files = write_labels(tmp_path)
    os.remove(tmp_path / "teacher" / "train_info.json")
    expected = (
        f"transfer.parquet ({files['transfer.parquet']}) was labelled by {tmp_path / 'teacher'}, which has no "
        "train_info.json to record the teacher's training precision from"
    )
    with pytest.raises(FileNotFoundError, match=re.escape(expected)):
        LabelStore(str(tmp_path / "store")).publish(label_key(KEY_INPUTS), files, KEY_INPUTS)


def test_samples_record_the_engine_dtype_and_the_generators_model_type(tmp_path):
    generator = tmp_path / "generator"
    write_json({"model_type": "qwen2"}, generator / "config.json")
    files = {}
    for split in ("train", "test"):
        files[f"{split}.parquet"] = tmp_path / f"{split}.parquet"
        write_parquet(
            pa.table({"id": ["a"]}),
            files[f"{split}.parquet"],
            provenance={"dtype": "bfloat16", "checkpoint": str(generator)},
        )
    assert label_store.recorded_precision(files) == ({"engine_dtype": "bfloat16"}, "qwen2")


def test_samples_are_compared_on_the_engine_dtype_alone(tmp_path):
    """Settings without a training precision (a base generator's samples) resolve only the engine dtype."""
    settings = {"engine_dtype": "float32", "engine_device": "cpu"}
    assert label_store.expected_precision(settings, "qwen2") == {"engine_dtype": "float32"}
    assert label_store.expected_precision(FP32, "bert") == {"engine_dtype": "float32", "train_precision": "fp32"}


def test_a_root_with_a_trailing_slash_names_the_same_store(tmp_path, label_files):
    root, key = str(tmp_path / "shared-X"), label_key(KEY_INPUTS)
    LabelStore(root).publish(key, label_files, KEY_INPUTS)
    store = LabelStore(root + "/")
    assert store.root == root and store.keys() == [key] and store.verify(key) is not None
    absent = label_key({**KEY_INPUTS, "seed": 5})
    with pytest.raises(FileNotFoundError, match=rf"no valid label store entry {absent} under {re.escape(root)}$"):
        store.fetch(absent, {"test.parquet": tmp_path / "out" / "test.parquet"})


def test_a_copy_that_does_not_match_its_checksum_is_not_published(tmp_path, label_files, monkeypatch):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)

    def truncating_copy(source, target):
        Path(target).write_bytes(Path(source).read_bytes()[:-1])

    monkeypatch.setattr(label_store.shutil, "copyfile", truncating_copy)
    source = re.escape(str(label_files["transfer.parquet"]))
    with pytest.raises(OSError, match=f"{key}: copy of {source} into the label store does not match its checksum"):
        store.publish(key, label_files, KEY_INPUTS)
    monkeypatch.undo()
    assert store.keys() == [] and not list((tmp_path / "store" / ".tmp").iterdir())


@pytest.fixture
def memory_store(monkeypatch):
    """A label store on a private, empty memory:// filesystem (fsspec shares one per process)."""
    monkeypatch.setattr(MemoryFileSystem, "store", {})
    monkeypatch.setattr(MemoryFileSystem, "pseudo_dirs", [""])
    return LabelStore(f"memory://w2s-{uuid.uuid4().hex[:8]}")


def test_a_corrupt_entry_of_a_remote_store_is_moved_aside_whole(tmp_path, label_files, memory_store):
    store, key = memory_store, label_key(KEY_INPUTS)
    store.publish(key, label_files, KEY_INPUTS)
    with store.fs.open(f"{store.entry_dir(key)}/test.parquet", "wb") as handle:
        handle.write(b"truncated")
    assert store.verify(key) is None and store.keys() == []
    assert not store.fs.exists(store.entry_dir(key))
    (aside,) = store.fs.ls(f"{store.base}/.corrupt", detail=False)
    assert sorted(path.rsplit("/", 1)[1] for path in store.fs.ls(aside, detail=False)) == [
        "entry.json",
        "test.parquet",
        "transfer.parquet",
    ]


def test_entry_json_is_sorted_indented_json_locally_and_remotely(tmp_path, label_files, memory_store):
    key = label_key(KEY_INPUTS)
    for store in (LabelStore(str(tmp_path / "store")), memory_store):
        store.publish(key, label_files, KEY_INPUTS)
        with store.fs.open(f"{store.entry_dir(key)}/entry.json", "r") as handle:
            text = handle.read()
        assert text.rstrip("\n") == json.dumps(store.show(key), indent=2, sort_keys=True)


def test_a_publisher_that_loses_the_race_reports_the_other_entry(tmp_path, label_files, monkeypatch):
    """Another publisher renames its entry into place between this one's check and its rename."""
    root, key = str(tmp_path / "store"), label_key(KEY_INPUTS)
    theirs = write_labels(tmp_path / "theirs")
    real_rename, raced = os.rename, []

    def rename(source, target):
        if not raced:
            raced.append(source)
            assert LabelStore(root).publish(key, theirs, KEY_INPUTS)
        return real_rename(source, target)

    monkeypatch.setattr(label_store.os, "rename", rename)
    assert LabelStore(root).publish(key, label_files, KEY_INPUTS) is False
    entry = LabelStore(root).verify(key)
    assert entry is not None and entry["files"]["test.parquet"]["sha256"] == sha256_file(theirs["test.parquet"])
    assert not list((tmp_path / "store" / ".tmp").iterdir()) and not (tmp_path / "store" / ".corrupt").exists()


def test_a_failed_rename_with_no_entry_in_the_way_reports_its_own_error(tmp_path, label_files, monkeypatch, caplog):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)

    def rename(source, target):
        raise OSError(errno.EIO, "Input/output error", str(source))

    monkeypatch.setattr(label_store.os, "rename", rename)
    with pytest.raises(OSError, match=r"could not publish label store entry .*: \[Errno 5\] Input/output error"):
        store.publish(key, label_files, KEY_INPUTS)
    assert not (tmp_path / "store" / ".corrupt").exists() and "incomplete" not in caplog.text
