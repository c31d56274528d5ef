"""Pipeline overhead: how long Snakemake takes to decide that nothing needs doing.

For grids of 1, 10, 100 and 1,000 experiments this script builds an up-to-date results tree of
THIS workflow in a temporary directory without running any job (every output that
``snakemake --summary`` lists is created empty, stage by stage with increasing modification
times), then times a dry run (``-n``) and a real no-op run (``--cores 1``). The floor is a toy
Snakefile with a chain of 4 trivial rules per experiment (the anchor in
/work/shared/notes/perf-anchors.md), made up to date the same way and timed in alternation with
the workflow, so both see the same machine load.

    .venv/bin/python benchmarks/pipeline_overhead.py            # 1, 10, 100, 1000 experiments
    .venv/bin/python benchmarks/pipeline_overhead.py --quick    # 1, 10, 100 experiments, 1 round
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import ROOT, markdown_table, median, print_header, spread

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
METHODS_PER_SEED = 10

TOY_SNAKEFILE = """\
# Floor: a chain of 4 trivial rules per experiment.
N = int(config["n"])


rule all:
    input: expand("out/{i}/d.txt", i=range(N))


rule a:
    output: "out/{i}/a.txt"
    shell: "touch {output}"


rule b:
    input: "out/{i}/a.txt"
    output: "out/{i}/b.txt"
    shell: "touch {output}"


rule c:
    input: "out/{i}/b.txt"
    output: "out/{i}/c.txt"
    shell: "touch {output}"


rule d:
    input: "out/{i}/c.txt"
    output: "out/{i}/d.txt"
    shell: "touch {output}"
"""


class Workflow:
    """A Snakefile with a config in its own working directory."""

    def __init__(self, name: str, snakefile: Path, workdir: Path, config: dict):
        self.name, self.snakefile, self.workdir = name, snakefile, workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.configfile = workdir / "config.yaml"
        self.configfile.write_text(yaml.safe_dump(config, sort_keys=False))

    def snakemake(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [
            SNAKEMAKE,
            "-s",
            str(self.snakefile),
            "-d",
            str(self.workdir),
            "--configfile",
            str(self.configfile),
            *args,
        ]
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
        return result

    def timed(self, *args: str) -> float:
        start = time.perf_counter()
        self.snakemake(*args)
        return time.perf_counter() - start

    def rule_depths(self) -> dict[str, int]:
        """Each rule's distance from the rules without inputs, from ``--rulegraph``."""
        dot = self.snakemake("--rulegraph").stdout
        names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.MULTILINE))
        parents: dict[str, list[str]] = {node: [] for node in names}
        for source, target in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.MULTILINE):
            parents[target].append(source)
        depth: dict[str, int] = {}

        def visit(node: str) -> int:
            if node not in depth:
                depth[node] = 1 + max((visit(p) for p in parents[node]), default=-1)
            return depth[node]

        return {names[node]: visit(node) for node in names}

    def make_up_to_date(self) -> int:
        """Create every output of the DAG, older stages older; return the number of outputs.

        A path whose last component has no suffix is a ``directory()`` output (the checkpoints of
        this workflow); everything else is an empty file.
        """
        depths = self.rule_depths()
        lines = self.snakemake("--summary").stdout.splitlines()
        rows = [line.split("\t") for line in lines if "\t" in line and not line.startswith("output_file")]
        base = time.time() - 3600
        for path, _date, rule, *_ in rows:
            target = self.workdir / path
            if Path(path).suffix:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            else:
                target.mkdir(parents=True, exist_ok=True)
            stamp = base + 10 * depths[rule]
            os.utime(target, (stamp, stamp))
        dry = self.snakemake("-n").stdout
        if "Nothing to be done" not in dry:
            raise RuntimeError(f"{self.name}: the tree is not up to date after creating it:\n{dry[-2000:]}")
        return len(rows)


