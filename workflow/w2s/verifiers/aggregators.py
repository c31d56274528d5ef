"""Aggregators of a (units, verifiers) matrix, NaN = abstain, and per-verifier accuracy against gold.

Where every verifier abstains, an aggregator returns ``fallback``: the fitted class prior
P(positive), so such a unit gets the prior's class (see :func:`w2s.tables.hard_labels`).
"""

from __future__ import annotations

import numpy as np


def majority_vote(votes: np.ndarray, fallback: float = 0.5) -> np.ndarray:
    """Share of the non-abstaining verifiers that vote positive; ``fallback`` where all abstain."""
    observed = ~np.isnan(votes)
    n = observed.sum(axis=1)
    positive = np.where(observed, votes, 0.0).sum(axis=1)
    return np.where(n > 0, positive / np.maximum(n, 1), fallback)


def mean_score(normalized: np.ndarray, fallback: float = 0.5) -> np.ndarray:
    """Mean of the non-abstaining normalized scores; ``fallback`` where all abstain."""
    observed = ~np.isnan(normalized)
    n = observed.sum(axis=1)
    total = np.where(observed, normalized, 0.0).sum(axis=1)
    return np.where(n > 0, total / np.maximum(n, 1), fallback)


def first_available(normalized: np.ndarray, fallback: float = 0.5) -> np.ndarray:
    """Score of the first verifier (column order) that does not abstain; ``fallback`` where all abstain."""
    out = np.full(len(normalized), float(fallback))
    filled = np.zeros(len(normalized), dtype=bool)
    for column in normalized.T:
        take = ~filled & ~np.isnan(column)
        out[take] = column[take]
        filled |= take
    return out


def vote_accuracy(votes: np.ndarray, labels: np.ndarray) -> dict:
    """Per verifier, against gold: accuracy, TPR and FPR where it votes, and its coverage (NaN if undefined)."""
    labels = np.asarray(labels, dtype=np.float64)
    observed = ~np.isnan(votes)

    def rate(hit: np.ndarray, mask: np.ndarray) -> np.ndarray:
        count = mask.sum(axis=0)
        return np.where(count > 0, (hit & mask).sum(axis=0) / np.maximum(count, 1), np.nan)

    v = np.where(observed, votes, -1.0)
    positive = (labels == 1)[:, None]
    return {
        "accuracy": rate(v == labels[:, None], observed),
        "tpr": rate(v == 1, observed & positive),
        "fpr": rate(v == 1, observed & ~positive),
        "coverage": observed.mean(axis=0),
    }


def accuracy_over_all(votes: np.ndarray, labels: np.ndarray, abstain_class: int) -> np.ndarray:
    """Per verifier: accuracy over every unit, an abstention counted as a vote for ``abstain_class``.

    This is what a verifier's labels are worth once its abstentions are filled in, so a
    high-precision, low-coverage verifier does not outrank one that votes everywhere.
    """
    if len(labels) == 0:
        return np.full(votes.shape[1], np.nan)
    filled = np.where(np.isnan(votes), float(abstain_class), votes)
    return (filled == np.asarray(labels, dtype=np.float64)[:, None]).mean(axis=0)


def _signed_votes(votes: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(votes), 0.0, 2.0 * votes - 1.0)


def fit_logistic(votes: np.ndarray, labels: np.ndarray, c: float) -> dict:
    """L2 logistic regression of gold labels on votes coded +1 / -1 / 0 (abstain). Uses labels."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels, dtype=np.int64)
    if len(np.unique(labels)) < 2:
        raise ValueError("logistic aggregator: the dev labels hold a single class")
    model = LogisticRegression(C=c, max_iter=1000).fit(_signed_votes(votes), labels)
    return {"coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0])}


def logistic_score(votes: np.ndarray, params: dict) -> np.ndarray:
    logits = _signed_votes(votes) @ np.asarray(params["coef"]) + params["intercept"]
    return 1.0 / (1.0 + np.exp(-logits))
