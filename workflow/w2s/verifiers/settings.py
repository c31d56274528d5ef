"""Verifier-aggregation settings: the names of every step's choices, the defaults, one validation pass."""

from __future__ import annotations

from ..settings import is_number, merged_settings

NORMALIZERS = ("none", "minmax", "quantile")
BINARIZERS = ("threshold", "class_balance")
AGGREGATORS = ("first", "majority", "mean", "best_single", "label_model", "logistic")
LABEL_USING_AGGREGATORS = ("best_single", "logistic")

DEFAULT_SETTINGS: dict = {
    "normalize": "none",  # none | minmax | quantile
    "n_quantiles": 101,  # knots kept by the quantile normalizer
    "binarize": "threshold",  # threshold | class_balance
    "threshold": 0.5,  # vote positive when the normalized score >= threshold
    "positive_rate": None,  # class_balance: assumed share of positives; None = estimate without labels
    "drop_degenerate": True,
    "min_positive_rate": 0.02,  # a verifier voting positive less often than this is dropped
    "max_positive_rate": 0.98,  # ... or more often than this
    "aggregator": "label_model",  # first | majority | mean | best_single | label_model | logistic
    "first_verifier": None,  # `first`: which verifier; None = the first in the score table
    "max_iter": 200,  # label model EM
    "tol": 1e-6,  # label model: stop when no rate or the prior moves by more than this
    "smoothing": 1.0,  # label model: Beta(s, s) pseudo-counts on every rate and the prior
    "merge_dependent": True,  # label model: merge verifier pairs that agree more than independence allows
    "dependency_margin": 0.05,  # ... by more than this (observed minus predicted agreement)
    "logistic_c": 1.0,  # logistic: inverse L2 strength
}


def resolve_settings(settings: dict | None) -> dict:
    """``settings`` merged over :data:`DEFAULT_SETTINGS` and checked; bad keys or values raise ValueError."""
    s, check = merged_settings("verifier", DEFAULT_SETTINGS, settings)
    check(s["normalize"] in NORMALIZERS, "normalize", f"must be one of {NORMALIZERS}")
    check(s["binarize"] in BINARIZERS, "binarize", f"must be one of {BINARIZERS}")
    check(s["aggregator"] in AGGREGATORS, "aggregator", f"must be one of {AGGREGATORS}")
    check(isinstance(s["n_quantiles"], int) and s["n_quantiles"] >= 2, "n_quantiles", "must be an integer >= 2")
    check(is_number(s["threshold"]), "threshold", "must be a number")
    check(s["positive_rate"] is None or (is_number(s["positive_rate"]) and 0 < s["positive_rate"] < 1),
          "positive_rate", "must be null or a number in (0, 1)")
    for flag in ("drop_degenerate", "merge_dependent"):
        check(isinstance(s[flag], bool), flag, "must be true or false")
    check(is_number(s["min_positive_rate"]) and 0 <= s["min_positive_rate"] < 1, "min_positive_rate",
          "must be in [0, 1)")
    check(is_number(s["max_positive_rate"]) and s["min_positive_rate"] < s["max_positive_rate"] <= 1,
          "max_positive_rate", "must be in (min_positive_rate, 1]")
    check(s["first_verifier"] is None or isinstance(s["first_verifier"], str), "first_verifier",
          "must be null or a string")
    check(isinstance(s["max_iter"], int) and s["max_iter"] >= 1, "max_iter", "must be an integer >= 1")
    check(is_number(s["tol"]) and s["tol"] > 0, "tol", "must be a number > 0")
    check(is_number(s["smoothing"]) and s["smoothing"] >= 0, "smoothing", "must be a number >= 0")
    check(is_number(s["dependency_margin"]) and 0 <= s["dependency_margin"] < 1, "dependency_margin",
          "must be in [0, 1)")
    check(is_number(s["logistic_c"]) and s["logistic_c"] > 0, "logistic_c", "must be a number > 0")
    return s
