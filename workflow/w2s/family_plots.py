"""Model-family views of a grid (Burns et al. 2023, Fig. 3): accuracy against strong-model size, a PGR heatmap.

One W2S method is shown (the ``plots`` rule passes the config's first method). Runs that differ
only by seed are pooled: accuracies are means over seeds with the standard error over seeds (2+
seeds) or the single run's binomial standard error; PGR is ``pgr_of_means`` (PGR of the mean
accuracies) with its Fieller interval paired over seeds, or the run's Fieller interval over test
examples when there is one seed. The PGR table (``pgr_table``) covers every method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import NullLocator

from .io import atomic_path
from .plot_style import figure, palette, save

FAMILY_OUTPUTS = ("accuracy_vs_strong_size", "pgr_heatmap", "pgr_table_csv", "pgr_table_md")
PAIR_AXES = ["task", "weak_model", "strong_model", "method"]
TABLE_COLUMNS = ["task", "weak", "strong", "method", "pgr", "low", "high", "n_seeds", "interval"]
UNDEFINED_COLOR = "#bfbfbf"


def _sizes(frame: pd.DataFrame, role: str) -> pd.Series:
    """Parameter count per model of ``role`` ('weak' or 'strong'), NaN when unknown or not recorded."""
    names = frame[f"{role}_model"]
    if f"{role}_params" not in frame:
        return pd.Series(np.nan, index=pd.Index(names.unique()))
    return frame.groupby(f"{role}_model", sort=False)[f"{role}_params"].first().astype(np.float64)


def model_order(frame: pd.DataFrame, role: str, given: Sequence[str] = ()) -> list[str]:
    """Models of ``role``: by size when every size is known, else in ``given`` order, the rest by name."""
    sizes = _sizes(frame, role)
    if sizes.notna().all():
        return sorted(sizes.index, key=lambda name: (sizes[name], name))
    present = set(sizes.index)
    ordered = [name for name in dict.fromkeys(given) if name in present]
    return ordered + sorted(present - set(ordered))


def strong_axis(frame: pd.DataFrame, given: Sequence[str] = ()) -> tuple[dict[str, float], bool]:
    """x position per strong model and whether it is a log size axis (False: categorical, in model order)."""
    sizes = _sizes(frame, "strong")
    order = model_order(frame, "strong", given)
    if sizes.notna().all() and (sizes > 0).all():
        return {name: float(sizes[name]) for name in order}, True
    return {name: float(i) for i, name in enumerate(order)}, False


def _seed_stats(rows: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Mean of ``column`` over seeds per ``keys``, with n and the error (s.e. over seeds, or the run's ``_se``)."""
    runs = rows.drop_duplicates(keys + ["seed"])
    frame = runs.groupby(keys, sort=True)[column].agg(["mean", "count", "std"]).reset_index()
    se = f"{column}_se"
    single = runs.groupby(keys, sort=True)[se].first().to_numpy() if se in runs else np.full(len(frame), np.nan)
    frame["err"] = np.where(frame["count"] > 1, frame["std"] / np.sqrt(frame["count"]), single)
    return frame.rename(columns={"count": "n_seeds"}).drop(columns="std")


def _method_rows(summary: pd.DataFrame, method: str) -> pd.DataFrame:
    rows = summary[summary["method"] == method]
    if rows.empty:
        raise ValueError(f"method {method!r} is not in the summary (methods: {sorted(summary['method'].unique())})")
    return rows


def accuracy_series(summary: pd.DataFrame, method: str, strong_order: Sequence[str] = ()) -> pd.DataFrame:
    """The points of the accuracy-vs-size plot, one row each: kind (student, ceiling, weak), models, x, mean, err.

    ``student`` rows: the ``method`` students of each weak model per strong model; ``ceiling``: per
    strong model; ``weak``: the weak model's own accuracy (x is NaN: drawn as a horizontal line).
    """
    rows = _method_rows(summary, method)
    positions, _ = strong_axis(rows, strong_order)
    student = _seed_stats(rows, ["task", "weak_model", "strong_model"], "student_acc").assign(kind="student")
    ceiling = _seed_stats(rows, ["task", "strong_model"], "ceiling_acc").assign(kind="ceiling", weak_model=None)
    weak = _seed_stats(rows, ["task", "weak_model"], "weak_acc").assign(kind="weak", strong_model=None)
    series = pd.concat([student, ceiling, weak], ignore_index=True)
    series["x"] = series["strong_model"].map(positions).astype(np.float64)
    return series[["task", "kind", "weak_model", "strong_model", "x", "mean", "err", "n_seeds"]]


