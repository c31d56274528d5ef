"""Verifier scoring: combine several weak verifiers into one score per item, without gold labels.

A *verifier* is anything that scores the claim "this item is positive" (binary classification)
or "this candidate is correct": a weak teacher's positive-class probability, a labeling function,
a reward model. Scores travel in a long table, one row per (item, candidate, verifier):

    item_id: string, candidate_id: string, verifier_id: string, raw_score: float64

A verifier that abstains on an item has no row there (or a NaN ``raw_score``). For binary
classification every item has one candidate, :data:`ITEM_CANDIDATE`. The unit that gets one
aggregated score is the (item_id, candidate_id) pair, so the same code serves both cases.

Pipeline (every step a setting, see :data:`DEFAULT_SETTINGS`), all fitted on the ``fit`` items and
then applied unchanged to every item:

1. normalize (``none``, ``minmax``, ``quantile``) each verifier's raw scores to [0, 1];
2. binarize them into votes (``threshold``, or ``class_balance``: a per-verifier quantile that
   makes each verifier vote positive on an assumed or label-free estimated share of units);
3. drop degenerate verifiers (constant votes, positive-vote rate outside a band), reason recorded;
4. aggregate: ``first``, ``majority``, ``mean``, ``label_model`` (Dawid-Skene EM: each verifier's
   true- and false-positive rate and the class prior, estimated from agreements alone), and the
   label-using references ``best_single`` and ``logistic`` (``uses_labels=True`` in the metadata).

:func:`fit` returns a JSON-serializable model (normalizer parameters, thresholds, kept verifiers,
label-model rates, ...); :func:`apply` scores any units with it; :func:`aggregate_weak_labels`
does both and adds the verifier table. :func:`aggregate_label_files` is the file-level entry point
for the workflow: weak-label Parquet files of several teachers (+ labeling functions) in,
aggregated weak-label Parquet files out.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import io
from .labeling import LABEL_SCHEMA

log = logging.getLogger(__name__)

SCORE_COLUMNS = ("item_id", "candidate_id", "verifier_id", "raw_score")
SCORE_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("candidate_id", pa.string(), nullable=False),
        pa.field("verifier_id", pa.string(), nullable=False),
        pa.field("raw_score", pa.float64()),
    ]
)
AGGREGATED_COLUMNS = ("item_id", "candidate_id", "score", "n_votes")
ITEM_CANDIDATE = "positive"

NORMALIZERS = ("none", "minmax", "quantile")
BINARIZERS = ("threshold", "class_balance")
AGGREGATORS = ("first", "majority", "mean", "best_single", "label_model", "logistic")
LABEL_USING_AGGREGATORS = ("best_single", "logistic")

DEFAULT_SETTINGS: dict = {
    "normalize": "none",  # none | minmax | quantile
    "n_quantiles": 101,  # knots kept by the quantile normalizer
    "binarize": "threshold",  # threshold | class_balance
    "threshold": 0.5,  # vote positive when the normalized score >= threshold
    "positive_rate": None,  # class_balance: assumed share of positives; None = estimate without labels
    "drop_degenerate": True,
    "min_positive_rate": 0.02,  # a verifier voting positive less often than this is dropped
    "max_positive_rate": 0.98,  # ... or more often than this
    "aggregator": "label_model",  # first | majority | mean | best_single | label_model | logistic
    "first_verifier": None,  # `first`: which verifier; None = the first in the score table
    "max_iter": 200,  # label model EM
    "tol": 1e-6,  # label model: stop when no rate or the prior moves by more than this
    "smoothing": 1.0,  # label model: Beta(s, s) pseudo-counts on every rate and the prior
    "logistic_c": 1.0,  # logistic: inverse L2 strength
}

_EPS = 1e-6


# --------------------------------------------------------------------------- settings


def resolve_settings(settings: dict | None) -> dict:
    """``settings`` merged over :data:`DEFAULT_SETTINGS` and checked; bad keys or values raise ValueError."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise ValueError(f"unknown verifier settings {unknown}; known: {sorted(DEFAULT_SETTINGS)}")
    s = {**DEFAULT_SETTINGS, **settings}

    def check(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ValueError(f"verifier setting {key}={s[key]!r}: {what}")

    def is_number(value) -> bool:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)

    check(s["normalize"] in NORMALIZERS, "normalize", f"must be one of {NORMALIZERS}")
    check(s["binarize"] in BINARIZERS, "binarize", f"must be one of {BINARIZERS}")
    check(s["aggregator"] in AGGREGATORS, "aggregator", f"must be one of {AGGREGATORS}")
    check(isinstance(s["n_quantiles"], int) and s["n_quantiles"] >= 2, "n_quantiles", "must be an integer >= 2")
    check(is_number(s["threshold"]), "threshold", "must be a number")
    check(s["positive_rate"] is None or (is_number(s["positive_rate"]) and 0 < s["positive_rate"] < 1),
          "positive_rate", "must be null or a number in (0, 1)")
    check(isinstance(s["drop_degenerate"], bool), "drop_degenerate", "must be true or false")
    check(is_number(s["min_positive_rate"]) and 0 <= s["min_positive_rate"] < 1, "min_positive_rate", "must be in [0, 1)")
    check(is_number(s["max_positive_rate"]) and s["min_positive_rate"] < s["max_positive_rate"] <= 1,
          "max_positive_rate", "must be in (min_positive_rate, 1]")
    check(s["first_verifier"] is None or isinstance(s["first_verifier"], str), "first_verifier", "must be null or a string")
    check(isinstance(s["max_iter"], int) and s["max_iter"] >= 1, "max_iter", "must be an integer >= 1")
    check(is_number(s["tol"]) and s["tol"] > 0, "tol", "must be a number > 0")
    check(is_number(s["smoothing"]) and s["smoothing"] >= 0, "smoothing", "must be a number >= 0")
    check(is_number(s["logistic_c"]) and s["logistic_c"] > 0, "logistic_c", "must be a number > 0")
    return s


