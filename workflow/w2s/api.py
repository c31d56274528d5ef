"""The Python API: a weak-to-strong experiment in memory, for notebooks and scripts.

Every workflow stage has an in-memory core here, and the Snakemake rules run the same cores through
their file stages (``python -m w2s <stage>``), so a script and the workflow get the same numbers for
the same seed and settings::

    from w2s.api import prepare_splits, train_teacher, label, train_ceiling, train_student, evaluate

    data = prepare_splits("rotten_tomatoes", {"source": "builtin"}, seed=0, out_dir="data")
    teacher = train_teacher(data.splits["weak_train"], data.label_names, "builtin:all-MiniLM-L6-v2",
                            "teacher", val=data.splits["val"])
    weak = label(teacher.model_dir, {s: data.splits[s] for s in ("transfer", "test")},
                 {"engine": "transformers"})
    strong, spec = "builtin:all-mpnet-base-v2", {"mode": "full_finetune"}
    ceiling = train_ceiling(data.splits["transfer"], data.splits["test"], data.label_names, strong, spec=spec)
    student = train_student(data.splits["transfer"], weak["transfer"], data.splits["test"], data.label_names,
                            strong, method={"loss": "logconf"}, spec=spec)
    result = evaluate(data.splits["test"], data.splits["transfer"], weak, student, ceiling)
    print(result.pgr, result.interval)

Settings are the config's sections as plain dicts (``weak.train``, ``labeling``, ``strong``, one entry
of ``strong.methods``, ``evaluation``); keys left out take the schema's defaults. Heavy libraries
(torch, transformers, vLLM) are imported when a function runs, so importing this module is cheap.
Every other module of the package is internal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Aggregated",
    "EvaluationResult",
    "Labels",
    "Split",
    "Student",
    "TaskData",
    "Teacher",
    "aggregate",
    "evaluate",
    "label",
    "load_task",
    "prepare_splits",
    "read_splits",
    "train_ceiling",
    "train_student",
    "train_teacher",
]

STRONG_SPEC_KEYS = ("mode", "train", "lora", "probe", "early_stopping")


@dataclass(frozen=True)
class Split:
    """One split of a task: example ids, texts, gold class indices (None where unknown) and, for tasks
    with a difficulty setting, each example's ``easy``/``hard`` tag."""

    ids: list[str]
    texts: list[str]
    labels: np.ndarray | None = None
    difficulty: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("texts", "labels", "difficulty"):
            value = getattr(self, name)
            if value is not None and len(value) != len(self.ids):
                raise ValueError(f"Split: {len(self.ids)} ids but {len(value)} {name}")

    def __len__(self) -> int:
        return len(self.ids)

    def gold(self) -> np.ndarray:
        """The gold labels, or a ValueError when this split has none."""
        if self.labels is None:
            raise ValueError("this split has no gold labels")
        return np.asarray(self.labels, dtype=np.int64)


@dataclass(frozen=True)
class TaskData:
    """A prepared task: class names, the splits (weak_train, transfer, val, test) and the manifest."""

    label_names: list[str]
    splits: dict[str, Split]
    manifest: dict


@dataclass(frozen=True)
class Labels:
    """Class probabilities per example (weak labels or a model's predictions), rows in ``ids`` order."""

    ids: list[str]
    probs: np.ndarray

    def __post_init__(self) -> None:
        if np.ndim(self.probs) != 2 or len(self.probs) != len(self.ids):
            raise ValueError(
                f"Labels: probs of shape {np.shape(self.probs)} for {len(self.ids)} ids; "
                "need one row of class probabilities per id"
            )

    @property
    def hard(self) -> np.ndarray:
        """The class of each row (argmax, ties to the lowest index: :func:`w2s.tables.hard_labels`)."""
        from .tables import hard_labels

        return hard_labels(np.asarray(self.probs, dtype=np.float32))

    def aligned(self, ids: Sequence[str], what: str = "labels") -> np.ndarray:
        """The probabilities in the order of ``ids``; every id needs a row."""
        position = {example_id: i for i, example_id in enumerate(self.ids)}
        missing = [example_id for example_id in ids if example_id not in position]
        if missing:
            raise ValueError(f"{what}: {len(missing)} examples have no row, e.g. {missing[:3]}")
        return np.asarray(self.probs)[[position[example_id] for example_id in ids]]


