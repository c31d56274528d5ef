"""Fieller interval of PGR: a hand value, null when undefined, and 95% coverage at small gaps."""

import math

import numpy as np
import pytest
from scipy import stats

from w2s.metrics import interval_fields, pgr_interval, ratio_interval

N_ITEMS = 1000
N_RUNS = 1500


def test_ratio_interval_hand_value_with_a_constant_denominator():
    # denominator constant 2: the interval is mean(a) / 2 +- t_{0.975, 2} * sd(a) / sqrt(3) / 2
    low, high = ratio_interval(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]), 0.95)
    half = stats.t.ppf(0.975, 2) / math.sqrt(3) / 2
    assert low == pytest.approx(1 - half) and high == pytest.approx(1 + half)
    assert 4.302 < stats.t.ppf(0.975, 2) < 4.303


def test_ratio_interval_is_unbounded_when_the_denominator_is_not_significant():
    low, high = ratio_interval(np.array([1.0, 0.0, 1.0, 0.0]), np.array([1.0, -1.0, 0.0, 0.0]), 0.95)
    assert (low, high) == (-np.inf, np.inf)
    assert interval_fields(low, high) == {"low": None, "high": None, "unbounded": True}
    assert interval_fields(0.25, 0.5) == {"low": 0.25, "high": 0.5, "unbounded": False}
    with pytest.raises(ValueError, match="paired values"):
        ratio_interval(np.array([1.0]), np.array([1.0]), 0.95)


def test_pgr_interval_is_null_when_pgr_is_undefined():
    weak = np.array([1.0, 0.0, 1.0, 0.0])
    point, low, high = pgr_interval(weak, np.array([1.0, 1.0, 1.0, 0.0]), weak.copy(), 0.95, min_gap=0.01)
    assert np.isnan(point) and np.isnan(low) and np.isnan(high)


def _simulate(rng, gap: float, true_pgr: float, p_weak: float = 0.7):
    """Per-item correctness of N_RUNS runs: weak and ceiling nested on one latent, the student partly tied to it."""
    u = rng.random((N_RUNS, N_ITEMS))
    v = np.where(rng.random((N_RUNS, N_ITEMS)) < 0.7, u, rng.random((N_RUNS, N_ITEMS)))
    weak, ceiling = (u < p_weak).astype(float), (u < p_weak + gap).astype(float)
    student = (v < p_weak + true_pgr * gap).astype(float)
    return weak, student, ceiling


@pytest.mark.parametrize("gap", [0.012, 0.025, 0.05])
def test_pgr_interval_covers_the_true_pgr_at_small_gaps(gap):
    rng = np.random.default_rng(int(gap * 1000))
    true_pgr = 0.5
    weak, student, ceiling = _simulate(rng, gap, true_pgr)
    point, low, high = pgr_interval(weak, student, ceiling, 0.95, min_gap=0.0)
    # an undefined PGR has no interval and counts as a miss
    covered = np.isfinite(point) & (low <= true_pgr) & (true_pgr <= high)
    assert covered.mean() >= 0.93


def test_reasoning_gap_recovered_interval_covers_at_small_gaps():
    # pass@1 per problem is a share of 4 samples; the reasoning track hands those shares to pgr_interval
    rng = np.random.default_rng(7)
    gap, true_rgr = 0.02, 0.4
    weak, student, ceiling = (np.mean(draws, axis=-1) for draws in zip(*(
        _simulate(rng, gap, true_rgr) for _ in range(4))))
    point, low, high = pgr_interval(weak, student, ceiling, 0.95, min_gap=0.0)
    covered = np.isfinite(point) & (low <= true_rgr) & (true_rgr <= high)
    assert covered.mean() >= 0.93
