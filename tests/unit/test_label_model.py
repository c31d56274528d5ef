"""The binary Dawid-Skene label model (w2s.verifiers.label_model) against hand-worked values and a
plain-numpy reference written from its documentation: the posterior, the M-step, the objective, the
EM loop with its SQUAREM acceleration, the merged vote columns and the dependence checks."""

from __future__ import annotations

import re

import numpy as np
import pytest

from w2s.verifiers import label_model as lm
from w2s.verifiers.normalize import EPS
from w2s.verifiers.settings import DEFAULT_SETTINGS

SETTINGS = {"max_iter": 200, "tol": 1e-6, "smoothing": 1.0, "dependency_margin": 0.05, "merge_dependent": True}


# --------------------------------------------------------------------------- reference formulas


def likelihoods(votes, tpr, fpr):
    """P(votes | positive), P(votes | negative) per unit; an abstain is a factor 1."""
    observed = ~np.isnan(votes)
    v = np.nan_to_num(votes)
    pos = np.where(observed, tpr**v * (1 - tpr) ** (1 - v), 1.0).prod(axis=1)
    neg = np.where(observed, fpr**v * (1 - fpr) ** (1 - v), 1.0).prod(axis=1)
    return pos, neg


def clipped(x):
    return np.clip(np.asarray(x, dtype=np.float64), EPS, 1 - EPS)


def reference_posterior(votes, tpr, fpr, prior):
    pos, neg = likelihoods(votes, clipped(tpr), clipped(fpr))
    prior = float(clipped(prior))
    return prior * pos / (prior * pos + (1 - prior) * neg)


def reference_objective(votes, tpr, fpr, prior, smoothing):
    tpr, fpr, prior = clipped(tpr), clipped(fpr), float(clipped(prior))
    pos, neg = likelihoods(votes, tpr, fpr)
    penalty = sum(np.log(r).sum() + np.log(1 - r).sum() for r in (tpr, fpr)) + np.log(prior) + np.log(1 - prior)
    return float(np.log(prior * pos + (1 - prior) * neg).sum() + smoothing * penalty)


def reference_m_step(votes, q, smoothing):
    m = votes.shape[1]
    tpr, fpr = np.empty(m), np.empty(m)
    for j in range(m):
        seen = ~np.isnan(votes[:, j])
        v, qj = votes[seen, j], q[seen]
        tpr[j] = (np.sum(qj * v) + smoothing) / (np.sum(qj) + 2 * smoothing)
        fpr[j] = (np.sum((1 - qj) * v) + smoothing) / (np.sum(1 - qj) + 2 * smoothing)
    return tpr, fpr, (q.sum() + smoothing) / (len(q) + 2 * smoothing)


def reference_em(votes, theta, smoothing):
    m = votes.shape[1]
    q = reference_posterior(votes, theta[:m], theta[m : 2 * m], theta[-1])
    tpr, fpr, prior = reference_m_step(votes, q, smoothing)
    return np.concatenate([tpr, fpr, [prior]])


def logit(p):
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def reference_cycle(votes, theta, first, smoothing):
    """SQUAREM S3 from ``theta`` whose EM step is ``first``: a second EM step, a jump of step length
    max(|r| / |v|, 1) along the two in logit space, one EM step; kept only if it scores at least the
    two plain steps. Returns the parameters and the EM steps taken beyond ``first``."""
    m = votes.shape[1]
    second = reference_em(votes, first, smoothing)
    r = logit(first) - logit(theta)
    v = logit(second) - 2 * logit(first) + logit(theta)
    if not np.any(v):
        return second, 1
    length = max(np.linalg.norm(r) / np.linalg.norm(v), 1.0)
    jumped = 1 / (1 + np.exp(-(logit(theta) + 2 * length * r + length**2 * v)))
    stabilized = reference_em(votes, jumped, smoothing)

    def objective(t):
        return reference_objective(votes, t[:m], t[m : 2 * m], t[-1], smoothing)

    return (second if objective(stabilized) < objective(second) else stabilized), 2


