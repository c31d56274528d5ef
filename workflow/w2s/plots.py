"""PNG plots of a finished grid: accuracies, PGR with its sets (:mod:`w2s.pgr_plot`), student vs ceiling,
reliability diagrams, gain against misfit.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot state), so this runs headless.
Experiments that differ only by seed are pooled: means over seeds, and over-seed uncertainty when
there are several seeds, the per-experiment (binomial / bootstrap) uncertainty when there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .pgr_plot import plot_pgr
from .plot_style import ARROW, figure, palette, save
from .summary import ROLES, SEED_GROUP_AXES

PLOT_NAMES = ("accuracy", "pgr", "student_vs_ceiling", "calibration", "gain_vs_misfit")
ROLE_COLORS = {"weak": "#7f7f7f", "student": "#1f77b4", "ceiling": "#2ca02c"}
ROLE_MARKERS = {"weak": "s", "student": "o", "ceiling": "^"}


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


def plot_accuracy(summary: pd.DataFrame, path: Path) -> Path:
    """Weak / student / ceiling test accuracy per task and model pair, with error bars."""
    tasks = sorted(summary["task"].unique())
    fig, axes = figure(len(tasks), ncols=2, panel_size=(max(4.5, 1.6 * _pairs_per_task(summary)), 4.0))
    with_method = summary["method"].nunique() > 1
    for ax, task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        for offset, role in zip((-0.22, 0.0, 0.22), ROLES):
            means = seed_means(rows, f"{role}_acc")
            x = np.arange(len(means)) + offset
            ax.errorbar(
                x,
                means["mean"],
                yerr=means["err"],
                fmt=ROLE_MARKERS[role],
                color=ROLE_COLORS[role],
                capsize=3,
                markersize=7,
                label=role,
            )
        labels = [_pair_label(r, with_method) for _, r in seed_means(rows, "weak_acc").iterrows()]
        rotate = len(labels) > 3
        ax.set_xticks(range(len(labels)), labels, rotation=20 if rotate else 0, ha="right" if rotate else "center")
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_title(task)
        ax.set_ylabel("test accuracy")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.suptitle("Test accuracy (error bars: s.e.)")
    return save(fig, path)


def _pairs_per_task(summary: pd.DataFrame) -> int:
    return int(summary.drop_duplicates(["task", "weak_model", "strong_model", "method"]).groupby("task").size().max())


def plot_student_vs_ceiling(summary: pd.DataFrame, path: Path) -> Path:
    """Student vs ceiling test accuracy per strong model (colour: method, marker: weak model).

    The diagonal is PGR = 1; a dotted line at a weak teacher's accuracy is PGR = 0 for its students.
    """
    tasks = sorted(summary["task"].unique())
    weak_models = sorted(summary["weak_model"].unique())
    methods = sorted(summary["method"].unique())
    colors = dict(zip(methods, palette(len(methods))))
    markers = {w: "os^Dv<>phP*X"[i % 12] for i, w in enumerate(weak_models)}
    fig, axes = figure(len(tasks), ncols=2, panel_size=(7.6, 4.8))
    for ax, task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        student, ceiling = seed_means(rows, "student_acc"), seed_means(rows, "ceiling_acc")
        weak_acc = rows.groupby("weak_model")["weak_acc"].mean()
        values = np.concatenate(
            [
                student["mean"] - student["err"],
                student["mean"] + student["err"],
                ceiling["mean"] - ceiling["err"],
                ceiling["mean"] + ceiling["err"],
                weak_acc,
            ]
        )
        low, high = max(0.0, values.min() - 0.03), min(1.0, values.max() + 0.03)
        for (weak_model, method), points in student.groupby(["weak_model", "method"]):
            ax.errorbar(
                ceiling.loc[points.index, "mean"],
                points["mean"],
                xerr=ceiling.loc[points.index, "err"],
                yerr=points["err"],
                fmt=markers[weak_model],
                color=colors[method],
                capsize=3,
                alpha=0.9,
            )
        for strong_model, points in student.groupby("strong_model"):
            ax.annotate(
                strong_model,
                (ceiling.loc[points.index, "mean"].mean(), points["mean"].max()),
                textcoords="offset points",
                xytext=(7, 5),
                fontsize="small",
            )
        for weak_model, acc in weak_acc.items():
            ax.axhline(acc, color="#7f7f7f", ls=":", lw=1.2)
            ax.annotate(
                f"weak: {weak_model}",
                (high, acc),
                textcoords="offset points",
                xytext=(-4, 3),
                ha="right",
                fontsize="small",
                color="#555555",
            )
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
        ax.legend(
            handles=_student_legend(methods, colors, weak_models, markers),
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            fontsize="small",
            frameon=False,
        )
    fig.suptitle("Student vs ceiling across strong models")
    return save(fig, path)


def _student_legend(methods: list[str], colors: dict, weak_models: list[str], markers: dict) -> list[Line2D]:
    handles = [Line2D([], [], color=colors[m], marker="o", ls="", label=m) for m in methods]
    if len(weak_models) > 1:
        handles += [
            Line2D([], [], color="#7f7f7f", marker=markers[w], ls="", label=f"student of {w}") for w in weak_models
        ]
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
        return {
            "count": counts,
            "confidence": bin_sums("mean_confidence") / counts,
            "accuracy": bin_sums("accuracy") / counts,
        }


def plot_calibration(metrics: list[dict], path: Path) -> Path:
    """Reliability diagram per model pair: accuracy vs mean confidence per bin for weak, student, ceiling."""
    groups: dict[tuple, list[dict]] = {}
    for m in metrics:
        groups.setdefault(tuple(m[a] for a in ("task", "weak_model", "strong_model", "method")), []).append(m)
    keys = sorted(groups)
    fig, axes = figure(len(keys), ncols=3, panel_size=(4.2, 4.2))
    for ax, key in zip(axes, keys):
        runs = groups[key]
        ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--", label="perfect calibration")
        for role in ROLES:
            pooled = pooled_reliability([run["reliability"][role] for run in runs])
            shown = pooled["count"] > 0
            ece = np.mean([run[f"{role}_ece"] for run in runs])
            ax.plot(
                pooled["confidence"][shown],
                pooled["accuracy"][shown],
                marker=ROLE_MARKERS[role],
                color=ROLE_COLORS[role],
                label=f"{role} (ECE {ece:.3f})",
            )
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
    return save(fig, path)


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
    fig, axes = figure(1, ncols=1, panel_size=(6.0, 4.8))
    ax = axes[0]
    columns = ("misfit_sq_distance_test", "brier_reduction_test")
    rows = summary.dropna(subset=[c for c in columns if c in summary]) if all(c in summary for c in columns) else None
    if rows is None or rows.empty:
        ax.text(0.5, 0.5, "no misfit recorded", ha="center", va="center", transform=ax.transAxes)
        return save(fig, path)
    methods = sorted(rows["method"].unique())
    for method, color in zip(methods, palette(len(methods))):
        points = rows[rows["method"] == method]
        ax.plot(points[columns[0]], points[columns[1]], "o", color=color, label=method, alpha=0.85)
    # misfit is never negative: the bound's line starts at the origin
    high = float(np.max(np.concatenate([rows[columns[0]].to_numpy(float), rows[columns[1]].to_numpy(float)])))
    end = 1.05 * max(high, 1e-6)
    ax.plot([0.0, end], [0.0, end], color="black", lw=0.8, ls="--", label="y = x")
    ax.axhline(0.0, color="#7f7f7f", lw=0.8, ls=":")
    ax.set_xlabel("misfit: mean squared distance student - teacher (test)")
    ax.set_ylabel("gain: teacher Brier - student Brier (test)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.suptitle("Gain against misfit (one point per experiment)", fontsize="medium")
    return save(fig, path)
