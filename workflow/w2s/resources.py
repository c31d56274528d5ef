"""What each GPU-stage job asks the cluster for, from the config's ``resources`` section.

The rules only call ``rule_resources`` and ``stage_threads``: GPUs, CPUs, memory and wall time come
from the config (schema defaults per stage), so a bigger model needs a config change, not a rule edit.
Memory and runtime grow by ``resources.retry_growth`` with Snakemake's ``attempt``, so a job that
Slurm killed for memory or time asks for more when it is retried (``retries`` in the Slurm profile).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from .schema import load_schema
from .stages import gpu_rules

# GPU stages by rule name, from the stage table (w2s/stages.py); each has a `resources.<rule>` key.
GPU_STAGES = gpu_rules("classification")
# The generative reasoning track: vLLM sampling jobs and SFT/DPO training jobs.
REASONING_GPU_STAGES = gpu_rules("reasoning")


@functools.lru_cache(maxsize=1)
def _schema_defaults() -> dict:
    """Defaults of the ``resources`` section, read once (resource functions run once per job)."""
    properties = load_schema()["properties"]["resources"]["properties"]
    return {key: spec["default"] for key, spec in properties.items()}


def stage_defaults(stage: str) -> dict[str, int]:
    """The schema's default request for a GPU stage."""
    if stage not in GPU_STAGES + REASONING_GPU_STAGES:
        raise KeyError(f"{stage!r} is not a GPU stage; GPU stages: {', '.join(GPU_STAGES + REASONING_GPU_STAGES)}")
    return dict(_schema_defaults()[stage])


def stage_request(config: dict, stage: str) -> dict[str, int]:
    """First-attempt request of a stage: the config's keys over the stage's defaults."""
    return {**stage_defaults(stage), **config.get("resources", {}).get(stage, {})}


def stage_resources(config: dict, stage: str, attempt: int = 1) -> dict[str, int]:
    """Snakemake resources of one attempt (1-based): ``gpu``, ``cpus_per_task``, ``mem_mb``, ``runtime`` (minutes)."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    request = stage_request(config, stage)
    growth = config.get("resources", {}).get("retry_growth", _schema_defaults()["retry_growth"]) ** (attempt - 1)
    return {
        "gpu": request["gpus"],
        "cpus_per_task": request["cpus"],
        "mem_mb": math.ceil(request["mem_mb"] * growth),
        "runtime": math.ceil(request["runtime"] * growth),
    }


def rule_resources(config: dict, stage: str) -> dict[str, int | Callable]:
    """A rule's ``resources:``: fixed GPU and CPU counts, memory and runtime as functions of the attempt."""

    # Snakemake passes arguments by parameter name, so these must be called wildcards and attempt.
    def mem_mb(wildcards, attempt: int) -> int:
        return stage_resources(config, stage, attempt)["mem_mb"]

    def runtime(wildcards, attempt: int) -> int:
        return stage_resources(config, stage, attempt)["runtime"]

    first = stage_resources(config, stage)
    return {"gpu": first["gpu"], "cpus_per_task": first["cpus_per_task"], "mem_mb": mem_mb, "runtime": runtime}


def stage_threads(config: dict, stage: str) -> int:
    """Threads of a stage's job: its CPU request (Snakemake caps it at --cores when run locally)."""
    return stage_request(config, stage)["cpus"]


def tensor_parallel_size(config: dict, stage: str = "label_weak") -> int:
    """vLLM shards its model over every GPU granted to a label_weak (or reasoning sampling) job."""
    return stage_request(config, stage)["gpus"]
