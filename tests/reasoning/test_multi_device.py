"""The several-GPU route of reasoning-train, run for real on two CPU processes: ``accelerate launch`` of
the same command (``launch.run_launched`` with ``fsdp_config(cpu=True)``: DDP ranks over gloo, since
accelerate enables FSDP only on accelerators), trl's SFT then DPO with a LoRA adapter, and rank 0 saving
the merged checkpoint. It must equal the checkpoint of one process that sees the same global batches."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from w2s.cli import build_parser
from w2s.reasoning.launch import fsdp_config, run_launched
from w2s.reasoning.tuning import tune_student

# Two SFT examples and two DPO pairs per process and step; every completion has the same length, so
# a rank's mean over its tokens is the mean over the global batch.
ROWS = pd.DataFrame(
    {
        "stage": ["sft"] * 4 + ["dpo"] * 4,
        "problem_id": list("abcdabcd"),
        "question": ["What is 2+2?", "What is 3+3?", "What is 1+1?", "What is 4+4?"] * 2,
        "chosen": ["#### 4", "#### 6", "#### 2", "#### 8"] * 2,
        "rejected": [None] * 4 + ["#### 5", "#### 7", "#### 3", "#### 9"],
        "origin": "test",
    }
)
# warmup_frac 0.5 of 2 optimizer steps is 1 step in both runs only if the count divides by the processes.
SETTINGS = {
    "backend": "trl",
    "lr": 3e-3,
    "epochs": 2,
    "max_length": 96,
    "warmup_frac": 0.5,
    "dpo_beta": 0.5,
    "precision": "fp32",
    "lora": {"r": 4, "alpha": 8},
}
# fp32 sums over two processes differ from one process's only in the order of additions (measured 2e-6 at
# most on these weights); a sharding, gather, schedule or save fault moves weights by a whole update (3e-3).
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory):
    """A 2-layer random Llama (hidden 64) with SmolLM2's tokenizer: no download."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from w2s.models import resolve_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint("builtin:SmolLM2-135M-Instruct"))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    out = tmp_path_factory.mktemp("tiny_causal_lm") / "model"
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.slow
def test_two_processes_save_the_checkpoint_of_one(tiny_causal_lm, tmp_path):
    ROWS.to_parquet(tmp_path / "set.parquet")
    two = tmp_path / "two"
    args = build_parser().parse_args(
        [
            "--threads",
            "1",
            "reasoning-train",
            "--checkpoint",
            str(tiny_causal_lm),
            "--train-set",
            str(tmp_path / "set.parquet"),
            "--settings",
            json.dumps({**SETTINGS, "batch_size": 2}),
            "--prompt",
            "{}",
            "--seed",
            "0",
            "--device",
            "cpu",
            "--out-dir",
            str(two),
        ]
    )
    run_launched(args, 2, fsdp_config(2, mixed_precision="no", cpu=True))
    one = tune_student(
        str(tiny_causal_lm), tmp_path / "set.parquet", {**SETTINGS, "batch_size": 4}, {}, 0, tmp_path / "one", "cpu"
    )

    info = json.loads((two / "training.json").read_text())
    assert info["processes"] == {"count": 2, "distributed_type": "MULTI_CPU"}  # two ranks really trained
    assert one["processes"] == {"count": 1, "distributed_type": "NO"}
    assert info["sft"]["steps"] == one["sft"]["steps"] == 2 and info["dpo"]["steps"] == one["dpo"]["steps"] == 2
    assert info["dpo"]["first_loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at the start
    saved, single = load_file(two / "model.safetensors"), load_file(tmp_path / "one" / "model.safetensors")
    base = load_file(tiny_causal_lm / "model.safetensors")
    assert set(saved) == set(single) == set(base)  # merged: no adapter keys
    difference = max((saved[k] - single[k]).abs().max().item() for k in base)
    change = max((single[k] - base[k]).abs().max().item() for k in base)
    print(f"two processes vs one: max |difference| {difference:.2e}, max |change from base| {change:.2e}")
    assert difference < TOLERANCE < change
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "set.parquet", "two"]  # no scratch left
