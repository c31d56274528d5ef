"""The Snakemake workflow itself: lint, dry run, config errors, and a real end-to-end run on a tiny config."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import snakemake, write_config
from w2s.io import read_provenance

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["prepare_data", "train_weak", "label_weak", "extract_features", "train_ceiling", "train_student",
          "evaluate", "summarize"]


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint", configfile=ROOT / "config.yaml")
    assert "Congratulations, your workflow is in a good condition" in result.stdout + result.stderr


def test_dry_run_of_the_default_config_lists_every_stage(tmp_path):
    result = snakemake(tmp_path, "-n", configfile=ROOT / "config.yaml")
    for stage in STAGES:
        assert f"rule {stage}:" in result.stdout, stage


def test_invalid_config_is_rejected_naming_the_key(tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["weak"]["train"]["epocs"] = 3
    result = snakemake(tmp_path, "-n", configfile=write_config(tmp_path / "bad.yaml", config), check=False)
    assert result.returncode != 0
    assert "epocs" in result.stdout + result.stderr


@pytest.mark.slow
def test_end_to_end_tiny_run_then_nothing_to_do(tiny_config, tmp_path):
    configfile = write_config(tmp_path / "config.yaml", tiny_config)
    snakemake(tmp_path, configfile=configfile)
    base = tmp_path / "results" / "rotten_tomatoes" / "seed0"

    labels = pd.read_parquet(base / "weak/tiny_weak/labels/transfer.parquet")
    assert list(labels.columns) == ["id", "text", "soft_label", "hard_label", "confidence"]
    assert len(labels) == 64
    provenance = read_provenance(base / "weak/tiny_weak/labels/transfer.parquet")
    assert provenance["engine"] == "vllm" and provenance["weak_model"] == "tiny_weak"

    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["weak_model"] == "tiny_weak" and row["strong_model"] == "tiny_strong"
    for column in ("weak_acc", "student_acc", "ceiling_acc"):
        assert 0.0 <= row[column] <= 1.0
    metrics = json.loads((base / "metrics/tiny_weak/tiny_strong/xent.json").read_text())
    expected = (metrics["student_acc"] - metrics["weak_acc"]) / (metrics["ceiling_acc"] - metrics["weak_acc"])
    assert metrics["pgr"] is None or metrics["pgr"] == pytest.approx(expected)
    for stage in ("train_weak", "label_weak", "extract_features", "train_ceiling"):
        assert list((tmp_path / "results" / "benchmarks" / "rotten_tomatoes" / "seed0" / stage).glob("*.tsv")), stage

    again = snakemake(tmp_path, "-n", configfile=configfile)
    assert "Nothing to be done" in again.stdout + again.stderr

    # Switching the strong model to full fine-tuning reruns the strong stages only.
    tiny_config["strong"]["mode"] = "full_finetune"
    configfile = write_config(tmp_path / "config.yaml", tiny_config)
    rerun = snakemake(tmp_path, configfile=configfile)
    log = rerun.stdout + rerun.stderr
    assert "rule train_student:" in log and "rule train_ceiling:" in log
    assert "rule train_weak:" not in log and "rule label_weak:" not in log
    assert (base / "strong/tiny_strong/ceiling/model/model.safetensors").exists()
