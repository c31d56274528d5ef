"""The training loop shared by every role: weak teacher, strong ceiling and strong students.

The teacher and the ceiling train on one-hot gold labels, students on weak labels, each through
a loss from ``losses.py``. The same loop drives a fine-tuned transformer, a LoRA adapter and a
linear probe on frozen features: it only needs a module and a function from example indices to
logits. Early stopping, when asked for, scores a held-out set with a caller's function (for
students: agreement with the weak labels, never gold).

Large models: ``minibatch_size`` accumulates gradients over several forward passes into one step
(exactly the loss and gradient of one ``batch_size`` batch, see ``_accumulated_backward``),
``gradient_checkpointing`` and ``precision`` (bf16 autocast) are applied by the learner, and the
optimizer is fused AdamW on CUDA and CPU. Transformer learners pass their token lengths, so batches are
length-bucketed (``batching.bucketed_batches``); the probe keeps plain shuffled batches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from .batching import bucketed_batches, prepare_tokenizer, sync_pad_token
from .io import atomic_dir, write_json
from .losses import Loss
from .models import is_decoder_only, load_classifier_tokenizer
from .runtime import resolve_precision, seed_everything
from .schema import defaults_from_schema
from .settings import from_config

if TYPE_CHECKING:  # transformers is imported where a model is built: linear-probe jobs never load it
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

PRECISIONS = ("auto", "fp32", "bf16")
FUSED_ADAMW_DEVICES = ("cuda", "cpu")


@dataclass(frozen=True)
@defaults_from_schema("$defs.train")
class TrainSettings:
    """``weak.train`` and ``strong.train`` (the schema's ``$defs.train``, which gives every default)."""

    epochs: float
    batch_size: int
    lr: float
    weight_decay: float
    warmup_frac: float
    max_length: int
    grad_clip: float
    eval_batch_size: int
    minibatch_size: int | None
    gradient_checkpointing: bool
    precision: str
    bucket_batches: int

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"training precision {self.precision!r} is not one of {PRECISIONS}")
        if self.minibatch_size is not None and self.minibatch_size < 1:
            raise ValueError(f"training minibatch_size must be >= 1 or null, got {self.minibatch_size}")
        if self.batch_size < 1:
            raise ValueError(f"training batch_size must be >= 1, got {self.batch_size}")

    @classmethod
    def from_config(cls, config: dict | None) -> TrainSettings:
        return from_config(cls, config, "training")


@dataclass
class Validation:
    """Score a held-out set every ``every`` steps (higher is better); keep the best weights."""

    score: Callable[[], float]
    every: int
    patience: int


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