# --------------------------------------------------------------------------- long score tables


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


def scores_from_weak_label_file(path: str | Path, verifier_id: str) -> pd.DataFrame:
    """Long scores from one weak-label Parquet file (labeling.LABEL_SCHEMA) of a binary teacher."""
    from .tables import soft_labels

    table = pq.read_table(path, columns=["id", "soft_label"])
    return scores_from_soft_labels(table.column("id").to_pylist(), soft_labels(table), verifier_id)


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


def write_scores(scores: pd.DataFrame, path: str | Path, provenance: dict | None = None) -> None:
    table = pa.Table.from_pandas(check_scores(scores), schema=SCORE_SCHEMA, preserve_index=False)
    io.write_parquet(table, path, provenance=provenance)


def read_scores(path: str | Path) -> pd.DataFrame:
    return check_scores(pq.read_table(path, columns=list(SCORE_COLUMNS)).to_pandas())


def _wide(scores: pd.DataFrame, verifiers: Sequence[str]) -> tuple[pd.MultiIndex, np.ndarray]:
    """Units (item, candidate) in first-appearance order and a (units, verifiers) matrix, NaN = abstain."""
    units = pd.MultiIndex.from_frame(scores[["item_id", "candidate_id"]].drop_duplicates())
    scores = scores[scores["raw_score"].notna()]
    matrix = scores.pivot(index=["item_id", "candidate_id"], columns="verifier_id", values="raw_score")
    matrix = matrix.reindex(index=units, columns=list(verifiers))
    return units, matrix.to_numpy(dtype=np.float64)


def _verifier_order(scores: pd.DataFrame) -> list[str]:
    return scores["verifier_id"].drop_duplicates().tolist()


# --------------------------------------------------------------------------- normalizers


