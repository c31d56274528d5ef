"""The leaderboard of a results store: methods by comparable task columns, PGR of seed means per cell.

Every record of the store(s) (``w2s.results_store``) is read; a corrupt, truncated or newer-format
record is skipped with a warning and counted. A column is one comparability key (task, data, splits,
models, training, labeling and evaluation settings), so only comparable records are ever pooled;
columns that share a task and model pair are told apart by the fields in which they differ. A row
is a method: its name, resolved options and plugin identity (one name with several option sets is
several rows). A cell pools its records per seed (the mean accuracies of the records of one seed),
then gives the PGR of the seed means with the Fieller interval over seeds
(``w2s.summary.pgr_of_means``), the number of seeds, the teams and the code versions pooled;
``strict`` makes each code version its own column. Each method's mean rank is taken over the
columns where it has a defined PGR (rank 1: the highest PGR of the column).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_path, stable_hash
from .results_store import ResultsStore
from .summary import pgr_of_means

ACCURACIES = ("weak_acc", "student_acc", "ceiling_acc")
INTERVAL_FIELDS = ("kind", "low", "high", "ray_low", "ray_high", "unbounded")
CELL_COLUMNS = [
    "method",
    "column",
    "task",
    "weak_model",
    "strong_model",
    "pgr",
    "pgr_ci_kind",
    "pgr_ci_low",
    "pgr_ci_high",
    "pgr_ci_ray_low",
    "pgr_ci_ray_high",
    "pgr_ci_unbounded",
    "interval",
    "n_seeds",
    "seeds",
    "n_records",
    "teams",
    "n_code_versions",
    "mean_rank",
    "n_tasks",
    "comparability_key",
    "code_version",
    "records",
]


def _flat(value: object, prefix: str = "") -> dict[str, object]:
    """Nested dicts as dotted keys, leaves as compact JSON (comparable and printable)."""
    if isinstance(value, dict) and value:
        out: dict[str, object] = {}
        for key, inner in value.items():
            out |= _flat(inner, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: json.dumps(value, sort_keys=True, default=str)}


def differing_fields(settings: dict[str, dict]) -> dict[str, str]:
    """For each name of ``settings`` (name -> nested settings), the fields whose values are not the same
    for all names, as ``field=value`` text; empty text when all agree or there is one name."""
    flat = {name: _flat(value) for name, value in settings.items()}
    fields = sorted(set().union(*flat.values())) if flat else []
    differ = [f for f in fields if len({values.get(f) for values in flat.values()}) > 1]
    return {name: ", ".join(f"{f}={values.get(f, 'absent')}" for f in differ) for name, values in flat.items()}


def _row(path: str, record: dict) -> dict:
    metrics, experiment, method = record["metrics"], record["experiment"], record["method"]
    evaluation = record["comparability"].get("evaluation", {})
    options = method.get("options") or {}
    return {
        "path": path,
        "record_id": Path(path).stem,
        "comparability_key": record["comparability_key"],
        "task": experiment.get("task"),
        "weak_model": experiment.get("weak_model"),
        "strong_model": experiment.get("strong_model"),
        "seed": int(record["seed"]),
        "method_name": method["name"],
        "plugin": method.get("plugin"),
        "method_key": stable_hash([method["name"], options, method.get("plugin")], length=12),
        "team": record["team"],
        "published_at": record["published_at"],
        "code_version": stable_hash(record["code"], length=12) if record.get("code") else "unknown",
        **{name: metrics.get(name) for name in ACCURACIES},
        **{f"item_{name}": metrics.get(f"pgr_ci_{name}") for name in INTERVAL_FIELDS},
        "min_pgr_gap": float(evaluation.get("min_pgr_gap", 0.0)),
        "confidence_level": float(evaluation.get("confidence_level", 0.95)),
    }


@dataclass
class Records:
    """The usable records of one or more stores as a table, with what was skipped."""

    frame: pd.DataFrame
    comparability: dict[str, dict]  # key -> the comparability inputs it hashes
    options: dict[str, dict]  # method_key -> {"name", "options", "plugin"}
    skipped: list[tuple[str, str]] = field(default_factory=list)


def load_records(stores: list[str]) -> Records:
    """Every readable record of ``stores``; unreadable ones are skipped (warned and listed)."""
    rows, comparability, options, skipped = [], {}, {}, []
    for root in stores:
        found, bad = ResultsStore(root).read_all()
        skipped += bad
        for path, record in found:
            try:
                row = _row(path, record)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                skipped.append((path, f"malformed record ({type(error).__name__}: {error})"))
                continue
            rows.append(row)
            comparability.setdefault(row["comparability_key"], record["comparability"])
            options.setdefault(
                row["method_key"],
                {
                    "name": record["method"]["name"],
                    "options": record["method"].get("options") or {},
                    "plugin": record["method"].get("plugin"),
                },
            )
    frame = pd.DataFrame(rows, columns=list(_row("x", _EMPTY)))
    return Records(frame, comparability, options, skipped)


_EMPTY = {
    "comparability_key": "",
    "comparability": {},
    "experiment": {},
    "seed": 0,
    "method": {"name": ""},
    "metrics": {},
    "team": "",
    "published_at": "",
    "code": None,
}


def filter_records(
    frame: pd.DataFrame,
    tasks: list[str] | None = None,
    pairs: list[str] | None = None,
    teams: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
) -> pd.DataFrame:
    """Records of these tasks, ``WEAK:STRONG`` pairs and teams, published on or after ``since`` and on or
    before ``until`` (ISO dates or times such as ``YYYY-MM-DD``, compared as UTC text)."""
    keep = pd.Series(True, index=frame.index)
    if tasks:
        keep &= frame["task"].isin(tasks)
    if pairs:
        bad = [p for p in pairs if ":" not in p]
        if bad:
            raise ValueError(f"model pairs are WEAK:STRONG, got {bad}")
        keep &= (frame["weak_model"] + ":" + frame["strong_model"]).isin(pairs)
    if teams:
        keep &= frame["team"].isin(teams)
    if since:
        keep &= frame["published_at"] >= since
    if until:
        keep &= frame["published_at"].str.slice(0, len(until)) <= until
    return frame[keep]


def cell_numbers(records: pd.DataFrame) -> dict:
    """PGR of the seed means of one cell's records and its Fieller set over seeds; with one seed, that
    seed's PGR and its Fieller set over test items (``interval``: ``seeds`` or ``test items``).

    Records of one seed (several teams, reruns) are averaged first, so a seed counts once.
    """
    by_seed = records.groupby("seed").agg(
        **{name: (name, "mean") for name in ACCURACIES}, min_pgr_gap=("min_pgr_gap", "max")
    )
    numbers = pgr_of_means(by_seed, float(records["confidence_level"].iloc[0]))
    interval = {f"pgr_ci_{name}": numbers[f"pgr_of_means_ci_{name}"] for name in INTERVAL_FIELDS}
    over = "seeds"
    one_run = records.drop_duplicates([f"item_{name}" for name in INTERVAL_FIELDS] + list(ACCURACIES))
    if len(by_seed) == 1 and numbers["pgr_of_means"] is not None and len(one_run) == 1:
        # one seed, identical records: the run's own set over test items (seeds give no interval)
        interval = {f"pgr_ci_{name}": one_run[f"item_{name}"].iloc[0] for name in INTERVAL_FIELDS}
        over = "test items"
    return {
        "pgr": numbers["pgr_of_means"],
        **interval,
        "interval": over,
        "n_seeds": len(by_seed),
        "seeds": ",".join(str(s) for s in by_seed.index),
    }


@dataclass
class Leaderboard:
    cells: pd.DataFrame  # one row per (method, column), CELL_COLUMNS
    columns: pd.DataFrame  # one row per column: column, task, weak_model, strong_model, comparability_key, ...
    ranks: pd.DataFrame  # one row per method: method, mean_rank, n_tasks (best first)
    n_records: int
    skipped: list[tuple[str, str]]
    strict: bool
    filters: dict


def _labels(frame: pd.DataFrame, group: list[str], base: pd.Series, settings: dict) -> dict[tuple, str]:
    """A readable label per group: ``base``, plus the differing fields where two groups share it."""
    labels = {}
    groups = frame.drop_duplicates(group)
    for text, same in groups.groupby(base.loc[groups.index]):
        keys = [tuple(row) for row in same[group].itertuples(index=False)]
        diff = differing_fields({key: settings[key] for key in keys}) if len(keys) > 1 else {}
        for key in keys:
            labels[key] = f"{text} [{diff[key]}]" if diff.get(key) else text
    return labels


def build_leaderboard(records: Records, strict: bool = False, filters: dict | None = None) -> Leaderboard:
    """Pool comparable records into cells (see the module docstring); ``filters``: :func:`filter_records`."""
    filters = {k: v for k, v in (filters or {}).items() if v}
    frame = filter_records(records.frame, **filters)
    group = ["comparability_key", "code_version"] if strict else ["comparability_key"]
    column_settings = {
        key: {"settings": records.comparability[key[0]], **({"code": key[1]} if strict else {})}
        for key in frame[group].drop_duplicates().itertuples(index=False, name=None)
    }
    pair = frame["task"] + " · " + frame["weak_model"] + "→" + frame["strong_model"]
    column_label = _labels(frame, group, pair, column_settings)
    method_label = _labels(frame, ["method_key"], frame["method_name"], {(k,): v for k, v in records.options.items()})
    cells = []
    for key, part in frame.groupby([*group, "method_key"], sort=False):
        first = part.iloc[0]
        cells.append(
            {
                "method": method_label[(key[-1],)],
                "column": column_label[tuple(key[:-1])],
                "task": first["task"],
                "weak_model": first["weak_model"],
                "strong_model": first["strong_model"],
                **cell_numbers(part),
                "n_records": len(part),
                "teams": ",".join(sorted(part["team"].unique())),
                "n_code_versions": part["code_version"].nunique(),
                "comparability_key": key[0],
                "code_version": key[1] if strict else ",".join(sorted(part["code_version"].unique())),
                "records": " ".join(part["path"]),
            }
        )
    cells = pd.DataFrame(cells, columns=[c for c in CELL_COLUMNS if c not in ("mean_rank", "n_tasks")])
    ranks = mean_ranks(cells)
    cells = cells.merge(ranks, on="method", how="left")[CELL_COLUMNS]
    order = {method: i for i, method in enumerate(ranks["method"])}
    cells = cells.sort_values(["column", "method"], key=lambda s: s.map(order) if s.name == "method" else s)
    columns = (
        cells.drop_duplicates("column")[
            ["column", "task", "weak_model", "strong_model", "comparability_key", "code_version"]
        ]
        .sort_values("column")
        .reset_index(drop=True)
    )
    return Leaderboard(cells.reset_index(drop=True), columns, ranks, len(frame), records.skipped, strict, filters)


def mean_ranks(cells: pd.DataFrame) -> pd.DataFrame:
    """Each method's mean rank over the columns where its PGR is defined (1 = highest PGR of the
    column, ties share the mean rank), and that number of columns; best first, unranked last."""
    defined = cells.dropna(subset=["pgr"])
    ranked = defined.assign(rank=defined.groupby("column")["pgr"].rank(ascending=False, method="average"))
    ranks = ranked.groupby("method").agg(mean_rank=("rank", "mean"), n_tasks=("rank", "size")).reset_index()
    unranked = sorted(set(cells["method"]) - set(ranks["method"]))
    ranks = pd.concat(
        [
            ranks.sort_values(["mean_rank", "method"]),
            pd.DataFrame({"method": unranked, "mean_rank": np.nan, "n_tasks": 0}),
        ],
        ignore_index=True,
    )
    return ranks.astype({"n_tasks": int})


def write_leaderboard(board: Leaderboard, out_dir: str | Path) -> dict[str, Path]:
    """leaderboard.csv (one row per cell), leaderboard.html and leaderboard.png in ``out_dir``."""
    from .leaderboard_render import heatmap_png, html_page

    out = Path(out_dir)
    paths = {"csv": out / "leaderboard.csv", "html": out / "leaderboard.html", "png": out / "leaderboard.png"}
    with atomic_path(paths["csv"]) as tmp:
        board.cells.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(paths["html"]) as tmp:
        tmp.write_text(html_page(board))
    heatmap_png(board, paths["png"])
    return paths
