"""What every CLI module shares: ``NAME=VALUE`` parsing and the common argument definitions."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def mapping(pairs: list[str]) -> dict[str, str]:
    """Parse ``name=value`` arguments."""
    result = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {pair!r}")
        result[name] = value
    return result


Adder = Callable[..., None]
REQ = {"required": True}  # a required flag
SEED = (("--seed",), {"type": int, "required": True})
DEVICE = (("--device",), {"default": "auto", "choices": ["auto", "cpu", "cuda"]})
PAIRS = {"nargs": "+", "required": True, "metavar": "SPLIT=PATH"}
LIST = {"nargs": "+", "required": True}
# The `evaluation` section as JSON ({}: the schema's defaults, through EvaluationSettings).
EVALUATION = (("--settings",), {"default": "{}", "help": "JSON: the evaluation section"})
