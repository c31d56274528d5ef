"""Ensembles of teachers, and weak labels degraded to a target accuracy (for "how weak can the
teacher be" curves).

Both write the same weak-label Parquet schema as the labeling stage, with provenance, so every
student and evaluation step treats them like any other teacher's labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..io import read_provenance, sha256_file, write_parquet
from ..tables import label_table, soft_labels

COMBINE_RULES = ("mean", "geometric", "vote")


def read_weak_labels(path: str | Path) -> tuple[pa.Table, np.ndarray]:
    """The (id, text) columns of a weak-label file and its soft labels."""
    table = pq.read_table(path, columns=["id", "text", "soft_label"])
    return table.select(["id", "text"]), soft_labels(table)


def combine(member_probs: list[np.ndarray], rule: str) -> np.ndarray:
    """Combine members' class probabilities (each (n, k), rows aligned) into one (n, k) array.

    mean: arithmetic mean; geometric: normalized geometric mean (a product of experts);
    vote: the share of members whose argmax is each class.
    """
    stacked = np.stack(member_probs).astype(np.float64)
    if rule == "mean":
        combined = stacked.mean(axis=0)
    elif rule == "geometric":
        log_mean = np.log(np.clip(stacked, 1e-12, 1.0)).mean(axis=0)
        combined = np.exp(log_mean - log_mean.max(axis=1, keepdims=True))
        combined /= combined.sum(axis=1, keepdims=True)
    elif rule == "vote":
        k = stacked.shape[2]
        combined = np.eye(k)[stacked.argmax(axis=2)].mean(axis=0)
    else:
        raise ValueError(f"unknown combine rule {rule!r}; choose one of {COMBINE_RULES}")
    return combined.astype(np.float32)


def combine_weak_labels(member_paths: dict[str, str], rule: str, out_path: str | Path, provenance: dict) -> None:
    """One split: align the members' weak labels by id and write their combination."""
    base, base_probs = None, []
    for member, path in member_paths.items():
        split, probs = read_weak_labels(path)
        if base is None:
            base = split
        elif split.column("id").to_pylist() != base.column("id").to_pylist():
            raise ValueError(f"ensemble member {member!r} labels other examples (or in another order) than the first")
        base_probs.append(probs)
    members = {
        name: {"sha256": sha256_file(path), "provenance": read_provenance(path)} for name, path in member_paths.items()
    }
    write_parquet(
        label_table(base, combine(base_probs, rule)),
        out_path,
        provenance={**provenance, "source": "ensemble", "combine": rule, "members": members},
    )


def degrade(probs: np.ndarray, gold: np.ndarray, target_accuracy: float, seed: int) -> np.ndarray:
    """Weak labels whose argmax accuracy against ``gold`` is exactly round(target * n).

    Examples are chosen at random; a chosen example has its argmax probability swapped with that of
    another class (a random wrong class to break it, the gold class to fix it), so the confidence
    profile of the labels is kept.
    """
    rng = np.random.default_rng(seed)
    probs = probs.copy()
    n, k = probs.shape
    predicted = probs.argmax(axis=1)
    correct = np.flatnonzero(predicted == gold)
    wrong = np.flatnonzero(predicted != gold)
    change = round(target_accuracy * n) - len(correct)
    if change < 0:
        for i in rng.choice(correct, size=-change, replace=False):
            new = rng.choice([c for c in range(k) if c != gold[i]])
            probs[i, [predicted[i], new]] = probs[i, [new, predicted[i]]]
    else:
        if change > len(wrong):
            raise ValueError(f"cannot raise accuracy to {target_accuracy}: only {len(wrong)} labels are wrong")
        for i in rng.choice(wrong, size=change, replace=False):
            probs[i, [predicted[i], gold[i]]] = probs[i, [gold[i], predicted[i]]]
    return probs


def degrade_weak_labels(
    source_path: str, gold_path: str, target_accuracy: float, seed: int, out_path: str | Path, provenance: dict
) -> float:
    """One split: degrade (or improve) the source's weak labels to the target accuracy; returns it.

    This reads gold labels on purpose, to control the teacher's accuracy in a study; the provenance
    says so (``uses_gold``), and the labels are meant for studies, not for claims about W2S methods.
    """
    split, probs = read_weak_labels(source_path)
    gold_table = pq.read_table(gold_path, columns=["id", "label"])
    position = {example_id: i for i, example_id in enumerate(gold_table.column("id").to_pylist())}
    gold = gold_table.column("label").to_numpy()[[position[i] for i in split.column("id").to_pylist()]]
    degraded = degrade(probs, gold, target_accuracy, seed)
    achieved = float((degraded.argmax(axis=1) == gold).mean())
    write_parquet(
        label_table(split, degraded),
        out_path,
        provenance={
            **provenance,
            "source": "degraded",
            "uses_gold": True,
            "target_accuracy": target_accuracy,
            "achieved_accuracy": achieved,
            "from": read_provenance(source_path),
        },
    )
    return achieved
