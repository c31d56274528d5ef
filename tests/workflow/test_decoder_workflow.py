"""The whole workflow with a decoder-only model: SmolLM2-135M as the weak teacher (labels from vLLM)
and as the strong model (a linear probe on last-token features), every reported number recomputed
from the files the stages wrote."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import recomputed_accuracies, snakemake, write_config

from w2s.io import read_provenance
from w2s.labeling import label_texts

SMOL = "builtin:SmolLM2-135M-Instruct"
MAX_LENGTH = 32


def _config() -> dict:
    return {
        "seeds": [0],
        "tasks": {
            "rotten_tomatoes": {"source": "builtin", "sizes": {"weak_train": 32, "transfer": 32, "val": 8, "test": 32}}
        },
        "models": {"smol": {"checkpoint": SMOL}},
        "weak": {"models": ["smol"], "train": {"epochs": 1, "batch_size": 8, "max_length": MAX_LENGTH}},
        # float32: the engines are compared at 1e-3 below (bf16, where `auto` picks it, differs more).
        "labeling": {
            "engine": "vllm",
            "max_length": MAX_LENGTH,
            "kv_cache_gb": 1,
            "in_process": True,
            "max_num_batched_tokens": 256,
            "max_num_seqs": 8,
            "dtype": "float32",
        },
        "strong": {
            "models": ["smol"],
            "mode": "linear_probe",
            "methods": {"xent": {}},
            "train": {"epochs": 1, "batch_size": 8, "max_length": MAX_LENGTH},
            "probe": {"max_length": MAX_LENGTH, "epochs": 5, "feature_batch_size": 16},
        },
    }


@pytest.mark.slow
def test_smollm2_as_weak_and_strong_model_end_to_end(tmp_path):
    snakemake(tmp_path, configfile=write_config(tmp_path / "config.yaml", _config()))
    base = tmp_path / "results" / "rotten_tomatoes" / "seed0"

    # vLLM's labels agree with the transformers engine run on the same trained teacher.
    for split in ("transfer", "test"):
        path = base / f"weak/smol/labels/{split}.parquet"
        assert read_provenance(path)["engine"] == "vllm", split
        labels = pd.read_parquet(path)
        reference = label_texts(
            base / "weak/smol/model",
            labels["text"].tolist(),
            {"engine": "transformers", "max_length": MAX_LENGTH, "batch_size": 8, "device": "cpu", "dtype": "float32"},
        )
        assert np.abs(np.stack(labels["soft_label"]) - reference).max() < 1e-3, split

    for split in ("transfer", "test"):
        meta = read_provenance(base / f"strong/smol/features/{split}.parquet")
        assert meta["pooling"] == "last_token" and meta["pooling_setting"] == "auto", split

    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["weak_model"] == "smol" and row["strong_model"] == "smol"
    accuracy = recomputed_accuracies(base, "smol", "smol")
    for column, value in accuracy.items():
        assert row[column] == pytest.approx(value), column
