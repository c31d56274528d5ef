"""The config's validation: one pass against the schema (:mod:`w2s.schema`, the only source of
defaults), the defaults filled in, and the cross-checks the schema cannot express.

``resolve_config`` is the single validation pass: the Snakefile, the CLI and the tests all call it,
and every stage reads the resolved dict it returns (defaults filled in from the schema).
"""

from __future__ import annotations

from pathlib import Path

import jsonschema

from .reasoning.selection import needed_generators
from .schema import fill_defaults, parsed_schema, schema_at

REASONING_BASE = ("weak", "weaker", "strong")


class ConfigError(ValueError):
    """The config is invalid; the message names the key."""


def _error_location(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "<top level>"


def resolve_config(config: dict, base_dir: str | Path | None = None) -> dict:
    """Validate against the schema, fill defaults, load the plugins and check cross-references and the
    registered names and options; raise ConfigError naming the key.

    ``plugins`` entries that are files resolve against ``base_dir`` (the config file's directory;
    default: the working directory) and come back as absolute paths, so every job finds them.
    """
    schema = parsed_schema()
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_error_location(e)}: {e.message}" for e in errors]
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    config = fill_defaults(config, schema)
    _load_plugins(config, base_dir)
    _check_models(config)
    _check_overrides(config, schema)
    _check_weak_sources(config["weak"])
    _check_tasks(config)
    _check_reasoning(config)
    _check_methods(config)
    return config


def _load_plugins(config: dict, base_dir: str | Path | None) -> None:
    from .plugins import PluginError, load_plugins

    try:
        config["plugins"] = [plugin.entry for plugin in load_plugins(config["plugins"], base_dir)]
    except PluginError as error:
        raise ConfigError(f"plugins: {error}") from error