def workflow_config(experiments: int) -> dict:
    """The default config with ``experiments`` = seeds x methods (10 methods per seed from 10 up)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    methods = min(experiments, METHODS_PER_SEED)
    if experiments % methods:
        raise ValueError(f"{experiments} experiments is not a multiple of {methods} methods")
    config["seeds"] = list(range(experiments // methods))
    config["strong"]["methods"] = {f"band{i}": {"min_confidence": round(0.05 * i, 2)} for i in range(methods)}
    return config


def build(root: Path, experiments: int) -> tuple[Workflow, Workflow, dict[str, int]]:
    ours = Workflow("w2s", ROOT / "Snakefile", root / f"w2s_{experiments}", workflow_config(experiments))
    toy_dir = root / f"toy_{experiments}"
    toy_dir.mkdir(parents=True)
    (toy_dir / "Snakefile").write_text(TOY_SNAKEFILE)
    toy = Workflow("toy", toy_dir / "Snakefile", toy_dir, {"n": experiments})
    outputs = {"w2s": ours.make_up_to_date(), "toy": toy.make_up_to_date()}
    return ours, toy, outputs


MODES = {"dry run (-n)": ("-n",), "no-op run (--cores 1)": ("--cores", "1")}


def measure(sizes: list[int], rounds: int, root: Path) -> list[dict]:
    results = []
    for experiments in sizes:
        started = time.perf_counter()
        ours, toy, outputs = build(root, experiments)
        print(
            f"{experiments} experiments: {outputs['w2s']} workflow outputs, {outputs['toy']} toy outputs "
            f"(set up in {time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        for mode, args in MODES.items():
            times: dict[str, list[float]] = {"w2s": [], "toy": []}
            for round_index in range(rounds):
                order = (ours, toy) if round_index % 2 == 0 else (toy, ours)  # alternate who goes first
                for workflow in order:
                    times[workflow.name].append(workflow.timed(*args))
            ratios = [a / b for a, b in zip(times["w2s"], times["toy"])]
            results.append({"experiments": experiments, "mode": mode, **times, "ratios": ratios, "outputs": outputs})
            print(
                f"  {mode}: workflow {spread(times['w2s'])} s, toy floor {spread(times['toy'])} s, "
                f"ratio {spread(ratios)}",
                flush=True,
            )
    return results


def report(results: list[dict]) -> None:
    rows = []
    for mode in MODES:
        series = [r for r in results if r["mode"] == mode]
        previous = None
        for r in series:
            ours, toy = median(r["w2s"]), median(r["toy"])
            growth = (
                ""
                if previous is None
                else (f"{math.log(ours / previous[1]) / math.log(r['experiments'] / previous[0]):.2f}")
            )
            rows.append(
                [mode, r["experiments"], r["outputs"]["w2s"], f"{ours:.2f}", f"{toy:.2f}", spread(r["ratios"]), growth]
            )
            previous = (r["experiments"], ours)
    print("\n## Results (median seconds; ratio = workflow / toy floor per round, median [min-max])\n")
    print(
        markdown_table(
            [
                "mode",
                "experiments",
                "workflow outputs",
                "workflow s",
                "toy floor s",
                "ratio to floor",
                "growth exponent vs previous size",
            ],
            rows,
        )
    )
    for mode in MODES:
        series = {r["experiments"]: r for r in results if r["mode"] == mode}
        if len(series) >= 2:
            small, large = sorted(series)[-2:]
            for name in ("w2s", "toy"):
                slope = (median(series[large][name]) - median(series[small][name])) / (large - small)
                print(
                    f"- {mode}, {name}: marginal cost {1000 * slope:.1f} ms per experiment "
                    f"({small} -> {large} experiments)"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="sizes 1, 10, 100 and one round")
    parser.add_argument("--sizes", type=int, nargs="+", help="experiment counts (default 1 10 100 1000)")
    parser.add_argument("--rounds", type=int, help="alternating rounds per size and mode (default 2)")
    args = parser.parse_args()
    sizes = args.sizes or ([1, 10, 100] if args.quick else [1, 10, 100, 1000])
    rounds = args.rounds or (1 if args.quick else 2)

    print_header("Pipeline overhead: Snakemake deciding that nothing needs doing")
    print(
        f"snakemake: {subprocess.run([SNAKEMAKE, '--version'], capture_output=True, text=True, check=True).stdout.strip()}; "
        f"sizes {sizes}; {rounds} alternating round(s)\n"
    )
    with tempfile.TemporaryDirectory(prefix="w2s_pipeline_bench_") as tmp:
        report(measure(sizes, rounds, Path(tmp)))
    print("\n## GPU\nnot applicable: this stage runs no model (Snakemake bookkeeping only).")


if __name__ == "__main__":
    main()
