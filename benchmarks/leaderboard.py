"""The leaderboard of a results store of 10,000 records: read, pool, write (target: under 10 s).

Synthetic records in the store's real format (``w2s.results_store``): 10 tasks x 2 weak -> strong
pairs x 10 methods x 5 seeds x 10 teams, with two split sizes among the tasks (separate columns) and
two code versions. Writing the store is set-up; the timed part is what ``w2s leaderboard`` does:
read every record, pool comparable ones into cells, write leaderboard.{html,csv,png}.

    .venv/bin/python benchmarks/leaderboard.py [--records 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import median, print_header, spread

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
from w2s.leaderboard import build_leaderboard, load_records, write_leaderboard  # noqa: E402
from w2s.results_store import FORMAT_VERSION, ResultsStore, comparability_key  # noqa: E402


def synthetic_records(n: int, seed: int = 0) -> list[dict]:
    """``n`` records spread over tasks, pairs, methods, seeds and teams, with plausible accuracies."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        task, pair, method, run_seed, team = i % 10, (i // 10) % 2, (i // 20) % 10, (i // 200) % 5, (i // 1000) % 10
        inputs = {"task": f"task{task}", "pair": pair, "split_sizes": {"test": 500 if task % 5 else 1000}}
        weak, ceiling = 0.6 + 0.02 * task, 0.85 + 0.005 * task
        student = weak + (ceiling - weak) * (0.3 + 0.04 * method) + rng.normal(0, 0.01)
        records.append(
            {
                "format_version": FORMAT_VERSION,
                "comparability_key": comparability_key(inputs),
                "comparability": {**inputs, "evaluation": {"min_pgr_gap": 0.01, "confidence_level": 0.95}},
                "experiment": {
                    "task": f"task{task}",
                    "weak_model": f"weak{pair}",
                    "strong_model": "strong",
                    "mode": "linear_probe",
                },
                "seed": run_seed,
                "method": {"name": f"method{method}", "options": {"loss": "xent"}, "plugin": None},
                "metrics": {
                    "weak_acc": weak,
                    "student_acc": float(student),
                    "ceiling_acc": ceiling,
                    "n_test": 500,
                    "n_transfer": 2000,
                    "nonce": i,
                },
                "code": {"evaluate": "v1" if i % 3 else "v2"},
                "packages": {},
                "precision": {},
                "team": f"team{team}",
                "published_at": f"2026-12-0{1 + i % 7}T00:00:00+00:00",
            }
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print_header(f"leaderboard of {args.records} records")
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(f"{tmp}/store")
        started = time.perf_counter()
        for record in synthetic_records(args.records):
            store.publish(record)
        print(f"set-up: {args.records} records published in {time.perf_counter() - started:.1f} s")
        times, phases = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            records = load_records([store.root])
            t1 = time.perf_counter()
            board = build_leaderboard(records)
            t2 = time.perf_counter()
            write_leaderboard(board, f"{tmp}/out")
            t3 = time.perf_counter()
            times.append(t3 - t0)
            phases.append((t1 - t0, t2 - t1, t3 - t2))
        read, pool, write = (median([p[i] for p in phases]) for i in range(3))
        print(json.dumps({"cells": len(board.cells), "columns": len(board.columns), "records": board.n_records}))
        print(
            f"leaderboard: median {median(times):.2f} s ({spread(times)}) over {args.rounds} rounds; "
            f"read {read:.2f} s, pool {pool:.2f} s, write {write:.2f} s; target < 10 s: "
            f"{'met' if median(times) < 10 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
