"""Evaluation metrics and intervals. Each is a small pure numpy function with a hand-checked unit test.

Conventions: ``probs`` is an (n, k) array of class probabilities, ``labels`` an (n,) array of gold
class indices. A metric that is undefined on its input (no positives for AUROC, an empty subset)
returns ``None`` rather than a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Upper bound on example indices drawn at once by the bootstrap (memory, not results).
_MAX_DRAWS_PER_CHUNK = 2_000_000


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if len(predictions) != len(labels) or len(labels) == 0:
        raise ValueError(f"need equal, non-zero lengths; got {len(predictions)} and {len(labels)}")
    return float(np.mean(predictions == labels))


def accuracy_standard_error(acc: float, n: int) -> float:
    """Binomial standard error sqrt(p(1-p)/n) of an accuracy measured on n examples."""
    return math.sqrt(acc * (1.0 - acc) / n)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of examples where two models predict the same class."""
    return accuracy(a, b)


def subset_accuracy(predictions: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> float | None:
    """Accuracy on the examples where ``mask`` is true; None when there are none."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    return accuracy(np.asarray(predictions)[mask], np.asarray(labels)[mask])


def conditional_agreement(
    student: np.ndarray, weak: np.ndarray, labels: np.ndarray
) -> tuple[float | None, float | None]:
    """Student-weak agreement on the items the weak label got right, and on those it got wrong.

    Agreement on weak-wrong items is how often the student imitates the teacher's errors.
    """
    weak_correct = np.asarray(weak) == np.asarray(labels)
    return subset_accuracy(student, weak, weak_correct), subset_accuracy(student, weak, ~weak_correct)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    starts = ends - counts + 1
    return ((starts + ends) / 2.0)[inverse]


def binary_auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """P(score of a random positive > score of a random negative), ties counting 1/2 (Mann-Whitney U)."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = _average_ranks(scores)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auroc(probs: np.ndarray, labels: np.ndarray) -> float | None:
    """Binary: AUROC of the positive-class probability. Multiclass: macro one-vs-rest mean.

    Classes absent from ``labels`` (or present everywhere) have no AUROC and are left out of the mean.
    """
    probs, labels = np.asarray(probs), np.asarray(labels)
    if probs.shape[1] == 2:
        return binary_auroc(probs[:, 1], labels == 1)
    per_class = [binary_auroc(probs[:, k], labels == k) for k in range(probs.shape[1])]
    defined = [value for value in per_class if value is not None]
    return float(np.mean(defined)) if defined else None


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean over examples of sum_k (p_k - y_k)^2 (y one-hot), for every number of classes.

    One definition for all k (Brier 1950), in [0, 2]: for two classes it is twice sklearn's
    ``brier_score_loss``, which scores the positive class only.
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    one_hot = np.eye(probs.shape[1])[labels]
    return float(np.mean(np.sum((probs - one_hot) ** 2, axis=1)))


def confidence_bin(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Index of the equal-width bin (lo, hi] of [0, 1] holding each confidence (0 goes to the first bin)."""
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.searchsorted(inner_edges, np.asarray(confidence, dtype=np.float64), side="left")


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> dict[str, list]:
    """Per equal-width confidence bin: edges, example count, mean confidence and accuracy (None if empty)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    index = confidence_bin(confidence, n_bins)
    counts = np.bincount(index, minlength=n_bins)
    conf_sums = np.bincount(index, weights=confidence, minlength=n_bins)
    correct_sums = np.bincount(index, weights=correct, minlength=n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {
        "lower": edges[:-1].tolist(),
        "upper": edges[1:].tolist(),
        "count": counts.tolist(),
        "mean_confidence": [float(s / c) if c else None for s, c in zip(conf_sums, counts)],
        "accuracy": [float(s / c) if c else None for s, c in zip(correct_sums, counts)],
    }


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> float:
    """ECE = sum over bins b of (n_b / n) * |accuracy_b - mean confidence_b|, equal-width bins on [0, 1]."""
    bins = reliability_bins(confidence, correct, n_bins)
    n = sum(bins["count"])
    if n == 0:
        raise ValueError("ECE of zero examples")
    return float(
        sum(
            count / n * abs(acc - conf)
            for count, acc, conf in zip(bins["count"], bins["accuracy"], bins["mean_confidence"])
            if count
        )
    )


def performance_gap_recovered(
    weak: float, student: float, ceiling: float, min_gap: float = 0.0
) -> tuple[float | None, str]:
    """PGR = (student - weak) / (ceiling - weak), or (None, reason) when the gap is too small to divide by."""
    gap = ceiling - weak
    if gap < min_gap or gap <= 0:
        return None, f"undefined: ceiling - weak = {gap:.4f} is below the minimum gap {min_gap:.4f}"
    return (student - weak) / gap, "ok"


def pgr_values(weak: np.ndarray, student: np.ndarray, ceiling: np.ndarray, min_gap: float = 0.0) -> np.ndarray:
    """Elementwise PGR, NaN where :func:`performance_gap_recovered` would call it undefined."""
    weak, student, ceiling = (np.asarray(a, dtype=np.float64) for a in (weak, student, ceiling))
    gap = ceiling - weak
    defined = (gap >= min_gap) & (gap > 0)
    return np.where(defined, (student - weak) / np.where(defined, gap, 1.0), np.nan)


# What a Fieller confidence set looks like: [low, high]; (-inf, low] U [high, inf); the whole line.
BOUNDED, TWO_RAYS, EVERYTHING = "bounded", "two_rays", "everything"
FIELLER_KINDS = (BOUNDED, TWO_RAYS, EVERYTHING)


@dataclass(frozen=True)
class FiellerSet:
    """A Fieller confidence set, elementwise over batch axes: ``kind`` (one of :data:`FIELLER_KINDS`)
    and the two roots ``low`` <= ``high`` of its boundary (NaN for ``everything``)."""

    kind: np.ndarray
    low: np.ndarray
    high: np.ndarray


def fieller_set(numerator: np.ndarray, denominator: np.ndarray, confidence: float) -> FiellerSet:
    """Fieller confidence set of mean(numerator) / mean(denominator), paired over the last axis.

    The set is every theta for which the mean of d_i = numerator_i - theta * denominator_i is within
    t_{(1+c)/2, n-1} standard errors of 0: quad * theta^2 - 2 * half_lin * theta + const <= 0, solved
    exactly. Unlike a bootstrap or delta-method interval it keeps its coverage when the denominator
    is small. When the mean denominator is significantly non-zero (quad > 0) the set is the bounded
    interval between the roots. Otherwise the parabola opens downwards and the set is the line less
    the open interval between the roots (two rays, which exclude every value between them), or the
    whole line when there are no real roots. Leading axes are batch axes.
    """
    a, b = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    n = a.shape[-1]
    if n < 2 or a.shape != b.shape:
        raise ValueError(f"need two or more paired values of equal shape; got {a.shape} and {b.shape}")
    a_mean, b_mean = a.mean(axis=-1), b.mean(axis=-1)
    a_dev, b_dev = a - a_mean[..., None], b - b_mean[..., None]
    s_aa, s_bb, s_ab = ((x * y).sum(axis=-1) / (n - 1) for x, y in ((a_dev, a_dev), (b_dev, b_dev), (a_dev, b_dev)))
    q = stats.t.ppf((1.0 + confidence) / 2.0, n - 1) ** 2 / n
    quad, half_lin, const = b_mean**2 - q * s_bb, a_mean * b_mean - q * s_ab, a_mean**2 - q * s_aa
    discriminant = half_lin**2 - quad * const
    bounded = quad > 0
    # With quad > 0 the point estimate a_mean / b_mean satisfies the inequality, so the roots are real.
    real_roots = bounded | (discriminant > 0)
    root = np.sqrt(np.maximum(discriminant, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        first, second = (half_lin - root) / quad, (half_lin + root) / quad
        # quad == 0 (measure zero): a single ray, {theta : 2 * half_lin * theta >= const}
        ray_end = const / (2.0 * half_lin)
    first = np.where(quad == 0, np.where(half_lin > 0, -np.inf, ray_end), first)
    second = np.where(quad == 0, np.where(half_lin > 0, ray_end, np.inf), second)
    kind = np.where(bounded, BOUNDED, np.where(real_roots, TWO_RAYS, EVERYTHING))
    low, high = np.minimum(first, second), np.maximum(first, second)
    return FiellerSet(kind, np.where(real_roots, low, np.nan), np.where(real_roots, high, np.nan))


def ratio_interval(numerator: np.ndarray, denominator: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The ends of :func:`fieller_set` where it is a bounded interval, (-inf, inf) where it is not:
    the smallest interval that contains the set."""
    found = fieller_set(numerator, denominator, confidence)
    bounded = found.kind == BOUNDED
    return np.where(bounded, found.low, -np.inf), np.where(bounded, found.high, np.inf)


def pgr_fieller_set(weak: np.ndarray, student: np.ndarray, ceiling: np.ndarray, confidence: float) -> FiellerSet:
    """The Fieller set of PGR of per-item (or per-seed) scores: numerator student - weak, denominator
    ceiling - weak, paired over the last axis."""
    weak, student, ceiling = (np.asarray(x, dtype=np.float64) for x in (weak, student, ceiling))
    return fieller_set(student - weak, ceiling - weak, confidence)


def interval_fields(kind: str, low: float, high: float) -> dict[str, float | bool | str | None]:
    """A Fieller set as JSON-safe fields. ``low``/``high`` are the interval's ends when the set is
    bounded (None otherwise); ``ray_low``/``ray_high`` the roots of a two-ray set
    (-inf, ray_low] U [ray_high, inf) (None otherwise; an infinite root is None too);
    ``unbounded`` whether the set is not a bounded interval."""

    def end(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    kind = str(kind)
    if kind not in FIELLER_KINDS:
        raise ValueError(f"unknown Fieller set kind {kind!r}; expected one of {FIELLER_KINDS}")
    bounded, rays = kind == BOUNDED, kind == TWO_RAYS
    return {
        "kind": kind,
        "low": end(low) if bounded else None,
        "high": end(high) if bounded else None,
        "ray_low": end(low) if rays else None,
        "ray_high": end(high) if rays else None,
        "unbounded": not bounded,
    }


NO_INTERVAL = {"kind": None, "low": None, "high": None, "ray_low": None, "ray_high": None, "unbounded": False}


def pgr_of_seed_means(
    weak: np.ndarray, student: np.ndarray, ceiling: np.ndarray, confidence: float, min_gap: float = 0.0
) -> tuple[float | None, dict]:
    """PGR of the means of per-seed scores (paired over seeds) and its Fieller set over seeds as
    :func:`interval_fields`; (None, no set) when the PGR is undefined, no set with fewer than two seeds."""
    weak, student, ceiling = (np.asarray(x, dtype=np.float64) for x in (weak, student, ceiling))
    value, _ = performance_gap_recovered(weak.mean(), student.mean(), ceiling.mean(), min_gap)
    if value is None or len(weak) < 2:
        return value, NO_INTERVAL
    found = pgr_fieller_set(weak, student, ceiling, confidence)
    return value, interval_fields(found.kind, float(found.low), float(found.high))


def prefixed_interval(prefix: str, fields: dict) -> dict:
    """:func:`w2s.metrics.interval_fields` as flat metric columns ``<prefix>_low``, ``<prefix>_kind``, ..."""
    return {f"{prefix}_{name}": value for name, value in fields.items()}


def describe_interval(fields: dict, digits: int = 2) -> str:
    """A set from :func:`interval_fields` as text: [a, b], (-inf, a] U [b, inf), (-inf, inf)."""

    def number(value: float | None, missing: str) -> str:
        return missing if value is None else f"{value:.{digits}f}"

    kind = fields.get("kind")
    if kind == BOUNDED:
        return f"[{number(fields['low'], '-inf')}, {number(fields['high'], 'inf')}]"
    if kind == TWO_RAYS:
        return f"(-inf, {number(fields.get('ray_low'), '-inf')}] U [{number(fields.get('ray_high'), 'inf')}, inf)"
    if kind == EVERYTHING:
        return "(-inf, inf)"
    return "n/a"


def bootstrap_accuracies(correct: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Accuracies of m models on n_boot paired resamples of their n examples.

    ``correct`` is (m, n), 1 where model i got example j right. Every resample draws one set of
    example indices (with replacement) and scores all models on it, so differences between models
    are not blurred by independent resampling. Returns (n_boot, m).
    """
    correct = np.asarray(correct, dtype=np.float64)
    m, n = correct.shape
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, m))
    per_chunk = max(1, _MAX_DRAWS_PER_CHUNK // n)
    for start in range(0, n_boot, per_chunk):
        stop = min(n_boot, start + per_chunk)
        indices = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = correct[:, indices].mean(axis=2).T
    return out


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """Central ``confidence`` percentile interval of the finite values; (None, None) if there are none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None, None
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class BootstrapInterval:
    low: float | None
    high: float | None
    undefined_fraction: float


def bootstrap_pgr(
    weak_correct: np.ndarray,
    student_correct: np.ndarray,
    ceiling_correct: np.ndarray,
    n_boot: int,
    confidence: float,
    seed: int,
    min_gap: float = 0.0,
) -> BootstrapInterval:
    """Paired percentile bootstrap of PGR over test examples (the three models scored on the same draws).

    Resamples where PGR is undefined (gap below ``min_gap``) are left out of the percentiles and
    counted in ``undefined_fraction``: how fragile the point estimate's definedness is. The
    percentile interval under-covers at small gaps, so the reported interval is
    :func:`pgr_fieller_set`'s; this one serves the undefined share.
    """
    accs = bootstrap_accuracies(np.vstack([weak_correct, student_correct, ceiling_correct]), n_boot, seed)
    pgr = pgr_values(accs[:, 0], accs[:, 1], accs[:, 2], min_gap)
    low, high = percentile_interval(pgr, confidence)
    return BootstrapInterval(low, high, float(np.mean(np.isnan(pgr))))


def mean_t_interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None, float | None]:
    """Mean of the finite values and its t-interval mean +- t_{(1+c)/2, m-1} * sd / sqrt(m).

    (None, None, None) without values; the interval is (None, None) with a single value.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None, None, None
    mean = float(values.mean())
    if len(values) < 2:
        return mean, None, None
    half = stats.t.ppf((1.0 + confidence) / 2.0, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half