def reference_fit(votes, max_iter, tol, smoothing, accelerate):
    """EM from the majority-vote posterior, a SQUAREM cycle after each EM step while the budget allows
    one. Returns the parameters, the EM steps taken, whether it converged and the last step's move."""
    m = votes.shape[1]
    observed = ~np.isnan(votes)
    share = np.where(observed, votes, 0).sum(axis=1) / np.maximum(observed.sum(axis=1), 1)
    tpr, fpr, prior = reference_m_step(votes, np.where(observed.any(axis=1), share, 0.5), smoothing)
    theta = np.concatenate([tpr, fpr, [prior]])
    steps, change, converged = 1, np.abs(theta - 0.5).max(), False
    while steps < max_iter:
        first = reference_em(votes, theta, smoothing)
        steps += 1
        change = np.abs(first - theta).max()
        if change < tol:
            theta, converged = first, True
            break
        if accelerate and steps + 2 <= max_iter:
            theta, extra = reference_cycle(votes, theta, first, smoothing)
            steps += extra
        else:
            theta = first
    return theta[:m], theta[m : 2 * m], theta[-1], steps, converged, change


def random_votes(seed, n=60, rates=((0.9, 0.2), (0.7, 0.3), (0.8, 0.4), (0.6, 0.1)), abstain=0.25, prior=0.4):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prior
    columns = []
    for tpr, fpr in rates:
        v = np.where(y, rng.random(n) < tpr, rng.random(n) < fpr).astype(np.float64)
        v[rng.random(n) < abstain] = np.nan
        columns.append(v)
    return np.column_stack(columns)


# --------------------------------------------------------------------------- posterior, M-step, objective


def test_posterior_by_hand_with_unequal_rates_and_abstains():
    votes = np.array([[1, 0, 1], [0, 0, np.nan], [np.nan, 1, 0], [np.nan, np.nan, np.nan], [0, 1, 1]], dtype=float)
    tpr, fpr, prior = [0.9, 0.6, 0.75], [0.2, 0.45, 0.3], 0.3
    # Unit 0: 0.3 * 0.9 * 0.4 * 0.75 = 0.081 against 0.7 * 0.2 * 0.55 * 0.3 = 0.0231.
    expected = reference_posterior(votes, np.array(tpr), np.array(fpr), prior)
    assert expected[0] == pytest.approx(0.081 / (0.081 + 0.0231))
    np.testing.assert_allclose(lm.label_model_posterior(votes, tpr, fpr, prior), expected, rtol=1e-12)
    assert lm.label_model_posterior(votes, tpr, fpr, prior)[3] == pytest.approx(prior)


def test_posterior_rates_are_clipped_in_double_precision():
    votes = np.array([[1.0, 0.0], [0.0, 1.0]])
    tpr, fpr = np.array([1.0, 0.63], dtype=np.float32), np.array([0.17, 0.0], dtype=np.float32)
    expected = reference_posterior(votes, tpr.astype(np.float64), fpr.astype(np.float64), 0.45)
    np.testing.assert_allclose(lm.label_model_posterior(votes, tpr, fpr, 0.45), expected, rtol=1e-12)


def test_posterior_clips_certain_rates_and_priors():
    # Two certain verifiers that disagree: at rates clipped to [EPS, 1 - EPS] their evidence cancels exactly.
    votes = np.array([[1.0, 0.0]])
    assert lm.label_model_posterior(votes, [1.0, 1.0], [0.0, 0.0], 0.3)[0] == pytest.approx(0.3, rel=1e-9)
    # One certain positive vote: odds (1 - EPS) / EPS times the prior odds.
    odds = (1 - EPS) / EPS * (0.3 / 0.7)
    assert lm.label_model_posterior(np.array([[1.0]]), [1.0], [0.0], 0.3)[0] == pytest.approx(odds / (1 + odds))
    odds = EPS / (1 - EPS) * (0.3 / 0.7)
    assert lm.label_model_posterior(np.array([[0.0]]), [1.0], [0.0], 0.3)[0] == pytest.approx(odds / (1 + odds))
    assert lm.label_model_posterior(np.array([[1.0]]), [0.0], [1.0], 0.3)[0] == pytest.approx(odds / (1 + odds))
    odds = (1 - EPS) / EPS * (0.3 / 0.7)
    assert lm.label_model_posterior(np.array([[0.0]]), [0.0], [1.0], 0.3)[0] == pytest.approx(odds / (1 + odds))
    nobody = np.array([[np.nan]])
    assert lm.label_model_posterior(nobody, [0.8], [0.2], 0.0)[0] == pytest.approx(EPS, rel=1e-6)
    assert lm.label_model_posterior(nobody, [0.8], [0.2], 1.0)[0] == pytest.approx(1 - EPS, rel=1e-12)