def _human_size(n: float) -> str:
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:.0f}"


def _strong_ticks(ax, positions: dict[str, float], log: bool) -> None:
    at: dict[float, list[str]] = {}
    for name, x in positions.items():
        at.setdefault(x, []).append(name)
    labels = ["/".join(names) + (f" ({_human_size(x)})" if log else "") for x, names in at.items()]
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        low, high = min(at), max(at)
        ax.set_xlim(low / 1.6, high * 1.6)
    else:
        ax.set_xlim(-0.5, len(at) - 0.5)
    rotate = len(at) > 2 or log and len(at) > 1
    ax.set_xticks(
        list(at), labels, rotation=30 if rotate else 0, ha="right" if rotate else "center", rotation_mode="anchor"
    )
    ax.set_xlabel("strong model (parameters, log scale)" if log else "strong model")


def plot_accuracy_vs_strong_size(
    summary: pd.DataFrame, method: str, path: Path, weak_order: Sequence[str] = (), strong_order: Sequence[str] = ()
) -> Path:
    """Student accuracy against strong-model size, one line per weak model; ceiling dashed, weak models dotted."""
    series = accuracy_series(summary, method, strong_order)
    rows = _method_rows(summary, method)
    positions, log = strong_axis(rows, strong_order)
    weak_models = model_order(rows, "weak", weak_order)
    colors = dict(zip(weak_models, palette(len(weak_models))))
    tasks = sorted(series["task"].unique())
    fig, axes = figure(len(tasks), ncols=2, panel_size=(7.0, 4.4))
    for ax, task in zip(axes, tasks):
        points = series[series["task"] == task]
        for weak in weak_models:
            own = points[(points["kind"] == "student") & (points["weak_model"] == weak)].sort_values("x")
            if own.empty:
                continue
            ax.errorbar(
                own["x"],
                own["mean"],
                yerr=own["err"],
                marker="o",
                color=colors[weak],
                capsize=3,
                label=f"student of {weak}",
            )
            level = points[(points["kind"] == "weak") & (points["weak_model"] == weak)]["mean"]
            ax.axhline(float(level.iloc[0]), color=colors[weak], ls=":", lw=1.4)
        ceiling = points[points["kind"] == "ceiling"].sort_values("x")
        ax.errorbar(
            ceiling["x"],
            ceiling["mean"],
            yerr=ceiling["err"],
            color="black",
            ls="--",
            marker="^",
            capsize=3,
            label="strong ceiling (gold)",
        )
        _strong_ticks(ax, {k: v for k, v in positions.items() if k in set(ceiling["strong_model"])}, log)
        handles, _ = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="#7f7f7f", ls=":", lw=1.4, label="weak model's own accuracy"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False)
        ax.set_ylabel("test accuracy")
        ax.set_title(task)
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"Test accuracy vs strong model ({method} students; mean over seeds, error bars s.e.)", fontsize="medium"
    )
    return save(fig, path)


def _run_interval(summary: pd.DataFrame, key: tuple) -> tuple[float, float, str]:
    """The one run's Fieller set over test examples (for a single seed): (low, high, kind), where
    two rays are (-inf, low] U [high, inf) and the whole line is (-inf, inf); NaN when not recorded."""
    match = np.logical_and.reduce([summary[a] == v for a, v in zip(PAIR_AXES, key)])
    runs = summary[match]
    if runs.empty or "pgr_ci_low" not in runs:
        return np.nan, np.nan, "none"
    run = runs.iloc[0]
    kind = run.get("pgr_ci_kind")
    if kind == "two_rays":
        return _finite(run["pgr_ci_ray_low"], -np.inf), _finite(run["pgr_ci_ray_high"], np.inf), "two rays"
    if kind == "everything" or bool(run.get("pgr_ci_unbounded", False)):
        return -np.inf, np.inf, "unbounded"
    return float(run["pgr_ci_low"]), float(run["pgr_ci_high"]), "bounded"


def _finite(value: object, missing: float) -> float:
    return missing if value is None or pd.isna(value) else float(value)


