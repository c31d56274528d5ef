"""Plugins: the example plugin's losses and aggregator against hand-computed values, loading files and
modules (and their errors), the config's checks after loading, provenance, and the loss guard."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from w2s import plugins
from w2s.config import ConfigError, code_identity, method_extensions, plugin_entries, resolve_config
from w2s.losses import LossError, build_loss
from w2s.methods import Method
from w2s.registry import AGGREGATOR_REGISTRY, LOSS_REGISTRY, SELECTION_REGISTRY

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "plugins"
LN3 = math.log(3.0)
LOGITS = [[0.0, LN3]]  # student probabilities (1/4, 3/4)
REGISTRIES = (LOSS_REGISTRY, AGGREGATOR_REGISTRY, SELECTION_REGISTRY)


def forget_new(before: dict) -> None:
    """Unregister what was registered and loaded since ``before``, so no test's plugin leaks."""
    for registry in REGISTRIES:
        for name in set(registry.names()) - before[registry.kind]:
            registry.unregister(name)
    for module in set(plugins.LOADED) - before["loaded"]:
        del plugins.LOADED[module]


@pytest.fixture
def clean():
    before = {r.kind: set(r.names()) for r in REGISTRIES} | {"loaded": set(plugins.LOADED)}
    yield
    forget_new(before)


@pytest.fixture
def example(clean):
    return plugins.load_plugins(["my_losses.py", "my_aggregators.py"], EXAMPLES)


def value(name: str, weak, **options) -> float:
    return build_loss(name, **options)(torch.tensor(LOGITS), torch.tensor(weak), 0.0).item()


def test_generalized_cross_entropy_hand_computed(example):
    # q = 0.5, weak one-hot on class 0: (1 - (1/4)^0.5) / 0.5 = 1
    assert value("gce", [[1.0, 0.0]], q=0.5) == pytest.approx(1.0, rel=1e-6)
    # weak (1/2, 1/2): 0.5 (1 - 1/2) / 0.5 + 0.5 (1 - sqrt(3/4)) / 0.5 = 1.5 - sqrt(3)/2
    assert value("gce", [[0.5, 0.5]], q=0.5) == pytest.approx(1.5 - math.sqrt(3) / 2, rel=1e-6)
    # q = 1 is the mean absolute error on the probabilities: 1 - 1/4
    assert value("gce", [[1.0, 0.0]], q=1.0) == pytest.approx(0.75, rel=1e-6)


def test_soft_bootstrapping_hand_computed(example):
    # beta 0.5: target 0.5 (1, 0) + 0.5 (1/4, 3/4) = (5/8, 3/8); -(5/8 ln 1/4 + 3/8 ln 3/4)
    expected = 5 / 8 * math.log(4) + 3 / 8 * math.log(4 / 3)
    assert value("bootstrap_soft", [[1.0, 0.0]], beta=0.5) == pytest.approx(expected, rel=1e-6)
    # beta 1 is cross-entropy against the weak labels
    assert value("bootstrap_soft", [[1.0, 0.0]], beta=1.0) == pytest.approx(math.log(4), rel=1e-6)


def test_soft_bootstrapping_gradient_includes_the_entropy_term(example):
    """The student's share of the target is not detached: d/dz of beta xent + (1 - beta) H(q)."""
    logits = torch.tensor(LOGITS, requires_grad=True)
    build_loss("bootstrap_soft", beta=0.5)(logits, torch.tensor([[1.0, 0.0]]), 0.0).backward()
    q = torch.tensor([0.25, 0.75])
    xent_grad = q - torch.tensor([1.0, 0.0])
    log_q = torch.log(q)
    entropy_grad = -q * (log_q - (q * log_q).sum())  # dH/dz_j = -q_j (log q_j - sum_k q_k log q_k)
    torch.testing.assert_close(logits.grad[0], 0.5 * xent_grad + 0.5 * entropy_grad)


def test_hard_bootstrapping_hand_computed(example):
    # the student's argmax is class 1: target 0.8 (1, 0) + 0.2 (0, 1); 0.8 ln 4 + 0.2 ln 4/3
    expected = 0.8 * math.log(4) + 0.2 * math.log(4 / 3)
    assert value("bootstrap_hard", [[1.0, 0.0]]) == pytest.approx(expected, rel=1e-6)  # default beta 0.8


def test_logit_mean_aggregator_hand_computed(example):
    from w2s.verifiers.builtins import ApplyContext

    normalized = np.array([[0.9, 0.5], [0.2, np.nan], [np.nan, np.nan]])
    aggregator = AGGREGATOR_REGISTRY.get("logit_mean")(**{"clip": 0.01})
    scores = aggregator.apply(ApplyContext({}, ["a", "b"], normalized, normalized, 0.3), {})
    # row 0: mean(ln 9, 0) = ln 3 -> 3/4; row 1: 0.2 itself; row 2: nobody votes -> the prior
    np.testing.assert_allclose(scores, [0.75, 0.2, 0.3], rtol=1e-9)


def test_plugin_options_are_checked(example):
    with pytest.raises(ValueError, match=r"unknown option 'beta' for loss 'gce'; its options: \['q'\]"):
        build_loss("gce", beta=0.3)
    with pytest.raises(ValueError, match=r"loss 'gce' options \{'q': 0.0\}: q=0.0 must be in \(0, 1\]"):
        build_loss("gce", q=0.0)


