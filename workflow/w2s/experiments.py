"""The experiment grid a config describes, and the settings each stage receives.

The Snakefile calls these functions so that rules stay declarations; everything here is
plain Python with unit tests.
"""

from __future__ import annotations

import copy
import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from .fingerprint import code_hash
from .models import fingerprint

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Experiment:
    task: str
    seed: int
    weak: str
    strong: str
    method: str


@functools.cache
def _schema_text() -> str:
    return SCHEMA_PATH.read_text()


def load_schema() -> dict:
    """The config schema (read once per process; a fresh copy each call, callers may change it)."""
    return yaml.safe_load(_schema_text())


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def fill_defaults(value: object, schema: dict, root: dict | None = None) -> object:
    """Copy of ``value`` with every missing key that has a schema ``default`` filled in, recursively."""
    root = root or schema
    schema = _resolve(schema, root)
    if not isinstance(value, dict):
        return value
    filled = dict(value)
    for key, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, root)
        if key not in filled and "default" in sub:
            filled[key] = copy.deepcopy(sub["default"])
        if key in filled:
            filled[key] = fill_defaults(filled[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(filled) - set(schema.get("properties", {})):
            filled[key] = fill_defaults(filled[key], extra, root)
    return filled


def _error_location(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "<top level>"


def resolve_config(config: dict) -> dict:
    """Validate against the schema, fill defaults and check cross-references; raise ConfigError naming the key."""
    schema = load_schema()
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_error_location(e)}: {e.message}" for e in errors]
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    config = fill_defaults(config, schema)
    for role in ("weak", "strong"):
        if config["tasks"] and not config[role]["models"]:
            raise ConfigError(f"{role}.models: name at least one model (the config has classification tasks)")
        for name in config[role]["models"]:
            if name not in config["models"]:
                raise ConfigError(
                    f"{role}.models: {name!r} is not defined under `models` (defined: {sorted(config['models'])})"
                )
    _check_weak_sources(config["weak"])
    from .reasoning.plan import check as check_reasoning

    check_reasoning(config)
    for name, task in config["tasks"].items():
        needed = {"hf": "name", "file": "path"}.get(task["source"])
        if needed and needed not in task:
            raise ConfigError(f"tasks.{name}: source {task['source']!r} needs `{needed}`")
    return config


def _check_weak_sources(weak: dict) -> None:
    teachers, ensembles, degraded = set(weak["models"]), set(weak["ensembles"]), set(weak["degraded"])
    aggregated = set(weak["aggregated"])
    names = [*teachers, *ensembles, *degraded, *aggregated]
    clash = {name for name in names if names.count(name) > 1}
    if clash:
        raise ConfigError(f"weak: {sorted(clash)} name more than one of models, ensembles, aggregated and degraded")
    for name, spec in weak["aggregated"].items():
        unknown = set(spec["teachers"]) - teachers
        if unknown:
            raise ConfigError(f"weak.aggregated.{name}.teachers: {sorted(unknown)} are not in weak.models")
        if not spec["teachers"]:
            raise ConfigError(f"weak.aggregated.{name}.teachers: name at least one teacher (labeling functions need its texts)")
        if spec["settings"].get("aggregator") in ("best_single", "logistic"):
            raise ConfigError(f"weak.aggregated.{name}.settings.aggregator: {spec['settings']['aggregator']!r} "
                              "uses gold labels and cannot make training labels; it is in the verifier report")
    for name, ensemble in weak["ensembles"].items():
        unknown = set(ensemble["members"]) - teachers
        if unknown:
            raise ConfigError(f"weak.ensembles.{name}.members: {sorted(unknown)} are not in weak.models")
    for name, spec in weak["degraded"].items():
        if spec["source"] not in teachers | ensembles | aggregated:
            raise ConfigError(f"weak.degraded.{name}.source: {spec['source']!r} is not in weak.models, "
                              "weak.ensembles or weak.aggregated")


def weak_sources(config: dict) -> list[str]:
    """Every weak-label source: trained teachers, ensembles, aggregated verifiers, degraded labels."""
    weak = config["weak"]
    return [*weak["models"], *weak["ensembles"], *weak["aggregated"], *weak["degraded"]]


def experiment_grid(config: dict) -> list[Experiment]:
    """Every task x seed x weak model x strong model x method combination."""
    return [
        Experiment(*combination)
        for combination in itertools.product(
            config["tasks"], config["seeds"], weak_sources(config), config["strong"]["models"],
            config["strong"]["methods"],
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
        "weak_train": config["weak"]["train"],
        "labeling": {k: v for k, v in config["labeling"].items() if k not in LABELING_RUNTIME_KEYS},
        "code": {stage: code_hash(stage) for stage in ("data", "teacher", "labels")},
    }


def strong_spec(config: dict) -> dict:
    """What the strong stage needs besides the method: mode and its settings, early stopping."""
    return {key: config["strong"][key] for key in ("mode", "train", "lora", "probe", "early_stopping")}


def method_spec(config: dict, method: str) -> dict:
    return config["strong"]["methods"][method]
