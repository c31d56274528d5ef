"""Batched inference with in-memory transformers models (class probabilities, pooled features)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .batching import collate, length_sorted_batches, tokenize


@torch.inference_mode()
def predict_proba(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
    desc: str = "predict",
) -> np.ndarray:
    """Softmax probabilities (n, num_classes) in input order."""
    model.eval()
    device = next(model.parameters()).device
    token_ids = tokenize(tokenizer, texts, max_length)
    probs = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    batches = list(length_sorted_batches(token_ids, batch_size))
    for index in tqdm(batches, desc=desc, unit="batch"):
        batch = collate(tokenizer, [token_ids[i] for i in index]).to(device)
        logits = model(**batch).logits.float()
        probs[index] = torch.softmax(logits, dim=-1).cpu().numpy()
    return probs


@torch.inference_mode()
def mean_pooled_features(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
    desc: str = "features",
) -> np.ndarray:
    """Mean of the last hidden states over real (non-padding) tokens, (n, hidden) float32."""
    model.eval()
    device = next(model.parameters()).device
    token_ids = tokenize(tokenizer, texts, max_length)
    features = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for index in tqdm(list(length_sorted_batches(token_ids, batch_size)), desc=desc, unit="batch"):
        batch = collate(tokenizer, [token_ids[i] for i in index]).to(device)
        hidden = model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        features[index] = ((hidden * mask).sum(1) / mask.sum(1)).cpu().numpy()
    return features