def test_m_step_by_hand_with_abstains_and_fractional_smoothing():
    votes = np.array([[1, 0], [0, np.nan], [1, 1], [np.nan, 1]], dtype=float)
    q = np.array([0.9, 0.2, 0.6, 0.3])
    tpr, fpr, prior = lm.m_step(votes, q, 0.5)
    # Column 0 votes on units 0-2: tpr = (0.9 + 0.6 + 0.5) / (1.7 + 1) and fpr = (0.1 + 0.4 + 0.5) / (1.3 + 1).
    np.testing.assert_allclose(tpr, [2.0 / 2.7, (0.6 + 0.3 + 0.5) / (1.8 + 1)])
    np.testing.assert_allclose(fpr, [1.0 / 2.3, (0.4 + 0.7 + 0.5) / (1.2 + 1)])
    assert prior == pytest.approx(2.5 / 5) and isinstance(prior, float)


def test_m_step_without_smoothing_is_the_weighted_vote_share():
    votes = np.array([[1, 0], [0, 1], [1, 1]], dtype=float)
    q = np.array([1.0, 0.25, 0.5])
    tpr, fpr, prior = lm.m_step(votes, q, 0.0)
    np.testing.assert_allclose(tpr, [1.5 / 1.75, 0.75 / 1.75])
    np.testing.assert_allclose(fpr, [0.5 / 1.25, 1.25 / 1.25])
    assert prior == pytest.approx(1.75 / 3)


def test_objective_by_hand_with_abstains_and_fractional_smoothing():
    votes = np.array([[1, 0, np.nan], [0, 0, 1], [np.nan, np.nan, np.nan], [1, 1, 0]], dtype=float)
    tpr, fpr, prior = np.array([0.85, 0.6, 1.0]), np.array([0.25, 0.0, 0.1]), 0.35
    expected = reference_objective(votes, tpr, fpr, prior, 0.5)
    # Unit 0 alone: log(0.35 * 0.85 * 0.4 + 0.65 * 0.25 * 1).
    assert reference_objective(votes[:1], tpr, fpr, prior, 0.0) == pytest.approx(np.log(0.119 + 0.1625))
    assert lm.log_objective(votes, tpr, fpr, prior, 0.5) == pytest.approx(expected, rel=1e-12)
    as_float32 = [x.astype(np.float32) for x in (tpr, fpr)]
    wide = [x.astype(np.float64) for x in as_float32]
    assert lm.log_objective(votes, *as_float32, prior, 0.5) == pytest.approx(
        reference_objective(votes, *wide, prior, 0.5), rel=1e-13
    )


def test_objective_clips_certain_rates_and_priors():
    votes = np.array([[1.0, 0.0], [0.0, np.nan]])
    for tpr, fpr, prior in (([1.0, 1.0], [0.0, 0.0], 0.0), ([0.0, 1.0], [1.0, 0.0], 1.0)):
        expected = reference_objective(votes, tpr, fpr, prior, 0.5)
        assert np.isfinite(expected)
        assert lm.log_objective(votes, tpr, fpr, prior, 0.5) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- the EM loop


