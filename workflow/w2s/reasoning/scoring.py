"""Score every sample of one generator with the weak-verifier checks and aggregate them, without gold.

Output ``scores/<generator>.parquet``: problem_id, split, sample_id, one ``check:<name>`` column per
check (raw score), and ``score``, the aggregate in [0, 1] from :mod:`w2s.verifiers` (default: the mean
of the checks; ``label_model`` and the other label-free aggregators work too). The aggregation is
fitted on this generator's own samples, all splits, with no labels.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from .. import verifiers
from ..io import write_parquet
from ..schema import schema_defaults
from .checks import score_samples

# The track's own defaults (the mean of the checks, every check kept), from the schema.
DEFAULT_AGGREGATION = schema_defaults("reasoning.verifiers.aggregation")


def aggregate_checks(
    samples: pd.DataFrame, checks: list[str], aggregation: dict | None = None
) -> tuple[pd.DataFrame, dict]:
    """Wide table of raw check scores plus the aggregated ``score``, and the fitted aggregation model."""
    settings = {**DEFAULT_AGGREGATION, **(aggregation or {})}
    if settings["aggregator"] in verifiers.LABEL_USING_AGGREGATORS:
        raise ValueError(f"aggregator {settings['aggregator']!r} needs gold labels; pick a label-free one")
    long = score_samples(samples, checks)
    model = verifiers.fit(long, settings)
    aggregated = verifiers.apply(model, long.dropna(subset=["raw_score"]))
    wide = long.pivot_table(
        index=["item_id", "candidate_id"], columns="verifier_id", values="raw_score", dropna=False
    ).reset_index()
    wide = wide.merge(aggregated[["item_id", "candidate_id", "score"]], on=["item_id", "candidate_id"], how="left")
    wide = wide.rename(columns={"item_id": "problem_id"})
    wide["sample_id"] = wide.pop("candidate_id").astype("int32")
    keys = samples[["problem_id", "split", "sample_id"]].astype({"sample_id": "int32"})
    table = keys.merge(wide, on=["problem_id", "sample_id"], how="left")
    table["score"] = table["score"].fillna(0.5)
    table.columns.name = None
    return table, model


def score_file(
    samples_path: str | Path,
    checks: list[str],
    aggregation: dict | None,
    out: str | Path,
    provenance: dict | None = None,
) -> dict:
    samples = pd.read_parquet(samples_path)
    table, model = aggregate_checks(samples, checks, aggregation)
    write_parquet(
        pa.Table.from_pandas(table, preserve_index=False),
        out,
        provenance={**(provenance or {}), "checks": checks, "aggregation": model["settings"], "kept": model["kept"]},
    )
    return {"samples": len(table), "mean_score": float(table["score"].mean())}
