"""End to end: per-stage wall time, peak memory and share of the total of a finished workflow run.

Reads the Snakemake ``benchmark:`` TSV files (one per GPU-stage job) under
``results/benchmarks/`` and groups them by rule. The light local rules (prepare_data, evaluate,
summarize, plots) have no benchmark file and are not counted. Jobs may have run in parallel, so
the sum of job times is compute time, not the run's wall-clock time.

    .venv/bin/python benchmarks/end_to_end.py                     # results/ of `make experiment`
    .venv/bin/python benchmarks/end_to_end.py --results other/results --markdown table.md
    .venv/bin/python benchmarks/end_to_end.py --quick             # the same (it only reads files)
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from common import ROOT, markdown_table, print_header

STAGE_ORDER = ["train_weak", "label_weak", "extract_features", "train_ceiling", "train_student"]


def read_jobs(benchmarks: Path) -> list[dict]:
    """One row per job: rule, job name (the path below the rule), seconds, max RSS (MB), CPU seconds."""
    jobs = []
    for path in sorted(benchmarks.rglob("*.tsv")):
        parts = path.relative_to(benchmarks).parts  # <task>/seed<seed>/<rule>/.../<name>.tsv
        if len(parts) < 4:
            continue
        with path.open() as handle:
            for row in csv.DictReader(handle, delimiter="\t"):  # several rows with `repeat()`
                jobs.append(
                    {
                        "rule": parts[2],
                        "job": "/".join(parts[:2] + parts[3:])[:-4],
                        "s": float(row["s"]),
                        "max_rss": _number(row.get("max_rss")),
                        "cpu_time": _number(row.get("cpu_time")),
                    }
                )
    return jobs


def _number(value: str | None) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):  # "NA" where psutil could not measure
        return None


def stage_table(jobs: list[dict]) -> str:
    by_rule: dict[str, list[dict]] = defaultdict(list)
    for job in jobs:
        by_rule[job["rule"]].append(job)
    total = sum(job["s"] for job in jobs)
    order = sorted(by_rule, key=lambda r: (STAGE_ORDER.index(r) if r in STAGE_ORDER else len(STAGE_ORDER), r))
    rows = []
    for rule in order:
        group = by_rule[rule]
        seconds = sum(job["s"] for job in group)
        rss = [job["max_rss"] for job in group if job["max_rss"] is not None]
        cpu = [job["cpu_time"] for job in group if job["cpu_time"] is not None]
        rows.append(
            [
                rule,
                len(group),
                f"{seconds:.1f}",
                f"{seconds / len(group):.1f}",
                f"{max(rss):.0f}" if rss else "NA",
                f"{sum(cpu) / seconds:.2f}" if cpu else "NA",
                f"{seconds / total:.1%}",
            ]
        )
    rows.append(["**total**", len(jobs), f"{total:.1f}", "", "", "", "100.0%"])
    return markdown_table(
        ["stage (rule)", "jobs", "wall s (sum)", "wall s per job", "max RSS MB", "CPU s / wall s", "share of total"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="results directory of a run")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry; this script only reads files")
    args = parser.parse_args()

    print_header("End to end: per-stage cost of a finished workflow run")
    benchmarks = args.results / "benchmarks"
    jobs = read_jobs(benchmarks)
    if not jobs:
        raise SystemExit(f"no benchmark files under {benchmarks}: run `make experiment` first")
    table = stage_table(jobs)
    newest = max(path.stat().st_mtime for path in benchmarks.rglob("*.tsv"))
    import datetime

    print(
        f"{len(jobs)} jobs from {benchmarks} (newest file "
        f"{datetime.datetime.fromtimestamp(newest).isoformat(timespec='minutes')})\n"
    )
    print(table)
    print(
        "\nCPU s / wall s above 1 means the job used more than one core on average; "
        "the sum of wall times counts parallel jobs once each."
    )
    if args.markdown:
        args.markdown.write_text(table + "\n")
        print(f"\nwritten to {args.markdown}")
    print(
        "\n## GPU\nthis script reads the benchmark files of whatever machine ran the workflow; "
        "on a GPU run the same table shows GPU-job times."
    )


if __name__ == "__main__":
    main()
