"""Stage 4: the strong student (on weak labels) and the strong ceiling (on transfer gold).

Both roles run the same code with the same hyperparameters; only the targets differ, and the
student's come from the weak-label file, which holds no gold labels. A student's method decides
its loss, which weak labels it trains on (confidence band, weighting) and how many rounds of
strong-to-strong relabeling follow. Early stopping scores a held-out part of transfer against the
role's own targets: weak labels for a student, never gold.

Internal: use :mod:`w2s.api` (``train_student``, ``train_ceiling``); :func:`fit_role` is their
in-memory core and :func:`train_role` the file stage around it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .features import aligned_features
from .io import sha256_file, write_parquet
from .learners import ProbeLearner, TextLearner
from .methods import Method
from .metrics import agreement, auroc
from .models import resolve_checkpoint
from .runtime import pick_device
from .tables import prediction_table, soft_labels
from .train import TrainSettings, Validation, one_hot, train_info, train_loop

ROLES = ("student", "ceiling")
# The round index of the first student a selection rule chooses from (its seed: seed - 1000).
FIRST_STUDENT_ROUND = -1
MODES = ("linear_probe", "full_finetune", "lora")


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


def validation_score(probs: np.ndarray, targets: np.ndarray) -> float:
    """How well predictions match the role's targets: AUROC when defined, else agreement."""
    labels = targets.argmax(axis=1)
    score = auroc(probs, labels)
    return score if score is not None else agreement(probs.argmax(axis=1), labels)


