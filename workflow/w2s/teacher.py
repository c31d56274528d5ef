"""Stage 2: fine-tune the weak teacher on weak_train ground truth.

Internal: use :mod:`w2s.api` (``train_teacher``); :func:`fit_teacher` is its in-memory core and
:func:`train_teacher_files` the file stage around it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
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
    return train_teacher_files(
        data_dir / "weak_train.parquet",
        data_dir / "val.parquet",
        data_dir / "manifest.json",
        checkpoint,
        settings,
        seed,
        out_dir,
        device,
    )


def train_teacher_files(
    train_file: str | Path,
    val_file: str | Path,
    manifest_file: str | Path,
    checkpoint: str,
    settings: dict,
    seed: int,
    out_dir: str | Path,
    device: str = "auto",
) -> dict:
    """Train on ``train_file`` (weak_train gold), report accuracy on ``val_file``; save an HF checkpoint
    vLLM can load to ``out_dir``. The rule passes each file it declared."""
    started = time.time()
    manifest = read_json(manifest_file)
    train = pq.read_table(train_file).to_pandas()
    val = pq.read_table(val_file).to_pandas()
    return fit_teacher(
        train["text"].tolist(),
        train["label"].to_numpy(),
        manifest["label_names"],
        checkpoint,
        settings,
        seed,
        out_dir,
        val_texts=val["text"].tolist(),
        val_labels=val["label"].to_numpy(),
        device=device,
        provenance={"data_hash": manifest["data_hash"]},
        started=started,
    )


def fit_teacher(
    texts: Sequence[str],
    labels: np.ndarray,
    label_names: Sequence[str],
    checkpoint: str,
    settings: dict | None,
    seed: int,
    out_dir: str | Path,
    *,
    val_texts: Sequence[str] = (),
    val_labels: np.ndarray | None = None,
    device: str = "auto",
    provenance: dict | None = None,
    started: float | None = None,
) -> dict:
    """Fine-tune ``checkpoint`` on gold ``labels`` (class indices into ``label_names``) of ``texts``;
    save the classifier (an HF checkpoint both labeling engines load) to ``out_dir`` and return its
    training info, with ``val_accuracy`` when validation texts are given. ``provenance`` adds keys to
    the info (the file stage adds the data hash)."""
    started = time.time() if started is None else started
    if len(val_texts) and (val_labels is None or len(val_labels) != len(val_texts)):
        raise ValueError(f"{len(val_texts)} validation texts need as many validation labels")
    label_names = list(label_names)
    train_settings = TrainSettings.from_config(settings)
    learner = TextLearner(
        resolve_checkpoint(checkpoint),
        label_names,
        {"weak_train": list(texts), "val": list(val_texts)},
        seed,
        pick_device(device),
        train_settings.max_length,
        train_settings.eval_batch_size,
        train_split="weak_train",
        gradient_checkpointing=train_settings.gradient_checkpointing,
        precision=train_settings.precision,
    )
    result = train_loop(
        learner.module,
        learner.logits_of,
        one_hot(np.asarray(labels), len(label_names)),
        SoftCrossEntropy(),
        train_settings,
        seed,
        lengths=learner.lengths,
    )
    extra: dict = {"role": "weak_teacher", "checkpoint": checkpoint, **(provenance or {})}
    if len(val_texts):
        extra["val_accuracy"] = accuracy(learner.predict("val").argmax(1), np.asarray(val_labels))
    info = train_info(train_settings, seed, result, started, **extra)
    learner.save(out_dir, info)
    return info
