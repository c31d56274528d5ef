"""Per-verifier score maps fitted without labels: normalizers to [0, 1], vote thresholds, degeneracy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .settings import NORMALIZERS

EPS = 1e-6


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


def estimate_positive_rate(normalized: np.ndarray, threshold: float) -> float:
    """Label-free estimate of the share of positive units: the median over verifiers of the share
    each votes positive at ``threshold``. The median keeps one badly calibrated verifier from
    moving it. ``normalized`` is (units, verifiers), NaN = abstain."""
    rates = [np.mean(column[~np.isnan(column)] >= threshold) for column in normalized.T if (~np.isnan(column)).any()]
    if not rates:
        raise ValueError("cannot estimate a positive rate: no verifier has any score")
    return float(np.clip(np.median(rates), EPS, 1.0 - EPS))


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


def normalized_matrix(raw: np.ndarray, verifiers: Sequence[str], normalizers: Mapping[str, dict]) -> np.ndarray:
    out = np.empty_like(raw)
    for j, v in enumerate(verifiers):
        out[:, j] = apply_normalizer(normalizers[v], raw[:, j])
    return out


def vote_matrix(normalized: np.ndarray, verifiers: Sequence[str], thresholds: Mapping[str, float]) -> np.ndarray:
    out = np.empty_like(normalized)
    for j, v in enumerate(verifiers):
        out[:, j] = binarize(normalized[:, j], thresholds[v])
    return out


def check_unit_interval(normalized: np.ndarray, aggregator: str) -> None:
    finite = normalized[~np.isnan(normalized)]
    if len(finite) and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(
            f"aggregator {aggregator!r} averages scores and needs them in [0, 1]; raw scores span "
            f"[{finite.min():.4g}, {finite.max():.4g}]: set normalize to minmax or quantile"
        )
