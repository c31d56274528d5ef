"""Cluster requests of the GPU stages from the config's `resources` section (w2s.resources)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

from w2s.config import ConfigError, resolve_config
from w2s.labeling import resolve_settings
from w2s.resources import (
    GPU_STAGES,
    rule_resources,
    stage_defaults,
    stage_resources,
    stage_threads,
    tensor_parallel_size,
)

ROOT = Path(__file__).resolve().parents[2]


def config_with(resources: dict | None = None) -> dict:
    """config.yaml with ``resources`` in place of its own (none: the schema's defaults alone)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["resources"] = resources or {}
    return resolve_config(config)


def test_defaults_come_from_the_schema_one_gpu_per_stage():
    config = config_with()
    for stage in GPU_STAGES:
        assert stage_resources(config, stage) == {
            "gpu": 1,
            "cpus_per_task": stage_defaults(stage)["cpus"],
            "mem_mb": stage_defaults(stage)["mem_mb"],
            "runtime": stage_defaults(stage)["runtime"],
        }
    assert stage_resources(config, "train_ceiling")["mem_mb"] == 16000
    assert stage_resources(config, "train_weak")["runtime"] == 120


def test_a_stage_entry_overrides_only_the_keys_it_names():
    config = config_with({"label_weak": {"gpus": 2}, "train_student": {"mem_mb": 64000, "cpus": 16}})
    assert stage_resources(config, "label_weak") == {**stage_resources(config_with(), "label_weak"), "gpu": 2}
    student = stage_resources(config, "train_student")
    assert (student["mem_mb"], student["cpus_per_task"], student["gpu"]) == (64000, 16, 1)
    assert student["runtime"] == stage_defaults("train_student")["runtime"]
    assert stage_resources(config, "train_ceiling") == stage_resources(config_with(), "train_ceiling")
    assert stage_threads(config, "train_student") == 16


def test_memory_and_runtime_grow_with_each_attempt_gpus_and_cpus_do_not():
    config = config_with({"train_weak": {"mem_mb": 1000, "runtime": 10, "gpus": 2, "cpus": 4}})
    attempts = [stage_resources(config, "train_weak", attempt) for attempt in (1, 2, 3)]
    assert [a["mem_mb"] for a in attempts] == [1000, 1500, 2250]
    assert [a["runtime"] for a in attempts] == [10, 15, 23]  # rounded up, never below the grown value
    assert {a["gpu"] for a in attempts} == {2} and {a["cpus_per_task"] for a in attempts} == {4}

    doubling = config_with({"retry_growth": 2, "train_weak": {"mem_mb": 1000}})
    assert stage_resources(doubling, "train_weak", 3)["mem_mb"] == 4000
    fixed = config_with({"retry_growth": 1})
    assert stage_resources(fixed, "label_weak", 5) == stage_resources(fixed, "label_weak", 1)


def test_rule_resources_are_what_snakemake_evaluates_per_attempt():
    config = config_with({"extract_features": {"mem_mb": 2000, "runtime": 30, "gpus": 1, "cpus": 2}})
    resources = rule_resources(config, "extract_features")
    assert (resources["gpu"], resources["cpus_per_task"]) == (1, 2)
    for name in ("mem_mb", "runtime"):
        # Snakemake passes a resource function's arguments by parameter name.
        assert list(inspect.signature(resources[name]).parameters) == ["wildcards", "attempt"]
    assert resources["mem_mb"](wildcards={}, attempt=1) == 2000
    assert resources["mem_mb"](wildcards={}, attempt=2) == 3000
    assert resources["runtime"](wildcards={}, attempt=2) == 45


def test_tensor_parallel_size_follows_the_labeling_gpus_and_is_a_valid_labeling_setting():
    assert tensor_parallel_size(config_with()) == 1
    config = config_with({"label_weak": {"gpus": 4}})
    assert tensor_parallel_size(config) == 4
    settings = resolve_settings({**config["labeling"], "tensor_parallel_size": tensor_parallel_size(config)})
    assert settings["tensor_parallel_size"] == 4
    assert resolve_settings({})["tensor_parallel_size"] == 1
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        resolve_settings({"tensor_parallel_size": 0})


@pytest.mark.parametrize(
    "resources, key",
    [
        ({"label_weak": {"gpus": 0}}, "resources.label_weak.gpus"),
        ({"train_weak": {"memory": 100}}, "resources.train_weak"),
        ({"evaluate": {"cpus": 1}}, "resources"),
        ({"retry_growth": 0.5}, "resources.retry_growth"),
    ],
)
def test_invalid_requests_are_rejected_naming_the_key(resources, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_with(resources)


def test_only_gpu_stages_have_requests():
    with pytest.raises(KeyError, match="not a GPU stage"):
        stage_resources(config_with(), "evaluate")
    with pytest.raises(ValueError, match="attempt"):
        stage_resources(config_with(), "train_weak", attempt=0)
