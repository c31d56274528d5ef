"""Binary Dawid-Skene label model, with detection and merging of dependent verifiers.

The label model assumes verifiers independent given the class. Two teachers that copy each
other break that: EM then rates both as nearly perfect and the posterior is overconfident.
:func:`dependent_pairs` flags a pair whose observed agreement exceeds the agreement that
conditional independence predicts at their accuracies, each estimated by a label model that
holds the other verifiers but not the pair's partner; :func:`merge_dependent` merges the worst
flagged pair and tests again, until no pair is flagged. A merged group is one column whose vote is the sign of the members' mean soft margin
``normalized - threshold``, and fits the label model on the merged columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .aggregators import majority_vote
from .normalize import EPS

MIN_FIT_COLUMNS = 3  # below three verifiers the rates are not identifiable
# A pair is tested on at least this many units both vote on: below it, an agreement's sampling
# error (about 0.5 / sqrt(n)) is as large as the dependency margin.
MIN_PAIR_UNITS = 100


def label_model_posterior(votes: np.ndarray, tpr: np.ndarray, fpr: np.ndarray, prior: float) -> np.ndarray:
    """P(positive | votes) under conditionally independent verifiers; abstains contribute nothing."""
    tpr = np.clip(np.asarray(tpr, dtype=np.float64), EPS, 1 - EPS)
    fpr = np.clip(np.asarray(fpr, dtype=np.float64), EPS, 1 - EPS)
    prior = float(np.clip(prior, EPS, 1 - EPS))
    observed = ~np.isnan(votes)
    v = np.where(observed, votes, 0.0)
    log_odds = v * np.log(tpr / fpr) + (1.0 - v) * np.log((1.0 - tpr) / (1.0 - fpr))
    total = math.log(prior / (1.0 - prior)) + np.where(observed, log_odds, 0.0).sum(axis=1)
    return 1.0 / (1.0 + np.exp(-total))


def m_step(votes: np.ndarray, q: np.ndarray, smoothing: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Smoothed TPR, FPR of every column and the prior, given the posterior ``q`` of every unit."""
    observed = ~np.isnan(votes)
    v = np.where(observed, votes, 0.0)
    pos, neg = q[:, None] * observed, (1.0 - q)[:, None] * observed
    tpr = ((pos * v).sum(axis=0) + smoothing) / (pos.sum(axis=0) + 2 * smoothing)
    fpr = ((neg * v).sum(axis=0) + smoothing) / (neg.sum(axis=0) + 2 * smoothing)
    prior = (q.sum() + smoothing) / (len(q) + 2 * smoothing)
    return tpr, fpr, float(prior)


def log_objective(votes: np.ndarray, tpr: np.ndarray, fpr: np.ndarray, prior: float, smoothing: float) -> float:
    """The function EM climbs: the log-likelihood of ``votes`` (abstains marginalized out) plus
    ``smoothing`` times the log of every rate, its complement, the prior and its complement. That
    penalty is a Beta(s + 1, s + 1) prior on each, whose maximizer is :func:`m_step`'s smoothed ratio."""
    tpr = np.clip(np.asarray(tpr, dtype=np.float64), EPS, 1 - EPS)
    fpr = np.clip(np.asarray(fpr, dtype=np.float64), EPS, 1 - EPS)
    prior = float(np.clip(prior, EPS, 1 - EPS))
    observed = ~np.isnan(votes)
    v = np.where(observed, votes, 0.0)
    log_pos = np.where(observed, v * np.log(tpr) + (1 - v) * np.log(1 - tpr), 0.0).sum(axis=1) + math.log(prior)
    log_neg = np.where(observed, v * np.log(fpr) + (1 - v) * np.log(1 - fpr), 0.0).sum(axis=1) + math.log(1 - prior)
    penalty = np.log(tpr * (1 - tpr)).sum() + np.log(fpr * (1 - fpr)).sum() + math.log(prior * (1 - prior))
    return float(np.logaddexp(log_pos, log_neg).sum() + smoothing * penalty)


def _em_map(votes: np.ndarray, theta: np.ndarray, smoothing: float) -> np.ndarray:
    """One EM step on the packed parameters ``[tpr..., fpr..., prior]``: E-step posterior, then M-step."""
    m = votes.shape[1]
    q = label_model_posterior(votes, theta[:m], theta[m : 2 * m], theta[-1])
    tpr, fpr, prior = m_step(votes, q, smoothing)
    return np.concatenate([tpr, fpr, [prior]])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _squarem_step(votes: np.ndarray, theta: np.ndarray, first: np.ndarray, smoothing: float) -> tuple[np.ndarray, int]:
    """One SQUAREM cycle (Varadhan and Roland 2008, scheme S3) from ``theta``, whose EM step is ``first``:
    a second EM step, an extrapolation along the two steps in logit space, one stabilizing EM step
    from there. Falls back to the two plain steps when the extrapolation lowers :func:`log_objective`,
    so the objective never decreases. Returns the new parameters and the EM steps it took beyond ``first``."""
    second = _em_map(votes, first, smoothing)
    x0, x1, x2 = _logit(theta), _logit(first), _logit(second)
    r, v = x1 - x0, x2 - 2 * x1 + x0
    if not np.any(v):
        return second, 1
    alpha = min(-float(np.linalg.norm(r) / np.linalg.norm(v)), -1.0)
    jumped = 1 / (1 + np.exp(-(x0 - 2 * alpha * r + alpha**2 * v)))
    stabilized = _em_map(votes, jumped, smoothing)
    m = votes.shape[1]

    def unpack(t):
        return t[:m], t[m : 2 * m], t[-1]

    if log_objective(votes, *unpack(stabilized), smoothing) < log_objective(votes, *unpack(second), smoothing):
        return second, 2
    return stabilized, 2


