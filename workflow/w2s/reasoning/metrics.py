"""Metrics of sampled solutions (hand-checked in tests/reasoning/test_reasoning_metrics.py).

- pass@1: mean correctness over all samples; per problem c/n.
- pass@k: the unbiased estimator of Chen et al. (2021), 1 - C(n - c, k) / C(n, k), per problem.
- majority@k: the answer most of the first k samples reach (ties: the one reached first) is right.
- selection@1: the sample with the highest aggregated weak-verifier score (ties: lowest sample id) is right.
- reasoning gap recovered: (student - weak) / (ceiling - weak) on a per-problem metric, the PGR of
  generative tasks, with a Fieller interval over test problems (w2s.metrics.pgr_fieller_set).
"""

from __future__ import annotations

from math import comb

import pandas as pd

from .answers import answer_key, majority_key


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is correct."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_correct(answers: list, correct: list[bool]) -> bool:
    """Whether the majority answer (ties: the one reached first) of these samples is correct."""
    keys = [answer_key(a) for a in answers]
    winner = majority_key(keys)
    return winner is not None and bool(correct[keys.index(winner)])


def per_problem(samples: pd.DataFrame, ks: list[int], scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per problem: pass@1 (c/n), pass@k and majority@k for each k, selection@1 when scored."""
    if scores is not None:
        samples = samples.merge(
            scores[["problem_id", "sample_id", "score"]], on=["problem_id", "sample_id"], how="left"
        )
    rows = []
    for problem, group in samples.sort_values("sample_id").groupby("problem_id", sort=True):
        n, c = len(group), int(group["correct"].sum())
        answers, correct = group["answer"].tolist(), group["correct"].astype(bool).tolist()
        row = {"problem_id": problem, "n": n, "pass@1": c / n}
        for k in ks:
            if k <= n:
                row[f"pass@{k}"] = pass_at_k(n, c, k)
                row[f"majority@{k}"] = float(majority_correct(answers[:k], correct[:k]))
        if scores is not None:
            best = group.sort_values(["score", "sample_id"], ascending=[False, True]).iloc[0]
            row["selection@1"] = float(best["correct"])
        rows.append(row)
    return pd.DataFrame(rows)
