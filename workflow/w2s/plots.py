"""PNG plots of a finished grid: accuracies, PGR with intervals, student vs ceiling, reliability diagrams.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot state), so this runs headless.
Experiments that differ only by seed are pooled: means over seeds, and over-seed uncertainty when
there are several seeds, the per-experiment (binomial / bootstrap) uncertainty when there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .evaluate import ROLES, SEED_GROUP_AXES
from .io import atomic_path

PLOT_NAMES = ("accuracy", "pgr", "student_vs_ceiling", "calibration", "gain_vs_misfit")
ROLE_COLORS = {"weak": "#7f7f7f", "student": "#1f77b4", "ceiling": "#2ca02c"}
ROLE_MARKERS = {"weak": "s", "student": "o", "ceiling": "^"}
ARROW = "\N{RIGHTWARDS ARROW}"
# PGR whose bootstrap resamples are undefined more often than this is drawn hollow: fragile.
FRAGILE_UNDEFINED_SHARE = 0.025


def _figure(n_panels: int, ncols: int, panel_size: tuple[float, float]) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n_panels))
    nrows = -(-n_panels // ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for unused in axes[n_panels:]:
        unused.set_visible(False)
    return fig, axes[:n_panels]


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return path


def _pair_label(row: pd.Series, with_method: bool) -> str:
    label = f"{row['weak_model']}{ARROW}{row['strong_model']}"
    return f"{label}\n({row['method']})" if with_method else label


def seed_means(summary: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean of ``column`` per seed group, with its error: sd/sqrt(n) over seeds, or the one run's ``_se``."""
    axes = [a for a in SEED_GROUP_AXES if a in summary]
    grouped = summary.groupby(axes, sort=True)[column]
    frame = grouped.agg(["mean", "count", "std"]).reset_index()
    single_se = summary.groupby(axes, sort=True)[f"{column}_se"].first().to_numpy()
    frame["err"] = np.where(frame["count"] > 1, frame["std"] / np.sqrt(frame["count"]), single_se)
    return frame


def _set_columns(source: pd.Series | None, prefix: str) -> dict:
    """The Fieller set recorded under ``prefix`` (``pgr_ci`` or ``pgr_of_means_ci``) as plot columns."""
    def get(name: str) -> object:
        return np.nan if source is None else source.get(f"{prefix}_{name}", np.nan)

    kind = get("kind")
    if pd.isna(kind) and source is not None and bool(source.get(f"{prefix}_unbounded", False)):
        kind = "everything"  # written before set kinds were recorded: only "unbounded" is known
    return {"low": get("low"), "high": get("high"), "kind": kind, "ray_low": get("ray_low"),
            "ray_high": get("ray_high")}


def pgr_points(summary: pd.DataFrame, by_seed: pd.DataFrame) -> pd.DataFrame:
    """PGR per seed group with the set the plot shows and where it came from.

    Two or more seeds with a defined PGR: their mean with a t-interval. Otherwise, with two or more
    seeds: the PGR of the seed means with its Fieller set over seeds. With one seed: that run's PGR
    with its Fieller set over test items. ``kind`` is the set's shape (bounded, two_rays, everything).
    """
    rows = []
    axes = [a for a in SEED_GROUP_AXES if a in by_seed]
    for _, group in by_seed.iterrows():
        row = {a: group[a] for a in axes}
        if group["n_seeds_pgr_defined"] >= 2:
            row |= {"pgr": group["pgr_mean"], "low": group["pgr_seed_ci_low"], "high": group["pgr_seed_ci_high"],
                    "kind": "bounded", "ray_low": np.nan, "ray_high": np.nan, "interval": "t over seeds",
                    "undefined_share": group.get("pgr_boot_undefined_frac_max", np.nan)}
        elif group["n_seeds"] >= 2 and "pgr_of_means" in group.index:
            row |= {"pgr": group["pgr_of_means"], **_set_columns(group, "pgr_of_means_ci"),
                    "interval": "Fieller over seeds",
                    "undefined_share": group.get("pgr_boot_undefined_frac_max", np.nan)}
        else:
            same_group = np.logical_and.reduce([summary[a] == row[a] for a in axes])
            runs = summary[same_group & summary["pgr"].notna()]
            run = runs.iloc[0] if len(runs) else None
            row |= {"pgr": np.nan if run is None else run["pgr"], **_set_columns(run, "pgr_ci"),
                    "interval": "Fieller over test examples",
                    "undefined_share": np.nan if run is None else run.get("pgr_boot_undefined_frac", np.nan)}
        rows.append(row)
    return pd.DataFrame(rows)


