"""The Snakemake workflow itself: lint, dry run, config errors, and a real end-to-end run on a tiny config."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import jobs_in, recomputed_accuracies, snakemake, write_config

from w2s.config import resolve_config
from w2s.io import read_provenance

ROOT = Path(__file__).resolve().parents[2]
STAGES = [
    "prepare_data",
    "train_weak",
    "label_weak",
    "extract_features",
    "train_ceiling",
    "train_student",
    "evaluate",
    "summarize",
    "plots",
]


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint", configfile=ROOT / "config.yaml")
    assert "Congratulations, your workflow is in a good condition" in result.stdout + result.stderr


def test_dry_run_of_the_default_config_lists_every_stage(tmp_path):
    result = snakemake(tmp_path, "-n", configfile=ROOT / "config.yaml")
    for stage in STAGES:
        assert f"rule {stage}:" in result.stdout, stage


def test_rules_run_the_interpreter_that_runs_snakemake_without_the_venv_on_path(tiny_config, tmp_path):
    """`.venv/bin/snakemake ...` as the README types it, venv not activated: jobs still find w2s."""
    configfile = write_config(tmp_path / "config.yaml", tiny_config)
    target = "results/rotten_tomatoes/seed0/data/manifest.json"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "snakemake"),
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--cores",
            "1",
            target,
            "--configfile",
            str(configfile),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / target).read_text())
    assert manifest["splits"]["test"]["n"] == 64


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
    assert jobs["train_student"] == jobs["evaluate"] == 5 and jobs["train_ceiling"] == 1  # one method: a job per pair


def test_end_to_end_tiny_run_then_nothing_to_do(tiny_config, tmp_path):
    tiny_config = copy.deepcopy(tiny_config)
    tiny_config["weak"]["aggregated"] = {
        "verified": {
            "teachers": ["tiny_weak"],
            "labeling_functions": ["lexicon", "phrases"],
            "settings": {"aggregator": "majority"},
        }
    }
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
    # Every summary number recomputed from the raw files: gold from the data split, predictions from
    # the weak labels and the strong models' prediction files.
    accuracy = recomputed_accuracies(base, "tiny_weak", "tiny_strong")
    for column, value in accuracy.items():
        assert row[column] == pytest.approx(value), column
    metrics = json.loads((base / "metrics/tiny_weak/tiny_strong/xent.json").read_text())
    gap = accuracy["ceiling_acc"] - accuracy["weak_acc"]
    if gap < resolve_config(tiny_config)["evaluation"]["min_pgr_gap"]:
        assert metrics["pgr"] is None
    else:
        assert metrics["pgr"] == pytest.approx((accuracy["student_acc"] - accuracy["weak_acc"]) / gap)
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


def _rules(workdir: Path, configfile: Path) -> set[str]:
    return set(snakemake(workdir, "--list-rules", configfile=configfile).stdout.split())


def test_reasoning_rules_are_included_only_with_a_reasoning_section(tmp_path):
    from w2s.stages import STAGES, STORE_ARTIFACTS, TARGET_RULES, stage, store_rules

    classification = _rules(tmp_path, ROOT / "config.yaml")
    both = _rules(tmp_path, ROOT / "examples/reasoning_cpu.yaml")
    reasoning = {rule for rule in both if "reasoning" in rule}
    assert reasoning and not classification & reasoning
    assert set(store_rules("reasoning_samples")) <= reasoning
    # Every rule of either track is a stage of the one stage table (store rules: their store stage).
    for rule in (classification | both) - set(TARGET_RULES):
        assert stage(rule).rule in STAGES, rule
    # One store stage per direction serves every artifact kind.
    for artifact in STORE_ARTIFACTS:
        fetch, publish = store_rules(artifact)
        assert (stage(fetch).command, stage(publish).command) == ("store-fetch", "store-publish")
        assert stage(fetch).entry == stage(publish).entry == "label_store"


def test_both_artifact_kinds_run_the_one_store_command(tmp_path):
    """Weak labels and reasoning samples go through the same store stage: one command, per-kind files."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    reasoning = yaml.safe_load((ROOT / "examples/reasoning_cpu.yaml").read_text())
    config["models"] |= reasoning["models"]
    config["reasoning"] = reasoning["reasoning"]
    config["label_store"] = str(tmp_path / "store")
    result = snakemake(tmp_path, "-n", "-p", configfile=write_config(tmp_path / "config.yaml", config))
    jobs = jobs_in(result)
    assert jobs["store_publish_weak_labels"] == 1 and jobs["store_publish_reasoning_samples"] >= 2
    publishes = [line.split("w2s ", 1)[1] for line in result.stdout.splitlines() if "w2s store-publish" in line]
    assert len(publishes) == jobs["store_publish_weak_labels"] + jobs["store_publish_reasoning_samples"]
    files = {line.split("--files ")[1].split(" --out")[0].count("=") for line in publishes}
    assert files == {1, 2}  # samples.parquet; transfer.parquet and test.parquet
    assert all(line.startswith(f"store-publish --store {tmp_path / 'store'} --key ") for line in publishes)


def test_paths_are_declared_once():
    """Rules name files with the patterns of w2s/paths.py, never a spelled-out results/ path."""
    from w2s.paths import DATA_SPLIT, LOG, WEAK_LABELS, fill

    for path in [ROOT / "Snakefile", *(ROOT / "workflow/rules").rglob("*.smk")]:
        assert '"results/' not in path.read_text(), path
    assert fill(WEAK_LABELS, split="test") == "results/{task}/seed{seed}/weak/{weak}/labels/test.parquet"
    assert DATA_SPLIT.format(task="t", seed=0, split="val") == "results/t/seed0/data/val.parquet"
    assert LOG("train_weak", "{weak}") == "results/logs/{task}/seed{seed}/train_weak/{weak}.log"
