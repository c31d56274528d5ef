# Shared declarations: the resolved config, the experiment grid, wildcard constraints and the
# input/params functions that several rules use. Logic lives in the w2s package.
# Every output goes under results/ (run elsewhere with `snakemake --directory DIR`).

import functools
import json
import re
import shlex
import sys

from snakemake.settings.types import DeploymentMethod

from w2s.config import resolve_config
from w2s.experiments import (
    experiment_grid,
    method_spec,
    model_reference,
    strong_spec,
    task_spec,
    teacher_train_settings,
    weak_label_key_inputs,
    weak_sources,
)
from w2s.fingerprint import code_hash
from w2s.label_store import computed_locally, has_entry, label_key, made_for_key
from w2s.reasoning import plan as reasoning_plan
from w2s.resources import rule_resources, stage_threads, tensor_parallel_size

CFG = resolve_config(config)
GRID = experiment_grid(CFG)

SPLITS = ["weak_train", "transfer", "val", "test"]
LABELED_SPLITS = ["transfer", "test"]
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
# Software for `--sdm conda` (clusters); the CPU path uses the virtualenv from `make env`.
CONDA_ENV = "../../envs/cuda.yaml"
# Every rule runs the package with the interpreter that runs Snakemake (the Slurm executor starts the
# same one on the nodes), so a bare `.venv/bin/snakemake` works without the venv on PATH. With
# `--sdm conda` the job's environment brings its own `python`, first on PATH. `w2s` in a shell command
# is a shell function defined in the prefix, so `snakemake --lint` sees no outside variable; Snakemake
# formats the prefix like a command, hence the doubled braces.
_PYTHON = "python" if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method else sys.executable
_W2S_FUNCTION = f'w2s() {{ {shlex.quote(_PYTHON)} -m w2s "$@"; }}'
_ESCAPED_W2S_FUNCTION = _W2S_FUNCTION.replace("{", "{{").replace("}", "}}")
shell.prefix(f"set -euo pipefail; {_ESCAPED_W2S_FUNCTION}; ")


# Light stages run on the submitting machine; GPU stages go to the executor (Slurm with a profile).
localrules:
    all,
    prepare_data,
    evaluate,
    summarize,


wildcard_constraints:
    task=NAME,
    weak=NAME,
    strong=NAME,
    loss=NAME,
    method=NAME,
    generator=NAME,
    seed=r"\d+",


LABEL_STORE = CFG["label_store"]
# Named as an input when the store has no entry: no rule makes it, so label_weak runs instead.
STORE_MISS = "label-store-miss/{task}/seed{seed}/{weak}"


@functools.cache
def _weak_label_key(task, seed, weak):
    return label_key(weak_label_key_inputs(CFG, task, seed, weak))


def weak_label_key(wildcards):
    return _weak_label_key(wildcards.task, str(wildcards.seed), wildcards.weak)


def fetch_or_miss(manifest, key, made_here, miss):
    """Inputs of a store-fetch rule: the data manifest, plus ``miss`` (a file no rule makes, so the
    producing rule runs instead) unless the store holds ``key`` and ``made_here()`` is false."""
    inputs = {"manifest": manifest}
    if not (LABEL_STORE and has_entry(LABEL_STORE, key) and not made_here()):
        inputs["store_miss"] = miss
    return inputs


def store_fetch_inputs(wildcards):
    """Fetch when the store has the labels, unless this run computed them itself for this key."""
    weak_dir = "results/{task}/seed{seed}/weak/{weak}".format(**wildcards)
    key = weak_label_key(wildcards)
    return fetch_or_miss(
        "results/{task}/seed{seed}/data/manifest.json".format(**wildcards),
        key,
        lambda: computed_locally(f"{weak_dir}/labels/transfer.parquet", f"{weak_dir}/model", key),
        STORE_MISS.format(**wildcards),
    )


def store_publish_targets(wildcards):
    if not LABEL_STORE:
        return []
    return sorted(
        {
            f"results/{e.task}/seed{e.seed}/weak/{e.weak}/labels/store_entry.json"
            for e in GRID
            if e.weak in CFG["weak"]["models"]
        }
    )


