"""The label store never reports a failed publish as someone else's entry, and a remote store
writes ``entry.json`` only once every file it lists is complete."""

import errno
import os
import re
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from w2s.io import write_json, write_parquet
from w2s.label_store import ENTRY_MANIFEST, LabelStore, label_key

KEY_INPUTS = {"task": "guards", "seed": 3, "weak_model": "minilm"}


def label_files(directory: Path) -> dict[str, Path]:
    """Two weak-label files with the provenance their producer writes (engine dtype, teacher)."""
    teacher = directory / "teacher"
    write_json({"precision": "fp32"}, teacher / "train_info.json")
    write_json({"model_type": "bert"}, teacher / "config.json")
    files = {}
    for split in ("transfer", "test"):
        path = directory / "labels" / f"{split}.parquet"
        write_parquet(
            pa.table({"id": [f"{split}-{i}" for i in range(7)], "hard_label": [i % 2 for i in range(7)]}),
            path,
            provenance={"dtype": "float32", "teacher_checkpoint": str(teacher), "split": split},
        )
        files[f"{split}.parquet"] = path
    return files


def test_a_failed_local_publish_raises_naming_the_store(tmp_path, monkeypatch):
    root = tmp_path / "store"
    store, key, files = LabelStore(str(root)), label_key(KEY_INPUTS), label_files(tmp_path)
    rename, replace = os.rename, os.replace

    def failing(real):
        """A rename (or replace) that fails with EIO whenever it would move something into the store."""

        def move(source, target, *args, **kwargs):
            if str(target).startswith(str(root)):
                raise OSError(errno.EIO, "Input/output error", str(source), str(target))
            return real(source, target, *args, **kwargs)

        return move

    monkeypatch.setattr(os, "rename", failing(rename))
    monkeypatch.setattr(os, "replace", failing(replace))
    with pytest.raises(OSError, match=re.escape(str(root))):
        store.publish(key, files, KEY_INPUTS)
    monkeypatch.undo()
    # Nothing was published, nothing is left half-made, and a later publish succeeds.
    assert store.verify(key) is None and store.keys() == []
    assert not list((root / ".tmp").iterdir())
    assert store.publish(key, files, KEY_INPUTS) is True


class WriteLog(dict):
    """MemoryFileSystem's path -> file mapping that records each write and, when a file named
    entry.json appears, the bytes every other file of its directory holds at that moment."""

    def __init__(self):
        super().__init__()
        self.writes: list[str] = []
        self.seen_with_manifest: dict[str, bytes] = {}

    def __setitem__(self, path, value):
        super().__setitem__(path, value)
        self.writes.append(path)
        if path.endswith("/" + ENTRY_MANIFEST):
            directory = path.rsplit("/", 1)[0]
            self.seen_with_manifest = {
                p.rsplit("/", 1)[1]: bytes(f.getvalue())
                for p, f in self.items()
                if p.startswith(directory + "/") and p != path
            }


def test_a_remote_store_writes_entry_json_last(tmp_path, monkeypatch):
    log = WriteLog()
    monkeypatch.setattr(MemoryFileSystem, "store", log)
    root = f"memory://guards-{uuid.uuid4().hex[:8]}"
    store, key = LabelStore(root), label_key(KEY_INPUTS)
    files = label_files(tmp_path)
    assert store.publish(key, files, KEY_INPUTS) is True
    entry = [p for p in log.writes if f"/{key}/" in p]
    assert entry[-1].endswith(f"/{key}/{ENTRY_MANIFEST}") and len(entry) == len(files) + 1
    # When entry.json appeared, every file it lists was already there in full.
    assert log.seen_with_manifest == {name: path.read_bytes() for name, path in files.items()}
    assert store.verify(key) is not None