def plot_accuracy(summary: pd.DataFrame, path: Path) -> Path:
    """Weak / student / ceiling test accuracy per task and model pair, with error bars."""
    tasks = sorted(summary["task"].unique())
    fig, axes = _figure(len(tasks), ncols=2, panel_size=(max(4.5, 1.6 * _pairs_per_task(summary)), 4.0))
    with_method = summary["method"].nunique() > 1
    for ax, task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        for offset, role in zip((-0.22, 0.0, 0.22), ROLES):
            means = seed_means(rows, f"{role}_acc")
            x = np.arange(len(means)) + offset
            ax.errorbar(x, means["mean"], yerr=means["err"], fmt=ROLE_MARKERS[role], color=ROLE_COLORS[role],
                        capsize=3, markersize=7, label=role)
        labels = [_pair_label(r, with_method) for _, r in seed_means(rows, "weak_acc").iterrows()]
        rotate = len(labels) > 3
        ax.set_xticks(range(len(labels)), labels, rotation=20 if rotate else 0, ha="right" if rotate else "center")
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_title(task)
        ax.set_ylabel("test accuracy")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.suptitle("Test accuracy (error bars: s.e.)")
    return _save(fig, path)


def _pairs_per_task(summary: pd.DataFrame) -> int:
    return int(summary.drop_duplicates(["task", "weak_model", "strong_model", "method"]).groupby("task").size().max())


def plot_pgr(summary: pd.DataFrame, by_seed: pd.DataFrame, path: Path) -> Path:
    """PGR per W2S method, one marker per weak->strong pair, with its interval; undefined PGR is marked."""
    points = pgr_points(summary, by_seed)
    tasks = sorted(points["task"].unique())
    methods = sorted(points["method"].unique())
    pairs = sorted(points[["weak_model", "strong_model"]].drop_duplicates().itertuples(index=False, name=None))
    colors = _palette(len(pairs))
    fig, axes = _figure(len(tasks), ncols=2, panel_size=(max(4.5, 1.2 * len(methods) + 2.5), 4.0))
    width = 0.6 / max(1, len(pairs))
    for ax, task in zip(axes, tasks):
        rows = points[points["task"] == task]
        for i, (pair, color) in enumerate(zip(pairs, colors)):
            offset = (i - (len(pairs) - 1) / 2) * width
            for _, row in rows[(rows["weak_model"] == pair[0]) & (rows["strong_model"] == pair[1])].iterrows():
                x = methods.index(row["method"]) + offset
                if pd.isna(row["pgr"]):
                    ax.plot(x, 0.0, "x", color=color, markersize=9)
                    ax.annotate("undefined", (x, 0.0), textcoords="offset points", xytext=(0, 8), ha="center",
                                fontsize="small", color=color)
                    continue
                fragile = is_fragile(row)
                ax.plot(x, row["pgr"], "o", color=color, markersize=7, markerfacecolor="none" if fragile else color)
                draw_pgr_set(ax, x, row, color)
        present = set(zip(rows["weak_model"], rows["strong_model"]))
        for pair, color in zip(pairs, colors):
            if pair in present:
                ax.plot([], [], "o", color=color, label=f"{pair[0]}{ARROW}{pair[1]}")
        if rows.apply(is_fragile, axis=1).any():
            ax.plot([], [], "o", color="#7f7f7f", markerfacecolor="none",
                    label=f"PGR undefined in > {FRAGILE_UNDEFINED_SHARE:.1%} of resamples")
        ax.axhline(0.0, color="black", lw=0.8, ls="--")
        ax.axhline(1.0, color="#2ca02c", lw=0.8, ls="--")
        rotate = len(methods) > 3
        ax.set_xticks(range(len(methods)), methods, rotation=25 if rotate else 0, ha="right" if rotate else "center")
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_xlabel("W2S method (student)")
        ax.set_ylabel("PGR")
        ax.set_title(task)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.suptitle("Performance gap recovered\n" + _interval_note(points["interval"]), fontsize="medium")
    return _save(fig, path)


def _interval_note(kinds: pd.Series) -> str:
    notes = {"t over seeds": "mean over seeds, t-interval",
             "Fieller over seeds": "PGR of seed means, Fieller set over seeds",
             "Fieller over test examples": "Fieller set over test examples"}
    if kinds.nunique() == 1:
        return f"({notes[kinds.iloc[0]]})"
    return ("(mean over seeds with t-interval where 2+ seeds have a defined PGR,\n"
            "else PGR of seed means (Fieller over seeds) or one seed's (Fieller over test examples))")


def is_fragile(row: pd.Series) -> bool:
    """Whether the PGR's definedness is fragile: undefined in too many bootstrap resamples."""
    share = row.get("undefined_share", np.nan)
    return bool(pd.notna(share) and share > FRAGILE_UNDEFINED_SHARE)