def holdout_split(n: int, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_holdout = int(round(frac * n))
    return np.sort(order[n_holdout:]), np.sort(order[:n_holdout])


class StrongTrainer:
    """Builds a fresh learner per round and trains it on a role's targets."""

    def __init__(
        self,
        spec: dict,
        checkpoint: str,
        label_names: list[str],
        seed: int,
        device: str,
        texts: dict[str, list[str]],
        features: dict[str, np.ndarray] | None,
    ):
        if spec["mode"] not in MODES:
            raise ValueError(f"unknown strong mode {spec['mode']!r}; choose one of {MODES}")
        self.spec, self.checkpoint, self.label_names, self.seed = spec, checkpoint, label_names, seed
        self.device, self.texts, self.features = pick_device(device), texts, features
        if spec["mode"] == "linear_probe":
            probe = spec["probe"]
            self.settings = TrainSettings(
                epochs=probe["epochs"], batch_size=probe["batch_size"], lr=probe["lr"], weight_decay=0.0, grad_clip=0.0
            )
        else:
            self.settings = TrainSettings.from_config(spec["train"])

    def new_learner(self, round_index: int) -> ProbeLearner | TextLearner:
        seed = self.seed + 1000 * round_index
        if self.spec["mode"] == "linear_probe":
            return ProbeLearner(self.features, len(self.label_names), seed, self.spec["probe"]["l2"])
        lora = self.spec["lora"] if self.spec["mode"] == "lora" else None
        return TextLearner(
            resolve_checkpoint(self.checkpoint),
            self.label_names,
            self.texts,
            seed,
            self.device,
            self.settings.max_length,
            self.settings.eval_batch_size,
            lora=lora,
            gradient_checkpointing=self.settings.gradient_checkpointing,
            precision=self.settings.precision,
        )

    def fit(
        self, learner, targets: np.ndarray, method: Method, round_index: int, student: np.ndarray | None = None
    ) -> dict:
        """Train ``learner`` on the method's selection of ``targets`` (indices into transfer); ``student``:
        a first student's transfer probabilities, for a selection rule that chooses from them."""
        selected, weights = method.select(targets, student=student)
        early = self.spec["early_stopping"]
        validation = None
        if early["enabled"]:
            train_pos, holdout_pos = holdout_split(len(selected), early["holdout_frac"], self.seed + round_index)
            holdout = selected[holdout_pos]
            every = early["eval_every"] or math.ceil(len(train_pos) / self.settings.batch_size)
            validation = Validation(
                lambda: validation_score(learner.predict("transfer", holdout), targets[holdout]),
                every=every,
                patience=early["patience"],
            )
            selected = selected[train_pos]
            weights = None if weights is None else weights[train_pos]
        index_map = torch.as_tensor(selected)
        lengths = getattr(learner, "lengths", None)  # text learners: token counts, for length-bucketed batches
        result = train_loop(
            learner.module,
            lambda index: learner.logits_of(index_map[index]),
            targets[selected],
            method.build_loss(targets[selected]),
            self.settings,
            self.seed + round_index,
            weights=weights,
            penalty=getattr(learner, "penalty", None),
            validation=validation,
            lengths=None if lengths is None else [lengths[i] for i in selected],
        )
        return {**result, "n_train": len(selected), "round": round_index}


@dataclass
class Trained:
    """A trained strong role: its training info, its learner (``learner.module`` is the model) and its
    class probabilities on transfer and test (rows in the order of the texts it was given)."""

    info: dict
    learner: ProbeLearner | TextLearner
    transfer: np.ndarray
    test: np.ndarray


def fit_role(
    role: str,
    spec: dict,
    method_config: dict | None,
    texts: dict[str, list[str]],
    targets: np.ndarray,
    features: dict[str, np.ndarray] | None,
    checkpoint: str,
    label_names: list[str],
    seed: int,
    device: str,
    out_model: str | Path | None = None,
    provenance: dict | None = None,
    started: float | None = None,
) -> Trained:
    """Train a strong ceiling or student on ``targets`` (transfer class probabilities, rows in the order
    of ``texts["transfer"]``) and predict transfer and test. ``spec`` is a complete strong spec
    (:func:`w2s.experiments.strong_spec`); ``features`` ({split: array}) are needed in linear_probe
    mode. With ``out_model`` the model is saved there before it predicts, as the file stage does
    (a LoRA adapter is merged on saving). ``provenance`` adds keys to the training info."""
    started = time.time() if started is None else started
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {ROLES}")
    method = Method.from_config(method_config if role == "student" else {})
    trainer = StrongTrainer(spec, checkpoint, label_names, seed, device, texts, features)

    rounds, first_student = [], None
    if method.needs_student():  # e.g. confident self-retraining: a first student on the band, seeded apart
        first = trainer.new_learner(FIRST_STUDENT_ROUND)
        plain = dataclasses.replace(method, weighting="none", weighting_options={})
        rounds.append(trainer.fit(first, targets, plain, FIRST_STUDENT_ROUND))
        first_student = first.predict("transfer")
    for round_index in range(1 + method.relabel_rounds):
        learner = trainer.new_learner(round_index)
        rounds.append(trainer.fit(learner, targets, method, round_index, student=first_student))
        if round_index < method.relabel_rounds:
            targets = learner.predict("transfer")  # strong-to-strong: the student relabels transfer

    info = train_info(
        trainer.settings,
        seed,
        {"rounds": [{k: v for k, v in r.items() if k != "loss_curve"} for r in rounds]},
        started,
        role=role,
        mode=spec["mode"],
        method=method_config if role == "student" else None,
        extensions=method.extensions() if role == "student" else None,
        checkpoint=checkpoint,
        **(provenance or {}),
    )
    if out_model is not None:
        learner.save(out_model, {**info, "loss_curves": [r["loss_curve"] for r in rounds]})
    return Trained(info, learner, learner.predict("transfer"), learner.predict("test"))


def train_role(
    role: str,
    spec: dict,
    method_config: dict,
    targets_path: str,
    test_path: str,
    features: dict[str, str],
    checkpoint: str,
    label_names: list[str],
    seed: int,
    device: str,
    out_model: str | Path,
    out_predictions: str | Path,
) -> dict:
    """Train a strong ceiling or student; write its model and its transfer + test predictions."""
    started = time.time()
    ids, texts, targets = load_targets(role, targets_path, len(label_names))
    test = pq.read_table(test_path, columns=["id", "text"])
    test_ids = test.column("id").to_pylist()
    split_features = None
    if spec["mode"] == "linear_probe":
        split_features = {
            "transfer": aligned_features(features["transfer"], ids),
            "test": aligned_features(features["test"], test_ids),
        }
    trained = fit_role(
        role,
        spec,
        method_config,
        {"transfer": texts, "test": test.column("text").to_pylist()},
        targets,
        split_features,
        checkpoint,
        label_names,
        seed,
        device,
        out_model,
        {"targets_sha256": sha256_file(targets_path)},
        started,
    )
    table = pa.concat_tables(
        [prediction_table(ids, "transfer", trained.transfer), prediction_table(test_ids, "test", trained.test)]
    )
    write_parquet(table, out_predictions, provenance=trained.info)
    return trained.info
