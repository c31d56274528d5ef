"""Training throughput: our trainer against reference-style loops, and against the machine's fp32 peak.

Four loops fine-tune MiniLM-L6 (the packaged checkpoint as a 2-class classifier; ``--model`` picks
another packaged checkpoint, e.g. MPNet-base) with AdamW at batch 16 on the same real Rotten Tomatoes
reviews, each round the same number of steps on the same texts, in alternation:

- ours: ``w2s.train.train_loop`` driving ``w2s.learners.TextLearner`` as the teacher stage runs
  them (texts tokenized once, fused AdamW, length-bucketed batches, each padded to its longest text,
  precision ``auto``: bf16 autocast on a CPU with AMX-BF16, fp32 elsewhere);
- ours before: the same with torch's default per-tensor AdamW, plain shuffled batches and fp32 (the
  trainer before fused AdamW on the CPU, bucketing and bf16 on AMX became the defaults);
- reference, padded: dataset order, every batch padded to max_length (a fixed shape);
- reference, minibatch 1: dataset order, one text per forward pass, the 16 logits stacked into one
  loss and one backward (what openai/weak-to-strong's train_model does with its default
  minibatch_size_per_device=1), so no padding but batch-1 kernels.

Achieved FLOP/s = 6 x N x tokens / time, with N the non-embedding parameters (embedding look-ups
do no matmul work) and tokens counted two ways: real tokens (useful work) and tokens including
padding (work done). The peak is the best of large fp32 ``torch.matmul`` runs in the same script.

    .venv/bin/python benchmarks/training.py           # 3 rounds of 8 steps per loop
    .venv/bin/python benchmarks/training.py --quick   # 1 round of 2 steps
    .venv/bin/python benchmarks/training.py --breakdown  # also: where a step of ours spends its time
    .venv/bin/python benchmarks/training.py --model builtin:all-mpnet-base-v2 --steps 4 --rounds 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from unittest.mock import patch

from common import MINILM, classifier_checkpoint, gpu_section, markdown_table, median, print_header, reviews, spread

# isort: split
# (common first: it sets environment defaults that torch and tqdm read when they load)
import numpy as np
import torch

BATCH = 16
MAX_LENGTH = 128
LR = 5e-5


class Counter:
    """Real and padded tokens of the batches a loop ran."""

    def __init__(self) -> None:
        self.real = 0
        self.padded = 0

    def add(self, lengths: list[int], padded_length: int) -> None:
        self.real += sum(lengths)
        self.padded += len(lengths) * padded_length


def synchronizer(device: str) -> Callable[[], None]:
    """Waits for queued GPU work, so wall-clock times cover it; a no-op on the CPU."""
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def matmul_peak(device: str, size: int = 2048, repeats: int = 8) -> float:
    """Best fp32 FLOP/s of a size x size matmul."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    sync = synchronizer(device)
    best = float("inf")
    for _ in range(repeats):
        sync()
        best = min(best, timed_sync(lambda: a @ b, sync)[0])
    return 2 * size**3 / best


def non_embedding_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)


class Ours:
    """``train_loop`` + ``TextLearner`` exactly as the teacher stage runs them (``before=False``; precision
    ``auto``: bf16 autocast where the CPU has AMX-BF16, fp32 elsewhere), or with the trainer's settings
    before issue 16 (``before=True``): torch's per-tensor AdamW, plain shuffled batches and fp32 (what
    ``auto`` meant on every CPU then), the baseline of the new trainer, in the same run."""

    def __init__(self, checkpoint: Path, texts: list[str], targets: np.ndarray, device: str, before: bool = False):
        from w2s.learners import TextLearner

        self.before = before
        self.learner = TextLearner(
            str(checkpoint),
            ["neg", "pos"],
            {"transfer": texts},
            seed=0,
            device=torch.device(device),
            max_length=MAX_LENGTH,
            eval_batch_size=64,
            precision="fp32" if before else "auto",
        )
        self.name = (
            "ours before: default AdamW, shuffled batches, fp32"
            if before
            else f"ours: fused AdamW, length-bucketed batches, {self.learner.precision}"
        )
        self.targets, self.model, self.counter = targets, self.learner.model, Counter()

    def logits_of(self, index: torch.Tensor) -> torch.Tensor:
        lengths = [len(self.learner.train_ids[i]) for i in index]
        self.counter.add(lengths, max(lengths))
        return self.learner.logits_of(index)

    def run(self, steps: int, seed: int) -> None:
        import w2s.train
        from w2s.losses import SoftCrossEntropy
        from w2s.train import TrainSettings, train_loop

        n = steps * BATCH
        settings = TrainSettings(
            epochs=1,
            batch_size=BATCH,
            lr=LR,
            max_length=MAX_LENGTH,
            bucket_batches=0 if self.before else TrainSettings.bucket_batches,
        )
        # "before": the optimizer make_optimizer built before fused AdamW on the CPU.
        optimizer_devices = patch.object(w2s.train, "FUSED_ADAMW_DEVICES", ("cuda",)) if self.before else nullcontext()
        with optimizer_devices:
            train_loop(
                self.model,
                self.logits_of,
                self.targets[:n],
                SoftCrossEntropy(),
                settings,
                seed,
                lengths=self.learner.lengths[:n],
            )


