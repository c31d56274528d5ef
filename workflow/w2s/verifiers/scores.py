"""The long score table: one row per (item, candidate, verifier), and its wide (units x verifiers) form.

    item_id: string, candidate_id: string, verifier_id: string, raw_score: float64

A verifier that abstains on an item has no row there (or a NaN ``raw_score``). For binary
classification every item has one candidate, :data:`ITEM_CANDIDATE`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

SCORE_COLUMNS = ("item_id", "candidate_id", "verifier_id", "raw_score")
ITEM_CANDIDATE = "positive"


def check_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """The long score table with the canonical column types; raises ValueError on a malformed one."""
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"score table lacks columns {missing}; expected {list(SCORE_COLUMNS)}")
    frame = scores.loc[:, list(SCORE_COLUMNS)].copy()
    for column in ("item_id", "candidate_id", "verifier_id"):
        if frame[column].isna().any():
            raise ValueError(f"score table: column {column!r} has missing values")
        frame[column] = frame[column].astype(str)
    frame["raw_score"] = pd.to_numeric(frame["raw_score"], errors="raise").astype(np.float64)
    if np.isinf(frame["raw_score"]).any():
        raise ValueError("score table: raw_score has infinite values")
    duplicated = frame.duplicated(["item_id", "candidate_id", "verifier_id"])
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        raise ValueError(
            f"score table: {int(duplicated.sum())} duplicate (item, candidate, verifier) rows, e.g. "
            f"{first['item_id']!r}/{first['candidate_id']!r}/{first['verifier_id']!r}"
        )
    return frame.reset_index(drop=True)


def scores_from_soft_labels(ids: Sequence[str], soft_labels: np.ndarray, verifier_id: str) -> pd.DataFrame:
    """Long scores of one binary teacher: ``raw_score`` is its positive-class probability."""
    soft_labels = np.asarray(soft_labels, dtype=np.float64)
    if soft_labels.ndim != 2 or soft_labels.shape[1] != 2:
        raise ValueError(f"verifier {verifier_id!r}: need (n, 2) binary soft labels, got shape {soft_labels.shape}")
    return pd.DataFrame(
        {
            "item_id": pd.Series(list(ids), dtype=str),
            "candidate_id": ITEM_CANDIDATE,
            "verifier_id": verifier_id,
            "raw_score": soft_labels[:, 1],
        }
    )


def scores_from_labeling_functions(
    ids: Sequence[str], texts: Sequence[str], functions: Mapping[str, Callable[[str], float | None]]
) -> pd.DataFrame:
    """Long scores of labeling functions over texts; an abstain (None or NaN) leaves no row."""
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
    rows = []
    for verifier_id, function in functions.items():
        for item_id, text in zip(ids, texts):
            score = function(text)
            if score is not None and not math.isnan(score):
                rows.append((str(item_id), ITEM_CANDIDATE, verifier_id, float(score)))
    return check_scores(pd.DataFrame(rows, columns=list(SCORE_COLUMNS)))


def wide(scores: pd.DataFrame, verifiers: Sequence[str]) -> tuple[pd.MultiIndex, np.ndarray]:
    """Units (item, candidate) in first-appearance order and a (units, verifiers) matrix, NaN = abstain."""
    units = pd.MultiIndex.from_frame(scores[["item_id", "candidate_id"]].drop_duplicates())
    scores = scores[scores["raw_score"].notna()]
    matrix = scores.pivot(index=["item_id", "candidate_id"], columns="verifier_id", values="raw_score")
    matrix = matrix.reindex(index=units, columns=list(verifiers))
    return units, matrix.to_numpy(dtype=np.float64)


def verifier_order(scores: pd.DataFrame) -> list[str]:
    return scores["verifier_id"].drop_duplicates().tolist()
