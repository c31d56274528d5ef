"""Linear probe: fits separable data, matches soft targets, is deterministic, round-trips to disk."""

import numpy as np
import torch

from w2s.probe import LinearProbe, fit_linear_probe


def _blobs(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    features = rng.normal(size=(n, 5)).astype(np.float32)
    features[:, 0] += 3.0 * (2 * labels - 1)
    return features, labels


def test_probe_separates_blobs():
    x, y = _blobs()
    probe = fit_linear_probe(x, np.eye(2, dtype=np.float32)[y], l2=1e-3)
    assert (probe.predict_proba(x).argmax(1) == y).mean() > 0.97


def test_probe_on_constant_soft_targets_predicts_them():
    # With targets [0.3, 0.7] for every row, the loss minimizer is the constant prediction [0.3, 0.7].
    x, _ = _blobs()
    targets = np.tile(np.array([[0.3, 0.7]], dtype=np.float32), (len(x), 1))
    probs = fit_linear_probe(x, targets, l2=1e-2).predict_proba(x)
    np.testing.assert_allclose(probs, targets, atol=1e-3)


def test_probe_is_deterministic_and_round_trips(tmp_path):
    x, y = _blobs()
    targets = np.eye(2, dtype=np.float32)[y]
    first, second = fit_linear_probe(x, targets), fit_linear_probe(x, targets)
    assert torch.equal(first.weight, second.weight)
    first.save(tmp_path / "probe.safetensors")
    loaded = LinearProbe.load(tmp_path / "probe.safetensors")
    np.testing.assert_array_equal(loaded.predict_proba(x), first.predict_proba(x))
