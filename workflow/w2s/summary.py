"""The grid's summary: one row per experiment from the metrics JSONs, the over-seed table with the PGR
of the seed means and its Fieller set, and their HTML view.

Internal: the ``summarize`` stage runs :func:`summarize`; :mod:`w2s.leaderboard` pools over seeds with
:func:`pgr_of_means`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from .io import atomic_path, read_json, write_parquet
from .metrics import mean_t_interval, pgr_of_seed_means, prefixed_interval
from .model_size import model_parameters
from .tables import summary_page

EXPERIMENT_AXES = ("task", "weak_model", "strong_model", "mode", "method", "seed")
SEED_GROUP_AXES = tuple(axis for axis in EXPERIMENT_AXES if axis != "seed")
ROLES = ("weak", "student", "ceiling")
# Summary columns shown first, after the axes; the rest follow in name order.
HEADLINE_COLUMNS = (
    "n_test",
    "weak_acc",
    "weak_acc_se",
    "student_acc",
    "student_acc_se",
    "ceiling_acc",
    "ceiling_acc_se",
    "pgr",
    "pgr_ci_kind",
    "pgr_ci_low",
    "pgr_ci_high",
    "pgr_ci_ray_low",
    "pgr_ci_ray_high",
    "pgr_boot_undefined_frac",
    "pgr_note",
)
# Per-experiment columns whose mean over seeds says nothing new (counts, per-seed uncertainty).
_NOT_AVERAGED = {
    "seed",
    "weak_params",
    "strong_params",
    "pgr",
    "pgr_ci_low",
    "pgr_ci_high",
    "pgr_ci_unbounded",
    "pgr_ci_ray_low",
    "pgr_ci_ray_high",
    "pgr_boot_undefined_frac",
    "min_pgr_gap",
    "weak_confidence_threshold",
}


def _is_scalar(value: object) -> bool:
    return not isinstance(value, (dict, list))


def _as_float_where_numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Metric columns holding numbers and None (undefined) become float columns with NaN."""
    for column in frame.columns:
        values = frame[column].dropna()
        if frame[column].dtype == object and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            frame[column] = frame[column].astype("float64")
    return frame


def summary_table(metrics: list[dict]) -> pd.DataFrame:
    """One row per experiment: config axes, headline metrics, then every other scalar metric by name."""
    rows = [{k: v for k, v in m.items() if _is_scalar(v)} | _gap_setting(m) for m in metrics]
    frame = _as_float_where_numeric(pd.DataFrame(rows))
    axes = [c for c in EXPERIMENT_AXES if c in frame]
    headline = [c for c in HEADLINE_COLUMNS if c in frame]
    rest = sorted(c for c in frame if c not in axes and c not in headline)
    return frame[axes + headline + rest].sort_values(axes).reset_index(drop=True)


def _gap_setting(metrics: dict) -> dict:
    """The run's min_pgr_gap as a column, so the over-seed PGR uses the same guard."""
    settings = metrics.get("settings", {})
    return {"min_pgr_gap": settings["min_pgr_gap"]} if "min_pgr_gap" in settings else {}


def pgr_of_means(group: pd.DataFrame, confidence_level: float) -> dict:
    """PGR of the mean accuracies over seeds, with a Fieller interval paired over seeds.

    The interval treats seeds as the replicates: numerator student - weak and denominator
    ceiling - weak per seed (t with n_seeds - 1 degrees of freedom). Null when the PGR is undefined
    (mean gap below the runs' min_pgr_gap) or with one seed; ``pgr_of_means_ci_unbounded`` when
    the mean gap is not significantly non-zero over seeds.
    """
    weak, student, ceiling = (group[f"{r}_acc"].to_numpy(dtype=np.float64) for r in ROLES)
    min_gap = float(group["min_pgr_gap"].max()) if "min_pgr_gap" in group else 0.0
    point, fields = pgr_of_seed_means(weak, student, ceiling, confidence_level, min_gap)
    return {"pgr_of_means": point, **prefixed_interval("pgr_of_means_ci", fields)}


def _averaged_columns(summary: pd.DataFrame) -> list[str]:
    return [
        c
        for c in summary.columns
        if c not in EXPERIMENT_AXES
        and c not in _NOT_AVERAGED
        and not c.startswith("n_")
        and not c.endswith("_se")
        and pd.api.types.is_numeric_dtype(summary[c])
    ]