def name_pattern(names):
    """A wildcard constraint matching exactly these names (nothing, if there are none)."""
    return "|".join(re.escape(name) for name in names) or "(?!x)x"


TEACHERS = name_pattern(CFG["weak"]["models"])
ENSEMBLES = name_pattern(CFG["weak"]["ensembles"])
DEGRADED = name_pattern(CFG["weak"]["degraded"])
AGGREGATED = name_pattern(CFG["weak"]["aggregated"])


def teacher_seed(wildcards):
    return int(wildcards.seed) + CFG["models"][wildcards.weak]["seed_offset"]


def labels_of(wildcards, source, split):
    return f"results/{wildcards.task}/seed{wildcards.seed}/weak/{source}/labels/{split}.parquet"


def ensemble_inputs(wildcards):
    members = CFG["weak"]["ensembles"][wildcards.weak]["members"]
    return [labels_of(wildcards, m, split) for m in members for split in LABELED_SPLITS]


def ensemble_member_args(wildcards):
    members = CFG["weak"]["ensembles"][wildcards.weak]["members"]
    return " ".join(f"{m}={os.path.dirname(labels_of(wildcards, m, 'test'))}" for m in members)


def aggregated_teachers(wildcards):
    return CFG["weak"]["aggregated"][wildcards.weak]["teachers"]


def aggregated_inputs(wildcards):
    return [
        labels_of(wildcards, t, split)
        for t in aggregated_teachers(wildcards)
        for split in LABELED_SPLITS
    ]


def aggregated_teacher_args(wildcards):
    return " ".join(
        f"{t}={os.path.dirname(labels_of(wildcards, t, 'test'))}"
        for t in aggregated_teachers(wildcards)
    )


def verifier_reports(wildcards):
    return sorted(
        {
            f"results/{e.task}/seed{e.seed}/weak/{e.weak}/verifier_evaluation.json"
            for e in GRID
            if e.weak in CFG["weak"]["aggregated"]
        }
    )


def degraded_source_inputs(wildcards):
    source = CFG["weak"]["degraded"][wildcards.weak]["source"]
    return [labels_of(wildcards, source, split) for split in LABELED_SPLITS]


