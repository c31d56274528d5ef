"""Tokenize once, then batch with dynamic padding (pad to the longest text in each batch)."""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from transformers import PreTrainedTokenizerBase


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def collate(tokenizer: PreTrainedTokenizerBase, token_ids: Sequence[list[int]]) -> dict[str, torch.Tensor]:
    return tokenizer.pad({"input_ids": list(token_ids)}, padding=True, return_tensors="pt")


def length_sorted_batches(token_ids: Sequence[list[int]], batch_size: int) -> Iterator[list[int]]:
    """Index batches of similar length, so inference wastes little compute on padding."""
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]
