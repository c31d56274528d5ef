"""Batched inference with in-memory transformers models (class probabilities, pooled features)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .batching import collate, length_sorted_batches, tokenize


def _length_sorted_map(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
    width: int,
    batch_output: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    desc: str,
) -> np.ndarray:
    """Run ``batch_output`` over length-sorted, dynamically padded batches; rows back in input order."""
    model.eval()
    device = next(model.parameters()).device
    token_ids = tokenize(tokenizer, texts, max_length)
    result = np.zeros((len(texts), width), dtype=np.float32)
    with torch.inference_mode():
        for index in tqdm(list(length_sorted_batches(token_ids, batch_size)), desc=desc, unit="batch"):
            batch = collate(tokenizer, [token_ids[i] for i in index]).to(device)
            result[index] = batch_output(batch).float().cpu().numpy()
    return result


def predict_proba(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
    desc: str = "predict",
) -> np.ndarray:
    """Softmax probabilities (n, num_classes) in input order."""
    return _length_sorted_map(model, tokenizer, texts, max_length, batch_size, model.config.num_labels,
                              lambda batch: torch.softmax(model(**batch).logits.float(), dim=-1), desc)


def mean_pooled_features(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
    desc: str = "features",
) -> np.ndarray:
    """Mean of the last hidden states over real (non-padding) tokens, (n, hidden) float32."""

    def pooled(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1)

    return _length_sorted_map(model, tokenizer, texts, max_length, batch_size, model.config.hidden_size, pooled, desc)