class Reference:
    """A plain loop in dataset order: fixed max_length padding, or minibatches of one text."""

    def __init__(self, checkpoint: Path, texts: list[str], targets: np.ndarray, device: str, minibatch: int):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name = (
            "reference, padded to max_length"
            if minibatch == BATCH
            else f"reference, minibatch {minibatch} (openai style)"
        )
        self.device, self.minibatch, self.counter = device, minibatch, Counter()
        torch.manual_seed(0)
        self.model = AutoModelForSequenceClassification.from_pretrained(checkpoint).to(device)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        self.ids = tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        self.pad_id = tokenizer.pad_token_id
        self.targets = torch.as_tensor(targets)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=LR, weight_decay=0.01)

    def forward(self, rows: list[list[int]]) -> torch.Tensor:
        width = MAX_LENGTH if self.minibatch > 1 else max(len(r) for r in rows)
        self.counter.add([len(r) for r in rows], width)
        input_ids = torch.full((len(rows), width), self.pad_id)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.as_tensor(row)
        mask = (torch.arange(width) < torch.tensor([len(r) for r in rows])[:, None]).long()
        return self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)).logits

    def run(self, steps: int, seed: int) -> None:
        self.model.train()
        for step in range(steps):
            start = step * BATCH
            logits = torch.cat(
                [self.forward(self.ids[i : i + self.minibatch]) for i in range(start, start + BATCH, self.minibatch)]
            )
            target = self.targets[start : start + BATCH].to(self.device)
            loss = -(target * torch.log_softmax(logits.float(), dim=-1)).sum(-1).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            loss.item()


def measure(device: str, steps: int, rounds: int, model: str = MINILM) -> None:
    texts = reviews()[: steps * BATCH]
    targets = np.eye(2, dtype=np.float32)[np.arange(len(texts)) % 2]
    sync = synchronizer(device)
    with tempfile.TemporaryDirectory(prefix="w2s_train_bench_") as tmp:
        checkpoint = classifier_checkpoint(Path(tmp) / "model", model=model)
        loops = [
            Ours(checkpoint, texts, targets, device),
            Ours(checkpoint, texts, targets, device, before=True),
            Reference(checkpoint, texts, targets, device, minibatch=BATCH),
            Reference(checkpoint, texts, targets, device, minibatch=1),
        ]
        params = non_embedding_params(loops[0].model)
        all_params = sum(p.numel() for p in loops[0].model.parameters())
        for loop in loops:  # warm-up: allocator, optimizer state, first-call costs
            loop.run(1, seed=0)
        peaks = [matmul_peak(device)]
        times: dict[str, list[float]] = {loop.name: [] for loop in loops}
        tokens: dict[str, Counter] = {}
        for round_index in range(rounds):
            order = loops if round_index % 2 == 0 else loops[::-1]
            for loop in order:
                loop.counter = Counter()
                sync()
                start = time.perf_counter()
                loop.run(steps, seed=round_index)
                sync()
                times[loop.name].append(time.perf_counter() - start)
                tokens[loop.name] = loop.counter
            peaks.append(matmul_peak(device))
            print(f"round {round_index + 1}: " + ", ".join(f"{n} {t[-1]:.1f} s" for n, t in times.items()), flush=True)

    peak = max(peaks)
    ours = loops[0].name
    print(
        f"\n{steps} steps x batch {BATCH} per loop per round, {rounds} rounds; {model}: {params / 1e6:.1f}M "
        f"non-embedding parameters ({all_params / 1e6:.1f}M with embeddings); fp32 matmul peak "
        f"{peak / 1e9:.0f} GFLOP/s (best of {len(peaks)} measurements, median {median(peaks) / 1e9:.0f})\n"
    )
    rows = []
    for loop in loops:
        t, count = times[loop.name], tokens[loop.name]
        speedups = [b / a for a, b in zip(times[ours], t)]
        real_flops = 6 * params * count.real / median(t)
        padded_flops = 6 * params * count.padded / median(t)
        rows.append(
            [
                loop.name,
                spread(t),
                f"{count.real / median(t):.0f}",
                f"{count.padded / median(t):.0f}",
                f"{count.padded / count.real:.2f}",
                spread(speedups),
                f"{real_flops / 1e9:.1f} ({real_flops / peak:.1%})",
                f"{padded_flops / 1e9:.1f} ({padded_flops / peak:.1%})",
            ]
        )
    print(
        markdown_table(
            [
                "loop",
                "seconds per round",
                "real tokens/s",
                "tokens/s incl. padding",
                "padded/real",
                "ours faster by (x, per round)",
                "GFLOP/s real tokens (of peak)",
                "GFLOP/s incl. padding (of peak)",
            ],
            rows,
        )
    )
    print(
        f"\nWith all {all_params / 1e6:.1f}M parameters in 6*N*tokens the FLOP/s figures would be "
        f"{all_params / params:.2f}x higher; attention FLOPs are left out (small at these lengths)."
    )


