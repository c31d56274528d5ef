"""Content hashes of the code each stage runs, so a rule reruns when (and only when) its code changes.

Rules carry ``code_hash(stage)`` in their ``params``; Snakemake's params trigger then reruns a job
whose stage code changed, while a fresh clone or an edit elsewhere (README, another stage) does not.
The hash is taken over the parsed syntax tree, so comments and formatting do not count.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

_COMMON = ("io", "runtime", "batching", "inference", "models")
STAGE_MODULES: dict[str, tuple[str, ...]] = {
    "data": ("io", "tasks", "data"),
    "teacher": (*_COMMON, "teacher", "train", "learners", "losses", "metrics"),
    "labels": ("io", "labeling", "batching", "inference"),
    "features": (*_COMMON, "features"),
    "strong": (*_COMMON, "strong", "features", "train", "learners", "losses", "methods", "metrics", "tables"),
    "weak_sources": ("io", "weak_sources", "labeling", "tables"),
    "verifiers": ("io", "verifiers", "labeling_functions", "labeling"),
    "evaluate": ("io", "evaluate", "metrics", "tables"),
    "plots": ("io", "plots", "metrics"),
    "reasoning_data": ("io", "tasks", "reasoning/problems", "reasoning/answers"),
    "generate": ("io", "runtime", "settings", "models", "reasoning/generation", "reasoning/answers",
                 "reasoning/prompts"),
    "reasoning_scores": ("io", "verifiers", "reasoning/checks", "reasoning/scoring", "reasoning/answers"),
    "reasoning_selection": ("io", "reasoning/selection", "reasoning/answers"),
    "reasoning_train": ("io", "runtime", "settings", "train", "models", "reasoning/tuning", "reasoning/prompts"),
    "reasoning_evaluate": ("io", "metrics", "reasoning/evaluate", "reasoning/metrics", "reasoning/selection",
                           "reasoning/answers"),
}


@cache
def code_hash(stage: str, length: int = 16) -> str:
    """sha256 over the source of the w2s modules ``stage`` depends on."""
    if stage not in STAGE_MODULES:
        raise ValueError(f"unknown stage {stage!r}; known: {sorted(STAGE_MODULES)}")
    digest = hashlib.sha256()
    for module in sorted(set(STAGE_MODULES[stage])):
        digest.update(module.encode())
        tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text())
        digest.update(ast.dump(tree, annotate_fields=False).encode())
    return digest.hexdigest()[:length]
