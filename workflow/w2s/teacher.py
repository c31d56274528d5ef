"""Stage 2: fine-tune the weak teacher on weak_train ground truth."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq

from .inference import predict_proba
from .io import read_json
from .metrics import accuracy
from .models import resolve_checkpoint
from .runtime import pick_device
from .train import TrainSettings, fine_tune, load_classifier, one_hot, save_classifier, train_info


def train_teacher(
    data_dir: str | Path, checkpoint: str, settings: dict, seed: int, out_dir: str | Path, device: str = "auto"
) -> dict:
    """Train on ``data_dir/weak_train.parquet``; save an HF checkpoint vLLM can load to ``out_dir``."""
    started = time.time()
    data_dir = Path(data_dir)
    manifest = read_json(data_dir / "manifest.json")
    label_names = manifest["label_names"]
    train = pq.read_table(data_dir / "weak_train.parquet").to_pandas()
    train_settings = TrainSettings.from_config(settings)

    model, tokenizer = load_classifier(resolve_checkpoint(checkpoint), label_names, seed)
    losses = fine_tune(
        model, tokenizer, train["text"].tolist(), one_hot(train["label"].to_numpy(), len(label_names)),
        train_settings, "xent", seed, pick_device(device),
    )
    extra: dict = {"role": "weak_teacher", "checkpoint": checkpoint, "data_hash": manifest["data_hash"]}
    val = pq.read_table(data_dir / "val.parquet").to_pandas()
    if len(val):
        probs = predict_proba(model, tokenizer, val["text"].tolist(), train_settings.max_length,
                              train_settings.eval_batch_size, desc="val")
        extra["val_accuracy"] = accuracy(probs.argmax(1), val["label"].to_numpy())
    info = train_info(train_settings, "xent", seed, losses, started, **extra)
    save_classifier(model, tokenizer, out_dir, info)
    return info
