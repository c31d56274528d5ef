"""The trl backend of student training: SFT with ``trl.SFTTrainer``, then DPO with ``trl.DPOTrainer``.

Both trainers get token ids made by ``w2s.reasoning.prompts`` (through ``tuning.encode``), so training
sees exactly the prompt tokens that sampling uses: SFT a pre-tokenized ``input_ids`` + ``completion_mask``
dataset with completion-only loss, DPO ``prompt_ids`` / ``chosen_ids`` / ``rejected_ids`` (a subclass
skips trl's own tokenization). With ``lora`` set, each stage trains a fresh PEFT LoRA adapter that is
merged before the next stage. The DPO reference is the policy as it enters DPO; its log-probabilities
are precomputed, as in the hand-written loop.

Every stage loads its model from a directory and saves its result to one (the previous stage's output,
under a scratch directory beside the output that all ranks share), so the same code runs in one process
and under ``accelerate launch`` with FSDP (``w2s.reasoning.launch``), where only rank 0 writes the output.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from ..train import training_autocast
from .objectives import IGNORE, TuneSettings, check_adapters, encode, lora_config, optimizer_steps, warmup_steps
from .prompts import PromptSettings

if TYPE_CHECKING:
    from accelerate import PartialState
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments

log = logging.getLogger(__name__)
STAGES = ("sft", "dpo")


# --------------------------------------------------------------------------- data


def sft_dataset(
    tokenizer: PreTrainedTokenizerBase, rows: pd.DataFrame, prompt: PromptSettings, max_length: int
) -> Dataset:
    """Pre-tokenized SFT examples: input ids and a completion mask (1 on completion tokens)."""
    from datasets import Dataset

    encoded = [encode(tokenizer, q, c, prompt, max_length) for q, c in zip(rows["question"], rows["chosen"])]
    return Dataset.from_dict(
        {
            "input_ids": [ids for ids, _ in encoded],
            "completion_mask": [[int(x != IGNORE) for x in labels] for _, labels in encoded],
        }
    )


def _split(encoded: tuple[list[int], list[int]]) -> tuple[list[int], list[int]]:
    ids, labels = encoded
    n_prompt = sum(x == IGNORE for x in labels)
    return ids[:n_prompt], ids[n_prompt:]


def dpo_dataset(
    tokenizer: PreTrainedTokenizerBase, rows: pd.DataFrame, prompt: PromptSettings, max_length: int
) -> Dataset:
    """Pre-tokenized preference pairs: prompt ids, chosen ids and rejected ids (each completion cut to fit)."""
    from datasets import Dataset

    columns: dict[str, list] = {"prompt_ids": [], "chosen_ids": [], "rejected_ids": []}
    for question, chosen, rejected in zip(rows["question"], rows["chosen"], rows["rejected"]):
        prompt_ids, chosen_ids = _split(encode(tokenizer, question, chosen, prompt, max_length))
        columns["prompt_ids"].append(prompt_ids)
        columns["chosen_ids"].append(chosen_ids)
        columns["rejected_ids"].append(_split(encode(tokenizer, question, rejected, prompt, max_length))[1])
    return Dataset.from_dict(columns)


# --------------------------------------------------------------------------- trainers


def _trainer_classes():
    from trl import DPOTrainer, SFTTrainer

    class PretokenizedDPOTrainer(DPOTrainer):
        """DPOTrainer on a dataset already tokenized by ``dpo_dataset`` (trl would re-tokenize the text)."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset

    return SFTTrainer, PretokenizedDPOTrainer


def trainer_args(
    stage: str, tune: TuneSettings, seed: int, out: Path, device: torch.device, examples: int, processes: int = 1
) -> TrainingArguments:
    """The SFTConfig or DPOConfig of a stage on ``examples`` rows (SFT examples or DPO pairs) split over
    ``processes``, from the reasoning.train settings.

    Warmup is passed as a step count: transformers reads ``warmup_steps`` >= 1 as steps and below 1 as a
    fraction, so ``warmup_frac: 1.0`` passed through would warm up for one step. The count is the loop
    backend's (``objectives.warmup_steps``) over the optimizer steps this run takes.
    """
    from trl import DPOConfig, SFTConfig

    epochs = tune.epochs if stage == "sft" else tune.dpo_epochs or tune.epochs
    warmup = warmup_steps(tune.warmup_frac, optimizer_steps(examples, tune.batch_size, epochs, processes))
    common = dict(
        output_dir=str(out),
        per_device_train_batch_size=tune.batch_size,
        weight_decay=tune.weight_decay,
        warmup_steps=warmup,
        lr_scheduler_type="linear",
        max_grad_norm=tune.grad_clip,
        max_length=tune.max_length,
        seed=seed,
        data_seed=seed,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=device.type == "cpu",
        dataloader_num_workers=0,
        bf16=training_autocast(tune.precision, device) is not None,
    )
    if stage == "sft":
        return SFTConfig(learning_rate=tune.lr, num_train_epochs=epochs, completion_only_loss=True, **common)
    return DPOConfig(
        learning_rate=tune.dpo_lr or tune.lr,
        num_train_epochs=epochs,
        beta=tune.dpo_beta,
        loss_type=["sigmoid"],
        precompute_ref_log_probs=True,
        **common,
    )


