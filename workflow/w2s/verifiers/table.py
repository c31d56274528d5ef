"""The per-verifier table of a fitted model (kept or dropped, thresholds, label-model estimates, merges),
optionally with gold rates for evaluation, and :func:`aggregate_weak_labels`, fit + apply + table."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .label_model import group_votes
from .model import apply, fit, model_votes, true_rates


def _estimates(lm: dict) -> dict[str, tuple[float, float, float]]:
    """(accuracy, TPR, FPR) by verifier id: label-model columns, and merged members on their own."""
    estimates = {v: (lm["accuracy"][j], lm["tpr"][j], lm["fpr"][j]) for j, v in enumerate(lm["verifiers"])}
    for v, rates in lm.get("member_rates", {}).items():
        estimates[v] = (rates["accuracy"], rates["tpr"], rates["fpr"])
    return estimates


def _rows(model: dict) -> list[dict]:
    steps = model["steps"]
    lm = steps["label_model"]
    estimates = _estimates(lm)
    merged_into = {
        member: group for group, members in zip(lm["verifiers"], lm["groups"]) if len(members) > 1 for member in members
    }
    rows = []
    for v in model["verifiers"] + [g for g, members in zip(lm["verifiers"], lm["groups"]) if len(members) > 1]:
        est = estimates.get(v, (np.nan, np.nan, np.nan))
        rows.append(
            {
                "verifier_id": v,
                "kept": v in model["kept"] or v in lm["verifiers"],
                "drop_reason": steps["filter"]["dropped"].get(v, ""),
                "merged_into": merged_into.get(v, ""),
                "threshold": steps["binarize"]["thresholds"].get(v, np.nan),
                "est_accuracy": est[0],
                "est_tpr": est[1],
                "est_fpr": est[2],
            }
        )
    return rows


def verifier_table(model: dict, scores: pd.DataFrame | None = None, gold: pd.Series | None = None) -> pd.DataFrame:
    """One row per verifier, and one per merged group of dependent verifiers: kept or dropped (and why),
    merged into which group, threshold, label-model estimates, and, when ``gold`` is given (evaluation
    only), its true accuracy / TPR / FPR / coverage on ``scores``."""
    table = pd.DataFrame(_rows(model))
    if gold is None:
        return table
    if scores is None:
        raise ValueError("verifier_table: gold needs the scores to evaluate")
    units, normalized, votes = model_votes(model, scores, model["verifiers"])
    lm, kept = model["steps"]["label_model"], model["kept"]
    keep = [model["verifiers"].index(v) for v in kept]
    thresholds = np.array([model["steps"]["binarize"]["thresholds"][v] for v in kept])
    merged = [j for j, members in enumerate(lm["groups"]) if len(members) > 1]
    columns = np.column_stack([votes, group_votes(lm, kept, normalized[:, keep], thresholds)[:, merged]])
    truth = true_rates(columns, units, gold)
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


def label_model_summary(model: dict) -> dict:
    """EM convergence and merged verifiers of a fitted model, for reports and logs."""
    lm = model["steps"]["label_model"]
    return {
        "n_iter": lm["n_iter"],
        "converged": lm["converged"],
        "identifiable": lm["identifiable"],
        "merged": lm["merged"],
        "dependence": lm["dependence"],
    }
