"""What determines each kind of artifact the label store holds: the store keys, in one place.

The store (``w2s.label_store``) holds two kinds of artifact: a weak teacher's labels (classification)
and a base generator's samples (the reasoning track). An entry's key is the sha256 of its key inputs
(``label_store.label_key``): everything that determines the artifact, and nothing that does not (the
name a team gives a model, engine batch sizes). The store-fetch and store-publish rules of both kinds
read their keys from ``key_inputs``.

Precision settings enter a key as set (``auto`` stays ``auto``): what ``auto`` resolves to depends on
the device of the job that computes the artifact, which the DAG, built on a login node, cannot know.
``precision_settings`` gives the store-fetch job what to resolve on its device instead; the store
refuses an entry recorded at another precision (``w2s.label_store``).
"""

from __future__ import annotations

from .config import code_identity, task_extensions
from .experiments import model_reference, teacher_train_settings
from .fingerprint import code_hash
from .models import fingerprint
from .reasoning import plan

WEAK_LABELS = "weak_labels"
REASONING_SAMPLES = "reasoning_samples"

# Labeling settings that change speed or memory but not the labels.
LABELING_RUNTIME_KEYS = {
    "batch_size",
    "max_num_seqs",
    "max_num_batched_tokens",
    "enforce_eager",
    "kv_cache_gb",
    "gpu_memory_utilization",
    "tensor_parallel_size",
}
# reasoning.engine settings that change speed or memory but not the samples (max_model_len can cut a
# sample short, and dtype changes it: both are in the key).
REASONING_ENGINE_RUNTIME_KEYS = {
    "max_num_seqs",
    "enforce_eager",
    "kv_cache_gb",
    "gpu_memory_utilization",
    "tensor_parallel_size",
    "in_process",
}


def weak_labels_key_inputs(config: dict, task: str, seed: int, weak: str) -> dict:
    """Everything that determines a weak teacher's labels on transfer and test."""
    reference = model_reference(config, weak)
    return {
        "task": task,
        "task_spec": config["tasks"][task],
        # the rows' source: for a plugin task, the hash of its file or its package's version
        "task_source": code_identity(task_extensions(config, task)),
        "seed": int(seed),
        "weak_checkpoint": reference,
        "weak_seed_offset": config["models"][weak]["seed_offset"],
        "weak_fingerprint": fingerprint(reference),
        "weak_train": teacher_train_settings(config, weak),
        "labeling": {k: v for k, v in config["labeling"].items() if k not in LABELING_RUNTIME_KEYS},
        "code": {stage: code_hash(stage) for stage in ("prepare_data", "train_weak", "label_weak")},
    }


def reasoning_samples_key_inputs(config: dict, task: str, seed: int, generator: str) -> dict:
    """Everything that determines a base generator's samples: the problems, the model's weights,
    sampling settings and sample counts, the code."""
    reference = model_reference(config, plan.model_name(config, generator))
    return {
        "kind": "reasoning_samples",
        "task": task,
        "task_spec": config["reasoning"]["tasks"][task],
        "seed": int(seed),
        "checkpoint": reference,
        "fingerprint": fingerprint(reference),
        "sampling": plan.sampling(config, generator),
        "samples_per_split": plan.samples_per_split(config, generator),
        "engine": {k: v for k, v in config["reasoning"]["engine"].items() if k not in REASONING_ENGINE_RUNTIME_KEYS},
        "code": {stage: code_hash(stage) for stage in ("reasoning_problems", "reasoning_sample_base")},
    }


def precision_settings(config: dict, artifact: str, name: str) -> dict:
    """The precision settings of the stages that compute an entry, with the device each resolves them
    on, as ``w2s.label_store.expected_precision`` takes them: the labeling (or sampling) engine's dtype
    and, for weak labels, the teacher's training precision."""
    if artifact == WEAK_LABELS:
        labeling = config["labeling"]
        return {
            "train_precision": teacher_train_settings(config, name)["precision"],
            "train_device": config["device"],
            "engine_dtype": labeling["dtype"],
            # as labeling's _open_engine: vLLM takes CUDA when visible, transformers the labeling device
            "engine_device": "auto" if labeling["engine"] == "vllm" else labeling.get("device", "auto"),
        }
    if artifact == REASONING_SAMPLES:
        return {"engine_dtype": config["reasoning"]["engine"]["dtype"], "engine_device": "auto"}
    raise ValueError(f"unknown store artifact {artifact!r}; known: {ARTIFACTS}")


_KEY_INPUTS = {WEAK_LABELS: weak_labels_key_inputs, REASONING_SAMPLES: reasoning_samples_key_inputs}
ARTIFACTS = tuple(_KEY_INPUTS)


def key_inputs(config: dict, artifact: str, task: str, seed: int, name: str) -> dict:
    """The key inputs of one store entry: ``artifact`` (weak_labels or reasoning_samples) of the
    model ``name`` (a weak teacher or a base generator) for one task and seed."""
    return _KEY_INPUTS[artifact](config, task, seed, name)
