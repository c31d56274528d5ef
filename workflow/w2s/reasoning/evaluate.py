"""Evaluate every generator of a reasoning experiment on the test problems and write one metrics file.

``metrics.json``:
- ``generators.<name>``: role (weak, weaker, strong, ceiling, student), uses_gold, problems, samples
  per problem, pass@1 (+ standard error over problems), pass@k and majority@k for each k,
  selection@1 (weak-verifier aggregate picks one sample), answered (share of samples stating an
  answer), mean completion tokens;
- ``gap_recovered.<student>.<metric>``: (student - weak) / (ceiling - weak) for pass@1, majority@k
  (largest k) and selection@1, with a Fieller interval over test problems (null ends when the
  value is undefined, ``ci_unbounded`` when the gap is not significantly non-zero), the share of
  paired bootstrap resamples where it is undefined, and a status (``undefined: ...`` when
  ceiling - weak is below ``min_gap``);
- ``verifiers.<generator>``: AUROC of each check and of the aggregate against gold correctness
  (evaluation only; no training step reads it).

``summary.csv`` has one row per generator with the same numbers; ``pass_at_k.png`` plots them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path, read_json, write_json
from ..metrics import (
    NO_INTERVAL,
    binary_auroc,
    bootstrap_pgr,
    interval_fields,
    performance_gap_recovered,
    pgr_fieller_set,
    pgr_of_seed_means,
    prefixed_interval,
)
from .metrics import per_problem

ROLES = ("weak", "weaker", "strong", "ceiling", "student")


def generator_metrics(samples: pd.DataFrame, scores: pd.DataFrame, ks: list[int]) -> tuple[dict, pd.DataFrame]:
    test = samples[samples["split"] == "test"]
    table = per_problem(test, ks, scores[scores["split"] == "test"])
    n = len(table)
    metrics: dict = {
        "problems": n,
        "samples_per_problem": int(table["n"].min()) if n else 0,
        "pass@1": float(table["pass@1"].mean()),
        "pass@1_se": float(table["pass@1"].std(ddof=1) / math.sqrt(n)) if n > 1 else None,
        "selection@1": float(table["selection@1"].mean()),
        "answered": float(test["answer"].notna().mean()),
        "mean_completion_tokens": float(test["n_completion_tokens"].mean()),
    }
    for k in ks:
        if f"pass@{k}" in table:
            # problems with fewer than k samples have no pass@k: the mean is over the others, counted here
            metrics[f"pass@{k}"] = float(table[f"pass@{k}"].mean())
            metrics[f"pass@{k}_problems"] = int(table[f"pass@{k}"].notna().sum())
            metrics[f"majority@{k}"] = float(table[f"majority@{k}"].mean())
    return metrics, table


def verifier_quality(samples: pd.DataFrame, scores: pd.DataFrame) -> dict:
    test = samples[samples["split"] == "test"].merge(scores, on=["problem_id", "split", "sample_id"])
    columns = [c for c in scores.columns if c.startswith("check:")] + ["score"]
    return {c: binary_auroc(test[c].fillna(0.5).to_numpy(), test["correct"].to_numpy()) for c in columns}


def gap_recovered(
    tables: dict[str, pd.DataFrame],
    student: str,
    metric: str,
    n_boot: int,
    confidence: float,
    seed: int,
    min_gap: float,
) -> dict:
    """RGR of one student on one per-problem metric, paired over the problems all three were tested on."""
    joined = (
        tables["weak"][["problem_id", metric]]
        .merge(tables[student][["problem_id", metric]], on="problem_id", suffixes=("_weak", "_student"))
        .merge(tables["ceiling"][["problem_id", metric]].rename(columns={metric: f"{metric}_ceiling"}), on="problem_id")
    )
    weak, mid, ceiling = (joined[f"{metric}_{r}"].to_numpy() for r in ("weak", "student", "ceiling"))
    value, status = performance_gap_recovered(weak.mean(), mid.mean(), ceiling.mean(), min_gap)
    boot = bootstrap_pgr(weak, mid, ceiling, n_boot, confidence, seed, min_gap)
    interval = NO_INTERVAL
    if value is not None and len(weak) >= 2:  # no interval around an undefined number
        found = pgr_fieller_set(weak, mid, ceiling, confidence)
        interval = interval_fields(found.kind, float(found.low), float(found.high))
    return {
        "value": value,
        "status": status,
        **{f"ci_{name}": v for name, v in interval.items()},
        "undefined_fraction": boot.undefined_fraction,
        "weak": float(weak.mean()),
        "student": float(mid.mean()),
        "ceiling": float(ceiling.mean()),
    }


def generator_rows(report: dict) -> list[dict]:
    """One flat row per generator of a metrics report: its metrics and ``rgr_<metric>`` (gap recovered)."""
    rows = []
    for name, metrics in report["generators"].items():
        row = {"generator": name, **metrics}
        for metric, gap in report["gap_recovered"].get(name, {}).items():
            row[f"rgr_{metric}"] = gap["value"]
        rows.append(row)
    return rows


def plot_pass_at_k(rows: pd.DataFrame, ks: list[int], title: str, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    styles = {"weak": ("s", "--"), "weaker": ("v", ":"), "strong": ("D", "-."), "ceiling": ("^", "--")}
    for _, row in rows.iterrows():
        marker, line = styles.get(row["role"], ("o", "-"))
        values = [row.get(f"pass@{k}", np.nan) for k in ks]
        ax.plot(ks, values, marker=marker, linestyle=line, label=f"{row['generator']} ({row['role']})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("pass@k on test problems")
    ax.set_title(title)
    ax.legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def evaluate_experiment(
    problems_path: str,
    generators: dict[str, dict],
    ks: list[int],
    evaluation: dict,
    out_json: str,
    out_csv: str,
    out_plot: str,
    context: dict | None = None,
) -> dict:
    """``generators``: name -> {role, samples, scores, uses_gold}. Writes the metrics, table and plot."""
    problems = pd.read_parquet(problems_path)
    test_ids = set(problems.loc[problems["split"] == "test", "problem_id"])
    results, tables, quality = {}, {}, {}
    for name, spec in generators.items():
        if spec["role"] not in ROLES:
            raise ValueError(f"generator {name!r}: unknown role {spec['role']!r}")
        samples, scores = pd.read_parquet(spec["samples"]), pd.read_parquet(spec["scores"])
        if not (samples["split"] == "test").any():
            continue
        missing = test_ids - set(samples.loc[samples["split"] == "test", "problem_id"])
        if missing:
            raise ValueError(f"generator {name!r} has no test samples for {len(missing)} problem(s)")
        metrics, tables[name] = generator_metrics(samples, scores, ks)
        results[name] = {"role": spec["role"], "uses_gold": bool(spec.get("uses_gold", False)), **metrics}
        quality[name] = verifier_quality(samples, scores)
    k_max = max(k for k in ks if f"majority@{k}" in next(iter(results.values())))
    rgr_metrics = ["pass@1", f"majority@{k_max}", "selection@1"]
    gap = {}
    if "weak" in tables and "ceiling" in tables:
        for name, spec in generators.items():
            if spec["role"] in ("student", "strong") and name in tables:
                gap[name] = {
                    m: gap_recovered(
                        tables,
                        name,
                        m,
                        evaluation["bootstrap_samples"],
                        evaluation["confidence_level"],
                        evaluation["bootstrap_seed"],
                        evaluation["min_gap"],
                    )
                    for m in rgr_metrics
                }
    report = {**(context or {}), "k": ks, "generators": results, "gap_recovered": gap, "verifiers": quality}
    write_json(report, out_json)
    rows = pd.DataFrame(generator_rows(report))
    with atomic_path(out_csv) as tmp:
        rows.to_csv(tmp, index=False)
    plot_pass_at_k(rows, [k for k in ks if f"pass@{k}" in rows], (context or {}).get("task", ""), Path(out_plot))
    return report


def _seed_gaps(reports: list[dict], task: str, generator: str) -> dict[str, list[dict]]:
    """Per gap metric, the per-seed gap records (weak, student, ceiling means) of one generator."""
    gaps: dict[str, list[dict]] = {}
    for report in reports:
        if report.get("task") == task:
            for metric, gap in report.get("gap_recovered", {}).get(generator, {}).items():
                gaps.setdefault(metric, []).append(gap)
    return gaps


def gap_of_seed_means(per_seed: list[dict], confidence: float, prefix: str, min_gap: float = 0.0) -> dict:
    """Over seeds: how many seeds have a defined gap recovered (``<prefix>_n_seeds_defined``; the
    mean over seeds covers only those), and the gap of the seed means of weak, student and ceiling
    (``<prefix>_of_means``) with its Fieller set paired over seeds, as the classification track
    reports ``pgr_of_means``. Null where undefined (mean gap at or below the runs' minimum)."""
    weak, student, ceiling = (
        np.array([g[role] for g in per_seed], dtype=np.float64) for role in ("weak", "student", "ceiling")
    )
    defined = sum(g.get("value") is not None for g in per_seed)
    value, fields = pgr_of_seed_means(weak, student, ceiling, confidence, min_gap)
    return {
        f"{prefix}_n_seeds_defined": defined,
        f"{prefix}_of_means": value,
        **prefixed_interval(f"{prefix}_of_means_ci", fields),
    }


def summarize_runs(
    metrics_paths: list[str], confidence: float, out_runs: str, out_by_seed: str, min_gap: float = 0.0
) -> pd.DataFrame:
    """Pool the per-seed metrics files: one row per (task, seed, generator), then per (task, generator)
    the mean and t-interval over seeds of every metric and of each gap recovered (over the seeds where
    it is defined, counted in ``rgr_<metric>_n_seeds_defined``), and the gap of the seed means with
    its Fieller set over seeds (:func:`gap_of_seed_means`)."""
    from ..metrics import mean_t_interval

    rows, reports = [], [read_json(path) for path in metrics_paths]
    for report in reports:
        rows += [{"task": report.get("task"), "seed": report.get("seed"), **row} for row in generator_rows(report)]
    runs = pd.DataFrame(rows)
    numeric = [
        c for c in runs.columns if c.startswith(("pass@", "majority@", "selection@", "rgr_")) and not c.endswith("_se")
    ]
    pooled = []
    for (task, generator), group in runs.groupby(["task", "generator"], sort=True):
        row = {"task": task, "generator": generator, "role": group["role"].iloc[0], "n_seeds": len(group)}
        for column in numeric:
            mean, low, high = mean_t_interval(pd.to_numeric(group[column], errors="coerce").to_numpy(float), confidence)
            row.update({f"{column}_mean": mean, f"{column}_ci_low": low, f"{column}_ci_high": high})
        for metric, per_seed in _seed_gaps(reports, task, generator).items():
            row |= gap_of_seed_means(per_seed, confidence, f"rgr_{metric}", min_gap)
        pooled.append(row)
    by_seed = pd.DataFrame(pooled)
    for frame, path in ((runs, out_runs), (by_seed, out_by_seed)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    return by_seed
