"""A crash leaves no half-written output: atomic files, atomic directories, a killed training job."""

import os
import signal
import subprocess
import sys
import time

import pytest

from w2s.io import atomic_dir, atomic_path, read_provenance, sha256_dir, stable_hash, write_json, write_parquet


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


@pytest.mark.slow
def test_killed_training_leaves_no_checkpoint_and_reruns_cleanly(tiny_classifier, tiny_splits, tmp_path):
    out = tmp_path / "weak" / "model"
    command = [sys.executable, "-m", "w2s", "--threads", "1", "train-teacher",
               "--train", str(tiny_splits / "weak_train.parquet"), "--val", str(tiny_splits / "val.parquet"),
               "--manifest", str(tiny_splits / "manifest.json"),
               "--checkpoint", str(tiny_classifier), "--seed", "0", "--device", "cpu", "--out-dir", str(out)]
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