def aggregate_seeds(summary: pd.DataFrame, confidence_level: float) -> pd.DataFrame:
    """One row per (task, weak, strong, mode, method): PGR mean with a t-interval over seeds, metric means and sds.

    Seeds where PGR is undefined are left out of the PGR mean and counted in ``n_seeds_pgr_defined``
    and ``n_seeds_pgr_undefined``. Beside the mean of per-seed PGRs stands :func:`pgr_of_means`.
    """
    axes = [c for c in SEED_GROUP_AXES if c in summary]
    averaged = _averaged_columns(summary)
    rows = []
    for key, group in summary.groupby(axes, sort=True):
        pgr = group["pgr"].to_numpy(dtype=np.float64)
        mean, low, high = mean_t_interval(pgr, confidence_level)
        row = dict(zip(axes, key))
        row |= {
            "n_seeds": len(group),
            "seeds": ",".join(str(seed) for seed in sorted(group["seed"])),
            "n_seeds_pgr_defined": int(np.isfinite(pgr).sum()),
            "pgr_mean": mean,
            "pgr_seed_ci_low": low,
            "pgr_seed_ci_high": high,
            "pgr_seed_sd": float(np.nanstd(pgr, ddof=1)) if np.isfinite(pgr).sum() > 1 else None,
            "n_seeds_pgr_undefined": int((~np.isfinite(pgr)).sum()),
        }
        if "pgr_boot_undefined_frac" in group:
            row["pgr_boot_undefined_frac_max"] = float(group["pgr_boot_undefined_frac"].max())
        if all(f"{r}_acc" in group for r in ROLES):
            row |= pgr_of_means(group, confidence_level)
        for column in averaged:
            row[f"{column}_mean"] = group[column].mean()
            row[f"{column}_sd"] = group[column].std(ddof=1) if len(group) > 1 else None
        rows.append(row)
    return _as_float_where_numeric(pd.DataFrame(rows))


def with_parameter_counts(summary: pd.DataFrame, counts: dict[str, int | None]) -> pd.DataFrame:
    """``weak_params`` and ``strong_params`` columns (float, NaN when unknown) after the axes."""
    out = summary.copy()
    for role in ("weak", "strong"):
        out[f"{role}_params"] = [
            float(c) if (c := counts.get(name)) is not None else np.nan for name in out[f"{role}_model"]
        ]
    return out


def _write_table(frame: pd.DataFrame, out_parquet: str | Path, out_csv: str | Path) -> None:
    write_parquet(pa.Table.from_pandas(frame, preserve_index=False), out_parquet)
    with atomic_path(out_csv) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def write_summary_html(summary: pd.DataFrame, by_seed: pd.DataFrame, out_html: str | Path) -> None:
    """Both tables as one small HTML page, headline first (the report shows it inline): the method, the
    student's accuracy and PGR [interval], then where it ran, then the diagnostics (``tables.summary_page``)."""
    with atomic_path(out_html) as tmp:
        tmp.write_text(summary_page(summary, by_seed))


def summarize(
    metrics_paths: list[str | Path],
    out_parquet: str | Path,
    out_csv: str | Path,
    by_seed_parquet: str | Path,
    by_seed_csv: str | Path,
    out_html: str | Path,
    confidence_level: float = 0.95,
    models: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the per-experiment table, the over-seeds table (Parquet + CSV each) and their HTML view.

    With ``models`` (the config section), ``weak_params`` and ``strong_params`` give each model's
    parameter count from its local safetensors headers (null when the weights are not local).
    """
    summary = summary_table([read_json(path) for path in metrics_paths])
    if models:
        summary = with_parameter_counts(summary, model_parameters(models))
    by_seed = aggregate_seeds(summary, confidence_level)
    _write_table(summary, out_parquet, out_csv)
    _write_table(by_seed, by_seed_parquet, by_seed_csv)
    write_summary_html(summary, by_seed, out_html)
    return summary, by_seed


def write_resolved_config(config: dict, out_path: str | Path) -> None:
    """The config with every default filled in, as the experiments saw it (for the report)."""
    with atomic_path(out_path) as tmp:
        tmp.write_text(
            "# Resolved configuration: config file(s) plus schema defaults.\n" + yaml.safe_dump(config, sort_keys=False)
        )