def fit_label_model(
    votes: np.ndarray, max_iter: int = 200, tol: float = 1e-6, smoothing: float = 1.0, accelerate: bool = True
) -> dict:
    """Binary Dawid-Skene EM on (units, verifiers) votes in {0, 1, NaN=abstain}, without labels.

    Starts from the majority-vote posterior, which picks, of EM's two mirror solutions, the one in
    which the majority is right more often than not. ``smoothing`` pseudo-counts keep a verifier
    that is always right on the current posterior from an infinite weight. Converged when one EM
    step would move no rate and not the prior by ``tol`` or more (``final_change``, the step's
    largest move); ``n_iter`` counts EM steps, at most ``max_iter``.

    Plain EM crawls where the likelihood is flat: after merging, a few columns of which most abstain
    on most units, where each step shrinks the distance to the fixed point by only a few percent.
    ``accelerate`` extrapolates along successive steps (SQUAREM), which reaches the same fixed point
    in far fewer steps and never lowers the objective. Deterministic.
    """
    votes = np.asarray(votes, dtype=np.float64)
    if votes.ndim != 2 or votes.shape[1] == 0 or votes.shape[0] == 0:
        raise ValueError(f"label model needs a non-empty (units, verifiers) vote matrix, got shape {votes.shape}")
    tpr, fpr, prior = m_step(votes, majority_vote(votes), smoothing)
    theta = np.concatenate([tpr, fpr, [prior]])
    # The first M-step moves from the uninformed 0.5 everywhere; that is the change if it is the only step.
    converged, iteration, change = False, 1, float(np.abs(theta - 0.5).max())
    while iteration < max_iter:
        step = _em_map(votes, theta, smoothing)
        iteration += 1
        change = float(np.abs(step - theta).max())
        if change < tol:
            theta, converged = step, True
            break
        if accelerate and iteration + 2 <= max_iter:
            theta, extra = _squarem_step(votes, theta, step, smoothing)
            iteration += extra
        else:
            theta = step
    m = votes.shape[1]
    tpr, fpr, prior = theta[:m], theta[m : 2 * m], float(theta[-1])
    return {
        "prior": prior,
        "tpr": tpr.tolist(),
        "fpr": fpr.tolist(),
        "accuracy": (prior * tpr + (1.0 - prior) * (1.0 - fpr)).tolist(),
        "n_iter": iteration,
        "converged": converged,
        "final_change": change,
        "max_iter": max_iter,
        "tol": tol,
        "log_objective": log_objective(votes, tpr, fpr, prior, smoothing),
        "identifiable": votes.shape[1] >= MIN_FIT_COLUMNS,
    }


def convergence_summary(lm: dict) -> dict:
    """EM convergence of a fitted label-model step, for reports and summaries."""
    return {key: lm.get(key) for key in ("n_iter", "converged", "final_change", "max_iter", "tol", "log_objective")}


def solo_rates(votes: np.ndarray, column: int, others: Sequence[int], s: dict) -> dict:
    """TPR, FPR, accuracy (and the prior) of one column from a label model of it and ``others`` alone."""
    fitted = fit_label_model(votes[:, [*others, column]], s["max_iter"], s["tol"], s["smoothing"])
    tpr, fpr, prior = fitted["tpr"][-1], fitted["fpr"][-1], fitted["prior"]
    return {"tpr": tpr, "fpr": fpr, "prior": prior, "accuracy": prior * tpr + (1 - prior) * (1 - fpr)}


def predicted_agreement(a: dict, b: dict, prior: float) -> float:
    """P(two verifiers vote alike) if they are independent given the class, at rates ``a`` and ``b``."""
    same_pos = a["tpr"] * b["tpr"] + (1 - a["tpr"]) * (1 - b["tpr"])
    same_neg = a["fpr"] * b["fpr"] + (1 - a["fpr"]) * (1 - b["fpr"])
    return prior * same_pos + (1 - prior) * same_neg


