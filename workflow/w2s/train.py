"""Fine-tune a sequence classifier on (soft) targets: the weak teacher, full-finetune students and ceilings.

One loop serves all three roles: the teacher and the ceiling train on one-hot gold labels, the
student on the weak teacher's probabilities, each through a loss from ``losses.py``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .batching import collate, tokenize
from .io import atomic_dir, write_json
from .losses import get_loss
from .runtime import autocast_dtype, seed_everything


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
        config = dict(config or {})
        unknown = set(config) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        return cls(**config)


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


def fine_tune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    targets: np.ndarray,
    settings: TrainSettings,
    loss_name: str,
    seed: int,
    device: torch.device,
) -> list[float]:
    """Train in place; returns the loss of every step."""
    if len(texts) != len(targets):
        raise ValueError(f"{len(texts)} texts but {len(targets)} targets")
    loss_fn = get_loss(loss_name)
    token_ids = tokenize(tokenizer, texts, settings.max_length)
    targets_t = torch.as_tensor(targets, dtype=torch.float32)
    steps_per_epoch = math.ceil(len(texts) / settings.batch_size)
    total_steps = max(1, math.ceil(settings.epochs * steps_per_epoch))
    warmup_steps = max(1, int(settings.warmup_frac * total_steps))

    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: linear_schedule(step, total_steps, warmup_steps)
    )
    amp_dtype = autocast_dtype(device)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    progress = tqdm(total=total_steps, desc="train", unit="step")
    while len(losses) < total_steps:
        for index in torch.randperm(len(texts), generator=generator).split(settings.batch_size):
            if len(losses) == total_steps:
                break
            batch = collate(tokenizer, [token_ids[i] for i in index]).to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(**batch).logits
            loss = loss_fn(logits, targets_t[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            progress.update()
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
    progress.close()
    model.eval()
    return losses


def save_classifier(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path, info: dict
) -> None:
    """Write a normal HF checkpoint (safetensors + tokenizer + train_info.json) atomically."""
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(info, Path(tmp) / "train_info.json")


def train_info(settings: TrainSettings, loss_name: str, seed: int, losses: list[float], started: float, **extra) -> dict:
    return {
        "settings": asdict(settings),
        "loss": loss_name,
        "seed": seed,
        "steps": len(losses),
        "final_loss": losses[-1] if losses else None,
        "loss_curve": losses,
        "seconds": round(time.time() - started, 2),
        "torch_version": torch.__version__,
        **extra,
    }
