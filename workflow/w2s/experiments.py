"""The experiment grid a config describes, and the settings each stage receives.

The Snakefile calls these functions so that rules stay declarations; everything here is
plain Python with unit tests.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


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
            config["tasks"], config["seeds"], model_pairs(config), config["strong"]["methods"]
        )
    ]


def task_spec(config: dict, task: str) -> dict:
    return config["tasks"][task]


def model_reference(config: dict, model: str) -> str:
    return config["models"][model]["checkpoint"]


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


def feature_settings(config: dict, strong: str) -> dict:
    """What frozen-feature extraction needs of the strong model's probe settings (overrides applied);
    the probe's training settings are left out, so changing them reuses the features."""
    probe = strong_spec(config, strong)["probe"]
    return {
        "max_length": probe["max_length"],
        "batch_size": probe["feature_batch_size"],
        "layer": probe["layer"],
        "pooling": probe["pooling"],
    }


def method_spec(config: dict, method: str) -> dict:
    return config["strong"]["methods"][method]