def dependent_pairs(votes: np.ndarray, names: Sequence[str], s: dict) -> list[dict]:
    """Every pair's observed and predicted agreement, on the units both vote on; ``dependent`` marks
    excess agreement above ``s["dependency_margin"]``. Pairs with under two other verifiers, or fewer than
    :data:`MIN_PAIR_UNITS` units both vote on, are untestable and left out."""
    m, observed = votes.shape[1], ~np.isnan(votes)
    pairs = []
    for i in range(m):
        for j in range(i + 1, m):
            others = [k for k in range(m) if k not in (i, j)]
            both = observed[:, i] & observed[:, j]
            if len(others) < MIN_FIT_COLUMNS - 1 or both.sum() < MIN_PAIR_UNITS:
                continue
            a, b = solo_rates(votes, i, others, s), solo_rates(votes, j, others, s)
            agree = float(np.mean(votes[both, i] == votes[both, j]))
            expected = predicted_agreement(a, b, 0.5 * (a["prior"] + b["prior"]))
            pairs.append(
                {
                    "pair": [names[i], names[j]],
                    "n": int(both.sum()),
                    "observed": agree,
                    "predicted": float(expected),
                    "excess": agree - float(expected),
                    "dependent": agree - expected > s["dependency_margin"],
                }
            )
    return pairs


def merge_dependent(
    names: list[str], normalized: np.ndarray, thresholds: np.ndarray, s: dict
) -> tuple[list[list[str]], list[dict], list[dict]]:
    """Groups of verifiers after greedy merging, the merges made and the last round's pair checks.

    Each round merges only the pair with the largest excess agreement and then re-tests: a dependent
    pair inflates the accuracy estimates of every model that holds it, which makes independent
    verifiers look dependent too until it is merged.
    """
    groups = [[n] for n in names]
    merges: list[dict] = []
    while True:
        idx = [[names.index(n) for n in g] for g in groups]
        columns = column_votes(normalized, thresholds, idx)
        pairs = dependent_pairs(columns, [group_id(g) for g in groups], s) if s["merge_dependent"] else []
        flagged = [p for p in pairs if p["dependent"]]
        if not flagged:
            return groups, merges, pairs
        worst = max(flagged, key=lambda p: p["excess"])
        merges.append(worst)
        ids = [group_id(g) for g in groups]
        i, j = ids.index(worst["pair"][0]), ids.index(worst["pair"][1])
        merged = sorted(groups[i] + groups[j], key=names.index)
        groups = [g for k, g in enumerate(groups) if k not in (i, j)] + [merged]
        groups.sort(key=lambda g: names.index(g[0]))


def column_votes(normalized: np.ndarray, thresholds: np.ndarray, groups_idx: Sequence[Sequence[int]]) -> np.ndarray:
    """One vote column per group: positive where the mean soft margin ``normalized - threshold`` of its
    non-abstaining members is >= 0, NaN where all abstain. A one-member group is that member's vote."""
    margin = normalized - thresholds[None, :]
    out = np.full((len(normalized), len(groups_idx)), np.nan)
    for g, members in enumerate(groups_idx):
        block = margin[:, list(members)]
        voted = (~np.isnan(block)).any(axis=1)
        mean = np.nanmean(np.where(voted[:, None], block, 0.0), axis=1)
        out[voted, g] = (mean[voted] >= 0).astype(np.float64)
    return out


def group_id(members: Sequence[str]) -> str:
    return members[0] if len(members) == 1 else "merged:" + "+".join(members)


def fit_label_model_step(
    names: list[str], votes: np.ndarray, normalized: np.ndarray, thresholds: np.ndarray, s: dict
) -> dict:
    """The label-model step of a fitted model: dependence checks, merged columns, EM on them, and the
    rates of every merged verifier on its own (from a model of it and the unmerged columns)."""
    groups, merges, pairs = merge_dependent(names, normalized, thresholds, s)
    groups_idx = [[names.index(n) for n in g] for g in groups]
    columns = column_votes(normalized, thresholds, groups_idx)
    fitted = fit_label_model(columns, s["max_iter"], s["tol"], s["smoothing"])
    singles = [g for g, members in enumerate(groups_idx) if len(members) == 1]
    member_rates = {}
    for members in (m for m in groups_idx if len(m) > 1):
        stacked = np.column_stack([columns[:, singles], votes[:, members]])
        for k, member in enumerate(members):
            member_rates[names[member]] = solo_rates(stacked, len(singles) + k, list(range(len(singles))), s)
    return {
        **fitted,
        "verifiers": [group_id(g) for g in groups],
        "groups": groups,
        "merged": [g for g in groups if len(g) > 1],
        "merges": merges,
        "dependence": pairs,
        "member_rates": member_rates,
        "uses_labels": False,
    }


def group_votes(step: dict, kept: list[str], normalized: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The label model's vote columns for units with ``normalized`` scores of the ``kept`` verifiers."""
    return column_votes(normalized, thresholds, [[kept.index(n) for n in g] for g in step["groups"]])