def build_trainer(
    stage: str,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dataset: Dataset,
    tune: TuneSettings,
    seed: int,
    scratch: Path,
    device: torch.device,
) -> Trainer:
    """An SFTTrainer or DPOTrainer for ``model`` (a LoRA adapter is added when ``tune.lora`` is set)."""
    sft_trainer, dpo_trainer = _trainer_classes()
    cls = sft_trainer if stage == "sft" else dpo_trainer
    from accelerate import PartialState

    peft_config = lora_config(tune.lora, model.config) if tune.lora else None
    args = trainer_args(stage, tune, seed, scratch / f"{stage}-run", device, len(dataset), PartialState().num_processes)
    trainer = cls(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)
    if peft_config is not None:
        check_adapters(trainer.model, peft_config)
    return trainer


# --------------------------------------------------------------------------- stages


def _stats(stage: str, trainer, n: int) -> dict:
    steps = [entry for entry in trainer.state.log_history if "loss" in entry]
    stats = {
        "examples" if stage == "sft" else "pairs": n,
        "steps": trainer.state.global_step,
        "first_loss": steps[0]["loss"],
        "final_loss": steps[-1]["loss"],
    }
    if stage == "dpo":
        stats["final_reward_margin"] = steps[-1]["rewards/margins"]
    return stats


def _load(source: str | Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)


def _save_stage(trainer: Trainer, source: str | Path, target: Path, lora: bool, state: PartialState) -> None:
    """Save a trained stage as a plain checkpoint: the full model, or the base with the adapter merged in."""
    from peft import PeftModel

    trained = target.with_name(target.name + "-adapter") if lora else target
    trainer.save_model(str(trained))  # gathers FSDP shards on rank 0
    state.wait_for_everyone()
    if lora and state.is_main_process:
        PeftModel.from_pretrained(_load(source), trained).merge_and_unload().save_pretrained(target)
        shutil.rmtree(trained)
    state.wait_for_everyone()


def run_stage(
    stage: str,
    source: str | Path,
    rows: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    tune: TuneSettings,
    prompt: PromptSettings,
    seed: int,
    scratch: Path,
    device: torch.device,
    state: PartialState,
) -> dict:
    """Train one stage on the model in ``source``; the result goes to ``scratch/<stage>``."""
    from datasets import load_from_disk

    data = scratch / f"{stage}-data"  # on disk, so that every rank reads the same dataset and its caches
    if state.is_main_process:
        make = sft_dataset if stage == "sft" else dpo_dataset
        make(tokenizer, rows, prompt, tune.max_length).save_to_disk(data)
    state.wait_for_everyone()
    dataset = load_from_disk(data)
    trainer = build_trainer(stage, _load(source), tokenizer, dataset, tune, seed, scratch, device)
    trainer.train()
    _save_stage(trainer, source, scratch / stage, bool(tune.lora), state)
    return _stats(stage, trainer, len(rows))


def train_with_trl(
    local: str,
    rows: pd.DataFrame,
    tune: TuneSettings,
    prompt: PromptSettings,
    seed: int,
    scratch: Path,
    device: torch.device,
) -> tuple[dict, str]:
    """Run the SFT and DPO stages that have rows; their stats, and the directory of the final weights."""
    from accelerate import PartialState
    from transformers import AutoTokenizer

    # On CPU the distributed state must be asked for as such (gloo): without ``cpu`` every launched process
    # would see a one-process state and act as the main one until the trainer's arguments reset it.
    state = PartialState(cpu=device.type == "cpu")
    if state.is_main_process:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
    state.wait_for_everyone()
    info: dict = {}
    source = local
    for stage in STAGES:
        part = rows[rows["stage"] == stage].reset_index(drop=True)
        if part.empty:
            continue
        tokenizer = AutoTokenizer.from_pretrained(local)  # trl may set its pad token; the saved one is untouched
        info[stage] = run_stage(stage, source, part, tokenizer, tune, prompt, seed, scratch, device, state)
        log.info("%s: %s", stage, info[stage])
        source = str(scratch / stage)
    return info, source
