"""Frozen features of the strong model (linear_probe mode): computed once per split and model,
shared by the ceiling and every student.

Encoders are mean-pooled (as before ``strong.probe.pooling`` existed); decoder-only models are
pooled at their last real token, the only position that has attended to the whole text. The
layer and the pooling used are recorded in each file's provenance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .batching import prepare_tokenizer
from .inference import POOLINGS, pooled_features
from .io import sha256_file, write_parquet
from .models import is_decoder_only, resolve_checkpoint
from .runtime import pick_device, resolve_precision


def resolve_pooling(pooling: str, config) -> str:
    """``auto``: last_token for decoder-only models, mean for encoders; other values pass through."""
    if pooling == "auto":
        return "last_token" if is_decoder_only(config) else "mean"
    if pooling not in POOLINGS:
        raise ValueError(f"strong.probe.pooling {pooling!r} is not one of {('auto', *POOLINGS)}")
    return pooling


def extract_features(
    checkpoint: str,
    inputs: dict[str, str],
    outputs: dict[str, str],
    max_length: int,
    batch_size: int,
    device: str = "auto",
    *,
    layer: int,
    pooling: str,
    precision: str = "auto",
) -> None:
    """Pooled frozen features per split: Parquet with ``id`` and ``embedding`` (fixed-size float32 list).

    ``precision`` ``auto`` runs the frozen model in bf16 weights where the device multiplies bf16
    natively (``runtime.resolve_precision`` for the ``features`` stage: CUDA of compute capability >= 8.0,
    CPUs with AMX-BF16 or AVX512-BF16, where it is much faster: benchmarks/README.md), fp32
    elsewhere; the pooling is fp32 and the precision that ran is in the provenance."""
    from transformers import AutoModel, AutoTokenizer

    resolved = resolve_checkpoint(checkpoint)
    torch_device = pick_device(device)
    used_precision = resolve_precision(precision, torch_device, "features")
    dtype = torch.bfloat16 if used_precision == "bf16" else torch.float32
    model = AutoModel.from_pretrained(resolved, dtype=dtype).to(torch_device)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(resolved))
    used = resolve_pooling(pooling, model.config)
    for split, path in inputs.items():
        table = pq.read_table(path, columns=["id", "text"])
        features = pooled_features(
            model,
            tokenizer,
            table.column("text").to_pylist(),
            max_length,
            batch_size,
            used,
            layer,
            desc=f"features {split}",
        )
        embedding = pa.FixedSizeListArray.from_arrays(pa.array(features.ravel(), pa.float32()), features.shape[1])
        write_parquet(
            pa.table({"id": table.column("id"), "embedding": embedding}),
            outputs[split],
            provenance={
                "checkpoint": checkpoint,
                "split": split,
                "max_length": max_length,
                "input_sha256": sha256_file(path),
                "pooling": used,
                "pooling_setting": pooling,
                "layer": layer,
                "precision": used_precision,
                "precision_setting": precision,
            },
        )


def read_features(path: str | Path) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(path)
    column = table.column("embedding").combine_chunks()
    return table.column("id").to_pylist(), column.flatten().to_numpy().reshape(len(column), -1).copy()


def aligned_features(path: str | Path, ids: list[str]) -> np.ndarray:
    """Rows of the features file in the order of ``ids``."""
    feature_ids, features = read_features(path)
    position = {example_id: i for i, example_id in enumerate(feature_ids)}
    missing = [i for i in ids if i not in position]
    if missing:
        raise ValueError(f"{path}: {len(missing)} examples have no features, e.g. {missing[:3]}")
    return features[[position[i] for i in ids]]
