"""Stage 5: score weak teacher, strong student and strong ceiling against gold (the grid's summary: :mod:`w2s.summary`).

One metrics JSON per (task, seed, weak, strong, method) experiment, written by one job per (task, seed,
weak, strong) pair; flat scalar keys become the columns of the summary table, nested keys
(``reliability``, ``settings``) stay in the JSON.

Internal: use :mod:`w2s.api` (``evaluate``); :func:`student_metrics` is its in-memory core and
:func:`evaluate_students` the file stage around it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .difficulty import subset_scores
from .generalization import band_coverage, generalization_metrics
from .io import read_provenance, write_json
from .metrics import (
    NO_INTERVAL,
    accuracy,
    accuracy_standard_error,
    agreement,
    auroc,
    bootstrap_pgr,
    brier_score,
    conditional_agreement,
    expected_calibration_error,
    interval_fields,
    performance_gap_recovered,
    pgr_fieller_set,
    prefixed_interval,
    reliability_bins,
    subset_accuracy,
)
from .schema import defaults_from_schema
from .summary import ROLES
from .tables import hard_labels, soft_labels

# The ceiling is trained on transfer gold, so its transfer accuracy is training accuracy: left out.
TRANSFER_ROLES = ("weak", "student")


@dataclass(frozen=True)
@defaults_from_schema("evaluation")
class EvaluationSettings:
    """The `evaluation` config section (see the schema for each key's meaning and its default)."""

    min_pgr_gap: float
    bootstrap_samples: int
    confidence_level: float
    bootstrap_seed: int
    ece_bins: int
    confidence_split: float | str
    blind_spot_confidence: float

    def __post_init__(self) -> None:
        split = self.confidence_split
        if split != "median" and not (isinstance(split, (int, float)) and 0.0 <= split <= 1.0):
            raise ValueError(f"evaluation confidence_split must be 'median' or a number in [0, 1], got {split!r}")


@dataclass(frozen=True)
class Predictions:
    """One model's predictions on one split, aligned to the gold example order."""

    probs: np.ndarray
    hard: np.ndarray
    confidence: np.ndarray

    def correct(self, labels: np.ndarray) -> np.ndarray:
        return self.hard == labels

    @classmethod
    def from_probs(cls, probs: np.ndarray) -> Predictions:
        """The predictions a prediction file of ``probs`` holds: float32 probabilities, their argmax
        (:func:`w2s.tables.hard_labels`) and largest value, as the file stages write and read them."""
        probs = np.asarray(probs, dtype=np.float32)
        return cls(probs.astype(np.float64), hard_labels(probs), probs.max(axis=1).astype(np.float64))


def _gold(split_path: str | Path) -> pd.Series:
    return pq.read_table(split_path, columns=["id", "label"]).to_pandas().set_index("id")["label"]


def _predictions(path: str | Path, gold: pd.Series, name: str, split: str) -> Predictions:
    """Rows of ``path`` for ``split`` (weak label files hold one split and no ``split`` column)."""
    table = pq.read_table(path)
    if "split" in table.column_names:
        table = table.filter(pc.equal(table.column("split"), split))
    ids = pd.Index(table.column("id").to_pylist())
    missing = gold.index.difference(ids)
    if len(missing):
        raise ValueError(f"{name}: {len(missing)} {split} examples have no prediction, e.g. {list(missing[:3])}")
    order = ids.get_indexer(gold.index)
    return Predictions(
        probs=soft_labels(table)[order].astype(np.float64),
        hard=table.column("hard_label").to_numpy()[order],
        confidence=table.column("confidence").to_numpy().astype(np.float64)[order],
    )


def _model_metrics(prefix: str, predictions: Predictions, labels: np.ndarray, n_bins: int, suffix: str = "") -> dict:
    acc = accuracy(predictions.hard, labels)
    values = {
        "acc": acc,
        "acc_se": accuracy_standard_error(acc, len(labels)),
        "auroc": auroc(predictions.probs, labels),
        "ece": expected_calibration_error(predictions.confidence, predictions.correct(labels), n_bins),
        "brier": brier_score(predictions.probs, labels),
    }
    return {f"{prefix}_{name}{suffix}": value for name, value in values.items()}


def _pgr_metrics(
    test: dict[str, Predictions], labels: np.ndarray, accs: dict[str, float], settings: EvaluationSettings
) -> dict:
    """PGR, its Fieller interval over test items (null when PGR is undefined) and the bootstrap undefined share."""
    pgr, note = performance_gap_recovered(accs["weak"], accs["student"], accs["ceiling"], settings.min_pgr_gap)
    correct = [test[role].correct(labels).astype(np.float64) for role in ROLES]
    boot = bootstrap_pgr(
        *correct,
        n_boot=settings.bootstrap_samples,
        confidence=settings.confidence_level,
        seed=settings.bootstrap_seed,
        min_gap=settings.min_pgr_gap,
    )
    interval = NO_INTERVAL
    if pgr is not None:
        found = pgr_fieller_set(*correct, confidence=settings.confidence_level)
        interval = interval_fields(found.kind, float(found.low), float(found.high))
    return {
        "pgr": pgr,
        "pgr_note": note,
        **prefixed_interval("pgr_ci", interval),
        "pgr_boot_undefined_frac": boot.undefined_fraction,
    }


def confidence_threshold(confidence: np.ndarray, split: float | str) -> float:
    """The weak confidence above which an item counts as 'confident': the median, or a fixed value."""
    return float(np.median(confidence)) if split == "median" else float(split)


def diagnostics(student: Predictions, weak: Predictions, labels: np.ndarray, split: float | str) -> dict:
    """Does the student imitate weak errors, and does it do better where the teacher was unsure?"""
    on_weak_correct, on_weak_wrong = conditional_agreement(student.hard, weak.hard, labels)
    threshold = confidence_threshold(weak.confidence, split)
    confident = weak.confidence > threshold
    return {
        "student_weak_agreement": agreement(student.hard, weak.hard),
        "student_weak_agreement_weak_correct": on_weak_correct,
        "student_weak_agreement_weak_wrong": on_weak_wrong,
        "weak_confidence_threshold": threshold,
        "n_weak_confident": int(confident.sum()),
        "n_weak_unsure": int((~confident).sum()),
        "student_acc_weak_confident": subset_accuracy(student.hard, labels, confident),
        "student_acc_weak_unsure": subset_accuracy(student.hard, labels, ~confident),
        "weak_acc_weak_confident": subset_accuracy(weak.hard, labels, confident),
        "weak_acc_weak_unsure": subset_accuracy(weak.hard, labels, ~confident),
    }


@dataclass(frozen=True)
class PairInputs:
    """What every method of one (task, seed, weak, strong) pair is scored against, read once."""

    gold: pd.Series
    transfer_gold: pd.Series
    weak: Predictions
    weak_transfer: Predictions
    ceiling: Predictions
    difficulty: np.ndarray | None  # easy/hard per test item, for tasks with a difficulty setting
    # an aggregated weak source's label-model convergence (its labels' provenance), else None
    label_model: dict | None = None

    @classmethod
    def read(
        cls,
        test_split: str | Path,
        transfer_split: str | Path,
        weak_test: str | Path,
        weak_transfer: str | Path,
        ceiling_predictions: str | Path,
    ) -> PairInputs:
        gold, transfer_gold = _gold(test_split), _gold(transfer_split)
        difficulty = None
        if "difficulty" in pq.read_schema(test_split).names:
            difficulty = (
                pq.read_table(test_split, columns=["difficulty"]).column("difficulty").to_numpy(zero_copy_only=False)
            )
        return cls(
            gold,
            transfer_gold,
            _predictions(weak_test, gold, "weak", "test"),
            _predictions(weak_transfer, transfer_gold, "weak", "transfer"),
            _predictions(ceiling_predictions, gold, "ceiling", "test"),
            difficulty,
            _label_model_summary(weak_test),
        )


def _label_model_summary(weak_labels: str | Path) -> dict | None:
    """Convergence of the label model behind an aggregated weak source whose aggregator is the label
    model, from its labels' provenance: iterations, converged, the final change; None for others."""
    provenance = read_provenance(weak_labels)
    summary = provenance.get("label_model_summary")
    if not summary or provenance.get("settings", {}).get("aggregator") != "label_model":
        return None
    return {key: summary.get(key) for key in ("n_iter", "converged", "final_change")}


def _generalization(
    test: dict[str, Predictions],
    transfer: dict[str, Predictions],
    labels: np.ndarray,
    transfer_labels: np.ndarray,
    band: Sequence[float] | None,
    settings: EvaluationSettings,
) -> dict:
    """Misfit and gain on transfer and test, correction/expansion and the blind-spot rate on test
    (:mod:`w2s.generalization`); coverage is the confidence band the method trains on."""
    covered = band_coverage(test["weak"].confidence, band)
    source = "all items (no confidence band)" if band is None else f"weak confidence in [{band[0]}, {band[1]}]"
    weak_threshold = confidence_threshold(test["weak"].confidence, settings.confidence_split)
    out = generalization_metrics(
        transfer["student"].probs,
        transfer["weak"].probs,
        transfer_labels,
        "transfer",
        None,
        source,
        weak_threshold,
        settings.blind_spot_confidence,
    )
    return out | generalization_metrics(
        test["student"].probs,
        test["weak"].probs,
        labels,
        "test",
        covered,
        source,
        weak_threshold,
        settings.blind_spot_confidence,
    )


def _score_student(
    pair: PairInputs,
    student_predictions: str | Path,
    settings: EvaluationSettings,
    experiment: dict,
    out_path: str | Path,
    band: Sequence[float] | None = None,
) -> dict:
    metrics = student_metrics(
        pair,
        _predictions(student_predictions, pair.gold, "student", "test"),
        _predictions(student_predictions, pair.transfer_gold, "student", "transfer"),
        settings,
        experiment,
        band,
    )
    write_json(metrics, out_path)
    return metrics


def student_metrics(
    pair: PairInputs,
    student_test: Predictions,
    student_transfer: Predictions,
    settings: EvaluationSettings,
    experiment: dict,
    band: Sequence[float] | None = None,
) -> dict:
    """Every metric of one student against ``pair`` (gold, weak and ceiling predictions): accuracies,
    PGR with its Fieller interval, calibration, diagnostics, generalization; ``experiment`` keys first.
    The student's predictions are aligned to ``pair.gold`` (test) and ``pair.transfer_gold``."""
    labels, transfer_labels = pair.gold.to_numpy(), pair.transfer_gold.to_numpy()
    test = {"weak": pair.weak, "student": student_test, "ceiling": pair.ceiling}
    transfer = {"weak": pair.weak_transfer, "student": student_transfer}

    metrics = {**experiment, "n_test": len(labels), "n_transfer": len(transfer_labels)}
    for role in ROLES:
        metrics |= _model_metrics(role, test[role], labels, settings.ece_bins)
    for role in TRANSFER_ROLES:
        metrics |= _model_metrics(role, transfer[role], transfer_labels, settings.ece_bins, suffix="_transfer")
    metrics |= _pgr_metrics(test, labels, {role: metrics[f"{role}_acc"] for role in ROLES}, settings)
    metrics |= diagnostics(test["student"], test["weak"], labels, settings.confidence_split)
    metrics |= _generalization(test, transfer, labels, transfer_labels, band, settings)
    if pair.label_model is not None:
        metrics |= {f"weak_label_model_{key}": value for key, value in pair.label_model.items()}
    if pair.difficulty is not None:
        metrics |= subset_scores({role: test[role].correct(labels) for role in ROLES}, pair.difficulty)
    metrics["reliability"] = {
        role: reliability_bins(test[role].confidence, test[role].correct(labels), settings.ece_bins) for role in ROLES
    }
    metrics["settings"] = asdict(settings)
    return metrics


def evaluate_experiment(
    test_split: str | Path,
    transfer_split: str | Path,
    weak_test: str | Path,
    weak_transfer: str | Path,
    student_predictions: str | Path,
    ceiling_predictions: str | Path,
    settings: EvaluationSettings,
    experiment: dict,
    out_path: str | Path,
) -> dict:
    """Write the metrics JSON of one (task, seed, weak, strong, method) experiment and return it."""
    pair = PairInputs.read(test_split, transfer_split, weak_test, weak_transfer, ceiling_predictions)
    return _score_student(pair, student_predictions, settings, experiment, out_path)


def evaluate_students(
    test_split: str | Path,
    transfer_split: str | Path,
    weak_test: str | Path,
    weak_transfer: str | Path,
    students: Mapping[str, str | Path],
    ceiling_predictions: str | Path,
    settings: EvaluationSettings,
    pair: dict,
    outputs: Mapping[str, str | Path],
    bands: Mapping[str, Sequence[float] | None] | None = None,
) -> dict[str, dict]:
    """The metrics JSON of every method's student of one (task, seed, weak, strong) ``pair``, written to
    ``outputs[method]``, as :func:`evaluate_experiment` writes one; the gold, weak and ceiling files are
    read once for all methods. ``bands[method]``: the [low, high] weak-confidence band the method
    trains on, which defines the teacher's coverage (absent: every item is covered)."""
    if set(students) != set(outputs):
        raise ValueError(f"students {sorted(students)} and outputs {sorted(outputs)} name different methods")
    inputs = PairInputs.read(test_split, transfer_split, weak_test, weak_transfer, ceiling_predictions)
    bands = bands or {}
    return {
        method: _score_student(inputs, path, settings, {**pair, "method": method}, outputs[method], bands.get(method))
        for method, path in students.items()
    }