@pytest.mark.parametrize("seed", [3, 4])
def test_fit_follows_the_reference_em_step_for_step(seed):
    votes = random_votes(seed)
    for max_iter, tol, smoothing, accelerate in (
        (200, 1e-6, 1.0, True),
        (200, 1e-6, 0.5, False),
        (200, 1e-7, 0.0, True),
        (9, 1e-12, 2.0, True),
        (3, 1e-12, 1.0, True),
        (4, 1e-12, 1.0, True),
        (5, 1e-12, 1.0, True),
        (2, 1e-12, 1.0, True),
    ):
        fitted = lm.fit_label_model(votes, max_iter, tol, smoothing, accelerate)
        tpr, fpr, prior, steps, converged, change = reference_fit(votes, max_iter, tol, smoothing, accelerate)
        case = (max_iter, tol, smoothing, accelerate)
        assert fitted["n_iter"] == steps and fitted["converged"] is converged, case
        np.testing.assert_allclose(fitted["tpr"], tpr, atol=1e-9, err_msg=str(case))
        np.testing.assert_allclose(fitted["fpr"], fpr, atol=1e-9, err_msg=str(case))
        assert fitted["prior"] == pytest.approx(prior, abs=1e-9), case
        assert fitted["final_change"] == pytest.approx(change, rel=1e-6, abs=1e-12), case
        np.testing.assert_allclose(fitted["accuracy"], prior * tpr + (1 - prior) * (1 - fpr), atol=1e-9)
        assert fitted["log_objective"] == pytest.approx(reference_objective(votes, tpr, fpr, prior, smoothing))
        assert fitted["max_iter"] == max_iter and fitted["tol"] == tol
        assert fitted["identifiable"] is True


def test_acceleration_reaches_the_plain_em_fixed_point_in_fewer_steps():
    votes = random_votes(5, n=200)
    fast = lm.fit_label_model(votes, max_iter=10_000, tol=1e-10)
    plain = lm.fit_label_model(votes, max_iter=10_000, tol=1e-10, accelerate=False)
    assert fast["converged"] and plain["converged"]
    assert fast["n_iter"] < plain["n_iter"]
    np.testing.assert_allclose(fast["tpr"], plain["tpr"], atol=1e-7)
    np.testing.assert_allclose(fast["fpr"], plain["fpr"], atol=1e-7)


def test_fit_defaults_are_the_documented_settings():
    votes = random_votes(6)
    fitted = lm.fit_label_model(votes)
    assert fitted["max_iter"] == DEFAULT_SETTINGS["max_iter"] == 200
    assert fitted["tol"] == DEFAULT_SETTINGS["tol"] == 1e-6
    explicit = lm.fit_label_model(votes, 200, 1e-6, DEFAULT_SETTINGS["smoothing"], True)
    assert fitted == explicit
    assert fitted["n_iter"] != lm.fit_label_model(votes, accelerate=False)["n_iter"]


def test_one_step_fit_reports_the_move_from_one_half():
    votes = np.array([[1, 1, 0], [0, 0, 0], [1, np.nan, 1]], dtype=float)
    fitted = lm.fit_label_model(votes, max_iter=1)
    tpr, fpr, prior = reference_m_step(votes, np.array([2 / 3, 0.0, 1.0]), 1.0)
    np.testing.assert_allclose(fitted["tpr"], tpr)
    np.testing.assert_allclose(fitted["fpr"], fpr)
    assert fitted["prior"] == pytest.approx(prior)
    assert fitted["n_iter"] == 1 and fitted["converged"] is False
    assert fitted["final_change"] == pytest.approx(np.abs(np.concatenate([tpr, fpr, [prior]]) - 0.5).max())


def test_a_fit_already_at_its_fixed_point_converges_on_the_first_step():
    # Nobody votes: every rate stays 1/2 and the prior (2 * 1/2 + 1) / (2 + 2) = 1/2.
    fitted = lm.fit_label_model(np.full((2, 3), np.nan), max_iter=50)
    assert fitted["converged"] is True and fitted["n_iter"] == 2 and fitted["final_change"] == 0.0
    assert fitted["tpr"] == [0.5] * 3 and fitted["prior"] == 0.5


