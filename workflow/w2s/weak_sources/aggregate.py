"""The weak-source stage's verifier files: weak-label Parquet files of several teachers (and labeling
functions run on the texts) in, aggregated weak-label Parquet files out, through :mod:`w2s.verifiers`.

Internal: use :mod:`w2s.api` (``aggregate``); :func:`aggregate_teacher_labels` is its in-memory
core and :func:`aggregate_label_files` the file stage around it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import io, verifiers
from ..tables import binary_probs, label_table, soft_labels
from ..verifiers.label_model import convergence_summary

log = logging.getLogger(__name__)


def weak_label_table(aggregated: pd.DataFrame, texts: pd.DataFrame) -> pa.Table:
    """The weak-label table (tables.LABEL_SCHEMA) of binary aggregated scores, rows in ``texts`` order.

    ``texts`` has columns id and text; every id needs exactly one aggregated score.
    """
    if aggregated.duplicated("item_id").any():
        raise ValueError("weak_label_table: several candidates per item; weak labels need binary items")
    p = aggregated.set_index("item_id")["score"].reindex(texts["id"].astype(str))
    if p.isna().any():
        missing = p.index[p.isna()].tolist()
        raise ValueError(f"weak_label_table: {len(missing)} ids have no aggregated score, e.g. {missing[:3]}")
    split = pa.table({"id": texts["id"].astype(str).tolist(), "text": texts["text"].astype(str).tolist()})
    return label_table(split, binary_probs(p.to_numpy()))


# A teacher's weak labels of each split: {split: (ids, (n, 2) soft labels)}.
TeacherLabels = Mapping[str, tuple[Sequence[str], np.ndarray]]


def read_teacher_labels(
    teacher_files: Mapping[str, Mapping[str, str | Path]], splits: Sequence[str]
) -> tuple[dict[str, dict[str, tuple[list[str], np.ndarray]]], dict[str, pd.DataFrame]]:
    """Each teacher's weak labels of ``splits`` from its weak-label files (tables.LABEL_SCHEMA), and each
    split's (id, text) from the first teacher's file."""
    teachers: dict[str, dict[str, tuple[list[str], np.ndarray]]] = {}
    texts: dict[str, pd.DataFrame] = {}
    for verifier_id, files in teacher_files.items():
        missing = sorted(set(splits) - set(files))
        if missing:
            raise ValueError(f"teacher {verifier_id!r} has no weak-label file for splits {missing}")
        for split in splits:
            table = pq.read_table(files[split], columns=["id", "text", "soft_label"])
            teachers.setdefault(verifier_id, {})[split] = (table.column("id").to_pylist(), soft_labels(table))
            texts.setdefault(split, table.select(["id", "text"]).to_pandas())
    if not texts:
        raise ValueError("labeling functions alone have no texts: pass at least one teacher's weak-label files")
    return teachers, texts


def teacher_scores(
    teachers: Mapping[str, TeacherLabels], texts: Mapping[str, pd.DataFrame], labeling_functions: Sequence[str]
) -> pd.DataFrame:
    """Long scores of every teacher (binary soft labels) and labeling function on the splits of ``texts``
    (each a frame with columns id and text)."""
    from ..labeling_functions import LABELING_FUNCTIONS

    frames = []
    for verifier_id, labels in teachers.items():
        for split in texts:
            ids, probs = labels[split]
            frames.append(verifiers.scores_from_soft_labels(list(ids), probs, verifier_id))
    functions = {name: LABELING_FUNCTIONS[name] for name in labeling_functions}
    for frame in texts.values():
        frames.append(verifiers.scores_from_labeling_functions(frame["id"].tolist(), frame["text"].tolist(), functions))
    return verifiers.check_scores(pd.concat(frames, ignore_index=True))


def scores_for_splits(
    teacher_files: Mapping[str, Mapping[str, str | Path]], splits: Sequence[str], labeling_functions: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Long scores of every teacher and labeling function on ``splits``, and each split's (id, text)."""
    teachers, texts = read_teacher_labels(teacher_files, splits)
    return teacher_scores(teachers, texts, labeling_functions), texts


def label_model_report(model: dict) -> dict:
    """A fitted model's label-model merges and dependence checks, with its EM convergence (steps, the
    last step's largest move, converged or not, the objective)."""
    return {**verifiers.label_model_summary(model), **convergence_summary(model["steps"]["label_model"])}