def test_missing_and_broken_plugins_name_the_entry(tmp_path, clean):
    with pytest.raises(plugins.PluginError, match=r"plugin 'absent.py': no such file .*absent.py"):
        plugins.load_plugins(["absent.py"], tmp_path)
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(
        plugins.PluginError,
        match=r"plugin 'broken.py' \(.*broken.py\) failed to import: ModuleNotFoundError: .*not_a_module",
    ):
        plugins.load_plugins(["broken.py"], tmp_path)
    with pytest.raises(plugins.PluginError, match=r"plugin 'no_such_module_xyz' failed to import: ModuleNotFoundError"):
        plugins.load_plugins(["no_such_module_xyz"])


def test_a_plugin_registering_a_builtin_name_is_an_error_naming_both(tmp_path, clean):
    (tmp_path / "clash.py").write_text(
        "from w2s.registry import LOSS_REGISTRY\n\n@LOSS_REGISTRY.register('xent')\nclass Mine:\n    pass\n"
    )
    with pytest.raises(
        plugins.PluginError,
        match=r"loss 'xent' is registered twice: by w2s.losses \(.*losses.py\) "
        r"and by w2s_plugin_clash_\w+ \(.*clash.py\)",
    ):
        plugins.load_plugins(["clash.py"], tmp_path)


def config_with(method: dict, tmp_path: Path, entries=("my_losses.py",)) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["strong"]["methods"] = {"mine": method}
    config["plugins"] = [str(EXAMPLES / e) for e in entries]
    return copy.deepcopy(config)


def test_config_loads_plugins_then_checks_names_and_options(tmp_path, clean):
    resolved = resolve_config(config_with({"loss": "gce", "loss_options": {"q": 0.5}}, tmp_path))
    assert resolved["plugins"] == [str(EXAMPLES / "my_losses.py")]
    with pytest.raises(ConfigError, match=r"strong.methods.mine: unknown loss 'gcee'; registered: \[.*'gce'.*\]"):
        resolve_config(config_with({"loss": "gcee"}, tmp_path))
    with pytest.raises(ConfigError, match=r"strong.methods.mine: unknown option 'qq' for loss 'gce'"):
        resolve_config(config_with({"loss": "gce", "loss_options": {"qq": 0.5}}, tmp_path))
    with pytest.raises(ConfigError, match=r"strong.methods.mine: unknown selection rule 'loud'"):
        resolve_config(config_with({"weighting": "loud"}, tmp_path))
    with pytest.raises(ConfigError, match=r"plugins: plugin 'nothing_here.py': no such file"):
        resolve_config({**config_with({}, tmp_path), "plugins": ["nothing_here.py"]}, base_dir=tmp_path)


def test_relative_plugin_paths_resolve_against_the_config_directory(tmp_path, clean):
    config = config_with({"loss": "bootstrap_hard"}, tmp_path)
    config["plugins"] = ["my_losses.py"]
    assert resolve_config(config, base_dir=EXAMPLES)["plugins"] == [str(EXAMPLES / "my_losses.py")]


def test_provenance_names_the_plugin_file_and_its_hash(example):
    import hashlib

    extensions = method_extensions({"loss": "gce"})
    loss, selection = extensions
    assert loss["name"] == "gce" and loss["plugin"]["entry"] == str(EXAMPLES / "my_losses.py")
    assert loss["plugin"]["source"] == "sha256:" + hashlib.sha256((EXAMPLES / "my_losses.py").read_bytes()).hexdigest()
    assert selection == {"name": "none", "source": selection["source"], "plugin": None}
    assert plugin_entries(extensions) == [str(EXAMPLES / "my_losses.py")]
    assert plugin_entries(method_extensions({"loss": "logconf"})) == []  # built-ins need no plugin
    # the rerun trigger: the plugin's hash and no path, so moving the directory reruns nothing
    assert code_identity(extensions) == [
        {"name": "gce", "plugin": loss["plugin"]["source"]},
        {"name": "none", "plugin": None},
    ]


@pytest.mark.parametrize(
    "body, match",
    [
        ("return (logits * 0).sum() + float('nan')", r"loss 'bad' returned nan \(not finite\)"),
        ("return -(weak * logits.log_softmax(-1)).sum(-1)", r"loss 'bad' returned \(2,\); it must return a scalar"),
    ],
)
def test_a_loss_returning_nan_or_the_wrong_shape_fails_naming_the_loss(tmp_path, clean, body, match):
    (tmp_path / "bad.py").write_text(
        "from w2s.registry import LOSS_REGISTRY\n\n@LOSS_REGISTRY.register('bad')\n"
        f"class Bad:\n    def __call__(self, logits, weak, progress=0.0, weights=None):\n"
        f"        {body}\n"
    )
    plugins.load_plugins(["bad.py"], tmp_path)
    loss = Method.from_config({"loss": "bad"}).build_loss(np.eye(2, dtype=np.float32))
    with pytest.raises(LossError, match=match):
        loss(torch.zeros(2, 2), torch.eye(2), 0.0)