def interval_bar(row: pd.Series) -> tuple[float, float] | None:
    """A bounded interval's ends as computed, unclipped: a bar that misses its point estimate shows it."""
    if row.get("kind", "bounded") not in ("bounded", None) or pd.isna(row["low"]) or pd.isna(row["high"]):
        return None
    return float(row["low"]), float(row["high"])


def draw_pgr_set(ax, x: float, row: pd.Series, color) -> None:
    """Draw a PGR's confidence set at ``x``: a bar when bounded; for two rays, dashed arrows from each
    root outwards, labelled; for the whole line, a dashed full-height line labelled "unbounded"."""
    bar = interval_bar(row)
    if bar is not None:
        ax.vlines(x, *bar, color=color, lw=1.5)
        return
    kind = row.get("kind")
    if kind == "two_rays":
        for end, direction in ((row.get("ray_low"), -1), (row.get("ray_high"), 1)):
            if pd.notna(end):
                ax.annotate("", xy=(x, end + direction * 0.5), xytext=(x, end),
                            arrowprops={"arrowstyle": "->", "color": color, "ls": "--"})
        low, high = row.get("ray_low"), row.get("ray_high")
        text = f"(-inf, {low:.2f}] U [{high:.2f}, inf)" if pd.notna(low) and pd.notna(high) else "two rays"
        ax.annotate(text, (x, row["pgr"]), textcoords="offset points", xytext=(6, 0), fontsize="x-small",
                    color=color, va="center")
    elif kind == "everything":
        ax.axvline(x, color=color, lw=1.0, ls="--", alpha=0.6)
        ax.annotate("unbounded", (x, row["pgr"]), textcoords="offset points", xytext=(6, 0), fontsize="x-small",
                    color=color, va="center")


def _palette(n: int) -> list:
    from matplotlib import colormaps

    return [colormaps["tab10"](i % 10) for i in range(n)]


def plot_student_vs_ceiling(summary: pd.DataFrame, path: Path) -> Path:
    """Student vs ceiling test accuracy per strong model (colour: method, marker: weak model).

    The diagonal is PGR = 1; a dotted line at a weak teacher's accuracy is PGR = 0 for its students.
    """
    tasks = sorted(summary["task"].unique())
    weak_models = sorted(summary["weak_model"].unique())
    methods = sorted(summary["method"].unique())
    colors = dict(zip(methods, _palette(len(methods))))
    markers = {w: "os^Dv<>phP*X"[i % 12] for i, w in enumerate(weak_models)}
    fig, axes = _figure(len(tasks), ncols=2, panel_size=(7.6, 4.8))
    for ax, task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        student, ceiling = seed_means(rows, "student_acc"), seed_means(rows, "ceiling_acc")
        weak_acc = rows.groupby("weak_model")["weak_acc"].mean()
        values = np.concatenate([student["mean"] - student["err"], student["mean"] + student["err"],
                                 ceiling["mean"] - ceiling["err"], ceiling["mean"] + ceiling["err"], weak_acc])
        low, high = max(0.0, values.min() - 0.03), min(1.0, values.max() + 0.03)
        for (weak_model, method), points in student.groupby(["weak_model", "method"]):
            ax.errorbar(ceiling.loc[points.index, "mean"], points["mean"], xerr=ceiling.loc[points.index, "err"],
                        yerr=points["err"], fmt=markers[weak_model], color=colors[method], capsize=3, alpha=0.9)
        for strong_model, points in student.groupby("strong_model"):
            ax.annotate(strong_model, (ceiling.loc[points.index, "mean"].mean(), points["mean"].max()),
                        textcoords="offset points", xytext=(7, 5), fontsize="small")
        for weak_model, acc in weak_acc.items():
            ax.axhline(acc, color="#7f7f7f", ls=":", lw=1.2)
            ax.annotate(f"weak: {weak_model}", (high, acc), textcoords="offset points", xytext=(-4, 3),
                        ha="right", fontsize="small", color="#555555")
        ax.plot([low, high], [low, high], color="black", lw=0.8, ls="--")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.yaxis.set_major_locator(MaxNLocator(6))
        ax.set_xlabel("ceiling test accuracy (strong on gold)")
        ax.set_ylabel("student test accuracy (strong on weak labels)")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(handles=_student_legend(methods, colors, weak_models, markers), loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False)
    fig.suptitle("Student vs ceiling across strong models")
    return _save(fig, path)


def _student_legend(methods: list[str], colors: dict, weak_models: list[str], markers: dict) -> list[Line2D]:
    handles = [Line2D([], [], color=colors[m], marker="o", ls="", label=m) for m in methods]
    if len(weak_models) > 1:
        handles += [Line2D([], [], color="#7f7f7f", marker=markers[w], ls="", label=f"student of {w}")
                    for w in weak_models]
    return handles + [
        Line2D([], [], color="black", lw=0.8, ls="--", label="student = ceiling (PGR 1)"),
        Line2D([], [], color="#7f7f7f", lw=1.2, ls=":", label="weak teacher (PGR 0)"),
    ]