@dataclass(frozen=True)
class Teacher:
    """A trained weak teacher: its checkpoint directory (what :func:`label` reads) and training info."""

    model_dir: Path
    info: dict


@dataclass(frozen=True)
class Student:
    """A trained strong student or ceiling: training info, the trained model (a transformers model or a
    linear probe), its directory when saved, and its predictions on ``transfer`` and ``test``."""

    info: dict
    model: Any
    model_dir: Path | None
    predictions: dict[str, Labels]


@dataclass(frozen=True)
class Aggregated:
    """Aggregated weak labels per split and the fitted aggregation model's metadata."""

    labels: dict[str, Labels]
    metadata: dict


@dataclass(frozen=True)
class EvaluationResult:
    """Test accuracies, PGR (None when the weak-to-ceiling gap is below ``min_pgr_gap``) with its Fieller
    interval (:func:`w2s.metrics.interval_fields`: kind, low, high, rays, unbounded), and every metric
    the workflow writes for one experiment (``metrics``)."""

    weak_acc: float
    student_acc: float
    ceiling_acc: float
    pgr: float | None
    interval: dict
    metrics: dict = field(repr=False)


def load_task(name: str, spec: Mapping[str, Any]) -> Any:
    """The labeled texts of task ``name`` as described by ``spec`` (one entry of the config's ``tasks``):
    :class:`w2s.labeled.LabeledTexts` (texts, labels, label_names)."""
    from .tasks import load_task as load

    return load(name, spec)


def read_splits(data_dir: str | Path) -> TaskData:
    """The splits and manifest that :func:`prepare_splits` (or the workflow's data stage) wrote."""
    import pyarrow.parquet as pq

    from .data import MANIFEST, SPLITS
    from .io import read_json

    data_dir = Path(data_dir)
    splits = {}
    for name in SPLITS:
        table = pq.read_table(data_dir / f"{name}.parquet")
        difficulty = None
        if "difficulty" in table.column_names:
            difficulty = table.column("difficulty").to_numpy(zero_copy_only=False)
        splits[name] = Split(
            table.column("id").to_pylist(),
            table.column("text").to_pylist(),
            table.column("label").to_numpy(),
            difficulty,
        )
    manifest = read_json(data_dir / MANIFEST)
    return TaskData(list(manifest["label_names"]), splits, manifest)


def prepare_splits(task: str, spec: Mapping[str, Any], seed: int, out_dir: str | Path) -> TaskData:
    """Load, clean and split ``task`` (the data stage: seeded, stratified, disjoint splits written to
    ``out_dir``) and return them."""
    from .data import prepare_splits as prepare

    prepare(task, dict(spec), seed, out_dir)
    return read_splits(out_dir)


def train_teacher(
    train: Split,
    label_names: Sequence[str],
    checkpoint: str,
    out_dir: str | Path,
    *,
    settings: dict | None = None,
    seed: int = 0,
    val: Split | None = None,
    device: str = "auto",
) -> Teacher:
    """Fine-tune the weak teacher ``checkpoint`` on the gold labels of ``train`` (``settings``: the
    config's ``weak.train``) and save it to ``out_dir``; with ``val``, the info has ``val_accuracy``."""
    from .teacher import fit_teacher

    info = fit_teacher(
        train.texts,
        train.gold(),
        label_names,
        checkpoint,
        settings,
        seed,
        out_dir,
        val_texts=val.texts if val is not None else (),
        val_labels=val.gold() if val is not None else None,
        device=device,
    )
    return Teacher(Path(out_dir), info)


