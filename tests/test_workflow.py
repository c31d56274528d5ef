"""The Snakemake workflow itself: lint, dry run, config errors, and a real end-to-end run on a tiny config."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import jobs_in, snakemake, write_config
from w2s.io import read_provenance

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["prepare_data", "train_weak", "label_weak", "extract_features", "train_ceiling", "train_student",
          "evaluate", "summarize", "plots"]


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
def test_weak_sources_enter_the_dag(tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["models"]["minilm_b"] = {"checkpoint": "builtin:all-MiniLM-L6-v2", "seed_offset": 1}
    config["weak"] |= {
        "models": ["minilm", "minilm_b"],
        "ensembles": {"pair": {"members": ["minilm", "minilm_b"], "combine": "geometric"}},
        "aggregated": {"verified": {"teachers": ["minilm", "minilm_b"], "labeling_functions": ["lexicon"]}},
        "degraded": {"pair_acc60": {"source": "pair", "target_accuracy": 0.6}},
    }
    config["strong"]["methods"] = {"xent": {}}
    jobs = jobs_in(snakemake(tmp_path, "-n", configfile=write_config(tmp_path / "config.yaml", config)))
    assert jobs["train_weak"] == jobs["label_weak"] == 2
    assert jobs["combine_weak_labels"] == jobs["aggregate_weak_labels"] == jobs["evaluate_verifiers"] == 1
    assert jobs["degrade_weak_labels"] == 1
    assert jobs["train_student"] == jobs["evaluate"] == 5 and jobs["train_ceiling"] == 1


def test_end_to_end_tiny_run_then_nothing_to_do(tiny_config, tmp_path):
    tiny_config = copy.deepcopy(tiny_config)
    tiny_config["weak"]["aggregated"] = {
        "verified": {"teachers": ["tiny_weak"], "labeling_functions": ["lexicon", "phrases"],
                     "settings": {"aggregator": "majority"}}}
    configfile = write_config(tmp_path / "config.yaml", tiny_config)
    snakemake(tmp_path, configfile=configfile)
    base = tmp_path / "results" / "rotten_tomatoes" / "seed0"
    report = json.loads((base / "weak/verified/verifier_evaluation.json").read_text())
    assert set(report["aggregators"]) == {"first", "majority", "mean", "best_single", "label_model", "logistic"}
    assert report["aggregators"]["logistic"]["uses_labels"] and not report["aggregators"]["majority"]["uses_labels"]
    verifiers = pd.read_parquet(base / "weak/verified/verifier_evaluation.parquet")
    assert {"tiny_weak", "lexicon", "phrases"} <= set(verifiers["verifier_id"])

    labels = pd.read_parquet(base / "weak/tiny_weak/labels/transfer.parquet")
    assert list(labels.columns) == ["id", "text", "soft_label", "hard_label", "confidence"]
    assert len(labels) == 64
    provenance = read_provenance(base / "weak/tiny_weak/labels/transfer.parquet")
    assert provenance["engine"] == "vllm" and provenance["weak_model"] == "tiny_weak"

    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert sorted(summary["weak_model"]) == ["tiny_weak", "verified"]
    row = summary[summary["weak_model"] == "tiny_weak"].iloc[0]
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
