# Shared declarations: the resolved config, the experiment grid, wildcard constraints and the
# input/params functions that several rules use. Logic lives in the w2s package.
# Every output goes under results/ (run elsewhere with `snakemake --directory DIR`), at the paths
# declared once, as named patterns, in w2s/paths.py (DATA_SPLIT, WEAK_LABELS, LOG(rule), ...).

import functools
import json
import os
import re
import shlex
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

from w2s.config import (
    aggregation_extensions,
    code_identity,
    method_extensions,
    plugin_entries,
    resolve_config,
    resolved_method,
    task_extensions,
)
from w2s.experiments import (
    experiment_grid,
    feature_settings,
    method_spec,
    model_reference,
    strong_spec,
    task_spec,
    teacher_train_settings,
    weak_sources,
)
from w2s.fingerprint import code_hash
from w2s.generalization import confidence_bands
from w2s.results_store import comparability_inputs, team_name
from w2s.label_store import computed_locally, has_entry, label_key, made_for_key
from w2s.paths import *  # the named path patterns every rule uses
from w2s.reasoning import plan as reasoning_plan
from w2s.resources import rule_resources, stage_threads, tensor_parallel_size
from w2s.store_keys import key_inputs, precision_settings

# `plugins:` files resolve against the directory of the (last) config file, else the working directory.
_CONFIG_FILES = list(workflow.overwrite_configfiles or workflow.configfiles)
CFG = resolve_config(config, base_dir=Path(_CONFIG_FILES[-1]).resolve().parent if _CONFIG_FILES else None)
GRID = experiment_grid(CFG)
METHODS = list(CFG["strong"]["methods"])


def per_method(pattern):
    """``pattern`` once per method of the grid, in METHODS order, its other wildcards left open."""
    return expand(pattern, method=METHODS, allow_missing=True)


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
    method=NAME,
    generator=NAME,
    seed=r"\d+",


LABEL_STORE = CFG["label_store"]


def plugin_args(extensions):
    """``--plugin ENTRY`` for each plugin that provides one of ``extensions`` (a job imports them first).
    A file is given relative to the working directory, where every job runs (on any node of a shared
    filesystem), so moving the whole directory reruns nothing."""
    entries = [entry if not entry.startswith("/") else os.path.relpath(entry) for entry in plugin_entries(extensions)]
    return " ".join(f"--plugin {shlex.quote(entry)}" for entry in entries)


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
    return WEAK_LABELS.format(task=wildcards.task, seed=wildcards.seed, weak=source, split=split)


def source_files(sources):
    """Input function: the weak labels of each source, transfer and test, source by source."""
    return lambda w: [labels_of(w, s, split) for s in sources(w) for split in LABELED_SPLITS]


def source_file_args(sources):
    """params function: SOURCE/SPLIT=PATH for the weak labels of each source, in the config's order."""
    return lambda w: " ".join(f"{s}/{split}={labels_of(w, s, split)}" for s in sources(w) for split in LABELED_SPLITS)


def split_args(files):
    """SPLIT=PATH for each labeled split of a rule's named files (``transfer``, ``test``)."""
    return " ".join(f"{split}={files[split]}" for split in LABELED_SPLITS)


def ensemble_members(wildcards):
    return CFG["weak"]["ensembles"][wildcards.weak]["members"]


def aggregated_teachers(wildcards):
    return CFG["weak"]["aggregated"][wildcards.weak]["teachers"]


def degraded_source(wildcards):
    return [CFG["weak"]["degraded"][wildcards.weak]["source"]]


def source_provenance(wildcards):
    return as_json({"task": wildcards.task, "seed": int(wildcards.seed), "weak_model": wildcards.weak})


def verifier_reports(wildcards):
    return sorted(
        {
            VERIFIER_REPORT.format(task=e.task, seed=e.seed, weak=e.weak)
            for e in GRID
            if e.weak in CFG["weak"]["aggregated"]
        }
    )


