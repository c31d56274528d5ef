"""The training loop shared by every role: weak teacher, strong ceiling and strong students.

The teacher and the ceiling train on one-hot gold labels, students on weak labels, each through
a loss from ``losses.py``. The same loop drives a fine-tuned transformer, a LoRA adapter and a
linear probe on frozen features: it only needs a module and a function from example indices to
logits. Early stopping, when asked for, scores a held-out set with a caller's function (for
students: agreement with the weak labels, never gold).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .io import atomic_dir, write_json
from .losses import Loss
from .runtime import seed_everything
from .settings import from_config


@dataclass(frozen=True)
class TrainSettings:
    epochs: float = 2
    batch_size: int = 16
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    max_length: int = 128
    grad_clip: float = 1.0
    eval_batch_size: int = 64

    @classmethod
    def from_config(cls, config: dict | None) -> "TrainSettings":
        return from_config(cls, config, "training")


@dataclass
class Validation:
    """Score a held-out set every ``every`` steps (higher is better); keep the best weights."""

    score: Callable[[], float]
    every: int
    patience: int


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


def load_classifier(
    checkpoint: str, label_names: Sequence[str], seed: int
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A classifier with a freshly (seeded) initialized head sized for ``label_names``."""
    seed_everything(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
        ignore_mismatched_sizes=True,
    )
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    return model, tokenizer


def linear_schedule(step: int, total_steps: int, warmup_steps: int) -> float:
    """Learning-rate multiplier: linear warmup to 1, then linear decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def _trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}


def train_loop(
    module: torch.nn.Module,
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    targets: np.ndarray,
    loss_fn: Loss,
    settings: TrainSettings,
    seed: int,
    weights: np.ndarray | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    validation: Validation | None = None,
) -> dict:
    """Minimize ``loss_fn(logits_of(batch), targets[batch], progress)`` (+ ``penalty()``) with AdamW.

    Returns the loss of every step and, with ``validation``, the scores and the step whose weights
    were kept.
    """
    device = next(module.parameters()).device
    n = len(targets)
    targets_t = torch.as_tensor(targets, dtype=torch.float32)
    weights_t = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    total_steps = max(1, math.ceil(settings.epochs * math.ceil(n / settings.batch_size)))
    warmup_steps = max(1, int(settings.warmup_frac * total_steps))
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_schedule(s, total_steps, warmup_steps))
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    scores: list[tuple[int, float]] = []
    best_score, best_state, since_best = -math.inf, None, 0

    module.train()
    progress = tqdm(total=total_steps, desc="train", unit="step")
    while len(losses) < total_steps and since_best <= (validation.patience if validation else 0):
        for index in torch.randperm(n, generator=generator).split(settings.batch_size):
            step = len(losses)
            if step == total_steps:
                break
            batch_weights = None if weights_t is None else weights_t[index].to(device)
            loss = loss_fn(logits_of(index), targets_t[index].to(device), step / total_steps, batch_weights)
            if penalty is not None:
                loss = loss + penalty()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(trainable, settings.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            progress.update()
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
            if validation and (len(losses) % validation.every == 0 or len(losses) == total_steps):
                module.eval()
                score = validation.score()
                module.train()
                scores.append((len(losses), score))
                if score > best_score:
                    best_score, best_state, since_best = score, _trainable_state(module), 0
                else:
                    since_best += 1
                    if since_best > validation.patience:
                        break
    progress.close()
    if best_state is not None:
        module.load_state_dict(best_state, strict=False)
    module.eval()
    result: dict = {"steps": len(losses), "total_steps": total_steps, "loss_curve": losses,
                    "final_loss": losses[-1] if losses else None}
    if validation:
        result |= {"validation_scores": scores, "best_step": max(scores, key=lambda s: s[1])[0]}
    return result


def save_classifier(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path, info: dict
) -> None:
    """Write a normal HF checkpoint (safetensors + tokenizer + train_info.json) atomically."""
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(info, Path(tmp) / "train_info.json")


def train_info(settings: TrainSettings, seed: int, result: dict, started: float, **extra) -> dict:
    return {
        "settings": asdict(settings),
        "seed": seed,
        **result,
        "seconds": round(time.time() - started, 2),
        "torch_version": torch.__version__,
        **extra,
    }