def test_fit_accepts_one_unit_or_one_verifier_and_marks_identifiability():
    assert lm.fit_label_model(np.array([[1.0, 0.0, 1.0]]))["identifiable"] is True
    single = lm.fit_label_model(np.array([[1.0], [0.0], [1.0]]))
    assert single["identifiable"] is False and len(single["tpr"]) == 1
    assert lm.fit_label_model(random_votes(7)[:, :2])["identifiable"] is False


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (4,), (2, 2, 2)])
def test_fit_rejects_an_empty_or_non_matrix_vote_table(shape):
    with pytest.raises(ValueError, match=re.escape(f"non-empty (units, verifiers) vote matrix, got shape {shape}")):
        lm.fit_label_model(np.zeros(shape))


def test_squarem_step_at_a_fixed_point_is_one_plain_step():
    votes = np.full((2, 2), np.nan)
    half = np.full(5, 0.5)
    theta, extra = lm._squarem_step(votes, half, half.copy(), 1.0)
    assert extra == 1
    np.testing.assert_array_equal(theta, half)


def test_squarem_step_matches_the_reference_cycle():
    # From random starting points, so that some cycles have |r| < |v| and step length 1 (jump to the second step).
    votes = random_votes(8)
    rng = np.random.default_rng(0)
    short_steps = 0
    for _ in range(30):
        theta = rng.uniform(0.05, 0.95, 2 * votes.shape[1] + 1)
        first = reference_em(votes, theta, 1.0)
        second = reference_em(votes, first, 1.0)
        r, v = logit(first) - logit(theta), logit(second) - 2 * logit(first) + logit(theta)
        short_steps += np.linalg.norm(r) < np.linalg.norm(v)
        stepped, extra = lm._squarem_step(votes, theta, first, 1.0)
        expected, expected_extra = reference_cycle(votes, theta, first, 1.0)
        assert extra == expected_extra == 2
        np.testing.assert_allclose(stepped, expected, atol=1e-12)
    assert short_steps >= 2


def test_squarem_step_keeps_the_extrapolation_when_it_ties_the_two_plain_steps(monkeypatch):
    votes = random_votes(8)
    theta = np.full(2 * votes.shape[1] + 1, 0.6)
    first = reference_em(votes, theta, 1.0)
    second = reference_em(votes, first, 1.0)
    monkeypatch.setattr(lm, "log_objective", lambda *args: 0.0)
    stepped, _ = lm._squarem_step(votes, theta, first, 1.0)
    assert np.abs(stepped - second).max() > 1e-6


def test_fit_without_smoothing_keeps_a_never_positive_verifier_at_rate_zero():
    votes = random_votes(10)
    votes[:, 2] = np.where(np.isnan(votes[:, 2]), np.nan, 0.0)
    fitted = lm.fit_label_model(votes, 200, 1e-6, 0.0)
    tpr, fpr, prior, steps, converged, _ = reference_fit(votes, 200, 1e-6, 0.0, True)
    assert fitted["tpr"][2] == 0.0 and fitted["fpr"][2] == 0.0
    assert fitted["n_iter"] == steps and fitted["converged"] is converged
    np.testing.assert_allclose(fitted["tpr"], tpr, atol=1e-9)
    np.testing.assert_allclose(fitted["fpr"], fpr, atol=1e-9)


def test_a_step_that_moves_exactly_tol_has_not_converged():
    votes = random_votes(11)
    change = lm.fit_label_model(votes, max_iter=2)["final_change"]
    assert lm.fit_label_model(votes, max_iter=2, tol=change)["converged"] is False
    assert lm.fit_label_model(votes, max_iter=2, tol=np.nextafter(change, 1.0))["converged"] is True


def test_convergence_summary_keeps_the_convergence_keys_only():
    fitted = lm.fit_label_model(random_votes(9))
    summary = lm.convergence_summary(fitted)
    keys = ("n_iter", "converged", "final_change", "max_iter", "tol", "log_objective")
    assert summary == {key: fitted[key] for key in keys}
    assert lm.convergence_summary({"n_iter": 3}) == {"n_iter": 3, **{key: None for key in keys[1:]}}


# --------------------------------------------------------------------------- merged columns and dependence


def test_group_id_names_a_single_verifier_or_its_merged_members():
    assert lm.group_id(["judge"]) == "judge"
    assert lm.group_id(["z", "a"]) == "merged:z+a"
    assert lm.group_id(["a", "b", "c"]) == "merged:a+b+c"


