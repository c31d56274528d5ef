"""Batched inference with in-memory transformers models (class probabilities, pooled features)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

if TYPE_CHECKING:  # loaded by the stages that build models, not by linear-probe jobs
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
    return _length_sorted_map(
        model,
        tokenizer,
        texts,
        max_length,
        batch_size,
        model.config.num_labels,
        lambda batch: torch.softmax(model(**batch).logits.float(), dim=-1),
        desc,
    )


POOLINGS = ("mean", "cls", "last_token")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(batch, tokens, hidden) -> (batch, hidden) over right-padded batches: the mean of the real
    tokens, the first token (``cls``) or the last real token (``last_token``)."""
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last_token":
        last = attention_mask.sum(1).long() - 1  # right padding: the last real token's position
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")


def pooled_features(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
    pooling: str,
    layer: int = -1,
    desc: str = "features",
) -> np.ndarray:
    """Pooled hidden states of a base model (``AutoModel``), (n, hidden) float32 in input order.

    ``layer`` indexes the hidden states as transformers numbers them (0 the embeddings, i block i's
    output, negative from the end); the last layer (-1) is the model's final output
    (``last_hidden_state``, after a final norm where the architecture has one).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    num_layers = model.config.get_text_config().num_hidden_layers
    if not -(num_layers + 1) <= layer <= num_layers:
        raise ValueError(
            f"feature layer {layer} is out of range for a model with {num_layers} layers "
            f"(valid: {-(num_layers + 1)} .. {num_layers})"
        )
    last = layer in (-1, num_layers)

    def pooled(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if last:
            hidden = model(**batch).last_hidden_state.float()
        else:
            hidden = model(**batch, output_hidden_states=True).hidden_states[layer].float()
        return pool(hidden, batch["attention_mask"], pooling)

    return _length_sorted_map(model, tokenizer, texts, max_length, batch_size, model.config.hidden_size, pooled, desc)


def mean_pooled_features(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
    desc: str = "features",
) -> np.ndarray:
    """Mean of the last hidden states over real (non-padding) tokens, (n, hidden) float32."""
    return pooled_features(model, tokenizer, texts, max_length, batch_size, "mean", -1, desc)
