"""Fieller interval of PGR: a hand value, null when undefined, and 95% coverage at small gaps."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from w2s.metrics import (
    NO_INTERVAL,
    describe_interval,
    fieller_set,
    interval_fields,
    pgr_fieller_set,
    pgr_of_seed_means,
    ratio_interval,
)

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


def test_describe_interval_writes_each_kind_with_the_requested_digits():
    assert describe_interval(interval_fields("bounded", 0.25, 0.5)) == "[0.25, 0.50]"
    assert describe_interval(interval_fields("bounded", -0.1234, 1.5), digits=3) == "[-0.123, 1.500]"
    assert describe_interval(interval_fields("two_rays", -3.36, 1.51), digits=1) == "(-inf, -3.4] U [1.5, inf)"
    assert describe_interval(NO_INTERVAL) == "n/a"
    assert describe_interval({}) == "n/a"


def test_describe_interval_writes_a_missing_end_as_infinity():
    assert describe_interval({"kind": "bounded", "low": None, "high": 0.5}) == "[-inf, 0.50]"
    assert describe_interval({"kind": "bounded", "low": 0.5, "high": None}) == "[0.50, inf]"
    # a two-ray set with an infinite root is a single ray
    assert describe_interval(interval_fields("two_rays", -np.inf, 1.5)) == "(-inf, -inf] U [1.50, inf)"
    assert describe_interval(interval_fields("two_rays", -1.5, np.inf)) == "(-inf, -1.50] U [inf, inf)"


def _fieller_bounds_by_hand(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    """Roots of mean(a - theta b)^2 = t^2 var(a - theta b) / n, a quadratic in theta."""
    n = len(a)
    (s_aa, s_ab), (_, s_bb) = np.cov(a, b, ddof=1)
    q = stats.t.ppf((1 + confidence) / 2, n - 1) ** 2 / n
    roots = np.roots([b.mean() ** 2 - q * s_bb, -2 * (a.mean() * b.mean() - q * s_ab), a.mean() ** 2 - q * s_aa])
    return float(roots.min()), float(roots.max())


# Per-item scores with numerator student - weak = (0.2, 0.3, 0.5, 0.6) and a correlated denominator
# ceiling - weak = (0.2, 0.25, 0.3, 0.35): PGR = 0.4 / 0.275 = 16 / 11, mean gap 0.275.
WEAK = np.array([0.1, 0.2, 0.1, 0.2])
STUDENT = np.array([0.3, 0.5, 0.6, 0.8])
CEILING = np.array([0.3, 0.45, 0.4, 0.55])


def test_interval_fields_write_an_infinite_root_as_none():
    fields = interval_fields("two_rays", -np.inf, 1.5)
    assert fields["ray_low"] is None and fields["ray_high"] == 1.5
    fields = interval_fields("bounded", 0.25, np.inf)
    assert fields["low"] == 0.25 and fields["high"] is None


def test_fieller_set_is_zero_wide_when_the_numerator_is_zero_on_every_item():
    # student equals weak on every item: const = half_lin = 0, so both roots are 0 (and no 0 / 0 warning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = fieller_set(np.zeros(4), np.array([1.0, 1.0, 2.0, 2.0]), 0.95)
    assert str(found.kind) == "bounded" and float(found.low) == 0.0 and float(found.high) == 0.0
    # and with a gap that is not significant: mean(d) = -theta mean(b) is within t standard errors for every theta
    found = fieller_set(np.zeros(4), np.array([1.0, -1.0, 0.0, 0.0]), 0.95)
    assert str(found.kind) == "everything" and np.isnan(found.low) and np.isnan(found.high)


def test_fieller_set_is_symmetric_for_a_zero_mean_numerator_uncorrelated_with_the_denominator():
    # a = (1, -1, 1, -1): mean 0, s_aa = 4/3, s_ab = 0, so half_lin = 0 and the roots are +-sqrt(q s_aa / quad)
    a, b = np.array([1.0, -1.0, 1.0, -1.0]), np.array([1.0, 1.0, 2.0, 2.0])
    q = stats.t.ppf(0.975, 3) ** 2 / 4
    quad = 1.5**2 - q * 1 / 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = fieller_set(a, b, 0.95)
    assert str(found.kind) == "bounded"
    assert float(found.high) == pytest.approx(math.sqrt(q * 4 / 3 / quad)) and float(found.low) == -float(found.high)


@pytest.mark.parametrize("a", [(0.0, 1.0), (0.0, 0.1), (1.0, 0.0)])
def test_fieller_set_is_a_single_ray_when_the_quadratic_term_vanishes(a):
    # two pairs at 90%: t_{0.95, 1} = tan(0.45 pi), and b = (1, y) with (1 + y) = t (1 - y) makes
    # mean(b)^2 = q s_bb, so quad = 0 and the set is the half-line {theta : 2 half_lin theta >= const}
    a, b = np.array(a), np.array([1.0, 0.7265425280053607])
    q = stats.t.ppf(0.95, 1) ** 2 / 2
    s_ab = (a[0] - a.mean()) * (b[0] - b.mean()) * 2
    half_lin = a.mean() * b.mean() - q * s_ab
    const = a.mean() ** 2 - q * (a[0] - a.mean()) ** 2 * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = fieller_set(a, b, 0.9)
    assert str(found.kind) == "two_rays"
    end = float(found.high) if half_lin > 0 else float(found.low)
    assert end == pytest.approx(const / (2 * half_lin), rel=1e-6)
    thetas = np.linspace(-40.0, 40.0, 8001)
    away = np.abs(thetas - end) > 0.02
    expected = thetas >= end if half_lin > 0 else thetas <= end
    assert _in_fieller_set_by_grid(a, b, thetas, 0.9)[away].tolist() == expected[away].tolist()
    assert _set_membership(found, thetas)[away].tolist() == expected[away].tolist()


def test_pgr_fieller_set_of_per_item_scores():
    expected_low, expected_high = _fieller_bounds_by_hand(STUDENT - WEAK, CEILING - WEAK, 0.95)
    found = pgr_fieller_set(WEAK, STUDENT, CEILING, 0.95)
    assert str(found.kind) == "bounded"
    assert float(found.low) == pytest.approx(expected_low) and float(found.high) == pytest.approx(expected_high)
    # boolean correctness, constant denominator 1: the t-interval of the student's accuracy
    found = pgr_fieller_set(np.zeros(4, dtype=bool), np.array([True, True, False, True]), np.ones(4, dtype=bool), 0.95)
    half = stats.t.ppf(0.975, 3) * 0.5 / 2
    assert float(found.low) == pytest.approx(0.75 - half) and float(found.high) == pytest.approx(0.75 + half)


def test_pgr_of_seed_means_hand_value_and_its_fieller_set():
    expected_low, expected_high = _fieller_bounds_by_hand(STUDENT - WEAK, CEILING - WEAK, 0.95)
    value, fields = pgr_of_seed_means(WEAK, STUDENT, CEILING, 0.95)
    assert value == pytest.approx(16 / 11)
    assert fields["kind"] == "bounded" and fields["unbounded"] is False
    assert fields["low"] == pytest.approx(expected_low) and fields["high"] == pytest.approx(expected_high)


def test_pgr_of_seed_means_with_two_seeds_has_a_set():
    # a = (0.2, 0.3), b = (0.2, 0.25); at 50% t_{0.75, 1} = 1, q = 1/2, quad = 0.225^2 - s_bb / 2 > 0
    weak, student, ceiling = np.array([0.1, 0.2]), np.array([0.3, 0.5]), np.array([0.3, 0.45])
    expected_low, expected_high = _fieller_bounds_by_hand(student - weak, ceiling - weak, 0.5)
    value, fields = pgr_of_seed_means(weak, student, ceiling, 0.5)
    assert value == pytest.approx(0.25 / 0.225)
    assert fields["kind"] == "bounded"
    assert fields["low"] == pytest.approx(expected_low) and fields["high"] == pytest.approx(expected_high)


def test_pgr_of_seed_means_has_no_set_when_undefined_or_with_one_seed():
    assert pgr_of_seed_means(WEAK, STUDENT, CEILING, 0.95, min_gap=0.3) == (None, NO_INTERVAL)
    assert pgr_of_seed_means(WEAK, STUDENT, WEAK, 0.95) == (None, NO_INTERVAL)
    value, fields = pgr_of_seed_means(WEAK[:1], STUDENT[:1], CEILING[:1], 0.95)
    assert value == pytest.approx(0.2 / 0.2) and fields == NO_INTERVAL


def test_single_precision_scores_give_the_double_precision_set_and_pgr():
    a32, b32 = (STUDENT - WEAK).astype(np.float32), (CEILING - WEAK).astype(np.float32)
    low, high = _fieller_bounds_by_hand(a32.astype(np.float64), b32.astype(np.float64), 0.95)
    for found in (fieller_set(a32, b32.astype(np.float64), 0.95), fieller_set(a32.astype(np.float64), b32, 0.95)):
        assert float(found.low) == pytest.approx(low, rel=1e-12)
        assert float(found.high) == pytest.approx(high, rel=1e-12)
    scores32 = [x.astype(np.float32) for x in (WEAK, STUDENT, CEILING)]
    w, s, c = (x.astype(np.float64).mean() for x in scores32)
    value, _ = pgr_of_seed_means(*scores32, 0.95)
    assert float(value) == pytest.approx((s - w) / (c - w), rel=1e-12)