def label(teacher: str | Path, splits: Mapping[str, Split], settings: dict | None = None) -> dict[str, Labels]:
    """Weak labels of every split by the teacher checkpoint directory ``teacher``, one engine for all
    (``settings``: the config's ``labeling``; engine ``vllm`` by default, or ``transformers``)."""
    from .labeling import Labeler

    with Labeler(teacher, settings) as labeler:
        return {name: Labels(list(split.ids), labeler(split.texts)) for name, split in splits.items()}


def _strong_spec(spec: Mapping[str, Any] | None) -> dict:
    """The strong spec (mode, train, lora, probe, early_stopping) with the schema's defaults filled in."""
    from .schema import fill_defaults, parsed_schema, schema_at

    spec = dict(spec or {})
    unknown = sorted(set(spec) - set(STRONG_SPEC_KEYS))
    if unknown:
        raise ValueError(f"unknown strong spec keys {unknown}; known: {list(STRONG_SPEC_KEYS)}")
    filled = fill_defaults(spec, schema_at("strong"), parsed_schema())
    return {key: filled[key] for key in STRONG_SPEC_KEYS}


def _train_strong(
    role: str,
    transfer: Split,
    targets: np.ndarray,
    test: Split,
    label_names: Sequence[str],
    checkpoint: str,
    method: dict | None,
    spec: Mapping[str, Any] | None,
    seed: int,
    features: Mapping[str, np.ndarray] | None,
    out_dir: str | Path | None,
    device: str,
) -> Student:
    from .strong import fit_role

    spec = _strong_spec(spec)
    if spec["mode"] == "linear_probe" and (features is None or not {"transfer", "test"} <= set(features)):
        raise ValueError(
            "linear_probe mode needs features={'transfer': array, 'test': array} "
            "(frozen features of the strong model, rows in split order)"
        )
    split_features = (
        None if spec["mode"] != "linear_probe" else {s: np.asarray(features[s]) for s in ("transfer", "test")}
    )
    trained = fit_role(
        role,
        spec,
        method,
        {"transfer": list(transfer.texts), "test": list(test.texts)},
        targets,
        split_features,
        checkpoint,
        list(label_names),
        seed,
        device,
        out_dir,
    )
    return Student(
        trained.info,
        trained.learner.module,
        None if out_dir is None else Path(out_dir),
        {"transfer": Labels(list(transfer.ids), trained.transfer), "test": Labels(list(test.ids), trained.test)},
    )


def train_student(
    transfer: Split,
    weak: Labels,
    test: Split,
    label_names: Sequence[str],
    checkpoint: str,
    *,
    method: dict | None = None,
    spec: Mapping[str, Any] | None = None,
    seed: int = 0,
    features: Mapping[str, np.ndarray] | None = None,
    out_dir: str | Path | None = None,
    device: str = "auto",
) -> Student:
    """Train the strong student ``checkpoint`` on the ``weak`` labels of ``transfer`` with ``method`` (one
    entry of ``strong.methods``: any registered loss and selection rule; default ``xent``), and predict
    transfer and test. ``spec``: the config's ``strong`` settings (mode, train, lora, probe,
    early_stopping); linear_probe mode needs the strong model's frozen ``features`` per split. With
    ``out_dir`` the model is saved there (before predicting, as the workflow does)."""
    targets = np.asarray(weak.aligned(transfer.ids, "weak labels"), dtype=np.float32)
    return _train_strong(
        "student",
        transfer,
        targets,
        test,
        label_names,
        checkpoint,
        dict(method or {}),
        spec,
        seed,
        features,
        out_dir,
        device,
    )


def train_ceiling(
    transfer: Split,
    test: Split,
    label_names: Sequence[str],
    checkpoint: str,
    *,
    spec: Mapping[str, Any] | None = None,
    seed: int = 0,
    features: Mapping[str, np.ndarray] | None = None,
    out_dir: str | Path | None = None,
    device: str = "auto",
) -> Student:
    """Train the strong ceiling: :func:`train_student`'s model and settings on the gold labels of ``transfer``."""
    from .train import one_hot

    targets = one_hot(transfer.gold(), len(label_names))
    return _train_strong(
        "ceiling", transfer, targets, test, label_names, checkpoint, None, spec, seed, features, out_dir, device
    )


