"""Verifier-aggregation settings: the names of every step's choices, the defaults, one validation pass."""

from __future__ import annotations

from ..registry import AGGREGATOR_REGISTRY
from ..schema import schema_defaults
from ..settings import is_number, merged_settings

NORMALIZERS = ("none", "minmax", "quantile")
BINARIZERS = ("threshold", "class_balance")
# Live read-only views of the aggregator registry (built-ins in verifiers.builtins, plugins included).
AGGREGATORS = AGGREGATOR_REGISTRY.view()
LABEL_USING_AGGREGATORS = AGGREGATOR_REGISTRY.view(lambda entry: bool(entry.meta.get("uses_labels")))

# The schema's `$defs.aggregation` is the one place the defaults are written (and documented).
DEFAULT_SETTINGS: dict = schema_defaults("$defs.aggregation")


def resolve_settings(settings: dict | None) -> dict:
    """``settings`` merged over :data:`DEFAULT_SETTINGS` and checked; bad keys or values raise ValueError."""
    s, check = merged_settings("verifier", DEFAULT_SETTINGS, settings)
    check(s["normalize"] in NORMALIZERS, "normalize", f"must be one of {NORMALIZERS}")
    check(s["binarize"] in BINARIZERS, "binarize", f"must be one of {BINARIZERS}")
    check(
        s["aggregator"] in AGGREGATOR_REGISTRY,
        "aggregator",
        f"must be a registered aggregator: {AGGREGATOR_REGISTRY.names()}",
    )
    check(isinstance(s["aggregator_options"], dict), "aggregator_options", "must be a mapping")
    AGGREGATOR_REGISTRY.options(s["aggregator"], s["aggregator_options"])
    check(isinstance(s["n_quantiles"], int) and s["n_quantiles"] >= 2, "n_quantiles", "must be an integer >= 2")
    check(is_number(s["threshold"]), "threshold", "must be a number")
    check(
        s["positive_rate"] is None or (is_number(s["positive_rate"]) and 0 < s["positive_rate"] < 1),
        "positive_rate",
        "must be null or a number in (0, 1)",
    )
    for flag in ("drop_degenerate", "merge_dependent"):
        check(isinstance(s[flag], bool), flag, "must be true or false")
    check(
        is_number(s["min_positive_rate"]) and 0 <= s["min_positive_rate"] < 1, "min_positive_rate", "must be in [0, 1)"
    )
    check(
        is_number(s["max_positive_rate"]) and s["min_positive_rate"] < s["max_positive_rate"] <= 1,
        "max_positive_rate",
        "must be in (min_positive_rate, 1]",
    )
    check(
        s["first_verifier"] is None or isinstance(s["first_verifier"], str),
        "first_verifier",
        "must be null or a string",
    )
    check(isinstance(s["max_iter"], int) and s["max_iter"] >= 1, "max_iter", "must be an integer >= 1")
    check(is_number(s["tol"]) and s["tol"] > 0, "tol", "must be a number > 0")
    check(is_number(s["smoothing"]) and s["smoothing"] >= 0, "smoothing", "must be a number >= 0")
    check(
        is_number(s["dependency_margin"]) and 0 <= s["dependency_margin"] < 1, "dependency_margin", "must be in [0, 1)"
    )
    check(is_number(s["logistic_c"]) and s["logistic_c"] > 0, "logistic_c", "must be a number > 0")
    return s
