"""Causal-LM students: SFT on selected solutions, then DPO on preference pairs, in one small loop.

Losses (tested against hand-computed values in tests/reasoning/test_reasoning_tuning.py):
- SFT: mean negative log-likelihood of the completion tokens (prompt tokens are masked);
- DPO (Rafailov et al. 2023): -log sigmoid(beta * [(log pi(y_c) - log ref(y_c)) - (log pi(y_r) - log ref(y_r))]),
  with sequence log-probabilities summed over completion tokens. The reference is the policy as it
  enters the DPO stage; its log-probabilities are computed once up front, so no second model is held.

The checkpoint written is a plain Hugging Face causal-LM directory (LoRA adapters merged), which
vLLM samples from in the evaluation stage.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..config import schema_defaults
from ..io import atomic_dir, write_json
from ..runtime import autocast_dtype, pick_device, seed_everything
from ..settings import from_config
from ..train import linear_schedule
from .prompts import PromptSettings, completion_ids, prompt_ids

log = logging.getLogger(__name__)
IGNORE = -100


@dataclass(frozen=True)
class TuneSettings:
    lr: float = 1e-5
    dpo_lr: float | None = None  # defaults to lr
    epochs: int = 1
    dpo_epochs: int | None = None  # defaults to epochs
    batch_size: int = 4
    max_length: int = 512  # prompt + completion tokens; longer completions are cut
    weight_decay: float = 0.0
    warmup_frac: float = 0.1
    grad_clip: float = 1.0
    dpo_beta: float = 0.1
    lora: dict | None = None  # {r, alpha, dropout}: train a LoRA adapter and merge it before saving


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


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, reference_chosen: torch.Tensor,
             reference_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean DPO loss over pairs, and each pair's reward margin beta * (chosen log-ratio - rejected log-ratio)."""
    margin = beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))
    return -F.logsigmoid(margin).mean(), margin.detach()


# --------------------------------------------------------------------------- data


def encode(tokenizer, question: str, completion: str, prompt: PromptSettings, max_length: int) -> tuple[list[int], list[int]]:
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


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[list[int]]:
    order = torch.randperm(n, generator=generator).tolist()
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


# --------------------------------------------------------------------------- training


class _Run:
    """Model, tokenizer, device and the steps of one student's training."""

    def __init__(self, model, tokenizer, settings: TuneSettings, prompt: PromptSettings, device: torch.device, seed: int):
        self.model, self.tokenizer, self.settings, self.prompt, self.device = model, tokenizer, settings, prompt, device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.autocast = autocast_dtype(device)
        self.generator = torch.Generator().manual_seed(seed)

    def _forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return logits, batch["labels"]

    def _encode(self, questions, completions) -> list[tuple[list[int], list[int]]]:
        return [encode(self.tokenizer, q, c, self.prompt, self.settings.max_length) for q, c in zip(questions, completions)]

    def _optimize(self, n: int, epochs: int, lr: float, step_loss, what: str) -> list[float]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=self.settings.weight_decay)
        batches = [b for _ in range(epochs) for b in _batches(n, self.settings.batch_size, self.generator)]
        warmup = math.ceil(self.settings.warmup_frac * len(batches))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_schedule(s, len(batches), warmup))
        self.model.train()
        losses = []
        for indices in tqdm(batches, desc=what, unit="step"):
            loss = step_loss(indices)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, self.settings.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        return losses

    def sft(self, rows: pd.DataFrame) -> dict:
        encoded = self._encode(rows["question"], rows["chosen"])

        def step_loss(indices: list[int]) -> torch.Tensor:
            return sft_loss(*self._forward(collate([encoded[i] for i in indices], self.pad_id)))

        losses = self._optimize(len(encoded), self.settings.epochs, self.settings.lr, step_loss, "sft")
        return {"examples": len(encoded), "steps": len(losses), "first_loss": losses[0], "final_loss": losses[-1]}

    @torch.no_grad()
    def _sequence_logprobs(self, encoded: list) -> torch.Tensor:
        self.model.eval()
        out = []
        for start in range(0, len(encoded), self.settings.batch_size):
            logprobs, _ = completion_logprobs(*self._forward(collate(encoded[start : start + self.settings.batch_size], self.pad_id)))
            out.append(logprobs.float().cpu())
        return torch.cat(out)

    def dpo(self, rows: pd.DataFrame) -> dict:
        chosen = self._encode(rows["question"], rows["chosen"])
        rejected = self._encode(rows["question"], rows["rejected"])
        reference_chosen, reference_rejected = self._sequence_logprobs(chosen), self._sequence_logprobs(rejected)
        margins: list[float] = []

        def step_loss(indices: list[int]) -> torch.Tensor:
            batch = collate([chosen[i] for i in indices] + [rejected[i] for i in indices], self.pad_id)
            logprobs, _ = completion_logprobs(*self._forward(batch))
            k = len(indices)
            loss, margin = dpo_loss(logprobs[:k], logprobs[k:], reference_chosen[indices].to(self.device),
                                    reference_rejected[indices].to(self.device), self.settings.dpo_beta)
            margins.append(float(margin.mean()))
            return loss

        epochs = self.settings.dpo_epochs or self.settings.epochs
        losses = self._optimize(len(chosen), epochs, self.settings.dpo_lr or self.settings.lr, step_loss, "dpo")
        return {"pairs": len(chosen), "steps": len(losses), "first_loss": losses[0], "final_loss": losses[-1],
                "final_reward_margin": margins[-1]}


def tune_student(checkpoint: str, train_set: str | Path, settings: dict, prompt: dict, seed: int,
                 out_dir: str | Path, device: str = "auto") -> dict:
    """Train a causal LM on a train set (SFT rows, then DPO rows) and save it as a checkpoint directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..models import resolve_checkpoint

    tune = from_config(TuneSettings, settings, "reasoning training")
    prompt_settings = from_config(PromptSettings, prompt, "prompt")
    rows = pd.read_parquet(train_set)
    seed_everything(seed)
    local = resolve_checkpoint(checkpoint)
    target = pick_device(device)
    model = AutoModelForCausalLM.from_pretrained(local, dtype=torch.float32).to(target)
    tokenizer = AutoTokenizer.from_pretrained(local)
    if tune.lora:
        from peft import LoraConfig, TaskType, get_peft_model

        lora = {**schema_defaults("reasoning.train.lora"), **tune.lora}  # keys left out: the schema's defaults
        model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=lora["r"], lora_alpha=lora["alpha"],
                                                 lora_dropout=lora["dropout"], target_modules="all-linear"))
    run = _Run(model, tokenizer, tune, prompt_settings, target, seed)
    started = time.time()
    info: dict = {"checkpoint": checkpoint, "seed": seed, "settings": asdict(tune), "device": str(target)}
    for stage in ("sft", "dpo"):
        part = rows[rows["stage"] == stage]
        if not part.empty:
            info[stage] = getattr(run, stage)(part.reset_index(drop=True))
            log.info("%s: %s", stage, info[stage])
    info["seconds"] = round(time.time() - started, 1)
    if tune.lora:
        model = model.merge_and_unload()
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(info, tmp / "training.json")
    return info