# Normalized scores of three verifiers with thresholds 0.5, 0.25, 0.75 (margins in 1/8ths, exact in binary).
NORMALIZED = np.array(
    [
        [0.625, 0.125, 0.875],  # margins +1/8, -1/8, +1/8
        [0.5, 0.375, np.nan],  # 0 (at the threshold: positive), +1/8, abstain
        [np.nan, np.nan, np.nan],
        [0.25, 0.0, 0.625],  # -1/4, -1/4, -1/8
        [np.nan, 0.375, 0.625],  # abstain, +1/8, -1/8: mean 0
        [0.375, 0.5, 0.5],  # -1/8, +1/4, -1/4: mean of all three -1/24
    ]
)
THRESHOLDS = np.array([0.5, 0.25, 0.75])


def test_column_votes_by_hand():
    nan = np.nan
    columns = lm.column_votes(NORMALIZED, THRESHOLDS, [[2], [0, 1], [0, 1, 2]])
    expected = np.array(
        [[1, 1, 1], [nan, 1, 1], [nan, nan, nan], [0, 0, 0], [0, 1, 1], [0, 1, 0]],
        dtype=float,
    )
    np.testing.assert_array_equal(columns, expected)
    np.testing.assert_array_equal(lm.column_votes(NORMALIZED, THRESHOLDS, [[0]])[:, 0], [1, 1, nan, 0, nan, 0])


def test_group_votes_reads_the_groups_by_name():
    step = {"groups": [["c"], ["a", "b"]]}
    np.testing.assert_array_equal(
        lm.group_votes(step, ["a", "b", "c"], NORMALIZED, THRESHOLDS),
        lm.column_votes(NORMALIZED, THRESHOLDS, [[2], [0, 1]]),
    )
    np.testing.assert_array_equal(
        lm.group_votes(step, ["a", "b", "c"], NORMALIZED, THRESHOLDS)[:, 1], [1, 1, np.nan, 0, 1, 1]
    )


def test_predicted_agreement_by_hand_with_unequal_rates():
    # Positive units: 0.9 * 0.7 + 0.1 * 0.3 = 0.66; negative: 0.2 * 0.4 + 0.8 * 0.6 = 0.56; 0.3 * 0.66 + 0.7 * 0.56.
    a, b = {"tpr": 0.9, "fpr": 0.2}, {"tpr": 0.7, "fpr": 0.4}
    assert lm.predicted_agreement(a, b, 0.3) == pytest.approx(0.59)
    assert lm.predicted_agreement(b, a, 0.3) == pytest.approx(0.59)


