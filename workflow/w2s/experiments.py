"""The experiment grid a config describes, and the settings each stage receives.

The Snakefile calls these functions so that rules stay declarations; everything here is
plain Python with unit tests.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .fingerprint import code_hash
from .models import fingerprint


@dataclass(frozen=True)
class Experiment:
    task: str
    seed: int
    weak: str
    strong: str
    method: str


def weak_sources(config: dict) -> list[str]:
    """Every weak-label source: trained teachers, ensembles, aggregated verifiers, degraded labels."""
    weak = config["weak"]
    return [*weak["models"], *weak["ensembles"], *weak["aggregated"], *weak["degraded"]]


def model_pairs(config: dict) -> list[tuple[str, str]]:
    """The (weak source, strong model) pairs of the grid: ``strong.pairs`` if given, else every pair."""
    every = list(itertools.product(weak_sources(config), config["strong"]["models"]))
    if "pairs" not in config["strong"]:
        return every
    chosen = {tuple(pair) for pair in config["strong"]["pairs"]}
    return [pair for pair in every if pair in chosen]


def experiment_grid(config: dict) -> list[Experiment]:
    """Every task x seed x (weak, strong) pair x method combination."""
    return [
        Experiment(task, seed, weak, strong, method)
        for task, seed, (weak, strong), method in itertools.product(
            config["tasks"], config["seeds"], model_pairs(config), config["strong"]["methods"],
        )
    ]


def task_spec(config: dict, task: str) -> dict:
    return config["tasks"][task]


def model_reference(config: dict, model: str) -> str:
    return config["models"][model]["checkpoint"]


# Labeling settings that change speed or memory but not the labels.
LABELING_RUNTIME_KEYS = {"batch_size", "max_num_seqs", "max_num_batched_tokens", "enforce_eager", "kv_cache_gb",
                         "gpu_memory_utilization", "tensor_parallel_size"}


def weak_label_key_inputs(config: dict, task: str, seed: int, weak: str) -> dict:
    """Everything that determines a weak teacher's labels, and nothing that doesn't (such as the
    name a team gives the model, or engine batch sizes): the label store key is its hash."""
    reference = model_reference(config, weak)
    return {
        "task": task,
        "task_spec": config["tasks"][task],
        "seed": int(seed),
        "weak_checkpoint": reference,
        "weak_seed_offset": config["models"][weak]["seed_offset"],
        "weak_fingerprint": fingerprint(reference),
        "weak_train": teacher_train_settings(config, weak),
        "labeling": {k: v for k, v in config["labeling"].items() if k not in LABELING_RUNTIME_KEYS},
        "code": {stage: code_hash(stage) for stage in ("prepare_data", "train_weak", "label_weak")},
    }


def teacher_train_settings(config: dict, weak: str) -> dict:
    """weak.train with the teacher's own ``weak.overrides.<weak>.train`` keys replaced."""
    override = config["weak"]["overrides"].get(weak, {})
    return {**config["weak"]["train"], **override.get("train", {})}


def strong_spec(config: dict, strong: str) -> dict:
    """What the strong stage needs besides the method: mode and its settings, early stopping, with
    the model's own ``strong.overrides.<strong>`` applied."""
    section = config["strong"]
    override = section["overrides"].get(strong, {})
    spec = {key: section[key] for key in ("mode", "train", "lora", "probe", "early_stopping")}
    spec["mode"] = override.get("mode", spec["mode"])
    for key in ("train", "lora", "probe"):
        spec[key] = {**spec[key], **override.get(key, {})}
    return spec


def method_spec(config: dict, method: str) -> dict:
    return config["strong"]["methods"][method]
