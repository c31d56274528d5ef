"""Fieller interval of PGR: a hand value, null when undefined, and 95% coverage at small gaps."""

import math

import numpy as np
import pytest
from scipy import stats

from w2s.metrics import describe_interval, fieller_set, interval_fields, ratio_interval

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
    with pytest.raises(ValueError, match="paired values"):
        ratio_interval(np.array([1.0]), np.array([1.0]), 0.95)


def test_interval_fields_say_the_kind_and_both_roots():
    assert interval_fields("bounded", 0.25, 0.5) == {
        "kind": "bounded",
        "low": 0.25,
        "high": 0.5,
        "ray_low": None,
        "ray_high": None,
        "unbounded": False,
    }
    assert interval_fields("two_rays", -3.36, 1.51) == {
        "kind": "two_rays",
        "low": None,
        "high": None,
        "ray_low": -3.36,
        "ray_high": 1.51,
        "unbounded": True,
    }
    assert interval_fields("everything", np.nan, np.nan)["unbounded"] is True
    assert describe_interval(interval_fields("two_rays", -3.36, 1.51)) == "(-inf, -3.36] U [1.51, inf)"
    assert describe_interval(interval_fields("everything", np.nan, np.nan)) == "(-inf, inf)"
    with pytest.raises(ValueError, match="kind"):
        interval_fields("half_line", 0.0, 1.0)


def _in_fieller_set_by_grid(a: np.ndarray, b: np.ndarray, thetas: np.ndarray, confidence: float) -> np.ndarray:
    """The definition, checked theta by theta: |mean(a - theta b)| <= t * sd(a - theta b) / sqrt(n)."""
    n = len(a)
    d = a[None, :] - thetas[:, None] * b[None, :]
    t = stats.t.ppf((1 + confidence) / 2, n - 1)
    return np.abs(d.mean(axis=1)) <= t * d.std(axis=1, ddof=1) / math.sqrt(n)


def _set_membership(found, thetas: np.ndarray) -> np.ndarray:
    kind, low, high = str(found.kind), float(found.low), float(found.high)
    if kind == "bounded":
        return (thetas >= low) & (thetas <= high)
    if kind == "two_rays":
        return (thetas <= low) | (thetas >= high)
    return np.ones_like(thetas, dtype=bool)


def _correlated_items(rng, n: int, p_weak: float, p_student: float, p_ceiling: float):
    """Per-item correctness of three models sharing a latent difficulty (correlated numerator and denominator)."""
    u = rng.random(n)
    v = np.where(rng.random(n) < 0.6, u, rng.random(n))
    w = np.where(rng.random(n) < 0.5, u, rng.random(n))
    return (u < p_weak).astype(float), (v < p_student).astype(float), (w < p_ceiling).astype(float)


@pytest.mark.parametrize(
    "seed, p_student, p_ceiling, kind",
    [
        (0, 0.70, 0.75, "bounded"),  # significant gap: a bounded interval
        (3, 0.70, 0.63, "two_rays"),  # small gap, student well above weak: 0 and 1 both excluded
        (0, 0.61, 0.605, "everything"),  # nothing significant: the whole line
    ],
)
def test_fieller_set_equals_a_grid_search_over_theta(seed, p_student, p_ceiling, kind):
    rng = np.random.default_rng(seed)
    weak, student, ceiling = _correlated_items(rng, 200, 0.60, p_student, p_ceiling)
    a, b = student - weak, ceiling - weak
    assert abs(np.corrcoef(a, b)[0, 1]) > 0.1  # the covariance term matters here
    found = fieller_set(a, b, 0.95)
    assert str(found.kind) == kind
    thetas = np.linspace(-40.0, 40.0, 16001)
    by_grid = _in_fieller_set_by_grid(a, b, thetas, 0.95)
    by_set = _set_membership(found, thetas)
    step = thetas[1] - thetas[0]
    near_a_root = np.zeros_like(thetas, dtype=bool)
    for root in (float(found.low), float(found.high)):
        if np.isfinite(root):
            near_a_root |= np.abs(thetas - root) <= step
    assert by_grid[~near_a_root].tolist() == by_set[~near_a_root].tolist()
    if kind == "two_rays":
        assert not by_grid[np.abs(thetas) < 1e-9].any() and not by_grid[np.abs(thetas - 1) < step / 2].any()


def test_fieller_set_hand_value_with_a_correlated_denominator():
    # a = (2, 3, 5, 6), b = (2, 2.5, 3, 3.5): means 4 and 2.75; s_aa = 10/3, s_bb = 5/12, s_ab = 7/6
    a, b = np.array([2.0, 3.0, 5.0, 6.0]), np.array([2.0, 2.5, 3.0, 3.5])
    q = stats.t.ppf(0.975, 3) ** 2 / 4
    quad, half_lin, const = 2.75**2 - q * 5 / 12, 4 * 2.75 - q * 7 / 6, 4**2 - q * 10 / 3
    root = math.sqrt(half_lin**2 - quad * const)
    found = fieller_set(a, b, 0.95)
    assert str(found.kind) == "bounded"
    assert float(found.low) == pytest.approx((half_lin - root) / quad)
    assert float(found.high) == pytest.approx((half_lin + root) / quad)
    # at each end, mean(a - theta b) is exactly t standard errors from 0
    for theta in (float(found.low), float(found.high)):
        d = a - theta * b
        assert abs(d.mean()) == pytest.approx(stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2)


def test_pgr_is_defined_exactly_at_the_minimum_gap():
    from w2s.metrics import performance_gap_recovered, pgr_values

    # gap 0.5 exactly (binary fractions): defined at min_gap 0.5, undefined just above it
    assert performance_gap_recovered(0.25, 0.5, 0.75, min_gap=0.5)[0] == 0.5
    assert performance_gap_recovered(0.25, 0.5, 0.75, min_gap=0.5000001)[0] is None
    assert np.isnan(pgr_values(np.array([0.25]), np.array([0.5]), np.array([0.75]), 0.5000001)[0])
    assert pgr_values(np.array([0.25]), np.array([0.5]), np.array([0.75]), 0.5)[0] == 0.5
    assert performance_gap_recovered(0.5, 0.5, 0.5, min_gap=0.0)[0] is None
