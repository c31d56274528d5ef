"""Per-module kill rates of the last `make mutation` run.

Reads mutmut's result files (``build/mutation/mutants/src/**/*.py.meta``) and the survivors
explained as equivalent (``benchmarks/mutation_equivalents.toml``: mutant name -> why no input can
tell it from the original), and prints one row per module: mutants, killed, explained, survived,
no tests, not checked, the kill rate (killed / checked) and the rate counting explained survivors.
Survivors that are neither killed nor explained are listed, since each is a test to write or a
reason to give. Equivalents whose mutant no longer exists (the function changed) are listed too.

    python benchmarks/mutation_report.py [--mutants build/mutation/mutants] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import tomllib
from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parents[1]
# mutmut's statuses that mean a test (or its time limit, or the type checker) caught the mutant
CAUGHT = {"killed", "timeout", "segfault", "caught by type check"}


def read_results(mutants_dir: Path) -> dict[str, dict[str, int | None]]:
    """Exit code of every mutant, per module file (e.g. ``w2s/losses.py``)."""
    results = {}
    for meta in sorted((mutants_dir / "src").rglob("*.py.meta")):
        module = meta.relative_to(mutants_dir / "src").as_posix().removesuffix(".meta")
        results[module] = json.loads(meta.read_text())["exit_code_by_key"]
    return results


def read_equivalents(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return tomllib.loads(path.read_text()).get("equivalent", {})


def outcome(exit_code: int | None, explained: bool) -> str:
    """One of the table's columns, from mutmut's own reading of the exit code; a status that is no
    verdict (suspicious, skipped, interrupted) counts as not checked."""
    status = status_by_exit_code[exit_code]
    if status in CAUGHT:
        return "killed"
    if status in ("survived", "no tests"):
        return "explained" if explained else status
    return "not checked"


def module_rows(results: dict, equivalents: dict[str, str]) -> list[dict]:
    rows = []
    for module, codes in results.items():
        counts = Counter(outcome(code, name in equivalents) for name, code in codes.items())
        checked = sum(counts[k] for k in ("killed", "explained", "survived", "no tests"))
        rows.append(
            {
                "module": module,
                "mutants": len(codes),
                **{k: counts[k] for k in ("killed", "explained", "survived", "no tests", "not checked")},
                "kill rate": counts["killed"] / checked if checked else float("nan"),
                "killed or explained": (counts["killed"] + counts["explained"]) / checked if checked else float("nan"),
            }
        )
    return rows


COLUMNS = [
    "module",
    "mutants",
    "killed",
    "explained",
    "survived",
    "no tests",
    "not checked",
    "kill rate",
    "killed or explained",
]


def total_row(rows: list[dict]) -> dict:
    total = {k: sum(r[k] for r in rows) for k in COLUMNS[1:7]}
    checked = total["killed"] + total["explained"] + total["survived"] + total["no tests"]
    total["kill rate"] = total["killed"] / checked
    total["killed or explained"] = (total["killed"] + total["explained"]) / checked
    return {"module": "all", **total}


def format_cell(value: object) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:.1%}"
    return str(value)


def print_table(rows: list[dict], markdown: bool) -> None:
    lines = [[format_cell(r[k]) for k in COLUMNS] for r in [*rows, total_row(rows)]]
    if markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for line in lines:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(COLUMNS)]
    for line in [COLUMNS, *lines]:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=ROOT / "build/mutation/mutants")
    parser.add_argument("--equivalents", type=Path, default=ROOT / "benchmarks/mutation_equivalents.toml")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    results = read_results(args.mutants)
    if not results:
        sys.exit(f"no mutmut results under {args.mutants}: run `make mutation` first")
    equivalents = read_equivalents(args.equivalents)
    print_table(module_rows(results, equivalents), args.markdown)
    open_names = [
        name
        for codes in results.values()
        for name, code in codes.items()
        if status_by_exit_code[code] in ("survived", "no tests") and name not in equivalents
    ]
    known = {name for codes in results.values() for name in codes}
    stale = sorted(set(equivalents) - known)
    print(f"\n{len(open_names)} survivors neither killed nor explained" + (":" if open_names else ""))
    for name in open_names:
        print(f"  {name}")
    if stale:
        print(f"\n{len(stale)} explained mutants no longer exist (their function changed): remove them")
        for name in stale:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
