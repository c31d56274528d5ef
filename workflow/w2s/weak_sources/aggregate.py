"""The weak-source stage's verifier files: weak-label Parquet files of several teachers (and labeling
functions run on the texts) in, aggregated weak-label Parquet files out, through :mod:`w2s.verifiers`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import io, verifiers
from ..tables import binary_probs, label_table, soft_labels

log = logging.getLogger(__name__)


def scores_from_weak_label_file(path: str | Path, verifier_id: str) -> pd.DataFrame:
    """Long scores from one weak-label Parquet file (tables.LABEL_SCHEMA) of a binary teacher."""
    table = pq.read_table(path, columns=["id", "soft_label"])
    return verifiers.scores_from_soft_labels(table.column("id").to_pylist(), soft_labels(table), verifier_id)


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


def scores_for_splits(
    teacher_files: Mapping[str, Mapping[str, str | Path]], splits: Sequence[str], labeling_functions: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Long scores of every teacher and labeling function on ``splits``, and each split's (id, text)."""
    from ..labeling_functions import LABELING_FUNCTIONS

    texts: dict[str, pd.DataFrame] = {}
    frames = []
    for verifier_id, files in teacher_files.items():
        missing = sorted(set(splits) - set(files))
        if missing:
            raise ValueError(f"teacher {verifier_id!r} has no weak-label file for splits {missing}")
        for split in splits:
            frames.append(scores_from_weak_label_file(files[split], verifier_id))
            texts.setdefault(split, pq.read_table(files[split], columns=["id", "text"]).to_pandas())
    if not texts:
        raise ValueError("labeling functions alone have no texts: pass at least one teacher's weak-label files")
    functions = {name: LABELING_FUNCTIONS[name] for name in labeling_functions}
    for split in splits:
        frame = texts[split]
        frames.append(verifiers.scores_from_labeling_functions(frame["id"].tolist(), frame["text"].tolist(), functions))
    return verifiers.check_scores(pd.concat(frames, ignore_index=True)), texts


def _check_sources(teacher_files: Mapping, labeling_functions: Sequence[str], splits: list[str], fit_split: str) -> None:
    from ..labeling_functions import LABELING_FUNCTIONS

    if fit_split not in splits:
        raise ValueError(f"fit_split {fit_split!r} is not among the output splits {splits}")
    unknown = sorted(set(labeling_functions) - set(LABELING_FUNCTIONS))
    if unknown:
        raise ValueError(f"unknown labeling functions {unknown}; known: {sorted(LABELING_FUNCTIONS)}")
    if not teacher_files and not labeling_functions:
        raise ValueError("need at least one teacher or labeling function")


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
    """Aggregate the weak-label files of several teachers (+ labeling functions) into one per split.

    ``teacher_files`` maps a verifier id to {split: weak-label parquet}; every teacher must label
    every split in ``outputs``. The model is fitted on ``fit_split`` and applied to every split.
    Weak labels never see gold, so the label-using aggregators (``best_single``, ``logistic``) are
    refused here: they belong to the verifier report (``weak_sources.report``). Writes each split's
    aggregated weak labels, optionally the verifier table (parquet) and the metadata (JSON); returns
    the metadata.
    """
    s = verifiers.resolve_settings(settings)
    if s["aggregator"] in verifiers.LABEL_USING_AGGREGATORS:
        raise ValueError(f"aggregator {s['aggregator']!r} needs gold labels: it is for the verifier report only, "
                         "never for weak labels")
    splits = list(outputs)
    _check_sources(teacher_files, labeling_functions, splits, fit_split)
    scores, texts = scores_for_splits(teacher_files, splits, labeling_functions)
    model = verifiers.fit(scores, s, None, set(texts[fit_split]["id"].astype(str)))
    metadata = {**model, "fit_split": fit_split, "teachers": list(teacher_files),
                "labeling_functions": list(labeling_functions), "label_model_summary": verifiers.label_model_summary(model),
                **(provenance or {})}
    for split in splits:
        ids = set(texts[split]["id"].astype(str))
        aggregated = verifiers.apply(model, scores[scores["item_id"].isin(ids)])
        io.write_parquet(weak_label_table(aggregated, texts[split]), outputs[split], provenance={**metadata, "split": split})
        log.info("wrote %d aggregated weak labels for split %r to %s", len(ids), split, outputs[split])
    if table_out is not None:
        io.write_parquet(pa.Table.from_pandas(verifiers.verifier_table(model), preserve_index=False), table_out)
    if metadata_out is not None:
        io.write_json(metadata, metadata_out)
    return metadata