def fit_normalizer(values: np.ndarray, method: str, n_quantiles: int = 101) -> dict:
    """JSON parameters that map one verifier's raw scores to [0, 1], fitted on ``values`` (NaN ignored)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if method == "none":
        return {"method": "none"}
    if len(values) == 0:
        raise ValueError(f"cannot fit a {method} normalizer on zero scores")
    if method == "minmax":
        return {"method": "minmax", "min": float(values.min()), "max": float(values.max())}
    if method == "quantile":
        probs = np.linspace(0.0, 1.0, min(n_quantiles, len(values)))
        return {"method": "quantile", "quantiles": np.quantile(values, probs).tolist(), "probs": probs.tolist()}
    raise ValueError(f"unknown normalizer {method!r}; expected one of {NORMALIZERS}")


def apply_normalizer(params: dict, values: np.ndarray) -> np.ndarray:
    """Apply :func:`fit_normalizer` parameters; NaN (abstain) stays NaN, unseen values are clipped to [0, 1]."""
    values = np.asarray(values, dtype=np.float64)
    method = params["method"]
    if method == "none":
        return values.copy()
    if method == "minmax":
        span = params["max"] - params["min"]
        if span <= 0:  # a constant verifier carries no ranking; it is dropped as degenerate anyway
            return np.where(np.isnan(values), np.nan, 0.5)
        return np.clip((values - params["min"]) / span, 0.0, 1.0)
    if method == "quantile":
        knots, probs = np.asarray(params["quantiles"]), np.asarray(params["probs"])
        # Interpolating up and down and averaging maps a run of tied knots to the middle of its
        # probability range, as sklearn's QuantileTransformer does.
        up = np.interp(values, knots, probs)
        down = 1.0 - np.interp(-values, -knots[::-1], 1.0 - probs[::-1])
        return np.where(np.isnan(values), np.nan, 0.5 * (up + down))
    raise ValueError(f"unknown normalizer {method!r}; expected one of {NORMALIZERS}")


# --------------------------------------------------------------------------- binarizers


def estimate_positive_rate(normalized: np.ndarray, threshold: float) -> float:
    """Label-free estimate of the share of positive units: the median over verifiers of the share
    each votes positive at ``threshold``. The median keeps one badly calibrated verifier from
    moving it. ``normalized`` is (units, verifiers), NaN = abstain."""
    rates = [np.mean(column[~np.isnan(column)] >= threshold) for column in normalized.T if (~np.isnan(column)).any()]
    if not rates:
        raise ValueError("cannot estimate a positive rate: no verifier has any score")
    return float(np.clip(np.median(rates), _EPS, 1.0 - _EPS))


def class_balance_threshold(values: np.ndarray, positive_rate: float) -> float:
    """Threshold at which a verifier votes positive (``>=``) on ``positive_rate`` of ``values``:
    its k-th largest value, k = round(positive_rate * n) (at least 1). Ties at the threshold
    all vote positive, so the share can come out higher."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    values = values[~np.isnan(values)]
    if len(values) == 0:
        raise ValueError("cannot place a class-balance threshold on zero scores")
    k = max(1, int(round(positive_rate * len(values))))
    return float(values[len(values) - k])


