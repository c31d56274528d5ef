"""Student losses. Each takes logits (n, k) and weak targets (n, k) and returns a scalar."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over examples of -sum_k target_k * log softmax(logits)_k."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


def hard_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the argmax of the targets (ties go to the lowest class index)."""
    return F.cross_entropy(logits.float(), targets.argmax(dim=-1))


LOSSES: dict[str, Loss] = {
    "xent": soft_cross_entropy,
    "xent_hard": hard_cross_entropy,
}


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]