def _pooled_pgr(group: pd.Series, summary: pd.DataFrame, key: tuple) -> tuple[float, float, float, str]:
    """(PGR, low, high, interval kind) of one seed group, from the over-seed table's columns that exist.

    A two-ray set is (-inf, low] U [high, inf), its kind says so; an unbounded one is (-inf, inf).
    """
    of_means = "pgr_of_means" in group.index
    pgr = group["pgr_of_means"] if of_means else group["pgr_mean"]
    if pd.isna(pgr):
        return np.nan, np.nan, np.nan, "undefined"
    if of_means and group.get("pgr_of_means_ci_kind") == "two_rays":
        return (
            float(pgr),
            _finite(group["pgr_of_means_ci_ray_low"], -np.inf),
            _finite(group["pgr_of_means_ci_ray_high"], np.inf),
            "two rays (Fieller over seeds)",
        )
    if of_means and bool(group.get("pgr_of_means_ci_unbounded", False)):
        return float(pgr), -np.inf, np.inf, "unbounded (Fieller over seeds)"
    low, high = (
        (group["pgr_of_means_ci_low"], group["pgr_of_means_ci_high"])
        if of_means
        else (group["pgr_seed_ci_low"], group["pgr_seed_ci_high"])
    )
    if pd.notna(low) and pd.notna(high):
        return float(pgr), float(low), float(high), "Fieller over seeds" if of_means else "t over seeds"
    low, high, shape = _run_interval(summary, key)
    return float(pgr), low, high, _RUN_SET_LABELS[shape]


_RUN_SET_LABELS = {
    "bounded": "Fieller over test examples",
    "two rays": "two rays (Fieller over test examples)",
    "unbounded": "unbounded (Fieller over test examples)",
    "none": "none",
}


def pgr_table(summary: pd.DataFrame, by_seed: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, weak, strong, method): pooled PGR (NaN when undefined), its interval and n seeds."""
    duplicated = by_seed.duplicated(PAIR_AXES, keep=False)
    if duplicated.any():
        pairs = by_seed.loc[duplicated, PAIR_AXES].drop_duplicates().to_dict("records")
        raise ValueError(f"the over-seed table has several rows (modes) for the same pair: {pairs}")
    rows = []
    for _, group in by_seed.iterrows():
        key = tuple(group[a] for a in PAIR_AXES)
        pgr, low, high, kind = _pooled_pgr(group, summary, key)
        rows.append(dict(zip(TABLE_COLUMNS, [*key, pgr, low, high, int(group["n_seeds"]), kind])))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS).sort_values(TABLE_COLUMNS[:4]).reset_index(drop=True)


def pgr_matrix(
    table: pd.DataFrame, task: str, method: str, weak_order: Sequence[str], strong_order: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(PGR, present) as weak x strong frames: PGR NaN where undefined or not run; present says which were run."""
    rows = table[(table["task"] == task) & (table["method"] == method)]
    values = rows.pivot(index="weak", columns="strong", values="pgr")
    values = values.reindex(index=list(weak_order), columns=list(strong_order)).astype(np.float64)
    present = pd.DataFrame(False, index=values.index, columns=values.columns)
    for weak, strong in zip(rows["weak"], rows["strong"]):
        present.loc[weak, strong] = True
    return values, present


def _format(value: float) -> str:
    return "" if pd.isna(value) else ("-inf" if value == -np.inf else "inf" if value == np.inf else f"{value:.3f}")


def _interval_text(row: pd.Series) -> str:
    if pd.isna(row["pgr"]):
        return "undef."
    if pd.isna(row["low"]):
        return "n/a"
    if str(row.get("interval", "")).startswith("two rays"):
        return f"(-inf, {_format(row['low'])}] U [{_format(row['high'])}, inf)"
    return "unbounded" if np.isinf(row["low"]) or np.isinf(row["high"]) else f"[{row['low']:.2f}, {row['high']:.2f}]"


def _draw_heatmap(ax, values: pd.DataFrame, present: pd.DataFrame, norm: tuple[float, float]):
    cmap = colormaps["viridis"].with_extremes(bad="white")
    image = ax.imshow(np.ma.masked_invalid(values.to_numpy()), cmap=cmap, vmin=norm[0], vmax=norm[1], aspect="auto")
    for i, weak in enumerate(values.index):
        for j, strong in enumerate(values.columns):
            value = values.loc[weak, strong]
            if not present.loc[weak, strong]:
                continue
            if pd.isna(value):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, color=UNDEFINED_COLOR))
                ax.text(j, i, "undef.", ha="center", va="center", fontsize="small")
                continue
            shade = (value - norm[0]) / (norm[1] - norm[0])
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="black" if shade > 0.6 else "white")
    rotate = len(values.columns) > 3
    ax.set_xticks(
        range(len(values.columns)), values.columns, rotation=25 if rotate else 0, ha="right" if rotate else "center"
    )
    ax.set_yticks(range(len(values.index)), values.index)
    ax.set_xlabel("strong model")
    ax.set_ylabel("weak model")
    return image