def breakdown(device: str, steps: int) -> None:
    """Where one step of our loop spends its time: the phases of ``train_loop``, timed one by one."""
    from w2s.losses import SoftCrossEntropy

    texts = reviews()[: steps * BATCH]
    targets = torch.as_tensor(np.eye(2, dtype=np.float32)[np.arange(len(texts)) % 2])
    with tempfile.TemporaryDirectory(prefix="w2s_train_bench_") as tmp:
        ours = Ours(classifier_checkpoint(Path(tmp) / "minilm"), texts, targets.numpy(), device)
    model, loss_fn = ours.model.train(), SoftCrossEntropy()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=0.01)
    phases = {"forward + loss": 0.0, "backward": 0.0, "clip_grad_norm_": 0.0, "AdamW step": 0.0}
    sync = synchronizer(device)
    marks: list[float] = []

    def mark() -> None:
        sync()
        marks.append(time.perf_counter())

    for step, index in enumerate(torch.randperm(len(texts), generator=torch.Generator().manual_seed(0)).split(BATCH)):
        marks.clear()
        mark()
        loss = loss_fn(ours.logits_of(index), targets[index].to(device), 0.0)
        optimizer.zero_grad(set_to_none=True)
        mark()
        loss.backward()
        mark()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        mark()
        optimizer.step()
        mark()
        if step:  # the first step allocates the optimizer state
            for name, start, end in zip(phases, marks, marks[1:]):
                phases[name] += end - start
    total = sum(phases.values())
    print(f"\n## Where a step of ours goes ({steps - 1} steps, {1000 * total / (steps - 1):.0f} ms per step)\n")
    print(
        markdown_table(
            ["phase", "ms per step", "share"],
            [[name, f"{1000 * t / (steps - 1):.0f}", f"{t / total:.0%}"] for name, t in phases.items()],
        )
    )

    # The optimizer step as train_loop builds it (torch's default for-each-parameter AdamW on the CPU)
    # against fused=True, alternating, on the gradients of the last step.
    fused = torch.optim.AdamW(trainable, lr=LR, weight_decay=0.01, fused=True)
    fused.step()
    times: dict[str, list[float]] = {"default": [], "fused": []}
    for round_index in range(6):
        pairs = [("default", optimizer), ("fused", fused)]
        for name, opt in pairs if round_index % 2 == 0 else pairs[::-1]:
            seconds, _ = timed_sync(opt.step, sync)
            times[name].append(seconds)
    ratios = [d / f for d, f in zip(times["default"], times["fused"])]
    print(
        f"\nAdamW step: default {1000 * median(times['default']):.0f} ms, fused=True "
        f"{1000 * median(times['fused']):.0f} ms; fused faster by {spread(ratios)}x"
    )


def timed_sync(fn: Callable[[], object], sync: Callable[[], None]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    sync()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round of 2 steps per loop")
    parser.add_argument("--steps", type=int, help="optimizer steps per loop per round (default 8)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 3)")
    parser.add_argument("--breakdown", action="store_true", help="also time the phases of one step of ours")
    parser.add_argument(
        "--model",
        default=MINILM,
        help="packaged checkpoint to fine-tune (default MiniLM-L6; builtin:all-mpnet-base-v2 for MPNet)",
    )
    args = parser.parse_args()
    steps = args.steps or (2 if args.quick else 8)
    rounds = args.rounds or (1 if args.quick else 3)
    print_header("Training throughput: w2s.train.train_loop vs reference-style loops")
    measure("cpu", steps, rounds, args.model)
    if args.breakdown:
        breakdown("cpu", steps + 1)
    gpu_section(lambda device: measure(device, steps, rounds, args.model))


if __name__ == "__main__":
    main()
