"""Fit the verifier pipeline on some units and apply it to any: normalize, binarize, filter, label model,
aggregate. The fitted model is a JSON-serializable dict; every step records ``uses_labels``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict

import numpy as np
import pandas as pd

from ..registry import AGGREGATOR_REGISTRY
from .aggregators import vote_accuracy
from .builtins import ApplyContext, FitContext
from .label_model import fit_label_model_step
from .normalize import (
    check_unit_interval,
    class_balance_threshold,
    degenerate_reason,
    estimate_positive_rate,
    fit_normalizer,
    normalized_matrix,
    vote_matrix,
)
from .scores import check_scores, verifier_order, wide
from .settings import resolve_settings


def labels_for(units: pd.MultiIndex, labels: pd.Series) -> np.ndarray:
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


def _fit_binarizer(s: dict, verifiers: list[str], normalized: np.ndarray, silent: Mapping[str, str]) -> dict:
    """Per-verifier vote thresholds: the fixed one, or class-balance quantiles at an assumed or estimated rate."""
    if s["binarize"] == "threshold":
        return {
            "method": "threshold",
            "thresholds": {v: float(s["threshold"]) for v in verifiers},
            "positive_rate": None,
            "positive_rate_source": None,
            "uses_labels": False,
        }
    if s["positive_rate"] is not None:
        rate, source = float(s["positive_rate"]), "assumed"
    else:
        rate, source = estimate_positive_rate(normalized, s["threshold"]), "estimated"
    thresholds = {
        v: float(s["threshold"]) if v in silent else class_balance_threshold(normalized[:, j], rate)
        for j, v in enumerate(verifiers)
    }
    return {
        "method": "class_balance",
        "thresholds": thresholds,
        "positive_rate": rate,
        "positive_rate_source": source,
        "uses_labels": False,
    }


def _degenerate_verifiers(
    s: dict, verifiers: list[str], votes: np.ndarray, raw: np.ndarray, silent: Mapping[str, str]
) -> dict[str, str]:
    """{verifier: reason} of those to drop; silent ones always, the rest only if drop_degenerate."""
    dropped = dict(silent)
    if s["drop_degenerate"]:
        for j, v in enumerate(verifiers):
            if v not in silent:
                reason = degenerate_reason(votes[:, j], raw[:, j], s["min_positive_rate"], s["max_positive_rate"])
                if reason is not None:
                    dropped[v] = reason
    return dropped


def build_aggregator(s: dict):
    """The configured aggregator (a registry entry), built from ``aggregator_options``, and its entry."""
    entry = AGGREGATOR_REGISTRY.entry(s["aggregator"])
    options = AGGREGATOR_REGISTRY.options(s["aggregator"], s.get("aggregator_options"))
    return entry.obj(**(asdict(options) if options is not None else {})), entry


def _fit_aggregator(
    s: dict,
    kept: list[str],
    votes: np.ndarray,
    normalized: np.ndarray,
    units: pd.MultiIndex,
    dev_labels: pd.Series | None,
    prior: float,
) -> dict:
    method = s["aggregator"]
    aggregator, entry = build_aggregator(s)
    if entry.meta.get("averaging"):
        check_unit_interval(normalized, method)
    ctx = FitContext(s, kept, votes, normalized, prior)
    uses_labels = bool(entry.meta.get("uses_labels"))
    if not uses_labels:
        return {"method": method, **aggregator.fit(ctx), "uses_labels": False}
    if dev_labels is None:
        raise ValueError(f"aggregator {method!r} needs dev labels")
    labels = labels_for(units, dev_labels)
    on_dev = ~np.isnan(labels)
    if not on_dev.any():
        raise ValueError(f"aggregator {method!r}: none of the {len(dev_labels)} dev labels is on a fitted unit")
    ctx.dev_votes, ctx.dev_labels = votes[on_dev], labels[on_dev]
    return {"method": method, **aggregator.fit(ctx), "n_dev": int(on_dev.sum()), "uses_labels": True}


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
    verifiers = verifier_order(scores)
    if fit_items is not None:
        scores = scores[scores["item_id"].isin(set(map(str, fit_items)))]
    units, raw = wide(scores, verifiers)
    if len(units) == 0:
        raise ValueError("no scored units to fit on")
    # A verifier with no score on the fit units can be neither fitted nor weighed: always dropped.
    silent = {v: "no_votes" for j, v in enumerate(verifiers) if np.isnan(raw[:, j]).all()}
    normalizers = {
        v: fit_normalizer(raw[:, j], "none" if v in silent else s["normalize"], s["n_quantiles"])
        for j, v in enumerate(verifiers)
    }
    normalized = normalized_matrix(raw, verifiers, normalizers)
    binarize_step = _fit_binarizer(s, verifiers, normalized, silent)
    votes = vote_matrix(normalized, verifiers, binarize_step["thresholds"])
    dropped = _degenerate_verifiers(s, verifiers, votes, raw, silent)
    kept = [v for v in verifiers if v not in dropped]
    if not kept:
        raise ValueError(f"every verifier was dropped as degenerate: {dropped}")
    keep = [verifiers.index(v) for v in kept]
    thresholds = np.array([binarize_step["thresholds"][v] for v in kept])
    label_model = fit_label_model_step(kept, votes[:, keep], normalized[:, keep], thresholds, s)
    aggregate = _fit_aggregator(s, kept, votes[:, keep], normalized[:, keep], units, dev_labels, label_model["prior"])
    steps = {
        "normalize": {"method": s["normalize"], "params": normalizers, "uses_labels": False},
        "binarize": binarize_step,
        "filter": {"enabled": s["drop_degenerate"], "dropped": dropped, "uses_labels": False},
        "label_model": label_model,
        "aggregate": aggregate,
    }
    return {
        "settings": s,
        "verifiers": verifiers,
        "kept": kept,
        "n_fit_units": len(units),
        "steps": steps,
        "prior": label_model["prior"],
        "uses_labels": any(step["uses_labels"] for step in steps.values()),
    }


def model_votes(
    model: dict, scores: pd.DataFrame, verifiers: list[str]
) -> tuple[pd.MultiIndex, np.ndarray, np.ndarray]:
    """Units, normalized scores and votes of ``verifiers`` under a fitted model."""
    steps = model["steps"]
    units, raw = wide(check_scores(scores), verifiers)
    normalized = normalized_matrix(raw, verifiers, steps["normalize"]["params"])
    return units, normalized, vote_matrix(normalized, verifiers, steps["binarize"]["thresholds"])


def _aggregate(model: dict, kept: list[str], normalized: np.ndarray, votes: np.ndarray) -> np.ndarray:
    params = model["steps"]["aggregate"]
    aggregator, entry = build_aggregator({**model["settings"], "aggregator": params["method"]})
    if entry.meta.get("averaging"):
        check_unit_interval(normalized, params["method"])
    return aggregator.apply(ApplyContext(model, kept, votes, normalized, model["prior"]), params)


def apply(model: dict, scores: pd.DataFrame) -> pd.DataFrame:
    """Aggregated scores of every unit in ``scores`` under a fitted ``model``.

    Columns: item_id, candidate_id, score (P(positive / correct) in [0, 1]) and n_votes (kept
    verifiers that did not abstain). Where no kept verifier votes, the score is the fitted prior,
    so the unit gets the prior's class, as in the ``best_single`` ranking.
    """
    scores = check_scores(scores)
    unknown = sorted(set(scores["verifier_id"]) - set(model["verifiers"]))
    if unknown:
        raise ValueError(f"verifiers {unknown} were not in the fitted model ({model['verifiers']})")
    kept = model["kept"]
    units, normalized, votes = model_votes(model, scores, kept)
    n_votes = (~np.isnan(votes)).sum(axis=1).astype(np.int64)
    score = np.where(n_votes > 0, _aggregate(model, kept, normalized, votes), model["prior"])
    return pd.DataFrame(
        {
            "item_id": units.get_level_values(0).astype(str),
            "candidate_id": units.get_level_values(1).astype(str),
            "score": np.clip(score, 0.0, 1.0),
            "n_votes": n_votes,
        }
    )


def true_rates(votes: np.ndarray, units: pd.MultiIndex, gold: pd.Series) -> dict:
    """Gold accuracy / TPR / FPR / coverage of every vote column, on the units with a gold label."""
    labels = labels_for(units, gold)
    known = ~np.isnan(labels)
    return vote_accuracy(votes[known], labels[known])