def as_json(value):
    """Compact, key-sorted JSON: a stable command-line argument and params value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def metrics_files(wildcards):
    return [METRICS.format(task=e.task, seed=e.seed, weak=e.weak, strong=e.strong, method=e.method) for e in GRID]


def feature_inputs(wildcards):
    """Frozen features of transfer and test, needed only in linear_probe mode."""
    if strong_spec(CFG, wildcards.strong)["mode"] != "linear_probe":
        return {}
    return {f"features_{split}": FEATURES.format(**wildcards, split=split) for split in LABELED_SPLITS}


def feature_args(wildcards, input):
    return " ".join(
        f"{split}={input[f'features_{split}']}" for split in LABELED_SPLITS if f"features_{split}" in input.keys()
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


# ------------------------------------------------------------------ the label store (store.smk)
# Weak labels and reasoning samples, each keyed by w2s.store_keys.

# Per artifact kind: the wildcard naming the model, the stage that computes it (its fetch job asks for
# that stage's GPUs, to resolve `auto` precision on the same kind of device), the data manifest the
# entry was made from, the miss file, and whether this run made the local copy itself for the key
# (then it stays the producer's).
STORE_ARTIFACTS = {
    "weak_labels": dict(
        name="weak",
        producer="label_weak",
        manifest=DATA_MANIFEST,
        miss=STORE_MISS,
        made_here=lambda w, key: computed_locally(
            WEAK_LABELS.format(**w, split="transfer"), TEACHER_MODEL.format(**w), key
        ),
    ),
    "reasoning_samples": dict(
        name="generator",
        producer="reasoning_sample_base",
        manifest=R_PROBLEMS_MANIFEST,
        miss=R_STORE_MISS,
        made_here=lambda w, key: made_for_key(R_SAMPLES.format(**w), key),
    ),
}


@functools.cache
def _store_key(artifact, task, seed, name):
    return label_key(key_inputs(CFG, artifact, task, seed, name))


def store_key(artifact):
    """params function: the store key of a job's entry (labels name it in their provenance too)."""
    name = STORE_ARTIFACTS[artifact]["name"]
    return lambda w: _store_key(artifact, w.task, str(w.seed), getattr(w, name))


def store_key_inputs(artifact):
    """params function: what the key was computed from, recorded in the entry."""
    name = STORE_ARTIFACTS[artifact]["name"]
    return lambda w: as_json(key_inputs(CFG, artifact, w.task, w.seed, getattr(w, name)))


def store_precision(artifact):
    """params function: the precision settings the fetch job resolves and checks the entry against."""
    name = STORE_ARTIFACTS[artifact]["name"]
    return lambda w: as_json(precision_settings(CFG, artifact, getattr(w, name)))


def store_fetch_gpus(artifact):
    """The GPUs of a fetch job: those of the stage that computes the artifact (see STORE_ARTIFACTS)."""
    return rule_resources(CFG, STORE_ARTIFACTS[artifact]["producer"])["gpu"]


def store_fetch_inputs(artifact):
    """Input function: the manifest, plus the miss file unless the store holds the entry and this run
    did not make the local copy itself for this key."""
    spec = STORE_ARTIFACTS[artifact]

    def inputs(wildcards):
        found = False
        if LABEL_STORE:
            key = store_key(artifact)(wildcards)
            found = has_entry(LABEL_STORE, key) and not spec["made_here"](wildcards, key)
        miss = {} if found else {"store_miss": spec["miss"].format(**wildcards)}
        return {"manifest": spec["manifest"].format(**wildcards), **miss}

    return inputs


def entry_files(files):
    """NAME.parquet=PATH for each named file of a job but the manifest: the entry's files."""
    return " ".join(f"{name}.parquet={path}" for name, path in files.items() if name != "manifest")


def store_publish_targets(wildcards):
    """The store entries of every teacher and every reasoning base generator, with a store."""
    if not LABEL_STORE:
        return []
    weak = {
        WEAK_STORE_ENTRY.format(task=e.task, seed=e.seed, weak=e.weak) for e in GRID if e.weak in CFG["weak"]["models"]
    }
    samples = expand(R_SAMPLES_STORE_ENTRY, task=REASONING.get("tasks", []), seed=CFG["seeds"], generator=R_BASE)
    return [*sorted(weak), *samples]


# ------------------------------------------------------------------ the generative reasoning track
# Its rules and helpers are in rules/reasoning/, included only when the config has a `reasoning`
# section; the store (store.smk) and rule `all` need its generators and targets.

REASONING = CFG.get("reasoning") or {}
R_BASE = reasoning_plan.base_generators(CFG) if REASONING else []
R_TRAINED = list(reasoning_plan.trained_models(CFG)) if REASONING else []


def reasoning_targets(wildcards):
    """Every reasoning experiment's metrics and the summary over tasks and seeds."""
    if not REASONING:
        return []
    return [
        *expand(R_METRICS, task=REASONING["tasks"], seed=CFG["seeds"]),
        *rules.reasoning_summarize.output,
    ]


# ---- the results store

RESULTS_STORE = CFG["results_store"]


def results_receipts(wildcards):
    """What publishing every pair of the grid into the results store leaves (one receipt per pair)."""
    return sorted({RESULTS_RECEIPT.format(task=e.task, seed=e.seed, weak=e.weak, strong=e.strong) for e in GRID})
