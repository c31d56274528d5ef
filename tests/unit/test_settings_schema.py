"""Every settings object the stages build has the schema's defaults: the schema is where a default
lives (the dataclasses and defaults tables read theirs from ``w2s.schema``), and this test fails the
moment a field, a literal default or a defaults table drifts from it."""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields, is_dataclass

import pytest

from w2s.evaluate import EvaluationSettings
from w2s.labeling import DEFAULT_SETTINGS as LABELING_DEFAULTS
from w2s.learners import LoraSettings
from w2s.methods import Method
from w2s.reasoning.generation import EngineSettings, SamplingSettings
from w2s.reasoning.prompts import PromptSettings
from w2s.reasoning.tuning import TuneSettings
from w2s.schema import schema_at, schema_defaults
from w2s.train import TrainSettings

# Fields the rule sets from the job's resources, not from the config.
RUNTIME_ONLY = {"device", "tensor_parallel_size"}

SETTINGS_OBJECTS = {
    "weak.train": TrainSettings,
    "strong.train": TrainSettings,
    "strong.lora": LoraSettings,
    "strong.methods.*": Method,
    "evaluation": EvaluationSettings,
    "reasoning.sampling": SamplingSettings,
    "reasoning.sampling.prompt": PromptSettings,
    "reasoning.engine": EngineSettings,
    "reasoning.train": TuneSettings,
}


def _plain(value: object) -> object:
    if is_dataclass(value):
        return asdict(value)
    return list(value) if isinstance(value, tuple) else value


def dataclass_defaults(cls: type) -> dict:
    """Field -> default of every field that has one (fields without one must come from the config)."""
    defaults = {}
    for f in fields(cls):
        if f.default is not MISSING:
            defaults[f.name] = _plain(f.default)
        elif f.default_factory is not MISSING:
            defaults[f.name] = _plain(f.default_factory())
    return defaults


def expected_defaults(path: str) -> dict:
    """The schema's defaults under ``path``, nested sections filled with their own defaults."""
    defaults = schema_defaults(path)
    for key, value in defaults.items():
        if value == {} and "properties" in schema_at(f"{path}.{key}"):
            defaults[key] = expected_defaults(f"{path}.{key}")
    return defaults


@pytest.mark.parametrize("path", sorted(SETTINGS_OBJECTS))
def test_settings_object_defaults_are_the_schema_defaults(path):
    cls = SETTINGS_OBJECTS[path]
    ours = {k: v for k, v in dataclass_defaults(cls).items() if k not in RUNTIME_ONLY}
    schema = expected_defaults(path)
    assert set(f.name for f in fields(cls)) - RUNTIME_ONLY == set(schema_at(path)["properties"]), (
        f"{cls.__name__} and the schema's {path} name different settings"
    )
    for key, value in ours.items():  # a field the config must give has no default: nothing to drift
        assert key in schema, f"{cls.__name__}.{key} has a default ({value!r}) that the schema's {path} lacks"
        assert value == schema[key], f"{cls.__name__}.{key}: {value!r} here, {schema[key]!r} in the schema"


def test_labeling_defaults_are_the_schema_defaults():
    ours = {k: v for k, v in LABELING_DEFAULTS.items() if k not in RUNTIME_ONLY}
    assert ours == schema_defaults("labeling")


def test_aggregation_defaults_are_the_schema_defaults():
    from w2s.reasoning.scoring import DEFAULT_AGGREGATION
    from w2s.verifiers import DEFAULT_SETTINGS as AGGREGATION_DEFAULTS
    from w2s.verifiers import resolve_settings

    assert AGGREGATION_DEFAULTS == schema_defaults("$defs.aggregation")
    assert resolve_settings({}) == AGGREGATION_DEFAULTS
    # The reasoning track refines two defaults of the shared definition in the schema itself.
    assert DEFAULT_AGGREGATION == {**AGGREGATION_DEFAULTS, "aggregator": "mean", "drop_degenerate": False}
    assert set(schema_at("$defs.aggregation")["properties"]) == set(AGGREGATION_DEFAULTS)


def test_resolved_config_carries_every_aggregation_default():
    from w2s.config import resolve_config

    config = resolve_config(
        {
            "models": {"a": {"checkpoint": "x"}, "b": {"checkpoint": "y"}},
            "tasks": {
                "rotten_tomatoes": {"source": "builtin", "sizes": {"weak_train": 8, "transfer": 8, "val": 8, "test": 8}}
            },
            "weak": {"models": ["a"], "aggregated": {"vote": {"teachers": ["a"], "settings": {"normalize": "minmax"}}}},
            "strong": {"models": ["b"]},
        }
    )
    settings = config["weak"]["aggregated"]["vote"]["settings"]
    assert settings == {**schema_defaults("$defs.aggregation"), "normalize": "minmax"}


def test_a_drifted_default_is_caught():
    # The check itself can fail: a dataclass whose default differs from the schema's.
    from dataclasses import make_dataclass

    drifted = make_dataclass(
        "Drifted", [(f.name, object, 0.123 if f.name == "lr" else f.default) for f in fields(TrainSettings)]
    )
    assert dataclass_defaults(drifted)["lr"] != expected_defaults("weak.train")["lr"]


def test_defaults_from_schema_fills_fields_and_keeps_what_the_schema_lacks():
    from dataclasses import dataclass, field

    from w2s.schema import defaults_from_schema

    @dataclass(frozen=True)
    @defaults_from_schema("reasoning.sampling")
    class Sampling:
        extra: int  # not in the schema, no default: the caller must give it
        temperature: float
        stop: tuple  # the schema's [] becomes () (a dataclass default must be immutable)
        prompt: dict = field(default_factory=lambda: {"kept": True})

    made = Sampling(extra=3)
    assert made.temperature == schema_defaults("reasoning.sampling")["temperature"]
    assert made.stop == ()
    assert made.prompt == {"kept": True}
    with pytest.raises(TypeError):
        Sampling()  # `extra` has no default anywhere
