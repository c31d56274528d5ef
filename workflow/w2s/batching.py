"""Tokenize once, then batch with dynamic padding (pad to the longest text in each batch).

Batches are always padded on the right. For encoders this is the usual layout; for decoder-only
models it is the one that is exact for every architecture: causal attention never lets a real
token see the padding after it and positions start at 0, as in an unpadded run (and in vLLM,
which does not pad). Left padding shifts positions, which only rotary models shrug off.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # importing transformers is slow, and a linear-probe job never needs it
    from transformers import PreTrainedTokenizerBase


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Give a tokenizer without a pad token (most decoders) one, EOS (else UNK), and pad on the right.

    Sequence classification on decoders pools the last token that is not padding, so the model's
    ``config.pad_token_id`` must be set to ``tokenizer.pad_token_id`` as well (``sync_pad_token``).
    """
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ValueError("the tokenizer has no pad, eos or unk token to pad batches with; add a pad token")
        tokenizer.pad_token = fallback
    tokenizer.padding_side = "right"
    return tokenizer


def sync_pad_token(model, tokenizer: PreTrainedTokenizerBase) -> None:
    """Set the model's ``config.pad_token_id`` (and its text config's) to the tokenizer's pad token."""
    configs = {id(model.config): model.config}
    text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    configs[id(text_config)] = text_config
    for config in configs.values():
        config.pad_token_id = tokenizer.pad_token_id  # the id collate pads with is the one pooling skips


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def collate(tokenizer: PreTrainedTokenizerBase, token_ids: Sequence[list[int]]) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` (see the module docstring for why right)."""
    return tokenizer.pad({"input_ids": list(token_ids)}, padding=True, return_tensors="pt", padding_side="right")


def bucketed_batches(
    lengths: Sequence[int], batch_size: int, chunk_batches: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """One epoch of training batches (index tensors) that cover every example exactly once.

    Shuffle, cut into chunks of ``chunk_batches`` batches, sort each chunk by length and cut it into
    batches, then shuffle the batches: batches hold texts of similar length (little padding) while
    which texts meet in a batch, and the batch order, stay random. ``chunk_batches=0`` gives plain
    shuffled batches (``randperm(n).split(batch_size)``, the order the probe trains in).
    """
    if batch_size < 1 or chunk_batches < 0:
        raise ValueError(f"batch_size must be >= 1 and chunk_batches >= 0, got {batch_size}, {chunk_batches}")
    order = torch.randperm(len(lengths), generator=generator)
    if chunk_batches == 0:
        return list(order.split(batch_size))
    lengths_t = torch.as_tensor(list(lengths), dtype=torch.long)
    batches: list[torch.Tensor] = []
    for chunk in order.split(batch_size * chunk_batches):
        by_length = chunk[torch.argsort(lengths_t[chunk], stable=True)]
        batches.extend(by_length.split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


def length_sorted_batches(token_ids: Sequence[list[int]], batch_size: int) -> Iterator[list[int]]:
    """Index batches of similar length, so inference wastes little compute on padding."""
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
