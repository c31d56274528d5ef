"""A plugin: two noisy-label losses that the w2s package does not ship (three registered names).

Name this file under ``plugins:`` in a config (a path relative to the config) and use the names it
registers as ``loss: bootstrap_soft`` / ``bootstrap_hard`` / ``gce`` in ``strong.methods``. Every loss has the package's call
signature ``loss(logits, weak, progress, weights=None) -> scalar`` (``weak``: the weak teacher's
class probabilities, (n, k)); its options dataclass is what the config's ``loss_options`` may set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from w2s.losses import cross_entropy, weighted_mean
from w2s.registry import LOSS_REGISTRY


@dataclass(frozen=True)
class SoftBootstrapOptions:
    beta: float = 0.95  # weight of the weak labels; 1 - beta goes to the student's own prediction

    def __post_init__(self):
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta={self.beta} must be in [0, 1]")


@dataclass(frozen=True)
class HardBootstrapOptions(SoftBootstrapOptions):
    beta: float = 0.8  # Reed et al.'s value for the hard variant


@LOSS_REGISTRY.register("bootstrap_soft", options=SoftBootstrapOptions)
class SoftBootstrapping:
    """Soft bootstrapping (Reed et al. 2015): -sum_k (beta w_k + (1 - beta) q_k) log q_k, q the
    student's probabilities, not detached: beta * xent(weak) + (1 - beta) * H(student), so the
    student is pulled towards the weak labels and towards confident predictions of its own."""

    def __init__(self, beta: float = 0.95):
        self.beta = beta

    def __call__(self, logits, weak, progress=0.0, weights=None):
        log_q = F.log_softmax(logits.float(), dim=-1)
        target = self.beta * weak.float() + (1 - self.beta) * log_q.exp()
        return weighted_mean(-(target * log_q).sum(dim=-1), weights)


@LOSS_REGISTRY.register("bootstrap_hard", options=HardBootstrapOptions)
class HardBootstrapping:
    """Hard bootstrapping (Reed et al. 2015): cross-entropy against beta w + (1 - beta) z, z the
    one-hot argmax of the student's prediction (no gradient flows through z)."""

    def __init__(self, beta: float = 0.8):
        self.beta = beta

    def __call__(self, logits, weak, progress=0.0, weights=None):
        z = F.one_hot(logits.detach().argmax(dim=-1), logits.shape[-1]).float()
        return weighted_mean(cross_entropy(logits, self.beta * weak.float() + (1 - self.beta) * z), weights)


@dataclass(frozen=True)
class GCEOptions:
    q: float = 0.7  # 0 < q <= 1: q -> 0 is cross-entropy, q = 1 is the mean absolute error

    def __post_init__(self):
        if not 0.0 < self.q <= 1.0:
            raise ValueError(f"q={self.q} must be in (0, 1]")


@LOSS_REGISTRY.register("gce", options=GCEOptions)
class GeneralizedCrossEntropy:
    """Generalized cross-entropy (Zhang & Sabuncu 2018): sum_k w_k (1 - q_k^q) / q, the negative
    Box-Cox transform of the probability of each weak class, weighted by the weak label's mass on it.
    Bounded, so a confidently wrong weak label pulls less than under cross-entropy."""

    def __init__(self, q: float = 0.7):
        self.q = q

    def __call__(self, logits, weak, progress=0.0, weights=None):
        probs = torch.softmax(logits.float(), dim=-1)
        return weighted_mean((weak.float() * (1 - probs.pow(self.q)) / self.q).sum(dim=-1), weights)
