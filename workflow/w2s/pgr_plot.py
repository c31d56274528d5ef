"""The PGR plot: per W2S method and weak->strong pair, the PGR with its confidence set drawn as what it
is (a bar when bounded, rays, or the whole line), and where that set came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .plot_style import ARROW, figure, palette, save
from .summary import SEED_GROUP_AXES

# PGR whose bootstrap resamples are undefined more often than this is drawn hollow: fragile.
FRAGILE_UNDEFINED_SHARE = 0.025


def _set_columns(source: pd.Series | None, prefix: str) -> dict:
    """The Fieller set recorded under ``prefix`` (``pgr_ci`` or ``pgr_of_means_ci``) as plot columns."""

    def get(name: str) -> object:
        return np.nan if source is None else source.get(f"{prefix}_{name}", np.nan)

    kind = get("kind")
    if pd.isna(kind) and source is not None and bool(source.get(f"{prefix}_unbounded", False)):
        kind = "everything"  # written before set kinds were recorded: only "unbounded" is known
    return {
        "low": get("low"),
        "high": get("high"),
        "kind": kind,
        "ray_low": get("ray_low"),
        "ray_high": get("ray_high"),
    }


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
            row |= {
                "pgr": group["pgr_mean"],
                "low": group["pgr_seed_ci_low"],
                "high": group["pgr_seed_ci_high"],
                "kind": "bounded",
                "ray_low": np.nan,
                "ray_high": np.nan,
                "interval": "t over seeds",
                "undefined_share": group.get("pgr_boot_undefined_frac_max", np.nan),
            }
        elif group["n_seeds"] >= 2 and "pgr_of_means" in group.index:
            row |= {
                "pgr": group["pgr_of_means"],
                **_set_columns(group, "pgr_of_means_ci"),
                "interval": "Fieller over seeds",
                "undefined_share": group.get("pgr_boot_undefined_frac_max", np.nan),
            }
        else:
            same_group = np.logical_and.reduce([summary[a] == row[a] for a in axes])
            runs = summary[same_group & summary["pgr"].notna()]
            run = runs.iloc[0] if len(runs) else None
            row |= {
                "pgr": np.nan if run is None else run["pgr"],
                **_set_columns(run, "pgr_ci"),
                "interval": "Fieller over test examples",
                "undefined_share": np.nan if run is None else run.get("pgr_boot_undefined_frac", np.nan),
            }
        rows.append(row)
    return pd.DataFrame(rows)


def plot_pgr(summary: pd.DataFrame, by_seed: pd.DataFrame, path: Path) -> Path:
    """PGR per W2S method, one marker per weak->strong pair, with its interval; undefined PGR is marked."""
    points = pgr_points(summary, by_seed)
    tasks = sorted(points["task"].unique())
    methods = sorted(points["method"].unique())
    pairs = sorted(points[["weak_model", "strong_model"]].drop_duplicates().itertuples(index=False, name=None))
    colors = palette(len(pairs))
    fig, axes = figure(len(tasks), ncols=2, panel_size=(max(4.5, 1.2 * len(methods) + 2.5), 4.0))
    width = 0.6 / max(1, len(pairs))
    for ax, task in zip(axes, tasks):
        rows = points[points["task"] == task]
        for i, (pair, color) in enumerate(zip(pairs, colors)):
            offset = (i - (len(pairs) - 1) / 2) * width
            for _, row in rows[(rows["weak_model"] == pair[0]) & (rows["strong_model"] == pair[1])].iterrows():
                x = methods.index(row["method"]) + offset
                if pd.isna(row["pgr"]):
                    ax.plot(x, 0.0, "x", color=color, markersize=9)
                    ax.annotate(
                        "undefined",
                        (x, 0.0),
                        textcoords="offset points",
                        xytext=(0, 8),
                        ha="center",
                        fontsize="small",
                        color=color,
                    )
                    continue
                fragile = is_fragile(row)
                ax.plot(x, row["pgr"], "o", color=color, markersize=7, markerfacecolor="none" if fragile else color)
                draw_pgr_set(ax, x, row, color)
        present = set(zip(rows["weak_model"], rows["strong_model"]))
        for pair, color in zip(pairs, colors):
            if pair in present:
                ax.plot([], [], "o", color=color, label=f"{pair[0]}{ARROW}{pair[1]}")
        if rows.apply(is_fragile, axis=1).any():
            ax.plot(
                [],
                [],
                "o",
                color="#7f7f7f",
                markerfacecolor="none",
                label=f"PGR undefined in > {FRAGILE_UNDEFINED_SHARE:.1%} of resamples",
            )
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
    return save(fig, path)


def _interval_note(kinds: pd.Series) -> str:
    notes = {
        "t over seeds": "mean over seeds, t-interval",
        "Fieller over seeds": "PGR of seed means, Fieller set over seeds",
        "Fieller over test examples": "Fieller set over test examples",
    }
    if kinds.nunique() == 1:
        return f"({notes[kinds.iloc[0]]})"
    return (
        "(mean over seeds with t-interval where 2+ seeds have a defined PGR,\n"
        "else PGR of seed means (Fieller over seeds) or one seed's (Fieller over test examples))"
    )


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
                ax.annotate(
                    "",
                    xy=(x, end + direction * 0.5),
                    xytext=(x, end),
                    arrowprops={"arrowstyle": "->", "color": color, "ls": "--"},
                )
        low, high = row.get("ray_low"), row.get("ray_high")
        text = f"(-inf, {low:.2f}] U [{high:.2f}, inf)" if pd.notna(low) and pd.notna(high) else "two rays"
        ax.annotate(
            text,
            (x, row["pgr"]),
            textcoords="offset points",
            xytext=(6, 0),
            fontsize="x-small",
            color=color,
            va="center",
        )
    elif kind == "everything":
        ax.axvline(x, color=color, lw=1.0, ls="--", alpha=0.6)
        ax.annotate(
            "unbounded",
            (x, row["pgr"]),
            textcoords="offset points",
            xytext=(6, 0),
            fontsize="x-small",
            color=color,
            va="center",
        )
