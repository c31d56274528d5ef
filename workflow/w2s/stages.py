"""The workflow's stages in one table, keyed by rule name: the one name of a stage.

Each entry says which ``w2s`` subcommand the rule runs, which module does its work (the entry point
whose imports ``w2s.fingerprint`` follows to hash the stage's code) and whether it is a GPU stage.
A GPU stage is one cluster job per Snakemake job: its request comes from the config's
``resources.<rule>`` section (``w2s.resources``) and the Slurm profiles place it by the same name in
``set-resources``. Light stages run on the submitting machine and ask for no GPU.

This module imports nothing from ``w2s``, so every other module may read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One rule of the workflow: its name, the CLI subcommand it runs, its entry module, GPU or not."""

    rule: str
    command: str
    entry: str  # dotted module path inside the w2s package, e.g. "teacher" or "reasoning.tuning"
    gpu: bool = False
    track: str = "classification"  # or "reasoning", the generative track, or "store", serving both

    @property
    def resources(self) -> str | None:
        """The config's ``resources`` key of a GPU stage (the rule name); None for a light stage."""
        return self.rule if self.gpu else None


def _table(*stages: Stage) -> dict[str, Stage]:
    return {stage.rule: stage for stage in stages}


def _store(rule: str, command: str) -> Stage:
    return Stage(rule, command, "label_store", track="store")


def _reasoning(rule: str, command: str, entry: str, gpu: bool = False) -> Stage:
    return Stage(rule, command, entry, gpu, track="reasoning")


STAGES: dict[str, Stage] = _table(
    Stage("prepare_data", "prepare-data", "data"),
    Stage("train_weak", "train-weak", "teacher", gpu=True),
    Stage("label_weak", "label-weak", "labeling", gpu=True),
    _store("store_fetch", "store-fetch"),
    _store("store_publish", "store-publish"),
    Stage("combine_weak_labels", "combine-weak-labels", "weak_sources"),
    Stage("degrade_weak_labels", "degrade-weak-labels", "weak_sources"),
    Stage("aggregate_weak_labels", "aggregate-weak-labels", "verifiers"),
    Stage("evaluate_verifiers", "evaluate-verifiers", "verifiers"),
    Stage("extract_features", "extract-features", "features", gpu=True),
    Stage("train_ceiling", "train-strong", "strong", gpu=True),
    Stage("train_student", "train-strong", "strong", gpu=True),
    Stage("evaluate", "evaluate", "evaluate"),
    Stage("summarize", "summarize", "summary"),
    Stage("plots", "plots", "plots"),
    Stage("publish_results", "publish-results", "results_store"),
    Stage("leaderboard", "leaderboard", "leaderboard"),
    _reasoning("reasoning_problems", "reasoning-problems", "reasoning.problems"),
    _reasoning("reasoning_sample_base", "reasoning-sample", "reasoning.generation", gpu=True),
    _reasoning("reasoning_sample_trained", "reasoning-sample", "reasoning.generation", gpu=True),
    _reasoning("reasoning_score", "reasoning-score", "reasoning.scoring"),
    _reasoning("reasoning_train_set", "reasoning-train-set", "reasoning.selection"),
    _reasoning("reasoning_train", "reasoning-train", "reasoning.tuning", gpu=True),
    _reasoning("reasoning_evaluate", "reasoning-evaluate", "reasoning.evaluate"),
    _reasoning("reasoning_summarize", "reasoning-summarize", "reasoning.evaluate"),
)

# Rules that only name targets and run no command, so they have no stage.
TARGET_RULES = ("all",)

# What the label store holds (w2s.store_keys). A store stage has one rule per artifact kind, named
# <stage>_<artifact> (store_fetch_weak_labels, ...): one definition in rules/store.smk, used per kind.
STORE_ARTIFACTS = ("weak_labels", "reasoning_samples")


def store_rules(artifact: str) -> tuple[str, ...]:
    """The store stages' rules of one artifact kind: its fetch and its publish rule."""
    if artifact not in STORE_ARTIFACTS:
        raise KeyError(f"unknown store artifact {artifact!r}; the store holds: {', '.join(STORE_ARTIFACTS)}")
    return tuple(f"{s.rule}_{artifact}" for s in STAGES.values() if s.track == "store")


def stage(rule: str) -> Stage:
    """The stage of a rule (a store rule's: its store stage); a KeyError naming the known rules for any
    other name."""
    if rule in STAGES:
        return STAGES[rule]
    for artifact in STORE_ARTIFACTS:
        if rule in store_rules(artifact):
            return STAGES[rule.removesuffix(f"_{artifact}")]
    raise KeyError(f"unknown rule {rule!r}; the stage table (w2s/stages.py) has: {', '.join(STAGES)}")


def gpu_rules(track: str | None = None) -> tuple[str, ...]:
    """The GPU stages' rule names, in table order; only those of ``track`` when it is given."""
    return tuple(s.rule for s in STAGES.values() if s.gpu and track in (None, s.track))
