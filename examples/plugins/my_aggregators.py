"""A plugin: a verifier aggregator that the w2s package does not ship.

Name this file under ``plugins:`` and use ``aggregator: logit_mean`` (options in ``aggregator_options``)
in ``weak.aggregated.<name>.settings``. An aggregator is a class with ``fit(ctx) -> dict`` (JSON
parameters; ``ctx`` is a :class:`w2s.verifiers.builtins.FitContext`) and ``apply(ctx, params)``
(P(positive) per unit; ``ctx`` an :class:`~w2s.verifiers.builtins.ApplyContext`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from w2s.registry import AGGREGATOR_REGISTRY


@dataclass(frozen=True)
class LogitMeanOptions:
    clip: float = 0.01  # scores are clipped to [clip, 1 - clip] before the log-odds

    def __post_init__(self):
        if not 0.0 < self.clip < 0.5:
            raise ValueError(f"clip={self.clip} must be in (0, 0.5)")


@AGGREGATOR_REGISTRY.register("logit_mean", options=LogitMeanOptions, uses_labels=False, averaging=True)
class LogitMean:
    """Mean of the voting verifiers' log-odds, mapped back to a probability (a geometric pooling of
    their odds): one confident verifier outweighs several near 0.5, unlike the plain mean."""

    def __init__(self, clip: float = 0.01):
        self.clip = clip

    def fit(self, ctx) -> dict:
        return {}

    def apply(self, ctx, params: dict) -> np.ndarray:
        p = np.clip(ctx.normalized, self.clip, 1 - self.clip)
        logits = np.log(p / (1 - p))
        observed = ~np.isnan(logits)
        n = observed.sum(axis=1)
        mean = np.where(observed, logits, 0.0).sum(axis=1) / np.maximum(n, 1)
        return np.where(n > 0, 1.0 / (1.0 + np.exp(-mean)), ctx.prior)
