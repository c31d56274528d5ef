"""Linear probe on frozen features: multinomial logistic regression on (soft) targets.

The objective is mean soft cross-entropy + l2 * ||W||^2 on standardized features, minimized
full-batch with L-BFGS, so it is deterministic and needs no learning-rate tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .losses import get_loss


@dataclass
class LinearProbe:
    weight: torch.Tensor  # (k, d)
    bias: torch.Tensor  # (k,)
    mean: torch.Tensor  # (d,) feature standardization
    scale: torch.Tensor  # (d,)

    def logits(self, features: np.ndarray) -> torch.Tensor:
        x = (torch.as_tensor(features, dtype=torch.float32) - self.mean) / self.scale
        return x @ self.weight.T + self.bias

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return torch.softmax(self.logits(features), dim=-1).numpy()

    def save(self, path: str | Path) -> None:
        save_file({"weight": self.weight, "bias": self.bias, "mean": self.mean, "scale": self.scale}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> "LinearProbe":
        return cls(**load_file(str(path)))


def fit_linear_probe(
    features: np.ndarray,
    targets: np.ndarray,
    l2: float = 0.1,
    max_iter: int = 500,
    loss_name: str = "xent",
) -> LinearProbe:
    """Fit on ``features`` (n, d) against ``targets`` (n, k) rows of probabilities."""
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(targets, dtype=torch.float32)
    mean = x.mean(0)
    scale = x.std(0).clamp_min(1e-6)
    x = (x - mean) / scale
    weight = torch.zeros(y.shape[1], x.shape[1], dtype=torch.float32, requires_grad=True)
    bias = torch.zeros(y.shape[1], dtype=torch.float32, requires_grad=True)
    loss_fn = get_loss(loss_name)
    optimizer = torch.optim.LBFGS(
        [weight, bias], max_iter=max_iter, tolerance_grad=1e-7, tolerance_change=1e-10, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(x @ weight.T + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return LinearProbe(weight=weight.detach(), bias=bias.detach(), mean=mean, scale=scale)
