"""The shared weak-label store: publish, verified fetch, precision check, durable writes, concurrency,
corruption, list/show/gc."""

import importlib.metadata
import json
import multiprocessing
import os
import stat
from pathlib import Path

import pyarrow as pa
import pytest
import torch

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
    with pytest.raises(PrecisionMismatch, match="no recorded precision"):
        store.fetch(key, {"test.parquet": tmp_path / "out" / "test.parquet"}, precision=FP32)


def test_failed_local_publish_raises_naming_the_entry(tmp_path, label_files, monkeypatch):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)

    def rename(source, target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(label_store.os, "rename", rename)
    with pytest.raises(OSError, match=f"could not publish label store entry .*{key}"):
        store.publish(key, label_files, KEY_INPUTS)
    assert store.keys() == [] and not list((tmp_path / "store" / ".tmp").iterdir())


def test_incomplete_leftover_under_the_entry_name_is_moved_aside(tmp_path, label_files):
    store, key = LabelStore(str(tmp_path / "store")), label_key(KEY_INPUTS)
    leftover = tmp_path / "store" / key[:2] / key
    leftover.mkdir(parents=True)
    (leftover / "transfer.parquet").write_bytes(b"")  # a crashed copy: no entry.json
    assert store.publish(key, label_files, KEY_INPUTS)
    assert store.verify(key) is not None and len(list((tmp_path / "store" / ".corrupt").iterdir())) == 1


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
