"""Config validation, defaults and the experiment grid."""

from pathlib import Path

import pytest
import yaml

from w2s.config import ConfigError, resolve_config
from w2s.experiments import Experiment, experiment_grid
from w2s.train import TrainSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_default_config_is_valid_and_gets_defaults(config):
    resolved = resolve_config(config)
    assert resolved["labeling"]["engine"] == "vllm"
    assert resolved["weak"]["train"]["max_length"] == 128
    assert resolved["strong"]["probe"]["l2"] > 0
    assert resolved["tasks"]["rotten_tomatoes"]["sizes"]["val"] == 250
    assert config.get("labeling", {}).get("max_length") is None, "resolve_config must not mutate its input"


def test_typo_is_rejected_naming_the_key(config):
    config["strong"]["lerning_rate"] = 1e-3
    with pytest.raises(ConfigError, match=r"strong: .*'lerning_rate' was unexpected"):
        resolve_config(config)


def test_wrong_type_is_rejected_naming_the_key(config):
    config["tasks"]["rotten_tomatoes"]["sizes"]["test"] = "many"
    with pytest.raises(ConfigError, match=r"tasks\.rotten_tomatoes\.sizes\.test: 'many' is not of type 'integer'"):
        resolve_config(config)


def test_unknown_model_reference_is_rejected(config):
    config["weak"]["models"] = ["gpt2"]
    with pytest.raises(ConfigError, match=r"weak\.models: 'gpt2' is not defined under `models`"):
        resolve_config(config)


def test_hf_task_needs_a_dataset_name(config):
    config["tasks"]["sst2"] = {"source": "hf", "sizes": {"weak_train": 1, "transfer": 1, "test": 1}}
    with pytest.raises(ConfigError, match=r"tasks\.sst2: source 'hf' needs `name`"):
        resolve_config(config)


def test_grid_is_the_product_of_tasks_seeds_and_models(config):
    config["seeds"] = [0, 1]
    config["models"]["other"] = {"checkpoint": "/some/path"}
    config["weak"]["models"] = ["minilm", "other"]
    grid = experiment_grid(resolve_config(config))
    assert len(grid) == 2 * 2 * len(config["strong"]["methods"])
    assert Experiment("rotten_tomatoes", 1, "other", "mpnet", "logconf") in grid


def test_train_settings_reject_unknown_keys():
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainSettings.from_config({"epochz": 1})


def test_ensembles_and_degraded_sources_join_the_weak_axis(config):
    config["models"]["minilm_b"] = {"checkpoint": "builtin:all-MiniLM-L6-v2", "seed_offset": 1}
    config["weak"]["models"] = ["minilm", "minilm_b"]
    config["weak"]["ensembles"] = {"pair": {"members": ["minilm", "minilm_b"]}}
    config["weak"]["degraded"] = {"pair_acc60": {"source": "pair", "target_accuracy": 0.6}}
    config["strong"]["methods"] = {"xent": {}}
    resolved = resolve_config(config)
    assert [e.weak for e in experiment_grid(resolved)] == ["minilm", "minilm_b", "pair", "pair_acc60"]
    assert resolved["weak"]["ensembles"]["pair"]["combine"] == "mean"


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda w: w["ensembles"].update(pair={"members": ["minilm", "nope"]}),
            r"members: \['nope'\] are not in weak.models",
        ),
        (lambda w: w["degraded"].update(bad={"source": "nope", "target_accuracy": 0.5}), r"source: 'nope' is not in"),
        (lambda w: w["ensembles"].update(minilm={"members": ["minilm", "minilm"]}), r"non-unique|more than one"),
    ],
)
def test_weak_source_errors_name_the_key(config, change, message):
    config["weak"].setdefault("ensembles", {})
    config["weak"].setdefault("degraded", {})
    change(config["weak"])
    with pytest.raises(ConfigError, match=message):
        resolve_config(config)


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_are_valid(path):
    resolved = resolve_config(yaml.safe_load(path.read_text()))
    assert experiment_grid(resolved) or resolved.get("reasoning", {}).get("students")


def _family(config: dict) -> dict:
    """Three models as weak and strong, as in a model-family grid."""
    for name in ("small", "medium", "large"):
        config["models"][name] = {"checkpoint": f"/models/{name}"}
    config["weak"]["models"] = ["small", "medium"]
    config["strong"]["models"] = ["medium", "large"]
    config["strong"]["methods"] = {"xent": {}}
    return config


def test_pairs_restrict_the_grid_to_the_named_weak_strong_pairs(config):
    config = _family(config)
    assert len(experiment_grid(resolve_config(config))) == 4
    config["strong"]["pairs"] = [["small", "medium"], ["small", "large"], ["medium", "large"]]
    grid = experiment_grid(resolve_config(config))
    assert [(e.weak, e.strong) for e in grid] == [("small", "medium"), ("small", "large"), ("medium", "large")]


def test_pairs_must_name_models_of_their_role(config):
    config = _family(config)
    config["strong"]["pairs"] = [["large", "medium"]]
    with pytest.raises(ConfigError, match=r"strong\.pairs: 'large' is not a weak source"):
        resolve_config(config)


def test_overrides_replace_only_the_keys_given_for_that_model(config):
    from w2s.experiments import strong_spec, teacher_train_settings

    config = _family(config)
    config["strong"]["mode"] = "full_finetune"
    config["strong"]["overrides"] = {"large": {"mode": "lora", "train": {"batch_size": 4}, "lora": {"r": 16}}}
    config["weak"]["overrides"] = {"medium": {"train": {"lr": 1e-5}}}
    resolved = resolve_config(config)
    large, medium = strong_spec(resolved, "large"), strong_spec(resolved, "medium")
    assert (large["mode"], large["train"]["batch_size"], large["lora"]["r"]) == ("lora", 4, 16)
    assert large["train"]["lr"] == medium["train"]["lr"] == resolved["strong"]["train"]["lr"]
    assert (medium["mode"], medium["train"]["batch_size"], medium["lora"]["r"]) == ("full_finetune", 16, 8)
    assert teacher_train_settings(resolved, "medium")["lr"] == 1e-5
    assert teacher_train_settings(resolved, "small") == resolved["weak"]["train"]


def test_overrides_are_validated_like_the_section_they_replace(config):
    config = _family(config)
    config["strong"]["overrides"] = {"large": {"train": {"batch_size": 0}}}
    with pytest.raises(ConfigError, match=r"strong\.overrides\.large\.train: 0 is less than the minimum"):
        resolve_config(config)
    config["strong"]["overrides"] = {"small": {"mode": "lora"}}
    with pytest.raises(ConfigError, match=r"strong\.overrides\.small: not in strong\.models"):
        resolve_config(config)
