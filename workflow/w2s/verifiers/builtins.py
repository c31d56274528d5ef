"""The built-in aggregators, registered in :data:`w2s.registry.AGGREGATOR_REGISTRY` like a plugin's.

An aggregator is a class built from its options (the options dataclass's fields as keywords, from
the aggregation settings' ``aggregator_options``) with two methods:

- ``fit(ctx: FitContext) -> dict``: JSON-serializable parameters, fitted on the fit units;
- ``apply(ctx: ApplyContext, params: dict) -> np.ndarray``: P(positive) of every unit.

Registration metadata: ``uses_labels=True`` when ``fit`` reads dev labels (then ``ctx.dev_votes``,
``ctx.dev_labels`` hold the units with a dev label; such an aggregator is for the verifier report,
never for training labels), ``averaging=True`` when it averages normalized scores, which must then
lie in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import AGGREGATOR_REGISTRY
from ..tables import binary_hard_labels
from .aggregators import accuracy_over_all, first_available, fit_logistic, logistic_score, majority_vote, mean_score
from .label_model import group_votes, label_model_posterior


@dataclass
class FitContext:
    settings: dict  # the resolved aggregation settings
    kept: list[str]  # the verifiers left after filtering, in table order
    votes: np.ndarray  # (units, kept) in {0, 1, NaN}
    normalized: np.ndarray  # (units, kept) normalized scores, NaN = abstain
    prior: float  # the fitted class prior P(positive)
    dev_votes: np.ndarray | None = None  # label-using aggregators: votes of the units with a dev label
    dev_labels: np.ndarray | None = None  # ... and those labels (0/1)


@dataclass
class ApplyContext:
    model: dict  # the fitted verifier model (steps, prior, ...)
    kept: list[str]
    votes: np.ndarray
    normalized: np.ndarray
    prior: float


@AGGREGATOR_REGISTRY.register("first", uses_labels=False, averaging=True)
class First:
    """Score of the first voting verifier in ``first_verifier``-first order."""

    def fit(self, ctx: FitContext) -> dict:
        first = ctx.settings["first_verifier"] or ctx.kept[0]
        if first not in ctx.kept:
            raise ValueError(f"first_verifier {first!r} is not among the kept verifiers {ctx.kept}")
        return {"order": [first] + [v for v in ctx.kept if v != first]}

    def apply(self, ctx: ApplyContext, params: dict) -> np.ndarray:
        return first_available(ctx.normalized[:, [ctx.kept.index(v) for v in params["order"]]], ctx.prior)


@AGGREGATOR_REGISTRY.register("majority", uses_labels=False)
class Majority:
    """Share of the voting verifiers that vote positive."""

    def fit(self, ctx: FitContext) -> dict:
        return {}

    def apply(self, ctx: ApplyContext, params: dict) -> np.ndarray:
        return majority_vote(ctx.votes, ctx.prior)


@AGGREGATOR_REGISTRY.register("mean", uses_labels=False, averaging=True)
class Mean:
    """Mean normalized score of the voting verifiers."""

    def fit(self, ctx: FitContext) -> dict:
        return {}

    def apply(self, ctx: ApplyContext, params: dict) -> np.ndarray:
        return mean_score(ctx.normalized, ctx.prior)


@AGGREGATOR_REGISTRY.register("best_single", uses_labels=True, averaging=True)
class BestSingle:
    """The verifier most accurate on the dev labels, an abstention counted as the prior's class."""

    def fit(self, ctx: FitContext) -> dict:
        # Ranked over every dev unit, an abstention counted as the prior's class: the rule apply uses.
        prior_class = int(binary_hard_labels(np.array([ctx.prior]))[0])
        accuracy = accuracy_over_all(ctx.dev_votes, ctx.dev_labels, prior_class)
        best = int(np.argmax(accuracy))  # ties: the first verifier in table order
        return {
            "verifier": ctx.kept[best],
            "dev_accuracy": dict(zip(ctx.kept, map(float, accuracy))),
            "abstain_class": prior_class,
        }

    def apply(self, ctx: ApplyContext, params: dict) -> np.ndarray:
        return first_available(ctx.normalized[:, [ctx.kept.index(params["verifier"])]], ctx.prior)


@AGGREGATOR_REGISTRY.register("label_model", uses_labels=False)
class LabelModel:
    """Dawid-Skene posterior of the label model step (fitted for every aggregator, it gives the prior)."""

    def fit(self, ctx: FitContext) -> dict:
        return {}

    def apply(self, ctx: ApplyContext, params: dict) -> np.ndarray:
        steps = ctx.model["steps"]
        lm = steps["label_model"]
        thresholds = np.array([steps["binarize"]["thresholds"][v] for v in ctx.kept])
        return label_model_posterior(
            group_votes(lm, ctx.kept, ctx.normalized, thresholds), lm["tpr"], lm["fpr"], lm["prior"]
        )


@AGGREGATOR_REGISTRY.register("logistic", uses_labels=True)
class Logistic:
    """L2 logistic regression of the dev labels on the votes."""

    def fit(self, ctx: FitContext) -> dict:
        return {**fit_logistic(ctx.dev_votes, ctx.dev_labels, ctx.settings["logistic_c"]), "verifiers": ctx.kept}

    def apply(self, ctx: ApplyContext, params: dict) -> np.ndarray:
        return logistic_score(ctx.votes, params)
