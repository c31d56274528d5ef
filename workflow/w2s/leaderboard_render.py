"""The leaderboard as a page and a picture: headline table first, then each column's settings, each
cell's records (linked) and the skipped records; a PGR heatmap of methods by columns."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_path
from .metrics import describe_interval

_STYLE = (
    "body{font-family:sans-serif;font-size:13px;max-width:1400px} table{border-collapse:collapse}"
    " th,td{padding:3px 8px;border-bottom:1px solid #ddd;vertical-align:top} td.num{text-align:right}"
    " small{color:#666} .warn{color:#a60} a{text-decoration:none}"
)


def _number(value: object) -> str:
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


def interval_text(cell: pd.Series) -> str:
    """``0.512 [0.301, 0.700]``; two rays as ``2.10 (-inf, -3.36] U [1.51, inf)``; the whole line as
    ``(-inf, inf)``; ``undefined`` without a PGR; the PGR alone when no set is recorded."""
    if cell["pgr"] is None or pd.isna(cell["pgr"]):
        return "undefined"
    kind = cell.get("pgr_ci_kind")
    if kind is None or (isinstance(kind, float) and np.isnan(kind)):
        return _number(cell["pgr"])
    fields = {
        name: (None if pd.isna(cell.get(f"pgr_ci_{name}")) else float(cell[f"pgr_ci_{name}"]))
        for name in ("low", "high", "ray_low", "ray_high")
    }
    return f"{_number(cell['pgr'])} {describe_interval({'kind': kind, **fields}, digits=3)}"


def _cell_html(cell: pd.Series, anchor: str) -> str:
    versions = (
        f" · <span class='warn'>{cell['n_code_versions']} code versions</span>" if cell["n_code_versions"] > 1 else ""
    )
    seeds = f"{cell['n_seeds']} seed{'s' if cell['n_seeds'] != 1 else ''}"
    return (
        f"<td class='num'><a href='#{anchor}'>{html.escape(interval_text(cell))}</a><br>"
        f"<small>{seeds} · {html.escape(cell['teams'])}{versions}</small></td>"
    )


def _headline(board) -> str:
    columns = list(board.columns["column"])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    cells = {(c["method"], c["column"]): (i, c) for i, c in board.cells.iterrows()}
    rows = []
    for _, rank in board.ranks.iterrows():
        tds = "".join(
            _cell_html(cells[(rank["method"], col)][1], f"cell-{cells[(rank['method'], col)][0]}")
            if (rank["method"], col) in cells
            else "<td></td>"
            for col in columns
        )
        mean = "—" if pd.isna(rank["mean_rank"]) else f"{rank['mean_rank']:.2f}"
        rows.append(
            f"<tr><th>{html.escape(rank['method'])}</th><td class='num'>{mean}<br>"
            f"<small>{rank['n_tasks']} task{'s' if rank['n_tasks'] != 1 else ''}</small></td>{tds}</tr>"
        )
    return (
        f"<table><tr><th>method</th><th>mean rank</th>{head}</tr>{''.join(rows)}</table>"
        "<p><small>Cell: PGR of the seed means [Fieller interval over seeds], seeds and teams pooled. "
        "Only records with the same comparability key share a column.</small></p>"
    )


def _details(board) -> str:
    columns = "".join(
        f"<tr><td>{html.escape(c['column'])}</td><td><code>{c['comparability_key'][:16]}</code></td>"
        f"<td><code>{html.escape(c['code_version'])}</code></td></tr>"
        for _, c in board.columns.iterrows()
    )
    cells = []
    for i, cell in board.cells.iterrows():
        links = " ".join(
            f"<a href='{html.escape(p)}'>{html.escape(Path(p).stem[:12])}</a>" for p in cell["records"].split()
        )
        cells.append(
            f"<tr id='cell-{i}'><td>{html.escape(cell['method'])}</td><td>{html.escape(cell['column'])}</td>"
            f"<td class='num'>{html.escape(interval_text(cell))}</td><td>{html.escape(cell['seeds'])}</td>"
            f"<td>{html.escape(cell['teams'])}</td><td>{cell['n_records']}</td><td>{links}</td></tr>"
        )
    skipped = "".join(f"<li><code>{html.escape(p)}</code>: {html.escape(r)}</li>" for p, r in board.skipped)
    return (
        f"<h3>Columns: comparable settings</h3><table><tr><th>column</th><th>comparability key</th>"
        f"<th>code version(s)</th></tr>{columns}</table>"
        f"<h3>Cells and their records</h3><table><tr><th>method</th><th>column</th><th>PGR</th><th>seeds</th>"
        f"<th>teams</th><th>records</th><th>record files</th></tr>{''.join(cells)}</table>"
        + (f"<h3>Skipped records</h3><ul>{skipped}</ul>" if skipped else "")
    )


def html_page(board) -> str:
    """The leaderboard page: headline table, then columns, cells with record links, skipped records."""
    teams = sorted({t for cell in board.cells["teams"] for t in cell.split(",") if t})
    filters = "; ".join(f"{k}: {v}" for k, v in board.filters.items()) or "none"
    mode = "strict: one column per code version" if board.strict else "code versions pooled (marked)"
    summary = (
        f"{board.n_records} records from {len(teams)} team(s) in {len(board.columns)} comparable column(s); "
        f"filters: {html.escape(filters)}; {mode}"
    )
    footer = f"<hr><p>{len(board.skipped)} record(s) skipped (unreadable, newer format or edited).</p>"
    return (
        f"<html><head><meta charset='utf-8'><title>W2S leaderboard</title><style>{_STYLE}</style></head><body>"
        f"<h2>Weak-to-strong leaderboard</h2><p>{summary}</p>{_headline(board)}{_details(board)}{footer}"
        "</body></html>\n"
    )


def heatmap_png(board, path: str | Path) -> None:
    """PGR of each method (rows, best mean rank first) in each column, annotated; blank where it did not run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods, columns = list(board.ranks["method"]), list(board.columns["column"])
    values = np.full((len(methods), len(columns)), np.nan)
    for _, cell in board.cells.iterrows():
        if cell["pgr"] is not None and not pd.isna(cell["pgr"]):
            values[methods.index(cell["method"]), columns.index(cell["column"])] = cell["pgr"]
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * max(len(columns), 1), 2.0 + 0.4 * max(len(methods), 1)))
    ax.imshow(np.ma.masked_invalid(values), cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    for (r, c), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(c, r, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.5 else "black")
    ax.set_xticks(range(len(columns)), [c if len(c) < 40 else c[:37] + "..." for c in columns], rotation=30, ha="right")
    ax.set_yticks(range(len(methods)), methods)
    ax.set_title("PGR of seed means")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