def evaluate(
    test: Split,
    transfer: Split,
    weak: Mapping[str, Labels],
    student: Student | Mapping[str, Labels],
    ceiling: Student | Labels,
    settings: dict | None = None,
    *,
    method: dict | None = None,
    experiment: dict | None = None,
) -> EvaluationResult:
    """Score weak teacher, student and ceiling against the gold labels of ``test`` (and ``transfer``):
    accuracies, PGR with its Fieller interval, calibration, diagnostics and generalization metrics, as
    the workflow's evaluate stage computes them. ``weak`` and ``student`` need ``test`` and ``transfer``
    predictions; ``method`` (the student's) gives the confidence band its coverage is measured on;
    ``settings``: the config's ``evaluation``; ``experiment`` keys are copied into the metrics."""
    import pandas as pd

    from .evaluate import EvaluationSettings, PairInputs, Predictions, student_metrics
    from .generalization import confidence_bands
    from .settings import from_config

    student = student.predictions if isinstance(student, Student) else student
    ceiling = ceiling.predictions["test"] if isinstance(ceiling, Student) else ceiling

    def predictions(labels: Labels, split: Split, what: str) -> Predictions:
        return Predictions.from_probs(labels.aligned(split.ids, what))

    pair = PairInputs(
        pd.Series(test.gold(), index=list(test.ids)),
        pd.Series(transfer.gold(), index=list(transfer.ids)),
        predictions(weak["test"], test, "weak"),
        predictions(weak["transfer"], transfer, "weak"),
        predictions(ceiling, test, "ceiling"),
        test.difficulty,
    )
    band = confidence_bands({"method": method or {}})["method"]
    metrics = student_metrics(
        pair,
        predictions(student["test"], test, "student"),
        predictions(student["transfer"], transfer, "student"),
        from_config(EvaluationSettings, settings, "evaluation"),
        dict(experiment or {}),
        band,
    )
    interval = {key: metrics[f"pgr_ci_{key}"] for key in ("kind", "low", "high", "ray_low", "ray_high", "unbounded")}
    return EvaluationResult(
        metrics["weak_acc"], metrics["student_acc"], metrics["ceiling_acc"], metrics["pgr"], interval, metrics
    )


def aggregate(
    teachers: Mapping[str, Mapping[str, Labels]],
    splits: Mapping[str, Split],
    settings: dict | None = None,
    *,
    fit_split: str = "transfer",
    labeling_functions: Sequence[str] = (),
) -> Aggregated:
    """Combine several binary teachers' weak labels (``teachers[name][split]``) and the named labeling
    functions into one set of weak labels per split of ``splits``, fitted on ``fit_split`` without gold
    (``settings``: an aggregation spec, the schema's ``$defs.aggregation``; the label model by default)."""
    import pandas as pd

    from .tables import soft_labels
    from .weak_sources.aggregate import aggregate_teacher_labels

    texts = {name: pd.DataFrame({"id": list(split.ids), "text": list(split.texts)}) for name, split in splits.items()}
    given = {
        name: {
            split: (list(labels[split].ids), np.asarray(labels[split].probs, dtype=np.float32))
            for split in splits
            if split in labels
        }
        for name, labels in teachers.items()
    }
    for name, labels in given.items():
        missing = sorted(set(splits) - set(labels))
        if missing:
            raise ValueError(f"teacher {name!r} has no weak labels for splits {missing}")
    metadata, tables = aggregate_teacher_labels(
        given, texts, settings, fit_split=fit_split, labeling_functions=labeling_functions
    )
    labels = {name: Labels(table.column("id").to_pylist(), soft_labels(table)) for name, table in tables.items()}
    return Aggregated(labels, metadata)
