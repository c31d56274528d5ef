"""The binary Dawid-Skene EM of :mod:`w2s.verifiers.label_model` against an independent implementation,
crowd-kit's ``DawidSkene``, on the same votes; its MACE as a second, different-model check.

Both start from the majority-vote posterior and run EM without smoothing, so at a tight tolerance they
must reach the same fixed point: the same confusion rates, class prior and posteriors. Abstains are
absent rows in crowd-kit and NaN here. Skipped where crowd-kit (a test-only dependency) is missing.
"""

import numpy as np
import pandas as pd
import pytest

from w2s.verifiers.label_model import fit_label_model, label_model_posterior

# crowd-kit 1.4.2 passes pandas the inplace= and copy= keywords, which pandas 3.1 deprecates.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The inplace keyword:Warning"),
    pytest.mark.filterwarnings("ignore:The copy keyword:Warning"),
]
crowdkit = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit is a test-only dependency (envs/cpu.txt)")

# Known binary confusion rates (TPR, FPR) and coverage of five verifiers, one of them adversarial.
RATES = [(0.85, 0.15, 1.0), (0.75, 0.3, 1.0), (0.9, 0.4, 0.6), (0.6, 0.1, 0.3), (0.3, 0.7, 0.8)]
PRIOR = 0.4
TOLERANCE = 1e-6  # both stop on small changes, not exactly at the fixed point (they agree to ~1e-9)


def synthetic_votes(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < PRIOR
    columns = []
    for tpr, fpr, coverage in RATES:
        v = np.where(y, rng.random(n) < tpr, rng.random(n) < fpr).astype(np.float64)
        v[rng.random(n) >= coverage] = np.nan
        columns.append(v)
    return np.column_stack(columns), y.astype(np.int64)


def long_votes(votes: np.ndarray) -> pd.DataFrame:
    """crowd-kit's input: one (task, worker, label) row per vote, abstains left out."""
    task, worker = np.nonzero(~np.isnan(votes))
    return pd.DataFrame({"task": task, "worker": worker, "label": votes[task, worker].astype(np.int64)})


@pytest.mark.parametrize("seed", [0, 1])
def test_dawid_skene_matches_crowd_kit(seed):
    votes, _ = synthetic_votes(seed)
    ours = fit_label_model(votes, max_iter=20_000, tol=1e-10, smoothing=0.0)
    assert ours["converged"]
    ds = crowdkit.DawidSkene(n_iter=20_000, tol=1e-12).fit(long_votes(votes))
    errors = ds.errors_  # P(observed label | true label), indexed by (worker, observed label)
    for j in range(votes.shape[1]):
        assert ours["tpr"][j] == pytest.approx(errors.loc[(j, 1), 1], abs=TOLERANCE)
        assert ours["fpr"][j] == pytest.approx(errors.loc[(j, 1), 0], abs=TOLERANCE)
    assert ours["prior"] == pytest.approx(ds.priors_[1], abs=TOLERANCE)
    q = label_model_posterior(votes, ours["tpr"], ours["fpr"], ours["prior"])
    np.testing.assert_allclose(q, ds.probas_.sort_index()[1].to_numpy(), atol=10 * TOLERANCE)
    assert np.array_equal(q >= 0.5, ds.labels_.sort_index().to_numpy() == 1)


def test_dawid_skene_recovers_the_planted_rates_as_crowd_kit_does():
    # With 3000 units both recover the rates they were drawn from to within sampling error (the
    # adversarial verifier included: DS learns to read it backwards).
    votes, y = synthetic_votes(2)
    ours = fit_label_model(votes, max_iter=20_000, tol=1e-10, smoothing=0.0)
    np.testing.assert_allclose(ours["tpr"], [r[0] for r in RATES], atol=0.06)
    np.testing.assert_allclose(ours["fpr"], [r[1] for r in RATES], atol=0.06)
    q = label_model_posterior(votes, ours["tpr"], ours["fpr"], ours["prior"])
    majority = np.nanmean(votes, axis=1) > 0.5
    assert np.mean((q >= 0.5) == y) > np.mean(majority == y) + 0.03


def test_predictions_agree_with_crowd_kit_mace():
    # MACE is a different model (a verifier is right or guesses by its own label distribution), so only
    # the hard labels are compared; on conditionally independent votes most must agree.
    votes, _ = synthetic_votes(3)
    ours = fit_label_model(votes, max_iter=20_000, tol=1e-10, smoothing=0.0)
    q = label_model_posterior(votes, ours["tpr"], ours["fpr"], ours["prior"])
    mace = crowdkit.MACE(n_restarts=1, n_iter=50, random_state=0).fit_predict(long_votes(votes)).sort_index()
    assert np.mean((q >= 0.5) == (mace.to_numpy() == 1)) > 0.9
