"""The label store's keys hold every config input that determines an artifact, and nothing else.

Each test walks the leaves of the config sections an artifact is computed from, changes one at a
time, and asserts that the key changes (a store miss: two teams that differ there never share an
entry). The runtime-only settings (``LABELING_RUNTIME_KEYS``, ``REASONING_ENGINE_RUNTIME_KEYS``) and
the sections that do not reach the artifact must leave the key alone, so teams still share.
"""

import copy
from pathlib import Path

import pytest
import yaml

from w2s import store_keys
from w2s.config import resolve_config
from w2s.label_store import label_key
from w2s.store_keys import (
    LABELING_RUNTIME_KEYS,
    REASONING_ENGINE_RUNTIME_KEYS,
    REASONING_SAMPLES,
    WEAK_LABELS,
    key_inputs,
    precision_settings,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED = 0


def example(name: str) -> dict:
    return resolve_config(yaml.safe_load((EXAMPLES / name).read_text()))


def leaves(node, path: tuple = ()):
    """Paths of every leaf under ``node``: scalars, lists and empty dicts."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    else:
        yield path


def changed(value):
    """Another value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 + 1
    if isinstance(value, str):
        return value + "-other"
    if isinstance(value, list):
        return [*value, value[0] if value else "other"]
    if isinstance(value, dict):
        return {"other": 1}
    return 1  # None


def with_leaf_changed(config: dict, path: tuple) -> dict:
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = changed(node[path[-1]])
    return config


def key(config: dict, artifact: str, task: str, name: str, seed: int = SEED) -> str:
    return label_key(key_inputs(config, artifact, task, seed, name))


def assert_section(
    config: dict, section: tuple, changes_key: bool, artifact: str, task: str, name: str, skip: set = frozenset()
) -> int:
    """Change each leaf under ``section`` in turn (but those in ``skip``); assert the key does or does not change."""
    base = key(config, artifact, task, name)
    node = config
    for part in section:
        node = node[part]
    checked = 0
    for leaf in leaves(node, section):
        if leaf[len(section) : len(section) + 1] and leaf[len(section)] in skip:
            continue
        other = key(with_leaf_changed(config, leaf), artifact, task, name)
        assert (other != base) == changes_key, (
            f"{'.'.join(map(str, leaf))} {'must' if changes_key else 'must not'} change the key"
        )
        checked += 1
    return checked


@pytest.fixture(scope="module")
def weak_config() -> dict:
    return example("weak_sources.yaml")


@pytest.fixture(scope="module")
def reasoning_config() -> dict:
    return example("reasoning_cpu.yaml")


def test_teachers_differing_only_by_seed_offset_never_share(weak_config):
    task = next(iter(weak_config["tasks"]))
    a, b = (key_inputs(weak_config, WEAK_LABELS, task, SEED, name) for name in ("minilm", "minilm_b"))
    assert a["weak_checkpoint"] == b["weak_checkpoint"]
    assert {k for k in a if a[k] != b[k]} == {"weak_seed_offset"}
    assert label_key(a) != label_key(b)


def test_every_input_of_the_weak_labels_changes_their_key(weak_config):
    task, weak = next(iter(weak_config["tasks"])), "minilm"
    checked = sum(
        assert_section(weak_config, section, True, WEAK_LABELS, task, weak, skip)
        # `source` is in the key through the task spec; a perturbed name would be no registered source
        for section, skip in (
            (("tasks", task), {"source"}),
            (("models", weak), set()),
            (("weak", "train"), set()),
            (("labeling",), LABELING_RUNTIME_KEYS),
        )
    )
    assert checked >= 25  # task spec and sizes, checkpoint and seed_offset, every training and labeling setting
    assert key(weak_config, WEAK_LABELS, task, weak, seed=SEED + 1) != key(weak_config, WEAK_LABELS, task, weak)
    for name, value in weak_config["weak"]["train"].items():  # a teacher's own override of one setting
        config = copy.deepcopy(weak_config)
        config["weak"]["overrides"][weak] = {"train": {name: changed(value)}}
        assert key(config, WEAK_LABELS, task, weak) != key(weak_config, WEAK_LABELS, task, weak), name


def test_runtime_settings_and_other_sections_leave_the_weak_key(weak_config):
    task, weak = next(iter(weak_config["tasks"])), "minilm"
    labeling_inputs = set(weak_config["labeling"]) - LABELING_RUNTIME_KEYS
    assert_section(weak_config, ("labeling",), False, WEAK_LABELS, task, weak, skip=labeling_inputs)
    for section in (
        ("models", "mpnet"),
        ("models", "minilm_b"),
        ("strong",),
        ("evaluation",),
        ("resources",),
        ("device",),
        ("seeds",),
    ):
        assert_section(weak_config, section, False, WEAK_LABELS, task, weak)
    other = copy.deepcopy(weak_config)
    other["weak"]["overrides"]["minilm_b"] = {"train": {"lr": 1.0}}  # another teacher's override
    assert key(other, WEAK_LABELS, task, weak) == key(weak_config, WEAK_LABELS, task, weak)


def test_every_input_of_the_reasoning_samples_changes_their_key(reasoning_config):
    task, generator = next(iter(reasoning_config["reasoning"]["tasks"])), "weak"
    own = reasoning_config["reasoning"][generator]["sampling"]  # the generator's own sampling wins over the shared
    model = reasoning_config["reasoning"][generator]["model"]
    checked = sum(
        assert_section(reasoning_config, section, True, REASONING_SAMPLES, task, generator, skip)
        for section, skip in (
            (("reasoning", "tasks", task), set()),
            (("models", model), {"seed_offset"}),  # unused by the reasoning track
            (("reasoning", "sampling"), set(own) - {"prompt"}),
            (("reasoning", generator, "sampling"), set()),
            (("reasoning", "samples_per_problem"), set()),
            (("reasoning", "engine"), REASONING_ENGINE_RUNTIME_KEYS),
        )
    )
    assert checked >= 15
    assert key(reasoning_config, REASONING_SAMPLES, task, generator, seed=SEED + 1) != key(
        reasoning_config, REASONING_SAMPLES, task, generator
    )
    config = copy.deepcopy(reasoning_config)
    config["models"]["other"] = {"checkpoint": "builtin:all-MiniLM-L6-v2", "seed_offset": 0}
    config["reasoning"][generator]["model"] = "other"
    assert key(config, REASONING_SAMPLES, task, generator) != key(reasoning_config, REASONING_SAMPLES, task, generator)


def test_runtime_settings_and_other_sections_leave_the_reasoning_key(reasoning_config):
    task, generator = next(iter(reasoning_config["reasoning"]["tasks"])), "weak"
    engine_inputs = set(reasoning_config["reasoning"]["engine"]) - REASONING_ENGINE_RUNTIME_KEYS
    assert_section(
        reasoning_config, ("reasoning", "engine"), False, REASONING_SAMPLES, task, generator, skip=engine_inputs
    )
    for section in (
        ("reasoning", "train"),
        ("reasoning", "students"),
        ("reasoning", "verifiers"),
        ("reasoning", "evaluation"),
        ("reasoning", "weaker", "sampling"),
        ("reasoning", "strong", "sampling"),
        ("resources",),
        ("device",),
    ):
        assert_section(reasoning_config, section, False, REASONING_SAMPLES, task, generator)


def test_the_weights_and_the_code_are_in_both_keys(weak_config, reasoning_config, tmp_path, monkeypatch):
    checkpoint = tmp_path / "model"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text('{"model_type": "bert"}')
    cases = (
        (weak_config, WEAK_LABELS, "minilm", ("prepare_data", "train_weak", "label_weak")),
        (reasoning_config, REASONING_SAMPLES, "weak", ("reasoning_problems", "reasoning_sample_base")),
    )
    for config, artifact, name, stages in cases:
        config = copy.deepcopy(config)
        model = name if artifact == WEAK_LABELS else config["reasoning"][name]["model"]
        config["models"][model]["checkpoint"] = str(checkpoint)
        task = next(iter(config["tasks"] if artifact == WEAK_LABELS else config["reasoning"]["tasks"]))
        before = key(config, artifact, task, name)
        (checkpoint / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')  # same path, new weights
        assert key(config, artifact, task, name) != before, artifact
        after_weights, real = key(config, artifact, task, name), store_keys.code_hash
        for stage in stages:
            monkeypatch.setattr(
                store_keys, "code_hash", lambda s, stage=stage, real=real: real(s) + ("+" if s == stage else "")
            )
            assert key(config, artifact, task, name) != after_weights, (artifact, stage)
        monkeypatch.setattr(store_keys, "code_hash", real)
        (checkpoint / "config.json").write_text('{"model_type": "bert"}')


def test_precision_settings_name_what_each_stage_resolves(weak_config, reasoning_config):
    config = copy.deepcopy(weak_config)
    config["weak"]["overrides"]["minilm"] = {"train": {"precision": "bf16"}}
    config["labeling"].update(engine="transformers", dtype="float16", device="cpu")
    assert precision_settings(config, WEAK_LABELS, "minilm") == {
        "train_precision": "bf16",
        "train_device": config["device"],
        "engine_dtype": "float16",
        "engine_device": "cpu",
    }
    assert precision_settings(weak_config, WEAK_LABELS, "minilm_b")["engine_device"] == "auto"  # vLLM: CUDA if visible
    assert precision_settings(reasoning_config, REASONING_SAMPLES, "weak") == {
        "engine_dtype": "auto",
        "engine_device": "auto",
    }
    with pytest.raises(ValueError, match="unknown store artifact 'features'"):
        precision_settings(weak_config, "features", "minilm")


def test_the_runtime_only_settings_are_exactly_the_documented_ones():
    """A setting leaves the keys only by a deliberate edit here: one that changes the artifact (a dtype,
    a length that cuts samples short) must never be declared runtime-only."""
    assert LABELING_RUNTIME_KEYS == {
        "batch_size",
        "max_num_seqs",
        "max_num_batched_tokens",
        "enforce_eager",
        "kv_cache_gb",
        "gpu_memory_utilization",
        "tensor_parallel_size",
    }
    assert REASONING_ENGINE_RUNTIME_KEYS == {
        "max_num_seqs",
        "enforce_eager",
        "kv_cache_gb",
        "gpu_memory_utilization",
        "tensor_parallel_size",
        "in_process",
    }


def test_the_labeling_engine_decides_where_its_dtype_resolves(weak_config):
    """vLLM takes CUDA whenever it is visible, whatever labeling.device says; the transformers engine
    runs on labeling.device, which a resolved config leaves unset (then ``auto``) unless it names one."""
    assert "device" not in weak_config["labeling"]

    def engine_device(**labeling):
        config = copy.deepcopy(weak_config)
        config["labeling"].update(labeling)
        return precision_settings(config, WEAK_LABELS, "minilm")["engine_device"]

    assert engine_device(engine="vllm", device="cpu") == "auto"
    assert engine_device(engine="transformers", device="cpu") == "cpu"
    assert engine_device(engine="transformers", device="cuda") == "cuda"
    assert engine_device(engine="transformers") == "auto"


def test_entries_record_their_key_inputs_under_stable_names(weak_config, reasoning_config):
    """entry.json records the key inputs as given here; ``w2s store list`` reads task, seed and the
    weak checkpoint from them, and a seed from a wildcard (a string) gives the same key as an int."""
    weak_task = next(iter(weak_config["tasks"]))
    weak = key_inputs(weak_config, WEAK_LABELS, weak_task, "3", "minilm")
    assert set(weak) == {
        "task",
        "task_spec",
        "task_source",
        "seed",
        "weak_checkpoint",
        "weak_seed_offset",
        "weak_fingerprint",
        "weak_train",
        "labeling",
        "code",
    }
    assert (weak["task"], weak["seed"]) == (weak_task, 3)
    assert weak["weak_checkpoint"] == weak_config["models"]["minilm"]["checkpoint"]
    assert weak == key_inputs(weak_config, WEAK_LABELS, weak_task, 3, "minilm")

    task = next(iter(reasoning_config["reasoning"]["tasks"]))
    samples = key_inputs(reasoning_config, REASONING_SAMPLES, task, "3", "weak")
    assert set(samples) == {
        "kind",
        "task",
        "task_spec",
        "seed",
        "checkpoint",
        "fingerprint",
        "sampling",
        "samples_per_split",
        "engine",
        "code",
    }
    assert (samples["kind"], samples["task"], samples["seed"]) == (REASONING_SAMPLES, task, 3)
    assert samples == key_inputs(reasoning_config, REASONING_SAMPLES, task, 3, "weak")