def training_autocast(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of training forward passes (None: plain fp32). ``auto`` is bf16 where the
    device multiplies bf16 natively (CUDA of compute capability >= 8.0, a CPU with AMX-BF16 or
    AVX512-BF16; ``runtime.resolve_precision``), fp32 elsewhere; weights and optimizer state stay fp32
    either way. An explicit ``bf16`` on a CUDA device below 8.0 raises here, before any training."""
    return torch.bfloat16 if resolve_precision(precision, device, "train") == "bf16" else None


def load_classifier(
    checkpoint: str, label_names: Sequence[str], seed: int
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A classifier with a freshly (seeded) initialized head sized for ``label_names``, in fp32.

    Decoder-only checkpoints (a causal LM such as Llama or GPT-2) become ``*ForSequenceClassification``
    models that classify from the last non-pad token; they get a pad token (EOS) when the tokenizer
    has none, and ``config.pad_token_id`` is set to it, so pooling skips exactly the padding.
    """
    from transformers import AutoModelForSequenceClassification

    seed_everything(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
        ignore_mismatched_sizes=True,
        dtype=torch.float32,  # bf16/fp16 checkpoints train with fp32 master weights
    )
    tokenizer = prepare_tokenizer(load_classifier_tokenizer(checkpoint))  # special-token strings stay text
    if is_decoder_only(model.config):
        # Encoders keep their own pad_token_id: RoBERTa-style models number positions from it.
        sync_pad_token(model, tokenizer)
    model.config.architectures = [type(model).__name__]  # reloads as *ForSequenceClassification
    return model, tokenizer


def linear_schedule(step: int, total_steps: int, warmup_steps: int) -> float:
    """Learning-rate multiplier: linear warmup to 1, then linear decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def _trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}


def make_optimizer(
    params: list[torch.nn.Parameter], settings: TrainSettings, device: torch.device
) -> torch.optim.AdamW:
    """AdamW fused into one kernel where torch has one (CUDA and CPU): the same update up to float
    rounding, and on the CPU much faster than the per-tensor default (benchmarks/README.md)."""
    fused = {"fused": True} if device.type in FUSED_ADAMW_DEVICES else {}
    return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay, **fused)


def _rng_state(device: torch.device) -> tuple:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(state: tuple, device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _accumulated_backward(
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    index: torch.Tensor,
    minibatch_size: int,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> torch.Tensor:
    """Backward of ``loss_of(logits of the whole batch)`` in passes of ``minibatch_size`` examples.

    A no-grad pass gives every minibatch's logits; the loss of their concatenation is the one big
    batch's (batch-level losses such as logconf's threshold see the whole batch), and its gradient
    with respect to the logits is pushed back through each minibatch's graph in turn. The random
    state is replayed per minibatch, so dropout masks match between the two passes.
    """
    parts = index.split(minibatch_size)
    states, outputs = [], []
    with torch.no_grad():
        for part in parts:
            states.append(_rng_state(device))
            outputs.append(logits_of(part))
    logits = torch.cat(outputs).detach().requires_grad_()
    loss = loss_of(logits)
    loss.backward()
    offset = 0
    for part, state in zip(parts, states):
        _set_rng_state(state, device)
        part_logits = logits_of(part)
        part_logits.backward(logits.grad[offset : offset + len(part)].to(part_logits.dtype))
        offset += len(part)
    return loss.detach()


def _backward(
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    index: torch.Tensor,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    penalty: Callable[[], torch.Tensor] | None,
    settings: TrainSettings,
    device: torch.device,
) -> torch.Tensor:
    """Gradients of one optimizer step's loss (+ penalty); returns that loss."""
    if settings.minibatch_size is None or settings.minibatch_size >= len(index):
        loss = loss_of(logits_of(index))
        if penalty is not None:
            loss = loss + penalty()
        loss.backward()
        return loss
    loss = _accumulated_backward(logits_of, index, settings.minibatch_size, loss_of, device)
    if penalty is not None:
        extra = penalty()
        extra.backward()
        loss = loss + extra.detach()
    return loss


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
    lengths: Sequence[int] | None = None,
) -> dict:
    """Minimize ``loss_fn(logits_of(batch), targets[batch], progress)`` (+ ``penalty()``) with AdamW.

    ``lengths`` (token counts of the training examples) turns on length-bucketed batches. Returns
    the loss of every step and, with ``validation``, the scores and the step whose weights were kept.
    """
    device = next(module.parameters()).device
    n = len(targets)
    if lengths is not None and len(lengths) != n:
        raise ValueError(f"train_loop got {len(lengths)} lengths for {n} training examples")
    targets_t = torch.as_tensor(targets, dtype=torch.float32)
    # Example weights are scaled to mean 1 over the training set, not per batch (see losses.weighted_mean).
    weights_t = None if weights is None else torch.as_tensor(weights / np.mean(weights), dtype=torch.float32)
    total_steps = max(1, math.ceil(settings.epochs * math.ceil(n / settings.batch_size)))
    warmup_steps = max(1, int(settings.warmup_frac * total_steps))
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, settings, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_schedule(s, total_steps, warmup_steps))
    generator = torch.Generator().manual_seed(seed)
    chunk_batches = settings.bucket_batches if lengths is not None else 0
    losses: list[float] = []
    tracker = _BestTracker(module, validation)

    module.train()
    progress = tqdm(total=total_steps, desc="train", unit="step")
    while len(losses) < total_steps and not tracker.stopped:
        for index in bucketed_batches(
            lengths if lengths is not None else [0] * n, settings.batch_size, chunk_batches, generator
        ):
            step = len(losses)
            if step == total_steps or tracker.stopped:
                break
            batch_targets = targets_t[index].to(device)
            batch_weights = None if weights_t is None else weights_t[index].to(device)
            optimizer.zero_grad(set_to_none=True)
            fraction_done = step / total_steps
            loss = _backward(
                logits_of,
                index,
                lambda logits, t=batch_targets, p=fraction_done, w=batch_weights: loss_fn(logits, t, p, w),
                penalty,
                settings,
                device,
            )
            if settings.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(trainable, settings.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            progress.update()
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
            tracker.after_step(len(losses), total_steps)
    progress.close()
    module.eval()
    return {
        "steps": len(losses),
        "total_steps": total_steps,
        "loss_curve": losses,
        "final_loss": losses[-1] if losses else None,
    } | tracker.finish()


class _BestTracker:
    """Early stopping: score every ``validation.every`` steps, keep the best weights, stop after
    ``patience`` evaluations without improvement."""

    def __init__(self, module: torch.nn.Module, validation: Validation | None):
        self.module, self.validation = module, validation
        self.scores: list[tuple[int, float]] = []
        self.best_score, self.best_state, self.since_best = -math.inf, None, 0
        self.stopped = False

    def after_step(self, steps: int, total_steps: int) -> None:
        validation = self.validation
        if not validation or (steps % validation.every and steps != total_steps):
            return
        self.module.eval()
        score = validation.score()
        self.module.train()
        self.scores.append((steps, score))
        if score > self.best_score:
            self.best_score, self.best_state, self.since_best = score, _trainable_state(self.module), 0
        else:
            self.since_best += 1
            self.stopped = self.since_best > validation.patience

    def finish(self) -> dict:
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state, strict=False)
        if not self.validation:
            return {}
        return {"validation_scores": self.scores, "best_step": max(self.scores, key=lambda s: s[1])[0]}


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
