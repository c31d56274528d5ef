"""A crash leaves no half-written output: atomic files, atomic directories, outputs written together,
a killed write and a killed training job; what is renamed into place was fsynced first."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import ROOT

from w2s import io
from w2s.io import (
    atomic_dir,
    atomic_path,
    atomic_paths,
    read_provenance,
    sha256_dir,
    stable_hash,
    write_json,
    write_parquet,
)


def test_atomic_path_keeps_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_keeps_the_old_version_on_failure(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text("v2-partial")
            raise RuntimeError("crash")
    assert (target / "weights").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_outputs_get_the_usual_permissions(tmp_path):
    write_json({"a": 1}, tmp_path / "x.json")
    with atomic_dir(tmp_path / "d"):
        pass
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask


def test_provenance_round_trip_and_hashes(tmp_path):
    import pyarrow as pa

    write_parquet(pa.table({"a": [1]}), tmp_path / "t.parquet", provenance={"k": "v"})
    assert read_provenance(tmp_path / "t.parquet") == {"k": "v"}
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1}) != stable_hash({"a": 1})
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    before = sha256_dir(tmp_path / "d")
    (tmp_path / "d" / "f").write_text("y")
    assert sha256_dir(tmp_path / "d") != before


def _fsyncs(monkeypatch) -> list[str]:
    """Record the path of every file or directory os.fsync is called on, in order."""
    calls = []
    real_fsync = os.fsync

    def fsync(fd):
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads fsync'ed paths from /proc")
def test_a_file_is_fsynced_then_its_directory_before_and_after_the_rename(tmp_path, monkeypatch):
    calls = _fsyncs(monkeypatch)
    target = tmp_path / "out.json"
    with atomic_path(target) as tmp:
        tmp.write_text("{}")
        assert calls == []
    assert calls == [str(tmp), str(tmp_path), str(tmp_path)]
    assert target.read_text() == "{}"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads fsync'ed paths from /proc")
def test_a_directory_is_fsynced_file_by_file_then_up_to_its_parent(tmp_path, monkeypatch):
    calls = _fsyncs(monkeypatch)
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "weights").write_text("w")
        (tmp / "config.json").write_text("{}")
    files = {str(tmp / "config.json"), str(tmp / "sub" / "weights")}
    assert calls.index(str(tmp / "sub" / "weights")) < calls.index(str(tmp / "sub")) < calls.index(str(tmp))
    assert calls.index(str(tmp / "config.json")) < calls.index(str(tmp))
    assert set(calls[:-2]) == files | {str(tmp / "sub"), str(tmp)} and calls[-2:] == [str(tmp_path)] * 2


_KILLED_WRITE = textwrap.dedent("""
    import os, signal, sys
    from w2s.io import atomic_path, atomic_dir
    target, kind = sys.argv[1], sys.argv[2]
    with (atomic_path if kind == "file" else atomic_dir)(target) as tmp:
        if kind == "file":
            tmp.write_text("half")
        else:
            (tmp / "weights").write_text("half")
        os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_killed_write_leaves_no_output_and_its_stray_is_removed_by_the_next_write(tmp_path, kind):
    target = tmp_path / "out"
    neighbour = tmp_path / ".out.x.000000000000.tmp"  # another output's temporary: not this one's stray
    neighbour.write_text("keep")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITE, str(target), kind], env=env)
    assert killed.returncode == -signal.SIGKILL
    strays = sorted(p.name for p in tmp_path.iterdir() if p != neighbour)
    assert not target.exists() and len(strays) == 1 and strays[0].startswith(".out.")
    if kind == "file":
        write_json({"a": 1}, target)
    else:
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [neighbour.name, "out"]


def test_outputs_written_together_appear_together_or_not_at_all(tmp_path):
    outputs = {"transfer": tmp_path / "weak_transfer.json", "test": tmp_path / "weak_test.json"}
    with pytest.raises(RuntimeError, match="second"):
        with atomic_paths(outputs) as temps:
            temps["transfer"].write_text("1")
            raise RuntimeError("the second split failed")
    assert list(tmp_path.iterdir()) == []
    with atomic_paths(outputs) as temps:
        for name, tmp in temps.items():
            tmp.write_text(name)
    assert {name: path.read_text() for name, path in outputs.items()} == {"transfer": "transfer", "test": "test"}


def test_a_failed_rename_puts_back_the_outputs_already_renamed(tmp_path, monkeypatch):
    outputs = {
        "transfer": tmp_path / "weak_transfer.json",
        "test": tmp_path / "weak_test.json",
        "val": tmp_path / "sub" / "weak_val.json",
    }
    outputs["transfer"].write_text("old")
    real_replace, renamed, failed = os.replace, [], []

    def replace(src, dst):  # the third rename fails, once
        if len(renamed) == 2 and not failed:
            failed.append(dst)
            raise OSError("disk full")
        renamed.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        with atomic_paths(outputs) as temps:
            for tmp in temps.values():
                tmp.write_text("new")
    monkeypatch.undo()
    assert failed == [outputs["val"]]  # two outputs were in place when the third failed
    assert outputs["transfer"].read_text() == "old" and not outputs["test"].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "weak_transfer.json"]
    assert list((tmp_path / "sub").iterdir()) == []


def test_labeling_writes_both_splits_or_neither(tiny_classifier, tiny_splits, tmp_path):
    from w2s.labeling import label_splits

    inputs = {"transfer": tiny_splits / "transfer.parquet", "test": tiny_splits / "test.parquet"}
    outputs = {"transfer": tmp_path / "weak_transfer.parquet", "test": tmp_path / "weak_test.parquet"}
    outputs["transfer"].write_bytes(b"the previous labels")
    outputs["test"].mkdir()  # the second output cannot be replaced
    settings = {"engine": "transformers", "max_length": 32, "device": "cpu", "dtype": "float32"}
    with pytest.raises(IsADirectoryError):
        label_splits(tiny_classifier, inputs, outputs, settings)
    assert outputs["transfer"].read_bytes() == b"the previous labels"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weak_test.parquet", "weak_transfer.parquet"]
    outputs["test"].rmdir()
    label_splits(tiny_classifier, inputs, outputs, settings)
    assert read_provenance(outputs["transfer"])["split"] == "transfer"
    assert read_provenance(outputs["test"])["split"] == "test"


def test_one_file_named_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="name one file twice"):
        with atomic_paths({"a": tmp_path / "x", "b": tmp_path / "x"}):
            pass


@pytest.mark.slow
def test_killed_training_leaves_no_checkpoint_and_reruns_cleanly(tiny_classifier, tiny_splits, tmp_path):
    out = tmp_path / "weak" / "model"
    command = [
        sys.executable,
        "-m",
        "w2s",
        "--threads",
        "1",
        "train-weak",
        "--train",
        str(tiny_splits / "weak_train.parquet"),
        "--val",
        str(tiny_splits / "val.parquet"),
        "--manifest",
        str(tiny_splits / "manifest.json"),
        "--checkpoint",
        str(tiny_classifier),
        "--seed",
        "0",
        "--device",
        "cpu",
        "--out-dir",
        str(out),
    ]
    long_run = command + ["--settings", '{"epochs": 200, "batch_size": 4}']
    process = subprocess.Popen(long_run, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # wait until training has really started
        if "train:" in line:
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()

    subprocess.run(command + ["--settings", '{"epochs": 1, "batch_size": 16}'], check=True, capture_output=True)
    assert (out / "model.safetensors").exists() and (out / "train_info.json").exists()
