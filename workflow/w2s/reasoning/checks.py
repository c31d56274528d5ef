"""Weak verifiers for sampled solutions: cheap checks that need no gold answer.

Each returns one score in [0, 1] per sample (higher = more likely correct), as a long score table
(``item_id`` = problem_id, ``candidate_id`` = sample_id, ``verifier_id``, ``raw_score``) that
:mod:`w2s.verifiers` aggregates like any other verifier (normalize, binarize, label model, ...).

- ``consistency``: share of the problem's samples that reach the same answer (self-consistency);
- ``arithmetic``: share of the ``a op b = c`` steps written in the solution that are right
  (0.5 when it writes none);
- ``format``: 1 when the sample finished on its own and states an answer, else 0;
- ``confidence``: the generator's geometric-mean token probability, exp(mean logprob).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ..registry import ANSWER_CHECK_REGISTRY
from .answers import answer_key, to_number

_NUM = r"-?\d[\d,]*(?:\.\d+)?"
_STEP = re.compile(rf"({_NUM})\s*([-+*/x×÷])\s*({_NUM})\s*=\s*({_NUM})")
_OPS: dict[str, Callable[[float, float], float | None]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "x": lambda a, b: a * b,
    "×": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else None,
    "÷": lambda a, b: a / b if b else None,
}


def arithmetic_steps(text: str) -> tuple[int, int]:
    """(right, written) binary arithmetic steps ``a op b = c`` in ``text``."""
    right = written = 0
    for a, op, b, c in _STEP.findall(text or ""):
        numbers = [to_number(v) for v in (a, b, c)]
        written += 1
        if any(n is None for n in numbers):  # too large for a float: not checkable, not right
            continue
        x, y, z = (float(n) for n in numbers)
        value = _OPS[op](x, y)
        if value is not None and math.isclose(value, z, rel_tol=1e-4, abs_tol=1e-6):
            right += 1
    return right, written


def arithmetic_score(text: str) -> float:
    right, written = arithmetic_steps(text)
    return right / written if written else 0.5


@ANSWER_CHECK_REGISTRY.register("consistency")
def consistency_scores(samples: pd.DataFrame) -> np.ndarray:
    """Per sample: the share of its problem's samples with the same (non-null) answer."""
    keys = samples["answer"].map(answer_key)
    counts = samples.assign(_key=keys).groupby(["problem_id", "_key"], dropna=True)["sample_id"].transform("size")
    totals = samples.groupby("problem_id")["sample_id"].transform("size")
    return np.where(keys.notna(), counts.fillna(0) / totals, 0.0).astype(np.float64)


@ANSWER_CHECK_REGISTRY.register("format")
def format_scores(samples: pd.DataFrame) -> np.ndarray:
    finished = samples["finish_reason"].eq("stop") & samples["answer"].notna()
    return finished.to_numpy(dtype=np.float64)


@ANSWER_CHECK_REGISTRY.register("confidence")
def confidence_scores(samples: pd.DataFrame) -> np.ndarray:
    """exp(mean token logprob); NaN (abstain) where the generator did not record logprobs."""
    return np.exp(samples["mean_logprob"].to_numpy(dtype=np.float64))


@ANSWER_CHECK_REGISTRY.register("arithmetic")
def arithmetic_scores(samples: pd.DataFrame) -> np.ndarray:
    """Share of the arithmetic steps written in each completion that are right."""
    return np.array([arithmetic_score(t) for t in samples["completion"]], dtype=np.float64)


# Read-only name -> check view of the answer-check registry (plugins included); registration order.
CHECKS: Mapping[str, Callable[[pd.DataFrame], np.ndarray]] = ANSWER_CHECK_REGISTRY.view()


def score_samples(samples: pd.DataFrame, checks: list[str]) -> pd.DataFrame:
    """The long score table of ``checks`` over ``samples`` (verifier ids prefixed ``check:``)."""
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown verifier checks {unknown}; known: {sorted(CHECKS)}")
    parts = []
    for name in checks:
        parts.append(
            pd.DataFrame(
                {
                    "item_id": samples["problem_id"].astype(str).to_numpy(),
                    "candidate_id": samples["sample_id"].astype(str).to_numpy(),
                    "verifier_id": f"check:{name}",
                    "raw_score": CHECKS[name](samples),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)
