"""Every file the workflow writes, declared once as a named pattern (``docs/pipeline.md``, "Output layout").

Rules name their inputs and outputs with these patterns (``{task}``, ``{seed}``, ... are Snakemake
wildcards) and pass the files themselves to the ``w2s`` CLI, so no stage rebuilds a file name that
a rule already declared. ``fill`` fixes some wildcards of a pattern and keeps the others, e.g. the
transfer split of ``WEAK_LABELS`` for every teacher.
"""

from __future__ import annotations

import re

RESULTS = "results"
EXPERIMENT = f"{RESULTS}/{{task}}/seed{{seed}}"

# Over every experiment of a track.
SUMMARY = f"{RESULTS}/summary"  # .parquet, .csv, .html
SUMMARY_BY_SEED = f"{RESULTS}/summary_by_seed"  # .parquet, .csv
RESOLVED_CONFIG = f"{RESULTS}/config.resolved.yaml"
PLOTS = f"{RESULTS}/plots"
LEADERBOARD = f"{RESULTS}/leaderboard"  # leaderboard.{html,csv,png} of the results store
R_SUMMARY_RUNS = f"{RESULTS}/reasoning/summary.csv"
R_SUMMARY_BY_SEED = f"{RESULTS}/reasoning/summary_by_seed.csv"

# Classification track, one experiment (task x seed).
DATA_SPLIT = f"{EXPERIMENT}/data/{{split}}.parquet"
DATA_MANIFEST = f"{EXPERIMENT}/data/manifest.json"
WEAK = f"{EXPERIMENT}/weak/{{weak}}"
TEACHER_MODEL = f"{WEAK}/model"
WEAK_LABELS = f"{WEAK}/labels/{{split}}.parquet"
WEAK_STORE_ENTRY = f"{WEAK}/labels/store_entry.json"
VERIFIER_TABLE = f"{WEAK}/verifiers.parquet"
AGGREGATION = f"{WEAK}/aggregation.json"
VERIFIER_REPORT = f"{WEAK}/verifier_evaluation.json"
VERIFIER_REPORT_TABLE = f"{WEAK}/verifier_evaluation.parquet"
STRONG = f"{EXPERIMENT}/strong/{{strong}}"
FEATURES = f"{STRONG}/features/{{split}}.parquet"
CEILING = f"{STRONG}/ceiling"
STUDENT = f"{STRONG}/students/{{weak}}/{{method}}"
METRICS = f"{EXPERIMENT}/metrics/{{weak}}/{{strong}}/{{method}}.json"
# What publishing one pair's records into the results store left: each record's id and store path.
RESULTS_RECEIPT = f"{EXPERIMENT}/results_store/{{weak}}/{{strong}}.json"

# The generative reasoning track, one experiment (task x seed).
R_ROOT = f"{RESULTS}/reasoning/{{task}}/seed{{seed}}"
R_PROBLEMS = f"{R_ROOT}/problems/problems.parquet"
R_PROBLEMS_MANIFEST = f"{R_ROOT}/problems/manifest.json"
R_SAMPLES = f"{R_ROOT}/samples/{{generator}}.parquet"
R_SAMPLES_STORE_ENTRY = f"{R_ROOT}/samples/{{generator}}.store_entry.json"
R_SCORES = f"{R_ROOT}/scores/{{generator}}.parquet"
R_TRAIN_SET = f"{R_ROOT}/train_sets/{{generator}}.parquet"
R_MODEL = f"{R_ROOT}/models/{{generator}}"
R_METRICS = f"{R_ROOT}/metrics.json"
R_SUMMARY = f"{R_ROOT}/summary.csv"
R_PASS_AT_K = f"{R_ROOT}/pass_at_k.png"

# Named as a store-fetch input when the store has no entry: no rule makes it, so the producer runs.
STORE_MISS = "label-store-miss/{task}/seed{seed}/{weak}"
R_STORE_MISS = "label-store-miss/reasoning/{task}/seed{seed}/{generator}"


def _job(kind: str, track: str, step: str, name: str | None, suffix: str) -> str:
    root = f"{RESULTS}/{kind}/{track}{{task}}/seed{{seed}}/{step}"
    return f"{root}/{name}{suffix}" if name else f"{root}{suffix}"


def RUN_LOG(path: str) -> str:  # noqa: N802
    """The log of a job over every experiment: ``results/logs/<path>.log``."""
    return f"{RESULTS}/logs/{path}.log"


def LOG(rule: str, name: str | None = None) -> str:  # noqa: N802 - a pattern, named like the others
    """A classification job's log: ``results/logs/{task}/seed{seed}/<rule>/<name>.log``."""
    return _job("logs", "", rule, name, ".log")


def BENCHMARK(rule: str, name: str) -> str:  # noqa: N802
    """A classification GPU job's wall time and memory: ``results/benchmarks/.../<rule>/<name>.tsv``."""
    return _job("benchmarks", "", rule, name, ".tsv")


def R_LOG(step: str, name: str | None = None) -> str:  # noqa: N802
    """A reasoning job's log: ``results/logs/reasoning/{task}/seed{seed}/<step>[/<name>].log``."""
    return _job("logs", "reasoning/", step, name, ".log")


def R_BENCHMARK(step: str, name: str) -> str:  # noqa: N802
    """A reasoning GPU job's wall time and memory: ``results/benchmarks/reasoning/.../<step>/<name>.tsv``."""
    return _job("benchmarks", "reasoning/", step, name, ".tsv")


def fill(pattern: str, **values: object) -> str:
    """``pattern`` with the named wildcards replaced and every other wildcard kept."""
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), pattern)