def labeled_votes(seed, n, accuracies, prior=0.5):
    """Votes of independent verifiers with the given (tpr, fpr), and the classes."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prior
    return np.column_stack([np.where(y, rng.random(n) < t, rng.random(n) < f) for t, f in accuracies]).astype(float), y


def test_solo_rates_are_the_column_rates_in_a_model_of_it_and_the_others():
    # Three good verifiers and an adversarial one (tpr 0.3, fpr 0.7), which is put last but one.
    votes, _ = labeled_votes(0, 3000, [(0.85, 0.15), (0.8, 0.2), (0.3, 0.7), (0.9, 0.25)], prior=0.4)
    rates = lm.solo_rates(votes, 2, [0, 1, 3], SETTINGS)
    assert rates["tpr"] == pytest.approx(0.3, abs=0.04) and rates["fpr"] == pytest.approx(0.7, abs=0.04)
    assert rates["prior"] == pytest.approx(0.4, abs=0.03)
    assert rates["accuracy"] == pytest.approx(
        rates["prior"] * rates["tpr"] + (1 - rates["prior"]) * (1 - rates["fpr"]), rel=1e-12
    )
    # It fits with the settings' budget, tolerance and smoothing.
    s = {**SETTINGS, "max_iter": 4, "tol": 1e-3, "smoothing": 30.0}
    fitted = lm.fit_label_model(votes[:, [0, 1, 3, 2]], 4, 1e-3, 30.0)
    rates = lm.solo_rates(votes, 2, [0, 1, 3], s)
    assert (rates["tpr"], rates["fpr"], rates["prior"]) == (fitted["tpr"][-1], fitted["fpr"][-1], fitted["prior"])


def test_dependent_pairs_needs_two_other_verifiers():
    votes, _ = labeled_votes(1, 300, [(0.8, 0.2)] * 3)
    assert lm.dependent_pairs(votes, ["a", "b", "c"], SETTINGS) == []
    votes, _ = labeled_votes(1, 300, [(0.8, 0.2)] * 4)
    pairs = lm.dependent_pairs(votes, ["a", "b", "c", "d"], SETTINGS)
    assert [p["pair"] for p in pairs] == [["a", "b"], ["a", "c"], ["a", "d"], ["b", "c"], ["b", "d"], ["c", "d"]]


def test_dependent_pairs_by_hand_on_a_copied_verifier():
    # d copies b except on every tenth unit. a votes on units 200-399, b on 0-249, d on 0-299, c on all.
    votes, _ = labeled_votes(2, 400, [(0.8, 0.2), (0.75, 0.3), (0.7, 0.25)], prior=0.4)
    copy = votes[:, 1].copy()
    copy[::10] = 1 - copy[::10]
    votes = np.column_stack([votes, copy])
    votes[:200, 0] = np.nan
    votes[250:, 1] = np.nan
    votes[300:, 3] = np.nan
    names = ["a", "b", "c", "d"]
    pairs = {tuple(p["pair"]): p for p in lm.dependent_pairs(votes, names, SETTINGS)}
    # a and b both vote on 50 units only: untestable. a and d on exactly 100.
    assert list(pairs) == [("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    assert pairs["a", "d"]["n"] == 100 and pairs["b", "d"]["dependent"] is True
    for (x, y), pair in pairs.items():
        i, j = names.index(x), names.index(y)
        both = ~np.isnan(votes[:, i]) & ~np.isnan(votes[:, j])
        assert pair["n"] == both.sum()
        assert pair["observed"] == pytest.approx(np.mean(votes[both, i] == votes[both, j]))
        others = [k for k in range(4) if k not in (i, j)]
        a, b = lm.solo_rates(votes, i, others, SETTINGS), lm.solo_rates(votes, j, others, SETTINGS)
        prior = (a["prior"] + b["prior"]) / 2
        same = prior * (a["tpr"] * b["tpr"] + (1 - a["tpr"]) * (1 - b["tpr"])) + (1 - prior) * (
            a["fpr"] * b["fpr"] + (1 - a["fpr"]) * (1 - b["fpr"])
        )
        assert pair["predicted"] == pytest.approx(same)
        assert pair["excess"] == pytest.approx(pair["observed"] - same)
        assert pair["dependent"] is (pair["excess"] > 0.05)


def test_a_pair_voting_together_on_exactly_the_minimum_units_is_tested():
    votes, _ = labeled_votes(3, 300, [(0.8, 0.2)] * 4)
    votes[: 300 - lm.MIN_PAIR_UNITS, 0] = np.nan
    assert len(lm.dependent_pairs(votes, list("abcd"), SETTINGS)) == 6
    votes[300 - lm.MIN_PAIR_UNITS, 0] = np.nan
    assert [p["pair"] for p in lm.dependent_pairs(votes, list("abcd"), SETTINGS)] == [
        ["b", "c"],
        ["b", "d"],
        ["c", "d"],
    ]


def test_an_excess_exactly_at_the_margin_is_not_dependent():
    votes, _ = labeled_votes(4, 300, [(0.8, 0.2)] * 4)
    first = lm.dependent_pairs(votes, list("abcd"), SETTINGS)[0]
    at_margin = lm.dependent_pairs(votes, list("abcd"), {**SETTINGS, "dependency_margin": first["excess"]})[0]
    assert at_margin["excess"] == first["excess"] and at_margin["dependent"] is False
    below = lm.dependent_pairs(votes, list("abcd"), {**SETTINGS, "dependency_margin": first["excess"] - 1e-9})[0]
    assert below["dependent"] is True


def teachers_and_copies(seed=0, n=400):
    """t1_copy is t1 with 3% of its votes flipped; t2_echo is t2 on half the units. Rates all differ."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5

    def vote(tpr, fpr):
        return np.where(y, rng.random(n) < tpr, rng.random(n) < fpr).astype(float)

    t1 = vote(0.9, 0.35)
    t1_copy = np.where(rng.random(n) < 0.03, 1 - t1, t1)
    t2 = vote(0.7, 0.15)
    t2_echo = np.where(rng.random(n) < 0.5, t2, vote(0.8, 0.3))
    columns = {"t2": t2, "t1_copy": t1_copy, "lf0": vote(0.75, 0.25), "t1": t1, "t2_echo": t2_echo}
    columns |= {"lf1": vote(0.65, 0.2), "lf2": vote(0.85, 0.3)}
    return list(columns), np.column_stack(list(columns.values())), y