def pooled_reliability(curves: list[dict]) -> dict[str, np.ndarray]:
    """Reliability bins of several runs (same bin edges) pooled: counts add, means are count-weighted."""
    def bin_sums(key: str) -> np.ndarray:
        return np.sum([np.nan_to_num(np.array(c[key], dtype=np.float64)) * c["count"] for c in curves], axis=0)

    counts = np.sum([c["count"] for c in curves], axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"count": counts, "confidence": bin_sums("mean_confidence") / counts,
                "accuracy": bin_sums("accuracy") / counts}


def plot_calibration(metrics: list[dict], path: Path) -> Path:
    """Reliability diagram per model pair: accuracy vs mean confidence per bin for weak, student, ceiling."""
    groups: dict[tuple, list[dict]] = {}
    for m in metrics:
        groups.setdefault(tuple(m[a] for a in ("task", "weak_model", "strong_model", "method")), []).append(m)
    keys = sorted(groups)
    fig, axes = _figure(len(keys), ncols=3, panel_size=(4.2, 4.2))
    for ax, key in zip(axes, keys):
        runs = groups[key]
        ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--", label="perfect calibration")
        for role in ROLES:
            pooled = pooled_reliability([run["reliability"][role] for run in runs])
            shown = pooled["count"] > 0
            ece = np.mean([run[f"{role}_ece"] for run in runs])
            ax.plot(pooled["confidence"][shown], pooled["accuracy"][shown], marker=ROLE_MARKERS[role],
                    color=ROLE_COLORS[role], label=f"{role} (ECE {ece:.3f})")
        task, weak, strong, method = key
        ax.set_title(f"{task}: {weak}{ARROW}{strong} ({method})", fontsize="medium")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("confidence (max probability)")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    n_seeds = max(len(runs) for runs in groups.values())
    pooled_note = f", pooled over {n_seeds} seeds" if n_seeds > 1 else ""
    fig.suptitle(f"Reliability on test\n(equal-width confidence bins{pooled_note})", fontsize="medium")
    return _save(fig, path)


def make_plots(
    summary: pd.DataFrame, by_seed: pd.DataFrame, metrics: list[dict], outputs: Mapping[str, str | Path]
) -> dict[str, Path]:
    """Write every plot in PLOT_NAMES to its path in ``outputs``; returns name -> path."""
    missing = set(PLOT_NAMES) - set(outputs)
    if missing:
        raise ValueError(f"no output path for plots {sorted(missing)}")
    paths = {name: Path(outputs[name]) for name in PLOT_NAMES}
    return {
        "accuracy": plot_accuracy(summary, paths["accuracy"]),
        "pgr": plot_pgr(summary, by_seed, paths["pgr"]),
        "student_vs_ceiling": plot_student_vs_ceiling(summary, paths["student_vs_ceiling"]),
        "calibration": plot_calibration(metrics, paths["calibration"]),
        "gain_vs_misfit": plot_gain_vs_misfit(summary, paths["gain_vs_misfit"]),
    }


def plot_gain_vs_misfit(summary: pd.DataFrame, path: Path) -> Path:
    """Each experiment's reduction in test Brier score over its teacher against its squared-distance
    misfit to the teacher on test, with the line y = x: under the misfit bound's assumptions
    (convex, well-specified, squared loss) every point would lie on or above it."""
    fig, axes = _figure(1, ncols=1, panel_size=(6.0, 4.8))
    ax = axes[0]
    columns = ("misfit_sq_distance_test", "brier_reduction_test")
    rows = summary.dropna(subset=[c for c in columns if c in summary]) if all(c in summary for c in columns) else None
    if rows is None or rows.empty:
        ax.text(0.5, 0.5, "no misfit recorded", ha="center", va="center", transform=ax.transAxes)
        return _save(fig, path)
    methods = sorted(rows["method"].unique())
    for method, color in zip(methods, _palette(len(methods))):
        points = rows[rows["method"] == method]
        ax.plot(points[columns[0]], points[columns[1]], "o", color=color, label=method, alpha=0.85)
    values = np.concatenate([rows[columns[0]].to_numpy(float), rows[columns[1]].to_numpy(float), [0.0]])
    low, high = values.min(), values.max()
    pad = 0.05 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="black", lw=0.8, ls="--", label="y = x")
    ax.axhline(0.0, color="#7f7f7f", lw=0.8, ls=":")
    ax.set_xlabel("misfit: mean squared distance student - teacher (test)")
    ax.set_ylabel("gain: teacher Brier - student Brier (test)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.suptitle("Gain against misfit (one point per experiment)", fontsize="medium")
    return _save(fig, path)
