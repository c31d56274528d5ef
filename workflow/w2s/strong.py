"""Stage 4: the strong student (on weak labels) and the strong ceiling (on transfer gold).

Both roles run the same code with the same hyperparameters; only the targets differ. The
student's targets come from the weak-label file, which holds no gold labels.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from transformers import AutoModel, AutoTokenizer

from .inference import mean_pooled_features, predict_proba
from .io import atomic_dir, sha256_file, write_json, write_parquet
from .models import resolve_checkpoint
from .probe import fit_linear_probe
from .runtime import pick_device
from .tables import prediction_table, soft_labels
from .train import TrainSettings, fine_tune, load_classifier, one_hot, save_classifier, train_info

ROLES = ("student", "ceiling")


def load_targets(role: str, path: str | Path, num_classes: int) -> tuple[list[str], list[str], np.ndarray]:
    """(ids, texts, target probabilities) for the transfer split."""
    if role == "student":
        table = pq.read_table(path, columns=["id", "text", "soft_label"])
        targets = soft_labels(table)
    elif role == "ceiling":
        table = pq.read_table(path, columns=["id", "text", "label"])
        targets = one_hot(table.column("label").to_numpy(), num_classes)
    else:
        raise ValueError(f"unknown role {role!r}; choose one of {ROLES}")
    return table.column("id").to_pylist(), table.column("text").to_pylist(), targets


def extract_features(
    checkpoint: str, inputs: dict[str, str], outputs: dict[str, str], max_length: int, batch_size: int, device: str = "auto"
) -> None:
    """Mean-pooled frozen features per split: Parquet with ``id`` and ``embedding`` (fixed-size float32 list)."""
    resolved = resolve_checkpoint(checkpoint)
    model = AutoModel.from_pretrained(resolved).to(pick_device(device))
    tokenizer = AutoTokenizer.from_pretrained(resolved)
    for split, path in inputs.items():
        table = pq.read_table(path, columns=["id", "text"])
        features = mean_pooled_features(model, tokenizer, table.column("text").to_pylist(), max_length,
                                        batch_size, desc=f"features {split}")
        embedding = pa.FixedSizeListArray.from_arrays(pa.array(features.ravel(), pa.float32()), features.shape[1])
        write_parquet(
            pa.table({"id": table.column("id"), "embedding": embedding}),
            outputs[split],
            provenance={"checkpoint": checkpoint, "split": split, "max_length": max_length,
                        "input_sha256": sha256_file(path), "pooling": "mean"},
        )


def read_features(path: str | Path) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(path)
    column = table.column("embedding").combine_chunks()
    return table.column("id").to_pylist(), column.flatten().to_numpy().reshape(len(column), -1).copy()


def _aligned(feature_ids: list[str], features: np.ndarray, ids: list[str]) -> np.ndarray:
    position = {example_id: i for i, example_id in enumerate(feature_ids)}
    missing = [i for i in ids if i not in position]
    if missing:
        raise ValueError(f"{len(missing)} examples have no features, e.g. {missing[:3]}")
    return features[[position[i] for i in ids]]


def train_probe_role(
    role: str, targets_path: str, features: dict[str, str], num_classes: int, probe: dict, loss: str,
    out_model: str | Path, out_predictions: str | Path,
) -> dict:
    """Fit a linear probe on transfer features against the role's targets; predict transfer and test."""
    started = time.time()
    ids, _, targets = load_targets(role, targets_path, num_classes)
    transfer_ids, transfer_x = read_features(features["transfer"])
    test_ids, test_x = read_features(features["test"])
    fitted = fit_linear_probe(_aligned(transfer_ids, transfer_x, ids), targets,
                              l2=probe["l2"], max_iter=probe["max_iter"], loss_name=loss)
    info = {"role": role, "mode": "linear_probe", "loss": loss, "probe": probe, "n_train": len(ids),
            "targets_sha256": sha256_file(targets_path), "seconds": round(time.time() - started, 2)}
    with atomic_dir(out_model) as tmp:
        fitted.save(Path(tmp) / "probe.safetensors")
        write_json(info, Path(tmp) / "train_info.json")
    table = pa.concat_tables([
        prediction_table(transfer_ids, "transfer", fitted.predict_proba(transfer_x)),
        prediction_table(test_ids, "test", fitted.predict_proba(test_x)),
    ])
    write_parquet(table, out_predictions, provenance=info)
    return info


def train_finetune_role(
    role: str, targets_path: str, test_path: str, checkpoint: str, label_names: list[str], settings: dict,
    loss: str, seed: int, device: str, out_model: str | Path, out_predictions: str | Path,
) -> dict:
    """Fine-tune the whole strong model on the role's targets; predict transfer and test."""
    started = time.time()
    train_settings = TrainSettings.from_config(settings)
    ids, texts, targets = load_targets(role, targets_path, len(label_names))
    model, tokenizer = load_classifier(resolve_checkpoint(checkpoint), label_names, seed)
    losses = fine_tune(model, tokenizer, texts, targets, train_settings, loss, seed, pick_device(device))
    test = pq.read_table(test_path, columns=["id", "text"])

    def predict(split_texts: list[str], split: str) -> np.ndarray:
        return predict_proba(model, tokenizer, split_texts, train_settings.max_length,
                             train_settings.eval_batch_size, desc=split)

    table = pa.concat_tables([
        prediction_table(ids, "transfer", predict(texts, "transfer")),
        prediction_table(test.column("id").to_pylist(), "test", predict(test.column("text").to_pylist(), "test")),
    ])
    info = train_info(train_settings, loss, seed, losses, started, role=role, mode="full_finetune",
                      checkpoint=checkpoint, targets_sha256=sha256_file(targets_path))
    save_classifier(model, tokenizer, out_model, info)
    write_parquet(table, out_predictions, provenance={k: v for k, v in info.items() if k != "loss_curve"})
    return info

