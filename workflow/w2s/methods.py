"""A weak-to-strong method: which loss the student minimizes and which weak labels it sees.

Each entry of ``strong.methods`` in the config becomes one :class:`Method`, and each method is
one axis value of the experiment grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .losses import Loss, build_loss
from .schema import defaults_from_schema
from .settings import from_config

LOSS_OPTIONS = {
    "product": ("alpha",),
    "entropy": ("aux_weight", "aux_warmup_frac"),
    "logconf": ("aux_weight", "aux_warmup_frac", "window"),
}


@dataclass(frozen=True)
@defaults_from_schema("$defs.method")
class Method:
    """One entry of ``strong.methods``; defaults are the schema's (``$defs.method``)."""

    loss: str
    aux_weight: float
    aux_warmup_frac: float
    window: int
    alpha: float
    min_confidence: float
    max_confidence: float
    weighting: str
    relabel_rounds: int

    @classmethod
    def from_config(cls, config: dict | None) -> "Method":
        return from_config(cls, config, "method")

    def build_loss(self, weak_targets: np.ndarray) -> Loss:
        """The loss object; logconf gets the class prior of all its (selected) weak labels."""
        options = {name: getattr(self, name) for name in LOSS_OPTIONS.get(self.loss, ())}
        if "aux_warmup_frac" in options:
            options["warmup_frac"] = options.pop("aux_warmup_frac")
        if self.loss == "logconf":
            options["prior"] = torch.as_tensor(weak_targets.mean(axis=0), dtype=torch.float32)
        return build_loss(self.loss, **options)

    def select(self, weak_targets: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Indices of the examples to train on (weak confidence inside the band) and their weights."""
        confidence = weak_targets.max(axis=1)
        keep = np.flatnonzero((confidence >= self.min_confidence) & (confidence <= self.max_confidence))
        if len(keep) == 0:
            raise ValueError(
                f"no weak label has confidence in [{self.min_confidence}, {self.max_confidence}]"
            )
        if self.weighting == "none":
            return keep, None
        if self.weighting == "confidence":
            chance = 1.0 / weak_targets.shape[1]
            weights = ((confidence[keep] - chance) / (1.0 - chance)).astype(np.float32)
            if not weights.sum() > 0:
                raise ValueError("weighting 'confidence': every selected weak label is at chance confidence")
            return keep, weights  # train_loop scales them to mean 1 over the training set
        raise ValueError(f"unknown weighting {self.weighting!r}; choose none or confidence")