def as_json(value):
    """Compact, key-sorted JSON: a stable command-line argument and params value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def metrics_files(wildcards):
    return [
        f"results/{e.task}/seed{e.seed}/metrics/{e.weak}/{e.strong}/{e.method}.json"
        for e in GRID
    ]


def feature_inputs(wildcards):
    """Frozen features of transfer and test, needed only in linear_probe mode."""
    if strong_spec(CFG, wildcards.strong)["mode"] != "linear_probe":
        return {}
    prefix = "results/{task}/seed{seed}/strong/{strong}/features/".format(**wildcards)
    return {f"features_{split}": f"{prefix}{split}.parquet" for split in LABELED_SPLITS}


def feature_args(wildcards, input):
    return " ".join(
        f"{split}={input[f'features_{split}']}"
        for split in LABELED_SPLITS
        if f"features_{split}" in input.keys()
    )


STRONG_PARAMS = dict(
    model_ref=lambda w: model_reference(CFG, w.strong),
    spec=lambda w: as_json(strong_spec(CFG, w.strong)),
    seed=lambda w: w.seed,
    device=CFG["device"],
    features=feature_args,
)


def classification_targets(wildcards):
    """The summary tables and plots, when the config has a classification grid."""
    if not GRID:
        return []
    return [*rules.summarize.output, *rules.plots.output]


# ------------------------------------------------------------------ the generative reasoning track

REASONING = CFG.get("reasoning") or {}
R_BASE = reasoning_plan.base_generators(CFG) if REASONING else []
R_TRAINED = list(reasoning_plan.trained_models(CFG)) if REASONING else []
R_ROOT = "results/reasoning/{task}/seed{seed}"


def reasoning_metrics_files(wildcards):
    if not REASONING:
        return []
    return [
        f"results/reasoning/{task}/seed{seed}/metrics.json"
        for task in REASONING["tasks"]
        for seed in CFG["seeds"]
    ]


def reasoning_train_set_inputs(wildcards):
    method = reasoning_plan.trained_models(CFG)[wildcards.generator]
    root = R_ROOT.format(**wildcards)
    inputs = {
        f"samples_{g}": f"{root}/samples/{g}.parquet"
        for g in reasoning_plan.train_set_inputs(CFG, wildcards.generator)
    }
    if reasoning_plan.reads_weak_scores(method):
        inputs["weak_scores"] = f"{root}/scores/weak.parquet"
    return inputs


def reasoning_sample_args(wildcards, input):
    return " ".join(
        f"{key[len('samples_'):]}={path}"
        for key, path in input.items()
        if key.startswith("samples_")
    )


def reasoning_generator_files(wildcards):
    root = R_ROOT.format(**wildcards)
    files = {}
    for g in reasoning_plan.generators(CFG):
        files[f"samples_{g}"] = f"{root}/samples/{g}.parquet"
        files[f"scores_{g}"] = f"{root}/scores/{g}.parquet"
    return files


def reasoning_generator_specs(wildcards, input):
    return as_json(
        {
            g: {
                "role": reasoning_plan.role(CFG, g),
                "samples": input[f"samples_{g}"],
                "scores": input[f"scores_{g}"],
                "uses_gold": reasoning_plan.student_uses_gold(CFG, g),
            }
            for g in reasoning_plan.generators(CFG)
        }
    )


def reasoning_n_arg(wildcards):
    """``--n`` of a sampling job: SPLIT=N for each split the generator samples."""
    per_split = reasoning_plan.samples_per_split(CFG, wildcards.generator)
    return " ".join(f"{split}={n}" for split, n in per_split.items())


def reasoning_sampling_arg(wildcards):
    return as_json(reasoning_plan.sampling(CFG, wildcards.generator))


def reasoning_engine(rule):
    """vLLM settings of a sampling rule's jobs: tensor parallelism over every GPU the job is granted."""
    return as_json(
        {**REASONING.get("engine", {}), "tensor_parallel_size": tensor_parallel_size(CFG, rule)}
    )


# Reasoning samples of the base generators are shared through label_store like weak labels.
REASONING_STORE_MISS = "label-store-miss/reasoning/{task}/seed{seed}/{generator}"


@functools.cache
def _reasoning_sample_key(task, seed, generator):
    return label_key(reasoning_plan.sample_key_inputs(CFG, task, seed, generator))


def reasoning_sample_key(wildcards):
    return _reasoning_sample_key(wildcards.task, str(wildcards.seed), wildcards.generator)


def reasoning_sample_provenance(wildcards):
    """Base generators' samples name their store key; trained generators' samples are never shared."""
    shared = LABEL_STORE and wildcards.generator in R_BASE
    key = reasoning_sample_key(wildcards) if shared else None
    return as_json({"task": wildcards.task, "seed": int(wildcards.seed), "store_key": key})


def reasoning_fetch_inputs(wildcards):
    """Fetch when the store has these samples, unless this run sampled them itself for this key."""
    root = R_ROOT.format(**wildcards)
    key = reasoning_sample_key(wildcards) if LABEL_STORE else None
    return fetch_or_miss(
        f"{root}/problems/manifest.json",
        key,
        lambda: made_for_key(f"{root}/samples/{wildcards.generator}.parquet", key),
        REASONING_STORE_MISS.format(**wildcards),
    )


def reasoning_targets(wildcards):
    """Every reasoning experiment's metrics and the summary over tasks and seeds."""
    if not REASONING:
        return []
    return [
        *reasoning_metrics_files(wildcards),
        "results/reasoning/summary.csv",
        "results/reasoning/summary_by_seed.csv",
    ]


def reasoning_publish_targets(wildcards):
    if not (LABEL_STORE and REASONING):
        return []
    return [
        f"results/reasoning/{task}/seed{seed}/samples/{g}.store_entry.json"
        for task in REASONING["tasks"]
        for seed in CFG["seeds"]
        for g in R_BASE
    ]