def _check_aggregation(where: str, spec: dict) -> None:
    """The aggregator and labeling functions are registered (after plugins), the aggregator's settings
    valid, and it makes labels without gold."""
    from .registry import LABELING_FUNCTION_REGISTRY, RegistryError
    from .verifiers import LABEL_USING_AGGREGATORS, resolve_settings

    try:
        resolve_settings(spec["settings"])
        for function in spec["labeling_functions"]:
            LABELING_FUNCTION_REGISTRY.entry(function)
    except (RegistryError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error
    if spec["settings"].get("aggregator") in LABEL_USING_AGGREGATORS:
        raise ConfigError(
            f"{where}.settings.aggregator: {spec['settings']['aggregator']!r} "
            "uses gold labels and cannot make training labels; it is in the verifier report"
        )


def _check_methods(config: dict) -> None:
    """Every method's loss and selection rule are registered and their options valid (after plugins)."""
    if "strong" not in config:
        return
    from .methods import Method
    from .registry import RegistryError

    for name, method in config["strong"]["methods"].items():
        try:
            Method.from_config(method)
        except RegistryError as error:
            raise ConfigError(f"strong.methods.{name}: {error}") from error


def method_extensions(method: dict) -> list[dict]:
    """Provenance of the method's loss and selection rule (:meth:`w2s.methods.Method.extensions`): what
    identifies the code a student trained with it runs, plugins included."""
    from .methods import Method

    return Method.from_config(method).extensions()


def resolved_method(method: dict) -> dict:
    """The method's config entry with every loss and selection option filled in (:meth:`w2s.methods.Method.resolved`)."""
    from .methods import Method

    return Method.from_config(method).resolved()


def aggregation_extensions(config: dict, source: str) -> list[dict]:
    """Provenance of an aggregated weak source's aggregator and labeling functions, plugins included."""
    from .plugins import provenance
    from .registry import AGGREGATOR_REGISTRY, LABELING_FUNCTION_REGISTRY

    spec = config["weak"]["aggregated"][source]
    aggregator = spec["settings"].get("aggregator", "label_model")
    return [
        provenance(AGGREGATOR_REGISTRY.entry(aggregator)),
        *(provenance(LABELING_FUNCTION_REGISTRY.entry(name)) for name in spec["labeling_functions"]),
    ]


def task_extensions(config: dict, task: str) -> list[dict]:
    """Provenance of the task's rows (:func:`w2s.tasks.task_provenance`), plugins included."""
    from .tasks import task_provenance

    return [task_provenance(task, config["tasks"][task])]


def code_identity(extensions: list[dict]) -> list[dict]:
    """What of ``extensions`` decides a job's results, independent of where the files lie: each name and,
    for a plugin, its source hash or package version (the package's own code is in the stage's code hash)."""
    return [{"name": e["name"], "plugin": e["plugin"]["source"] if e["plugin"] else None} for e in extensions]


def plugin_entries(extensions: list[dict]) -> list[str]:
    """The ``plugins:`` entries that provide these extensions, for the job's ``--plugins``."""
    return sorted({e["plugin"]["entry"] for e in extensions if e["plugin"] is not None})


def _check_models(config: dict) -> None:
    for role in ("weak", "strong"):
        if config["tasks"] and not config[role]["models"]:
            raise ConfigError(f"{role}.models: name at least one model (the config has classification tasks)")
        for name in config[role]["models"]:
            if name not in config["models"]:
                raise ConfigError(
                    f"{role}.models: {name!r} is not defined under `models` (defined: {sorted(config['models'])})"
                )


def _check_overrides(config: dict, schema: dict) -> None:
    """Per-model overrides name models of their role, and the merged settings are valid."""
    targets = {
        "weak": {"train": "$defs.train"},
        "strong": {"train": "$defs.train", "lora": "strong.lora", "probe": "strong.probe"},
    }
    for role, sections in targets.items():
        for model, override in config[role]["overrides"].items():
            if model not in config[role]["models"]:
                raise ConfigError(f"{role}.overrides.{model}: not in {role}.models ({config[role]['models']})")
            for key, where in sections.items():
                merged = {**config[role][key], **override.get(key, {})}
                section_schema = {"$defs": schema["$defs"], **schema_at(where)}
                errors = list(jsonschema.Draft202012Validator(section_schema).iter_errors(merged))
                if errors:
                    raise ConfigError(f"{role}.overrides.{model}.{key}: {errors[0].message}")
    pairs = config["strong"].get("pairs")
    if pairs is not None:
        for weak, strong in pairs:
            if strong not in config["strong"]["models"]:
                raise ConfigError(f"strong.pairs: {strong!r} is not in strong.models")
            if weak not in _weak_source_names(config["weak"]):
                raise ConfigError(f"strong.pairs: {weak!r} is not a weak source (weak.models, ensembles, ...)")


def _weak_source_names(weak: dict) -> set[str]:
    return {*weak["models"], *weak["ensembles"], *weak["aggregated"], *weak["degraded"]}


def _check_tasks(config: dict) -> None:
    """Every task's source (and a selected ``name``) is registered and its options valid (after plugins)."""
    from .labeled import DataError
    from .tasks import check_task

    for name, task in config["tasks"].items():
        needed = {"hf": "name", "file": "path"}.get(task["source"])
        if needed and needed not in task:
            raise ConfigError(f"tasks.{name}: source {task['source']!r} needs `{needed}`")
        try:
            check_task(name, task)
        except DataError as error:
            raise ConfigError(f"tasks.{name}: {error}") from error


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
            raise ConfigError(
                f"weak.aggregated.{name}.teachers: name at least one teacher (labeling functions need its texts)"
            )
        _check_aggregation(f"weak.aggregated.{name}", spec)
    for name, ensemble in weak["ensembles"].items():
        unknown = set(ensemble["members"]) - teachers
        if unknown:
            raise ConfigError(f"weak.ensembles.{name}.members: {sorted(unknown)} are not in weak.models")
    for name, spec in weak["degraded"].items():
        if spec["source"] not in teachers | ensembles | aggregated:
            raise ConfigError(
                f"weak.degraded.{name}.source: {spec['source']!r} is not in weak.models, "
                "weak.ensembles or weak.aggregated"
            )


def _check_reasoning(config: dict) -> None:
    reasoning = config.get("reasoning")
    if not reasoning:
        return
    for generator in REASONING_BASE:
        spec = reasoning.get(generator)
        if spec and spec["model"] not in config["models"]:
            raise ConfigError(
                f"reasoning.{generator}.model: {spec['model']!r} is not defined under `models` "
                f"(defined: {sorted(config['models'])})"
            )
    trained = {"ceiling": reasoning["ceiling"], **reasoning["students"]}
    for name, method in trained.items():
        where = "reasoning.ceiling" if name == "ceiling" else f"reasoning.students.{name}"
        if not method.get("sft") and not method.get("dpo"):
            raise ConfigError(f"{where}: give an `sft` selection, a `dpo` pair rule, or both")
        if "weaker" in needed_generators(method) and "weaker" not in reasoning:
            raise ConfigError(f"{where}: dpo: delta needs a `reasoning.weaker` model")
    for name, task in reasoning["tasks"].items():
        needed = {"hf": "name", "file": "path", "reasoning_gym": "name"}[task["source"]]
        if needed not in task:
            raise ConfigError(f"reasoning.tasks.{name}: source {task['source']!r} needs `{needed}`")
    if reasoning["samples_per_problem"]["test"] < min(reasoning["evaluation"]["k"]):
        raise ConfigError("reasoning.evaluation.k: every k exceeds samples_per_problem.test")
