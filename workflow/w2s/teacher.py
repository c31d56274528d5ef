"""Stage 2: fine-tune the weak teacher on weak_train ground truth."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq

from .io import read_json
from .learners import TextLearner
from .losses import SoftCrossEntropy
from .metrics import accuracy
from .models import resolve_checkpoint
from .runtime import pick_device
from .train import TrainSettings, one_hot, train_info, train_loop


def train_teacher(
    data_dir: str | Path, checkpoint: str, settings: dict, seed: int, out_dir: str | Path, device: str = "auto"
) -> dict:
    """``train_teacher_files`` on the splits of a ``prepare_data`` directory (for tests and benchmarks)."""
    data_dir = Path(data_dir)
    return train_teacher_files(data_dir / "weak_train.parquet", data_dir / "val.parquet", data_dir / "manifest.json",
                               checkpoint, settings, seed, out_dir, device)


def train_teacher_files(
    train_file: str | Path, val_file: str | Path, manifest_file: str | Path, checkpoint: str, settings: dict,
    seed: int, out_dir: str | Path, device: str = "auto",
) -> dict:
    """Train on ``train_file`` (weak_train gold), report accuracy on ``val_file``; save an HF checkpoint
    vLLM can load to ``out_dir``. The rule passes each file it declared."""
    started = time.time()
    manifest = read_json(manifest_file)
    label_names = manifest["label_names"]
    train = pq.read_table(train_file).to_pandas()
    val = pq.read_table(val_file).to_pandas()
    train_settings = TrainSettings.from_config(settings)

    learner = TextLearner(resolve_checkpoint(checkpoint), label_names,
                          {"weak_train": train["text"].tolist(), "val": val["text"].tolist()}, seed,
                          pick_device(device), train_settings.max_length, train_settings.eval_batch_size,
                          train_split="weak_train", gradient_checkpointing=train_settings.gradient_checkpointing,
                          precision=train_settings.precision)
    result = train_loop(learner.module, learner.logits_of, one_hot(train["label"].to_numpy(), len(label_names)),
                        SoftCrossEntropy(), train_settings, seed, lengths=learner.lengths)
    extra: dict = {"role": "weak_teacher", "checkpoint": checkpoint, "data_hash": manifest["data_hash"]}
    if len(val):
        extra["val_accuracy"] = accuracy(learner.predict("val").argmax(1), val["label"].to_numpy())
    info = train_info(train_settings, seed, result, started, **extra)
    learner.save(out_dir, info)
    return info