def _check_sources(
    teachers: Mapping, labeling_functions: Sequence[str], splits: list[str], fit_split: str, settings: dict | None
) -> dict:
    """The resolved aggregation settings, after checking the sources and the splits."""
    from ..labeling_functions import LABELING_FUNCTIONS

    s = verifiers.resolve_settings(settings)
    if s["aggregator"] in verifiers.LABEL_USING_AGGREGATORS:
        raise ValueError(
            f"aggregator {s['aggregator']!r} needs gold labels: it is for the verifier report only, "
            "never for weak labels"
        )
    if fit_split not in splits:
        raise ValueError(f"fit_split {fit_split!r} is not among the output splits {splits}")
    unknown = sorted(set(labeling_functions) - set(LABELING_FUNCTIONS))
    if unknown:
        raise ValueError(f"unknown labeling functions {unknown}; known: {sorted(LABELING_FUNCTIONS)}")
    if not teachers and not labeling_functions:
        raise ValueError("need at least one teacher or labeling function")
    return s


def aggregate_teacher_labels(
    teachers: Mapping[str, TeacherLabels],
    texts: Mapping[str, pd.DataFrame],
    settings: dict | None = None,
    *,
    fit_split: str,
    labeling_functions: Sequence[str] = (),
) -> tuple[dict, dict[str, pa.Table]]:
    """Aggregate several teachers' weak labels (+ labeling functions) into one weak-label table per split.

    ``teachers`` maps a verifier id to {split: (ids, binary soft labels)} for every split of ``texts``
    ({split: frame with columns id and text}, which orders the output rows). The model is fitted on
    ``fit_split`` and applied to every split. Weak labels never see gold, so the label-using
    aggregators (``best_single``, ``logistic``) are refused: they belong to the verifier report
    (``weak_sources.report``). Returns the metadata (the fitted model, its label-model report) and
    each split's weak-label table (tables.LABEL_SCHEMA).
    """
    splits = list(texts)
    s = _check_sources(teachers, labeling_functions, splits, fit_split, settings)
    scores = teacher_scores(teachers, texts, labeling_functions)
    model = verifiers.fit(scores, s, None, set(texts[fit_split]["id"].astype(str)))
    metadata = {
        **model,
        "fit_split": fit_split,
        "teachers": list(teachers),
        "labeling_functions": list(labeling_functions),
        "label_model_summary": label_model_report(model),
    }
    tables = {}
    for split in splits:
        ids = set(texts[split]["id"].astype(str))
        tables[split] = weak_label_table(verifiers.apply(model, scores[scores["item_id"].isin(ids)]), texts[split])
    return metadata, tables


def aggregate_label_files(
    teacher_files: Mapping[str, Mapping[str, str | Path]],
    outputs: Mapping[str, str | Path],
    settings: dict | None = None,
    *,
    fit_split: str,
    labeling_functions: Sequence[str] = (),
    table_out: str | Path | None = None,
    metadata_out: str | Path | None = None,
    provenance: dict | None = None,
) -> dict:
    """:func:`aggregate_teacher_labels` on weak-label files: ``teacher_files`` maps a verifier id to
    {split: weak-label parquet}, and every teacher must label every split in ``outputs``. Writes each
    split's aggregated weak labels, optionally the verifier table (parquet) and the metadata (JSON);
    returns the metadata (with ``provenance`` added).
    """
    splits = list(outputs)
    _check_sources(teacher_files, labeling_functions, splits, fit_split, settings)
    teachers, texts = read_teacher_labels(teacher_files, splits)
    metadata, tables = aggregate_teacher_labels(
        teachers, texts, settings, fit_split=fit_split, labeling_functions=labeling_functions
    )
    metadata = {**metadata, **(provenance or {})}
    for split in splits:
        io.write_parquet(tables[split], outputs[split], provenance={**metadata, "split": split})
        log.info("wrote %d aggregated weak labels for split %r to %s", tables[split].num_rows, split, outputs[split])
    if table_out is not None:
        io.write_parquet(pa.Table.from_pandas(verifiers.verifier_table(metadata), preserve_index=False), table_out)
    if metadata_out is not None:
        io.write_json(metadata, metadata_out)
    return metadata