def _in_order(rows: pd.DataFrame, weak_order: Sequence[str], strong_order: Sequence[str]) -> pd.DataFrame:
    """Table rows in the heatmap's order: by task, weak model (rows), strong model (columns), method."""
    rank = rows.assign(
        _weak=rows["weak"].map({name: i for i, name in enumerate(weak_order)}),
        _strong=rows["strong"].map({name: i for i, name in enumerate(strong_order)}),
    )
    order = ["task", "_weak", "_strong", "method"]
    return rank.sort_values(order, na_position="last").drop(columns=["_weak", "_strong"]).reset_index(drop=True)


def _draw_table(ax, rows: pd.DataFrame) -> None:
    ax.axis("off")
    cells = [
        [
            r["weak"],
            r["strong"],
            "undef." if pd.isna(r["pgr"]) else f"{r['pgr']:.2f}",
            _interval_text(r),
            str(r["n_seeds"]),
        ]
        for _, r in rows.iterrows()
    ]
    table = ax.table(
        cellText=cells, colLabels=["weak", "strong", "PGR", "interval", "seeds"], loc="center", cellLoc="center"
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(5)))


def plot_pgr_heatmap(
    table: pd.DataFrame, method: str, path: Path, weak_order: Sequence[str], strong_order: Sequence[str]
) -> Path:
    """Weak x strong PGR heatmap per task for ``method``, annotated, with its intervals in a table beside it."""
    rows = table[table["method"] == method]
    if rows.empty:
        raise ValueError(f"method {method!r} is not in the PGR table (methods: {sorted(table['method'].unique())})")
    tasks = sorted(rows["task"].unique())
    finite = rows["pgr"].to_numpy(dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    norm = (min(0.0, finite.min(initial=0.0)), max(1.0, finite.max(initial=1.0)))
    per_task = max(3.2, 0.6 * len(weak_order) + 1.6, 0.22 * rows.groupby("task").size().max() + 1.0)
    heat_width = max(3.6, 1.0 * len(strong_order) + 2.4)
    fig = Figure(figsize=(heat_width + 5.0, per_task * len(tasks)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(tasks), 2, squeeze=False, gridspec_kw={"width_ratios": [heat_width, 5.0]})
    for (heat_ax, table_ax), task in zip(axes, tasks):
        values, present = pgr_matrix(rows, task, method, weak_order, strong_order)
        image = _draw_heatmap(heat_ax, values, present, norm)
        fig.colorbar(image, ax=heat_ax, label="PGR", shrink=0.85)
        heat_ax.set_title(task)
        _draw_table(table_ax, _in_order(rows[rows["task"] == task], weak_order, strong_order))
    fig.suptitle(
        f"Performance gap recovered ({method}; PGR of the mean accuracies over seeds;\n"
        "grey: undefined, gap below the minimum; blank: pair not in the grid)",
        fontsize="medium",
    )
    return save(fig, path)


def write_pgr_table(table: pd.DataFrame, csv_path: Path, md_path: Path) -> None:
    """The PGR table as CSV (empty PGR: undefined) and as a Markdown table."""
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    header = ["task", "weak", "strong", "method", "PGR", "interval low", "interval high", "n seeds", "interval"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in table.iterrows():
        pgr = "undef." if pd.isna(r["pgr"]) else _format(r["pgr"])
        cells = [
            r["task"],
            r["weak"],
            r["strong"],
            r["method"],
            pgr,
            _format(r["low"]),
            _format(r["high"]),
            str(r["n_seeds"]),
            r["interval"],
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    with atomic_path(md_path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def make_family_plots(
    summary: pd.DataFrame,
    by_seed: pd.DataFrame,
    method: str,
    outputs: Mapping[str, str | Path],
    weak_order: Sequence[str] = (),
    strong_order: Sequence[str] = (),
) -> dict[str, Path]:
    """Write every file in FAMILY_OUTPUTS to its path in ``outputs``; ``*_order``: config order of the models."""
    missing = set(FAMILY_OUTPUTS) - set(outputs)
    if missing:
        raise ValueError(f"no output path for {sorted(missing)}")
    paths = {name: Path(outputs[name]) for name in FAMILY_OUTPUTS}
    rows = _method_rows(summary, method)
    weak = model_order(rows, "weak", weak_order)
    strong = model_order(rows, "strong", strong_order)
    plot_accuracy_vs_strong_size(summary, method, paths["accuracy_vs_strong_size"], weak, strong)
    table = _in_order(pgr_table(summary, by_seed), weak, strong)
    plot_pgr_heatmap(table, method, paths["pgr_heatmap"], weak, strong)
    write_pgr_table(table, paths["pgr_table_csv"], paths["pgr_table_md"])
    return paths
