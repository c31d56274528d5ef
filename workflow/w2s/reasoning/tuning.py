"""Causal-LM students: SFT on selected solutions, then DPO on preference pairs.

Two backends, chosen by ``reasoning.train.backend``: ``trl`` (``trl_tuning``: trl's SFTTrainer and
DPOTrainer, multi-GPU through ``accelerate launch``) and ``loop``, the small hand-written loop here. Both
optimize the losses of ``objectives`` on the same tokens. In the loop the DPO reference is the policy as
it enters the DPO stage; its log-probabilities are computed once up front, so no second model is held.

The checkpoint written is a plain Hugging Face causal-LM directory (LoRA adapters merged), which
vLLM samples from in the evaluation stage.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..io import atomic_dir, write_json
from ..runtime import pick_device, resolve_precision, seed_everything
from ..settings import from_config
from ..train import linear_schedule, training_autocast
from .objectives import (  # noqa: F401  (re-exported: the loop's pieces and the settings live in objectives)
    IGNORE,
    TuneSettings,
    check_adapters,
    collate,
    completion_logprobs,
    dpo_loss,
    encode,
    lora_config,
    sft_loss,
    warmup_steps,
)
from .prompts import PromptSettings

log = logging.getLogger(__name__)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[list[int]]:
    order = torch.randperm(n, generator=generator).tolist()
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


# --------------------------------------------------------------------------- training


class _Run:
    """Model, tokenizer, device and the steps of one student's training."""

    def __init__(
        self, model, tokenizer, settings: TuneSettings, prompt: PromptSettings, device: torch.device, seed: int
    ):
        self.model, self.tokenizer, self.settings, self.prompt, self.device = model, tokenizer, settings, prompt, device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.autocast = training_autocast(settings.precision, device)
        self.generator = torch.Generator().manual_seed(seed)

    def _forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return logits, batch["labels"]

    def _encode(self, questions, completions) -> list[tuple[list[int], list[int]]]:
        return [
            encode(self.tokenizer, q, c, self.prompt, self.settings.max_length) for q, c in zip(questions, completions)
        ]

    def _optimize(self, n: int, epochs: int, lr: float, step_loss, what: str) -> list[float]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=self.settings.weight_decay)
        batches = [b for _ in range(epochs) for b in _batches(n, self.settings.batch_size, self.generator)]
        warmup = warmup_steps(self.settings.warmup_frac, len(batches))
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
            logprobs, _ = completion_logprobs(
                *self._forward(collate(encoded[start : start + self.settings.batch_size], self.pad_id))
            )
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
            loss, margin = dpo_loss(
                logprobs[:k],
                logprobs[k:],
                reference_chosen[indices].to(self.device),
                reference_rejected[indices].to(self.device),
                self.settings.dpo_beta,
            )
            margins.append(float(margin.mean()))
            return loss

        epochs = self.settings.dpo_epochs or self.settings.epochs
        losses = self._optimize(len(chosen), epochs, self.settings.dpo_lr or self.settings.lr, step_loss, "dpo")
        return {
            "pairs": len(chosen),
            "steps": len(losses),
            "first_loss": losses[0],
            "final_loss": losses[-1],
            "final_reward_margin": margins[-1],
        }


def _tune_loop(
    local: str, rows: pd.DataFrame, tune: TuneSettings, prompt: PromptSettings, seed: int, target: torch.device
) -> tuple[dict, object]:
    """The hand-written loop: stats of the stages that have rows, and the trained model (LoRA merged)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(local, dtype=torch.float32).to(target)
    if tune.lora:
        from peft import get_peft_model

        config = lora_config(tune.lora, model.config)
        model = get_peft_model(model, config)
        check_adapters(model, config)
    run = _Run(model, AutoTokenizer.from_pretrained(local), tune, prompt, target, seed)
    info = {}
    for stage in ("sft", "dpo"):
        part = rows[rows["stage"] == stage]
        if not part.empty:
            info[stage] = getattr(run, stage)(part.reset_index(drop=True))
            log.info("%s: %s", stage, info[stage])
    return info, model.merge_and_unload() if tune.lora else model


def _tune_trl(
    local: str,
    rows: pd.DataFrame,
    tune: TuneSettings,
    prompt: PromptSettings,
    seed: int,
    target: torch.device,
    out_dir: Path,
) -> tuple[dict, Path | None]:
    """trl's trainers: stats, and the directory of the trained weights on the main process (None on the
    other ranks). It lies in a scratch directory beside ``out_dir``, which the caller removes."""
    from accelerate import PartialState

    from .trl_tuning import train_with_trl

    info, final = train_with_trl(local, rows, tune, prompt, seed, _trl_scratch(out_dir), target)
    state = PartialState()
    # What ran: several processes under accelerate launch (FSDP on GPUs, DDP on CPUs), or one.
    info["processes"] = {"count": state.num_processes, "distributed_type": state.distributed_type.value}
    return info, Path(final) if state.is_main_process else None


def _trl_scratch(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.trl"  # the same path on every rank


def _put_weights(weights: object, directory: Path) -> None:
    """Save a trained model into ``directory``, or move the files of one already saved there (trl's
    last stage: the weights are written once, not loaded back and written again)."""
    if not isinstance(weights, Path):
        weights.save_pretrained(directory)
        return
    for path in weights.iterdir():  # the model's files; trl's tokenizer copy and training args stay behind
        if path.name in ("config.json", "generation_config.json") or ".safetensors" in path.name:
            path.rename(directory / path.name)


def tune_student(
    checkpoint: str,
    train_set: str | Path,
    settings: dict,
    prompt: dict,
    seed: int,
    out_dir: str | Path,
    device: str = "auto",
) -> dict:
    """Train a causal LM on a train set (SFT rows, then DPO rows) and save it as a checkpoint directory."""
    from transformers import AutoTokenizer

    from ..models import resolve_checkpoint

    tune = from_config(TuneSettings, settings, "reasoning training")
    prompt_settings = from_config(PromptSettings, prompt, "prompt")
    rows = pd.read_parquet(train_set)
    seed_everything(seed)
    local = resolve_checkpoint(checkpoint)
    target = pick_device(device)
    started = time.time()
    info: dict = {
        "checkpoint": checkpoint,
        "seed": seed,
        "settings": asdict(tune),
        "device": str(target),
        "precision": resolve_precision(tune.precision, target),
    }
    if tune.backend == "trl":
        stages, weights = _tune_trl(local, rows, tune, prompt_settings, seed, target, Path(out_dir))
    else:
        stages, weights = _tune_loop(local, rows, tune, prompt_settings, seed, target)
    info.update(stages, seconds=round(time.time() - started, 1))
    if weights is not None:  # None on the ranks other than the first of a multi-GPU run
        with atomic_dir(out_dir) as tmp:
            _put_weights(weights, tmp)
            AutoTokenizer.from_pretrained(local).save_pretrained(tmp)
            write_json(info, tmp / "training.json")
        if tune.backend == "trl":
            shutil.rmtree(_trl_scratch(Path(out_dir)), ignore_errors=True)
    return info