def binarize(values: np.ndarray, threshold: float) -> np.ndarray:
    """Votes: 1.0 where ``values >= threshold``, 0.0 below, NaN where the verifier abstains."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isnan(values), np.nan, (values >= threshold).astype(np.float64))


# --------------------------------------------------------------------------- degenerate verifiers


def degenerate_reason(votes: np.ndarray, scores: np.ndarray, low: float, high: float) -> str | None:
    """Why a verifier should be dropped (None to keep it): no votes, constant scores or votes,
    or a positive-vote rate outside [low, high]."""
    observed = ~np.isnan(votes)
    if not observed.any():
        return "no_votes"
    scores = scores[~np.isnan(scores)]
    if np.ptp(scores) == 0:
        return "constant_score"
    rate = float(votes[observed].mean())
    if rate in (0.0, 1.0):
        return "constant_vote"
    if rate < low:
        return f"positive_rate {rate:.4f} < {low}"
    if rate > high:
        return f"positive_rate {rate:.4f} > {high}"
    return None


# --------------------------------------------------------------------------- aggregators


def majority_vote(votes: np.ndarray) -> np.ndarray:
    """Share of the non-abstaining verifiers that vote positive; 0.5 where all abstain (a tie)."""
    observed = ~np.isnan(votes)
    n = observed.sum(axis=1)
    positive = np.where(observed, votes, 0.0).sum(axis=1)
    return np.where(n > 0, positive / np.maximum(n, 1), 0.5)


def mean_score(normalized: np.ndarray) -> np.ndarray:
    """Mean of the non-abstaining normalized scores; 0.5 where all abstain."""
    observed = ~np.isnan(normalized)
    n = observed.sum(axis=1)
    total = np.where(observed, normalized, 0.0).sum(axis=1)
    return np.where(n > 0, total / np.maximum(n, 1), 0.5)


def first_available(normalized: np.ndarray) -> np.ndarray:
    """Score of the first verifier (column order) that does not abstain; 0.5 where all abstain."""
    out = np.full(len(normalized), 0.5)
    filled = np.zeros(len(normalized), dtype=bool)
    for column in normalized.T:
        take = ~filled & ~np.isnan(column)
        out[take] = column[take]
        filled |= take
    return out


def label_model_posterior(votes: np.ndarray, tpr: np.ndarray, fpr: np.ndarray, prior: float) -> np.ndarray:
    """P(positive | votes) under conditionally independent verifiers; abstains contribute nothing."""
    tpr = np.clip(np.asarray(tpr, dtype=np.float64), _EPS, 1 - _EPS)
    fpr = np.clip(np.asarray(fpr, dtype=np.float64), _EPS, 1 - _EPS)
    prior = float(np.clip(prior, _EPS, 1 - _EPS))
    observed = ~np.isnan(votes)
    v = np.where(observed, votes, 0.0)
    log_odds = v * np.log(tpr / fpr) + (1.0 - v) * np.log((1.0 - tpr) / (1.0 - fpr))
    total = math.log(prior / (1.0 - prior)) + np.where(observed, log_odds, 0.0).sum(axis=1)
    return 1.0 / (1.0 + np.exp(-total))


def fit_label_model(votes: np.ndarray, max_iter: int = 200, tol: float = 1e-6, smoothing: float = 1.0) -> dict:
    """Binary Dawid-Skene EM on (units, verifiers) votes in {0, 1, NaN=abstain}, without labels.

    Estimates the class prior and every verifier's true-positive rate P(vote=1 | y=1) and
    false-positive rate P(vote=1 | y=0), starting from the majority-vote posterior; that start
    picks, of EM's two mirror solutions (classes swapped), the one in which the majority is
    right more often than not. Verifiers are assumed independent given the class. Each M-step
    adds ``smoothing`` pseudo-counts to both outcomes so that a verifier that is always right
    on the current posterior cannot get an infinite weight. Deterministic.
    """
    votes = np.asarray(votes, dtype=np.float64)
    if votes.ndim != 2 or votes.shape[1] == 0 or votes.shape[0] == 0:
        raise ValueError(f"label model needs a non-empty (units, verifiers) vote matrix, got shape {votes.shape}")
    observed = ~np.isnan(votes)
    v = np.where(observed, votes, 0.0)
    q = majority_vote(votes)
    tpr = fpr = np.full(votes.shape[1], 0.5)
    prior, converged, iteration = 0.5, False, 0
    for iteration in range(1, max_iter + 1):
        pos, neg = q[:, None] * observed, (1.0 - q)[:, None] * observed
        new_tpr = ((pos * v).sum(axis=0) + smoothing) / (pos.sum(axis=0) + 2 * smoothing)
        new_fpr = ((neg * v).sum(axis=0) + smoothing) / (neg.sum(axis=0) + 2 * smoothing)
        new_prior = (q.sum() + smoothing) / (len(q) + 2 * smoothing)
        change = max(np.abs(new_tpr - tpr).max(), np.abs(new_fpr - fpr).max(), abs(new_prior - prior))
        tpr, fpr, prior = new_tpr, new_fpr, new_prior
        q = label_model_posterior(votes, tpr, fpr, prior)
        if change < tol:
            converged = True
            break
    accuracy = prior * tpr + (1.0 - prior) * (1.0 - fpr)
    return {
        "prior": float(prior),
        "tpr": tpr.tolist(),
        "fpr": fpr.tolist(),
        "accuracy": accuracy.tolist(),
        "n_iter": iteration,
        "converged": converged,
        "identifiable": votes.shape[1] >= 3,
    }


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


def fit_logistic(votes: np.ndarray, labels: np.ndarray, c: float) -> dict:
    """L2 logistic regression of gold labels on votes coded +1 / -1 / 0 (abstain). Uses labels."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels, dtype=np.int64)
    if len(np.unique(labels)) < 2:
        raise ValueError("logistic aggregator: the dev labels hold a single class")
    model = LogisticRegression(C=c, max_iter=1000).fit(_signed_votes(votes), labels)
    return {"coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0])}


def _signed_votes(votes: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(votes), 0.0, 2.0 * votes - 1.0)


def logistic_score(votes: np.ndarray, params: dict) -> np.ndarray:
    logits = _signed_votes(votes) @ np.asarray(params["coef"]) + params["intercept"]
    return 1.0 / (1.0 + np.exp(-logits))


# --------------------------------------------------------------------------- fit / apply


def _labels_for(units: pd.MultiIndex, labels: pd.Series) -> np.ndarray:
    """Gold 0/1 per unit (NaN where unknown) from labels indexed by item_id or by (item_id, candidate_id)."""
    if labels.index.nlevels == 2:
        keyed = labels.copy()
        keyed.index = pd.MultiIndex.from_arrays([keyed.index.get_level_values(i).astype(str) for i in (0, 1)])
        values = keyed.reindex(units)
    else:
        keyed = pd.Series(labels.to_numpy(), index=labels.index.astype(str))
        if keyed.index.duplicated().any():
            raise ValueError("labels: duplicate item ids")
        values = keyed.reindex(units.get_level_values(0))
    values = values.to_numpy(dtype=np.float64)
    known = values[~np.isnan(values)]
    if not np.isin(known, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return values


def _normalized_matrix(raw: np.ndarray, verifiers: Sequence[str], normalizers: Mapping[str, dict]) -> np.ndarray:
    out = np.empty_like(raw)
    for j, v in enumerate(verifiers):
        out[:, j] = apply_normalizer(normalizers[v], raw[:, j])
    return out


def _vote_matrix(normalized: np.ndarray, verifiers: Sequence[str], thresholds: Mapping[str, float]) -> np.ndarray:
    out = np.empty_like(normalized)
    for j, v in enumerate(verifiers):
        out[:, j] = binarize(normalized[:, j], thresholds[v])
    return out


def _check_unit_interval(normalized: np.ndarray, aggregator: str) -> None:
    finite = normalized[~np.isnan(normalized)]
    if len(finite) and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(
            f"aggregator {aggregator!r} averages scores and needs them in [0, 1]; raw scores span "
            f"[{finite.min():.4g}, {finite.max():.4g}]: set normalize to minmax or quantile"
        )


def fit(
    scores: pd.DataFrame,
    settings: dict | None = None,
    dev_labels: pd.Series | None = None,
    fit_items: Iterable[str] | None = None,
) -> dict:
    """Fit every step on the units of ``fit_items`` (default: all items) and return the JSON model.

    ``dev_labels`` (0/1, indexed by item_id or by (item_id, candidate_id)) are read only by the
    ``best_single`` and ``logistic`` aggregators; every step's ``uses_labels`` says whether it did.
    """
    s = resolve_settings(settings)
    scores = check_scores(scores)
    verifiers = _verifier_order(scores)
    if fit_items is not None:
        wanted = set(map(str, fit_items))
        scores = scores[scores["item_id"].isin(wanted)]
    units, raw = _wide(scores, verifiers)
    if len(units) == 0:
        raise ValueError("no scored units to fit on")

    # A verifier with no score on the fit units can be neither fitted nor weighed: always dropped.
    silent = {v: "no_votes" for j, v in enumerate(verifiers) if np.isnan(raw[:, j]).all()}
    normalizers = {v: fit_normalizer(raw[:, j], "none" if v in silent else s["normalize"], s["n_quantiles"])
                   for j, v in enumerate(verifiers)}
    normalized = _normalized_matrix(raw, verifiers, normalizers)

    binarize_step = _fit_binarizer(s, verifiers, normalized, silent)
    votes = _vote_matrix(normalized, verifiers, binarize_step["thresholds"])
    dropped = _degenerate_verifiers(s, verifiers, votes, raw, silent)
    kept = [v for v in verifiers if v not in dropped]
    if not kept:
        raise ValueError(f"every verifier was dropped as degenerate: {dropped}")
    keep = [verifiers.index(v) for v in kept]
    kept_votes, kept_normalized = votes[:, keep], normalized[:, keep]

    label_model = fit_label_model(kept_votes, s["max_iter"], s["tol"], s["smoothing"])
    aggregate = _fit_aggregator(s, kept, kept_votes, kept_normalized, units, dev_labels)

    steps = {
        "normalize": {"method": s["normalize"], "params": normalizers, "uses_labels": False},
        "binarize": binarize_step,
        "filter": {"enabled": s["drop_degenerate"], "dropped": dropped, "uses_labels": False},
        "label_model": {**label_model, "verifiers": kept, "uses_labels": False},
        "aggregate": aggregate,
    }
    return {
        "settings": s,
        "verifiers": verifiers,
        "kept": kept,
        "n_fit_units": len(units),
        "steps": steps,
        "uses_labels": any(step["uses_labels"] for step in steps.values()),
    }


def _fit_binarizer(s: dict, verifiers: list[str], normalized: np.ndarray, silent: Mapping[str, str]) -> dict:
    """Per-verifier vote thresholds: the fixed one, or class-balance quantiles at an assumed or estimated rate."""
    if s["binarize"] == "threshold":
        return {"method": "threshold", "thresholds": {v: float(s["threshold"]) for v in verifiers},
                "positive_rate": None, "positive_rate_source": None, "uses_labels": False}
    if s["positive_rate"] is not None:
        rate, source = float(s["positive_rate"]), "assumed"
    else:
        rate, source = estimate_positive_rate(normalized, s["threshold"]), "estimated"
    thresholds = {v: float(s["threshold"]) if v in silent else class_balance_threshold(normalized[:, j], rate)
                  for j, v in enumerate(verifiers)}
    return {"method": "class_balance", "thresholds": thresholds, "positive_rate": rate,
            "positive_rate_source": source, "uses_labels": False}


def _degenerate_verifiers(s: dict, verifiers: list[str], votes: np.ndarray, raw: np.ndarray,
                          silent: Mapping[str, str]) -> dict[str, str]:
    """{verifier: reason} of those to drop; silent ones always, the rest only if drop_degenerate."""
    dropped = dict(silent)
    if s["drop_degenerate"]:
        for j, v in enumerate(verifiers):
            if v not in silent:
                reason = degenerate_reason(votes[:, j], raw[:, j], s["min_positive_rate"], s["max_positive_rate"])
                if reason is not None:
                    dropped[v] = reason
    return dropped


def _fit_aggregator(s: dict, kept: list[str], votes: np.ndarray, normalized: np.ndarray,
                    units: pd.MultiIndex, dev_labels: pd.Series | None) -> dict:
    method = s["aggregator"]
    if method in ("mean", "first", "best_single"):
        _check_unit_interval(normalized, method)
    if method == "first":
        first = s["first_verifier"] or kept[0]
        if first not in kept:
            raise ValueError(f"first_verifier {first!r} is not among the kept verifiers {kept}")
        return {"method": method, "order": [first] + [v for v in kept if v != first], "uses_labels": False}
    if method not in LABEL_USING_AGGREGATORS:
        return {"method": method, "uses_labels": False}

    if dev_labels is None:
        raise ValueError(f"aggregator {method!r} needs dev labels")
    labels = _labels_for(units, dev_labels)
    on_dev = ~np.isnan(labels)
    if not on_dev.any():
        raise ValueError(f"aggregator {method!r}: none of the {len(dev_labels)} dev labels is on a fitted unit")
    dev_votes, dev_y = votes[on_dev], labels[on_dev]
    if method == "best_single":
        accuracy = vote_accuracy(dev_votes, dev_y)["accuracy"]
        ranked = np.where(np.isnan(accuracy), -1.0, accuracy)
        best = int(np.argmax(ranked))  # ties: the first verifier in table order
        return {"method": method, "verifier": kept[best], "dev_accuracy": dict(zip(kept, map(float, accuracy))),
                "n_dev": int(on_dev.sum()), "uses_labels": True}
    params = fit_logistic(dev_votes, dev_y, s["logistic_c"])
    return {"method": method, **params, "verifiers": kept, "n_dev": int(on_dev.sum()), "uses_labels": True}


def apply(model: dict, scores: pd.DataFrame) -> pd.DataFrame:
    """Aggregated scores of every unit in ``scores`` under a fitted ``model``.

    Columns: item_id, candidate_id, score (P(positive / correct) in [0, 1]) and n_votes (kept
    verifiers that did not abstain; where it is 0 the score is the label-model prior or 0.5).
    """
    scores = check_scores(scores)
    unknown = sorted(set(scores["verifier_id"]) - set(model["verifiers"]))
    if unknown:
        raise ValueError(f"verifiers {unknown} were not in the fitted model ({model['verifiers']})")
    kept, steps = model["kept"], model["steps"]
    units, raw = _wide(scores, kept)
    normalized = _normalized_matrix(raw, kept, steps["normalize"]["params"])
    votes = _vote_matrix(normalized, kept, steps["binarize"]["thresholds"])
    aggregate = steps["aggregate"]
    method = aggregate["method"]
    if method in ("mean", "first", "best_single"):
        _check_unit_interval(normalized, method)
    if method == "label_model":
        lm = steps["label_model"]
        score = label_model_posterior(votes, lm["tpr"], lm["fpr"], lm["prior"])
    elif method == "majority":
        score = majority_vote(votes)
    elif method == "mean":
        score = mean_score(normalized)
    elif method == "first":
        score = first_available(normalized[:, [kept.index(v) for v in aggregate["order"]]])
    elif method == "best_single":
        score = first_available(normalized[:, [kept.index(aggregate["verifier"])]])
    else:
        score = logistic_score(votes, aggregate)
    return pd.DataFrame(
        {
            "item_id": units.get_level_values(0).astype(str),
            "candidate_id": units.get_level_values(1).astype(str),
            "score": np.clip(score, 0.0, 1.0),
            "n_votes": (~np.isnan(votes)).sum(axis=1).astype(np.int64),
        }
    )


def verifier_table(model: dict, scores: pd.DataFrame | None = None, gold: pd.Series | None = None) -> pd.DataFrame:
    """One row per verifier: kept or dropped (and why), threshold, label-model estimates, and,
    when ``gold`` is given (evaluation only), its true accuracy / TPR / FPR / coverage on ``scores``."""
    steps = model["steps"]
    lm = steps["label_model"]
    estimates = {v: (lm["accuracy"][j], lm["tpr"][j], lm["fpr"][j]) for j, v in enumerate(lm["verifiers"])}
    rows = []
    for v in model["verifiers"]:
        est = estimates.get(v, (np.nan, np.nan, np.nan))
        rows.append({
            "verifier_id": v,
            "kept": v in model["kept"],
            "drop_reason": steps["filter"]["dropped"].get(v, ""),
            "threshold": steps["binarize"]["thresholds"][v],
            "est_accuracy": est[0],
            "est_tpr": est[1],
            "est_fpr": est[2],
        })
    table = pd.DataFrame(rows)
    if gold is not None:
        if scores is None:
            raise ValueError("verifier_table: gold needs the scores to evaluate")
        scores = check_scores(scores)
        units, raw = _wide(scores, model["verifiers"])
        normalized = _normalized_matrix(raw, model["verifiers"], steps["normalize"]["params"])
        votes = _vote_matrix(normalized, model["verifiers"], steps["binarize"]["thresholds"])
        labels = _labels_for(units, gold)
        known = ~np.isnan(labels)
        truth = vote_accuracy(votes[known], labels[known])
        for key in ("accuracy", "tpr", "fpr", "coverage"):
            table[f"true_{key}"] = truth[key]
    return table


def aggregate_weak_labels(
    scores_long: pd.DataFrame,
    settings: dict | None = None,
    dev_labels: pd.Series | None = None,
    *,
    fit_items: Iterable[str] | None = None,
    gold: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Fit on ``fit_items`` (default all), score every unit; returns (aggregated, verifier table, metadata).

    ``metadata`` is the fitted model of :func:`fit` (JSON-serializable; :func:`apply` reuses it)
    plus ``gold_used_for_evaluation_only`` when ``gold`` fills the true_* verifier-table columns.
    """
    model = fit(scores_long, settings, dev_labels, fit_items)
    aggregated = apply(model, scores_long)
    table = verifier_table(model, scores_long, gold)
    metadata = {**model, "gold_used_for_evaluation_only": gold is not None}
    return aggregated, table, metadata


# --------------------------------------------------------------------------- weak-label tables and files


def weak_label_table(aggregated: pd.DataFrame, texts: pd.DataFrame) -> pa.Table:
    """The project's weak-label table (labeling.LABEL_SCHEMA) from binary aggregated scores.

    ``texts`` has columns id and text and fixes the row order; every id needs exactly one
    aggregated score (binary items have a single candidate).
    """
    if aggregated.duplicated("item_id").any():
        raise ValueError("weak_label_table: several candidates per item; weak labels need binary items")
    p = aggregated.set_index("item_id")["score"].reindex(texts["id"].astype(str))
    if p.isna().any():
        missing = p.index[p.isna()].tolist()
        raise ValueError(f"weak_label_table: {len(missing)} ids have no aggregated score, e.g. {missing[:3]}")
    p = p.to_numpy(dtype=np.float32)
    probs = np.column_stack([1.0 - p, p]).astype(np.float32)
    soft = pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1), pa.float32()), 2).cast(pa.list_(pa.float32()))
    return pa.Table.from_arrays(
        [
            pa.array(texts["id"].astype(str).tolist(), pa.string()),
            pa.array(texts["text"].astype(str).tolist(), pa.string()),
            soft,
            pa.array(probs.argmax(axis=1).astype(np.int64), pa.int64()),
            pa.array(probs.max(axis=1), pa.float32()),
        ],
        schema=LABEL_SCHEMA,
    )


def scores_for_splits(
    teacher_files: Mapping[str, Mapping[str, str | Path]], splits: Sequence[str], labeling_functions: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Long scores of every teacher and labeling function on ``splits``, and each split's (id, text)."""
    from .labeling_functions import LABELING_FUNCTIONS

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
    for split in splits:
        frame = texts[split]
        functions = {name: LABELING_FUNCTIONS[name] for name in labeling_functions}
        frames.append(scores_from_labeling_functions(frame["id"].tolist(), frame["text"].tolist(), functions))
    return check_scores(pd.concat(frames, ignore_index=True)), texts


def aggregate_label_files(
    teacher_files: Mapping[str, Mapping[str, str | Path]],
    outputs: Mapping[str, str | Path],
    settings: dict | None = None,
    *,
    fit_split: str,
    labeling_functions: Sequence[str] = (),
    dev_labels_file: str | Path | None = None,
    table_out: str | Path | None = None,
    metadata_out: str | Path | None = None,
    provenance: dict | None = None,
) -> dict:
    """Aggregate the weak-label files of several teachers (+ labeling functions) into one per split.

    ``teacher_files`` maps a verifier id to {split: weak-label parquet}; every teacher must label
    every split in ``outputs``. ``labeling_functions`` names entries of
    :data:`w2s.labeling_functions.LABELING_FUNCTIONS`, run on the texts. The model is fitted on
    ``fit_split`` and applied to every split. ``dev_labels_file`` (a split parquet with id and
    label) is opened only by the label-using aggregators; its items must be in one of the output
    splits (teachers must label them, e.g. ``val``), and they join the fit. Writes the aggregated weak-label file of
    each split, and optionally the verifier table (parquet) and the metadata (JSON); returns the metadata.
    """
    from .labeling_functions import LABELING_FUNCTIONS

    s = resolve_settings(settings)
    splits = list(outputs)
    if fit_split not in splits:
        raise ValueError(f"fit_split {fit_split!r} is not among the output splits {splits}")
    unknown = sorted(set(labeling_functions) - set(LABELING_FUNCTIONS))
    if unknown:
        raise ValueError(f"unknown labeling functions {unknown}; known: {sorted(LABELING_FUNCTIONS)}")
    if not teacher_files and not labeling_functions:
        raise ValueError("need at least one teacher or labeling function")

    scores, texts = scores_for_splits(teacher_files, splits, labeling_functions)

    dev_labels = None
    if s["aggregator"] in LABEL_USING_AGGREGATORS:
        if dev_labels_file is None:
            raise ValueError(f"aggregator {s['aggregator']!r} needs dev_labels_file")
        dev = pq.read_table(dev_labels_file, columns=["id", "label"]).to_pandas()
        dev_labels = pd.Series(dev["label"].to_numpy(), index=dev["id"].astype(str))

    # Dev items are fitted on too, so best_single / logistic can see their votes.
    fit_items = set(texts[fit_split]["id"].astype(str))
    if dev_labels is not None:
        fit_items |= set(dev_labels.index)
    model = fit(scores, s, dev_labels, fit_items)
    metadata = {**model, "fit_split": fit_split, "teachers": list(teacher_files),
                "labeling_functions": list(labeling_functions), **(provenance or {})}
    for split in splits:
        aggregated = apply(model, scores[scores["item_id"].isin(set(texts[split]["id"].astype(str)))])
        io.write_parquet(weak_label_table(aggregated, texts[split]), outputs[split],
                         provenance={**metadata, "split": split})
        log.info("wrote %d aggregated weak labels for split %r to %s", len(texts[split]), split, outputs[split])
    if table_out is not None:
        io.write_parquet(pa.Table.from_pandas(verifier_table(model), preserve_index=False), table_out)
    if metadata_out is not None:
        io.write_json(metadata, metadata_out)
    return metadata


def evaluate_verifiers(
    teacher_files: Mapping[str, Mapping[str, str | Path]],
    labeling_functions: Sequence[str],
    settings: dict | None,
    gold_files: Mapping[str, str | Path],
) -> tuple[dict, pd.DataFrame]:
    """For evaluation only (reads gold): every aggregator's test accuracy and each verifier's true
    and estimated accuracy. Aggregators are fitted on transfer; those that use labels take transfer
    gold as their dev labels and are flagged ``uses_labels``."""
    scores, _ = scores_for_splits(teacher_files, ["transfer", "test"], labeling_functions)
    gold = {split: pq.read_table(path, columns=["id", "label"]).to_pandas().set_index("id")["label"]
            for split, path in gold_files.items()}
    transfer_items = set(gold["transfer"].index)
    test_scores = scores[~scores["item_id"].isin(transfer_items)]
    accuracies = {}
    for aggregator in AGGREGATORS:
        s = resolve_settings({**(settings or {}), "aggregator": aggregator})
        dev = gold["transfer"] if aggregator in LABEL_USING_AGGREGATORS else None
        model = fit(scores, s, dev, transfer_items)
        predicted = apply(model, test_scores).set_index("item_id")["score"]
        test_gold = gold["test"].loc[predicted.index]
        accuracies[aggregator] = {"test_accuracy": float(((predicted >= 0.5).astype(int) == test_gold).mean()),
                                  "uses_labels": aggregator in LABEL_USING_AGGREGATORS}
    label_model = fit(scores, resolve_settings({**(settings or {}), "aggregator": "label_model"}), None, transfer_items)
    table = verifier_table(label_model, test_scores, gold=gold["test"])
    return {"aggregators": accuracies, "n_test": int(len(gold["test"]))}, table
