"""What student training optimizes, shared by both backends (the hand-written loop in ``tuning`` and
trl in ``trl_tuning``): the settings, token sequences (prompt masked) and the SFT and DPO losses.

Losses (tested against hand-computed values in tests/reasoning/test_reasoning_tuning.py, and used there
as oracles for trl's losses):
- SFT: mean negative log-likelihood of the completion tokens (prompt tokens are masked);
- DPO (Rafailov et al. 2023): -log sigmoid(beta * [(log pi(y_c) - log ref(y_c)) - (log pi(y_r) - log ref(y_r))]),
  with sequence log-probabilities summed over completion tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..schema import defaults_from_schema, schema_defaults
from .prompts import PromptSettings, completion_ids, prompt_ids

if TYPE_CHECKING:
    from peft import LoraConfig

IGNORE = -100


@dataclass(frozen=True)
@defaults_from_schema("reasoning.train")
class TuneSettings:
    """``reasoning.train``; defaults are the schema's."""

    lr: float
    dpo_lr: float | None  # null: lr
    epochs: int
    dpo_epochs: int | None  # null: epochs
    batch_size: int
    max_length: int  # prompt + completion tokens; longer completions are cut
    weight_decay: float
    warmup_frac: float
    grad_clip: float
    dpo_beta: float
    lora: dict | None  # {r, alpha, dropout}: train a LoRA adapter and merge it before saving
    backend: str  # trl (SFTTrainer/DPOTrainer, multi-GPU through accelerate) or loop (the hand-written loop)
    precision: str  # auto (bf16 autocast where the device multiplies bf16 natively), fp32 or bf16

    def __post_init__(self) -> None:
        if self.backend not in ("trl", "loop"):
            raise ValueError(f"reasoning.train.backend must be trl or loop, not {self.backend!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"reasoning.train.precision must be auto, fp32 or bf16, not {self.precision!r}")


# --------------------------------------------------------------------------- losses


def completion_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: the summed log-probability of its labeled tokens, and how many there are.

    ``logits[:, t]`` predicts ``labels[:, t + 1]`` (the usual causal shift); IGNORE labels count for nothing.
    """
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    mask = labels != IGNORE
    token_logprobs = torch.gather(F.log_softmax(logits, dim=-1), 2, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return (token_logprobs * mask).sum(dim=1), mask.sum(dim=1)


def sft_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over every labeled token of the batch."""
    total, count = completion_logprobs(logits, labels)
    return -total.sum() / count.sum().clamp_min(1)


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean DPO loss over pairs, and each pair's reward margin beta * (chosen log-ratio - rejected log-ratio)."""
    margin = beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))
    return -F.logsigmoid(margin).mean(), margin.detach()


# --------------------------------------------------------------------------- data


def encode(
    tokenizer, question: str, completion: str, prompt: PromptSettings, max_length: int
) -> tuple[list[int], list[int]]:
    """Input ids and labels (prompt masked) of one prompt + completion, the completion cut to fit."""
    prompt_part = prompt_ids(tokenizer, question, prompt)
    room = max_length - len(prompt_part)
    if room < 1:
        raise ValueError(f"a prompt of {len(prompt_part)} tokens leaves no room within max_length={max_length}")
    answer = completion_ids(tokenizer, completion)[:room]
    return prompt_part + answer, [IGNORE] * len(prompt_part) + answer


def collate(encoded: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch tensors: input_ids, attention_mask, labels."""
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, (ids, labs) in enumerate(encoded):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(labs)] = torch.tensor(labs)
        attention[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def optimizer_steps(examples: int, batch_size: int, epochs: int, processes: int = 1) -> int:
    """Optimizer steps of a run: ``epochs`` passes over ``examples`` in batches of ``batch_size`` per
    process, the last batch of an epoch partial (what the loop and trl's data loaders both do)."""
    return epochs * math.ceil(examples / (batch_size * processes))


def warmup_steps(warmup_frac: float, steps: int) -> int:
    """Warmup steps for ``warmup_frac`` of ``steps``, rounded up; the product is rounded to 9 decimals
    first, so that 0.3 of 10 steps is 3 and not 4 (0.3 * 10 == 3.0000000000000004)."""
    return math.ceil(round(warmup_frac * steps, 9))


def lora_config(lora: dict, model_config) -> LoraConfig:
    """PEFT LoRA on the family's attention and MLP projections (``models.lora_targets``: every linear
    layer for families not in the table); keys left out take the schema's defaults."""
    from peft import LoraConfig, TaskType

    from ..models import lora_targets

    lora = {**schema_defaults("reasoning.train.lora"), **lora}
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        **lora_targets(model_config),
    )


def check_adapters(model, config: LoraConfig) -> None:
    """Raise if a LoRA target of ``config`` is missing from a transformer block of the peft ``model``."""
    from ..models import check_lora_targets

    check_lora_targets(
        model,
        config.target_modules if isinstance(config.target_modules, str) else sorted(config.target_modules),
        config.target_parameters,
    )
