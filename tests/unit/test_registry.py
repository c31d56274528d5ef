"""The extension registry: registration, clashes, unknown names, typed options, entry points, and the
built-ins registered through it (losses, selection rules, aggregators, labeling functions, checks)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

import pytest

from w2s.losses import LOSSES
from w2s.registry import (
    AGGREGATOR_REGISTRY,
    ANSWER_CHECK_REGISTRY,
    LABELING_FUNCTION_REGISTRY,
    LOSS_REGISTRY,
    SELECTION_REGISTRY,
    Registry,
    RegistryError,
)


@dataclass(frozen=True)
class ScaleOptions:
    factor: float = 1.0
    rounds: int = 2
    mode: Literal["sum", "mean"] = "mean"
    label: str | None = None

    def __post_init__(self):
        if self.factor < 0:
            raise ValueError(f"factor={self.factor} must be >= 0")


def fresh(group: str = "w2s.test_nothing") -> Registry:
    """A registry of its own, so a test's names never leak into the package's."""
    return Registry("widget", group, "w2s.registry")


def test_register_get_and_options_defaults():
    registry = fresh()

    @registry.register("scale", options=ScaleOptions)
    def scale():
        return 1

    assert registry.get("scale") is scale
    assert registry.options("scale", {}) == ScaleOptions()
    assert registry.options("scale", {"factor": 2, "mode": "sum"}) == ScaleOptions(factor=2.0, mode="sum")
    assert isinstance(registry.options("scale", {"factor": 2}).factor, float)  # an int is a valid float


def test_two_registrations_of_one_name_name_both_sources(tmp_path, monkeypatch):
    registry = fresh()
    registry.register("twin")(type("First", (), {"__module__": __name__}))
    second = type("Second", (), {"__module__": "json"})
    with pytest.raises(RegistryError) as error:
        registry.register("twin")(second)
    message = str(error.value)
    assert "'twin'" in message and __name__ in message and "test_registry.py" in message
    assert "json (" in message and "json/__init__.py" in message


def test_the_same_source_registering_again_replaces():
    registry = fresh()

    def make():
        return type("Same", (), {"__module__": __name__, "__qualname__": "Same"})

    registry.register("same")(make())
    registry.register("same")(replacement := make())  # a re-import of the same module
    assert registry.get("same") is replacement


def test_unknown_name_lists_every_registered_name():
    registry = fresh()
    for name in ("alpha", "beta"):
        registry.register(name)(lambda: None)
    with pytest.raises(RegistryError, match=r"unknown widget 'gamma'; registered: \['alpha', 'beta'\]"):
        registry.get("gamma")
    with pytest.raises(RegistryError, match=r"unknown loss 'nope'; registered: \['entropy', 'kl', 'logconf'"):
        LOSS_REGISTRY.get("nope")


@pytest.mark.parametrize(
    "given, match",
    [
        (
            {"factr": 1.0},
            r"unknown option 'factr' for widget 'scale'; its options: \['factor', 'rounds', 'mode', 'label'\]",
        ),
        ({"rounds": 1.5}, r"widget 'scale' option 'rounds': expected <class 'int'>, got float 1.5"),
        ({"rounds": True}, r"option 'rounds': expected <class 'int'>, got bool"),
        ({"factor": "big"}, r"option 'factor': expected <class 'float'>, got str"),
        ({"mode": "max"}, r"option 'mode'"),
        ({"label": 3}, r"option 'label'"),
        ({"factor": -1.0}, r"widget 'scale' options \{'factor': -1.0\}: factor=-1.0 must be >= 0"),
    ],
)
def test_bad_options_name_the_option_and_the_extension(given, match):
    registry = fresh()
    registry.register("scale", options=ScaleOptions)(lambda: None)
    with pytest.raises(RegistryError, match=match):
        registry.options("scale", given)


def test_an_extension_without_options_takes_none():
    registry = fresh()
    registry.register("bare")(lambda: None)
    assert registry.options("bare", {}) is None
    with pytest.raises(RegistryError, match=r"widget 'bare' takes no options; got \['x'\]"):
        registry.options("bare", {"x": 1})


def test_options_must_be_a_dataclass():
    with pytest.raises(RegistryError, match="options must be a dataclass"):
        fresh().register("x", options=dict)


def test_entry_points_register_installed_extensions(tmp_path, monkeypatch):
    """A package declaring an entry point in the registry's group: its object is registered under the
    entry point's name, its source names the distribution and version."""
    (tmp_path / "w2s_ep_demo.py").write_text("class Demo:\n    pass\n")
    dist = tmp_path / "w2s_ep_demo-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: w2s-ep-demo\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[w2s.test_widgets]\ndemo = w2s_ep_demo:Demo\n")
    (dist / "RECORD").write_text("w2s_ep_demo.py,,\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = fresh("w2s.test_widgets")
    registry.register("local")(lambda: None)
    assert registry.names() == ["local", "demo"]
    entry = registry.entry("demo")
    assert entry.obj is sys.modules["w2s_ep_demo"].Demo
    assert entry.source == "entry point w2s.test_widgets:demo (w2s-ep-demo 1.2.3)"
    from w2s.plugins import provenance

    # the package's name and version identify its code (the rerun trigger and the provenance)
    assert provenance(entry)["plugin"]["source"] == "w2s-ep-demo 1.2.3"


def test_a_failing_entry_point_names_itself(tmp_path, monkeypatch):
    (tmp_path / "w2s_ep_broken.py").write_text("raise RuntimeError('boom')\n")
    dist = tmp_path / "w2s_ep_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: w2s-ep-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[w2s.test_broken]\nbad = w2s_ep_broken:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RegistryError, match=r"entry point 'bad' of group 'w2s.test_broken' .*RuntimeError: boom"):
        fresh("w2s.test_broken").names()


def test_builtins_are_registered_through_the_registries():
    assert list(LOSSES)[:6] == ["xent", "xent_hard", "kl", "product", "entropy", "logconf"]
    assert LOSSES["logconf"] is LOSS_REGISTRY.get("logconf")
    with pytest.raises(TypeError):
        LOSSES["mine"] = object  # a read-only view
    assert {"none", "confidence"} <= set(SELECTION_REGISTRY.names())
    assert AGGREGATOR_REGISTRY.names()[:6] == ["first", "majority", "mean", "best_single", "label_model", "logistic"]
    assert {"lexicon", "contrast_clause", "phrases", "hedges"} <= set(LABELING_FUNCTION_REGISTRY.names())
    assert {"consistency", "arithmetic", "format", "confidence"} <= set(ANSWER_CHECK_REGISTRY.names())


def test_an_unknown_aggregator_is_an_error_not_logistic():
    from w2s.verifiers import resolve_settings

    with pytest.raises(ValueError, match=r"aggregator='logistik': must be a registered aggregator: \['first'"):
        resolve_settings({"aggregator": "logistik"})