def test_label_model_step_merges_the_worst_pair_first_and_rates_every_member():
    names, votes, y = teachers_and_copies()
    s = {**SETTINGS, "max_iter": 300, "tol": 1e-7, "smoothing": 2.0}
    # Scores equal to the votes, threshold 1/2: a merged pair votes positive unless both members vote negative.
    step = lm.fit_label_model_step(names, votes, votes, np.full(len(names), 0.5), s)
    assert [m["pair"] for m in step["merges"]] == [["t1_copy", "t1"], ["t2", "t2_echo"]]
    assert step["merges"][0]["excess"] > step["merges"][1]["excess"] > 0.05
    # Merged members keep the order of the names; groups are ordered by their first member.
    assert step["groups"] == [["t2", "t2_echo"], ["t1_copy", "t1"], ["lf0"], ["lf1"], ["lf2"]]
    assert step["merged"] == [["t2", "t2_echo"], ["t1_copy", "t1"]]
    assert step["verifiers"] == ["merged:t2+t2_echo", "merged:t1_copy+t1", "lf0", "lf1", "lf2"]
    assert len(step["dependence"]) == 10 and not any(p["dependent"] for p in step["dependence"])
    assert step["uses_labels"] is False
    columns = np.column_stack(
        [
            np.maximum(votes[:, 0], votes[:, 4]),
            np.maximum(votes[:, 1], votes[:, 3]),
            votes[:, 2],
            votes[:, 5],
            votes[:, 6],
        ]
    )
    fitted = lm.fit_label_model(columns, 300, 1e-7, 2.0)
    assert step["max_iter"] == 300 and step["tol"] == 1e-7 and step["n_iter"] == fitted["n_iter"]
    assert step["tpr"] == fitted["tpr"] and step["fpr"] == fitted["fpr"] and step["prior"] == fitted["prior"]
    expected_objective = reference_objective(columns, np.array(step["tpr"]), np.array(step["fpr"]), step["prior"], 2.0)
    assert step["log_objective"] == pytest.approx(expected_objective)
    # Each merged member is rated on its own, against its rates on the classes.
    assert set(step["member_rates"]) == {"t1_copy", "t1", "t2", "t2_echo"}
    for name, rates in step["member_rates"].items():
        j = names.index(name)
        assert rates["tpr"] == pytest.approx(votes[y, j].mean(), abs=0.06), name
        assert rates["fpr"] == pytest.approx(votes[~y, j].mean(), abs=0.06), name


def test_without_merging_every_verifier_is_its_own_column():
    names, votes, _ = teachers_and_copies()
    step = lm.fit_label_model_step(
        names, votes, votes, np.full(len(names), 0.5), {**SETTINGS, "merge_dependent": False}
    )
    assert step["groups"] == [[name] for name in names] and step["verifiers"] == names
    assert step["merged"] == [] and step["merges"] == [] and step["dependence"] == [] and step["member_rates"] == {}
    assert step["tpr"] == lm.fit_label_model(votes, 200, 1e-6, 1.0)["tpr"]
    groups, merges, pairs = lm.merge_dependent(
        names, votes, np.full(len(names), 0.5), {**SETTINGS, "merge_dependent": False}
    )
    assert (groups, merges, pairs) == ([[name] for name in names], [], [])
