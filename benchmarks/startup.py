"""Start-up cost of each stage: what a job pays before its first line of real work.

Every rule runs ``python -m w2s <command>`` in a fresh process, which imports the CLI and then the
stage's entry module (``w2s.stages``). For each stage this script times, in a fresh interpreter,
``import w2s.cli`` followed by ``import w2s.<entry>``, and reports it against two baselines timed in
the same rounds: a bare interpreter (``pass``) and ``import torch``. It also reports whether the stage
imports torch, transformers or vllm at all, so a stage that should not need them is visible.
Rounds alternate between the stages and the baselines, so all see the same machine load.

    .venv/bin/python benchmarks/startup.py             # every classification-track stage, 5 rounds
    .venv/bin/python benchmarks/startup.py --rounds 3 --all   # with the reasoning stages too
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import ROOT, markdown_table, median, print_header, spread

sys.path.insert(0, str(ROOT / "workflow"))
from w2s.stages import STAGES  # noqa: E402

HEAVY = ("torch", "transformers", "vllm")


def _probe(code: str) -> tuple[float, list[str]]:
    """Wall seconds of a fresh interpreter running ``code``, and which heavy packages it imported."""
    report = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", report], env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--all", action="store_true", help="include the reasoning track's stages")
    args = parser.parse_args()
    stages = {rule: spec for rule, spec in STAGES.items() if args.all or not rule.startswith("reasoning")}
    probes = {"(bare interpreter)": "pass", "(import torch)": "import torch"}
    probes |= {rule: f"import w2s.cli, w2s.{spec.entry}" for rule, spec in stages.items()}

    print_header("Stage start-up: fresh interpreter, import w2s.cli + the stage's entry module")
    times: dict[str, list[float]] = {name: [] for name in probes}
    heavy: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for name, code in probes.items():
            seconds, imported = _probe(code)
            times[name].append(seconds)
            heavy[name] = imported
    torch_s = median(times["(import torch)"])
    rows = [
        [name, spread(times[name]), f"{median(times[name]) / torch_s:.2f}", ", ".join(heavy[name]) or "-"]
        for name in probes
    ]
    print(markdown_table(["stage", "start-up s, median [min-max]", "ratio to `import torch`", "heavy imports"], rows))


if __name__ == "__main__":
    main()
