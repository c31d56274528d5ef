"""The config schema, read once per process: the one place a setting's default is written.

``workflow/schemas/config.schema.yaml`` documents every key and gives its default. This module only
reads it (``schema_at``, ``schema_defaults``, ``fill_defaults``); validation and the cross-checks are
in :mod:`w2s.config`. It imports nothing from ``w2s`` and no validator, so a settings dataclass can
take its defaults from here at the cost of one small YAML parse.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
# libyaml's loader when PyYAML was built with it: the same document, parsed much faster (every job
# resolves the config, so this is on the path of a dry run of many experiments).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def parsed_schema() -> dict:
    """The parsed schema, shared by every caller of this process: read it, never change it."""
    return yaml.load(SCHEMA_PATH.read_text(), Loader=_LOADER)


def load_schema() -> dict:
    """The config schema (parsed once per process; a fresh copy each call, callers may change it)."""
    return copy.deepcopy(parsed_schema())


def _resolve(schema: dict, root: dict) -> dict:
    """Follow ``$ref``. Keys beside a ``$ref`` win; ``properties`` beside it refine the target's
    properties one by one (e.g. another ``default`` for one key of a shared definition)."""
    while "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        own = {k: v for k, v in schema.items() if k != "$ref"}
        merged = {**target, **own}
        if "properties" in own and "properties" in target:
            merged["properties"] = {**target["properties"]}
            for key, refinement in own["properties"].items():
                merged["properties"][key] = {**target["properties"].get(key, {}), **refinement}
        schema = merged
    return schema


def schema_at(path: str) -> dict:
    """The (``$ref``-resolved) schema of a dotted config path, e.g. ``weak.train``; ``*`` steps into
    ``additionalProperties`` (``models.*``) and ``$defs.NAME`` names a definition."""
    root = parsed_schema()
    node = root
    parts = path.split(".")
    if parts[0] == "$defs":
        node, parts = root["$defs"][parts[1]], parts[2:]
    for part in parts:
        node = _resolve(node, root)
        node = node["additionalProperties"] if part == "*" else node["properties"][part]
    return _resolve(node, root)


def schema_defaults(path: str) -> dict:
    """Key -> default of every property with a default under the dotted config path."""
    root = parsed_schema()
    return {
        key: copy.deepcopy(_resolve(sub, root)["default"])
        for key, sub in schema_at(path).get("properties", {}).items()
        if "default" in _resolve(sub, root)
    }


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


def defaults_from_schema(path: str):
    """Class decorator, placed under ``@dataclass``: every annotated field that the schema's ``path``
    gives a default gets that default, so a settings dataclass declares its fields and the schema
    alone says their defaults. Lists become tuples (a dataclass default must not be mutable); a field
    the schema lacks keeps what the class says (a runtime-only field such as ``tensor_parallel_size``),
    and so does a nested section built by a ``default_factory``.
    """
    defaults = schema_defaults(path)

    def apply(cls: type) -> type:
        for name in cls.__dict__.get("__annotations__", {}):
            if name in defaults and name not in cls.__dict__:  # a nested section keeps its default_factory
                value = defaults[name]
                setattr(cls, name, tuple(value) if isinstance(value, list) else value)
        return cls

    return apply
