"""GPU smoke test: the classification stages on one NVIDIA GPU, in bf16, without Snakemake or a network.

For a tiny random BERT and a tiny random Llama classifier, both built from configs with a word-level
tokenizer made here, it runs the real stage entry points of the ``w2s`` package on a synthetic task:

    prepare_splits -> train_teacher -> label_splits (transformers engine) -> train_role (full fine-tune)
                                                                           -> train_role (LoRA)
                                    -> python -m w2s label-weak (vLLM engine; only where vllm is installed)

and prints PASS or FAIL per stage with its wall time and step throughput. The vLLM label job runs as
a workflow job does, in its own process: its line gives the job's exit status and the seconds from
its "labels written" log line to the end of the process (an exit that hangs or aborts after the
labels are written shows there). Needs torch, transformers, peft, pandas and pyarrow (what a bare
GPU node has; without vllm its stage prints a SKIP line); run from the repository root:

    python benchmarks/gpu_smoke.py                 # on CUDA (exits 2 when no GPU is visible)
    python benchmarks/gpu_smoke.py --device cpu    # the same run on the CPU, fp32 (what the test suite does)
    python benchmarks/gpu_smoke.py --no-vllm       # without the vLLM label job

Exit status: 0 when every stage passed, 1 when one failed, 2 when CUDA was asked for and is absent.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

WORDS_POSITIVE = ["good", "great", "fine", "superb", "lovely", "bright", "happy", "warm"]
WORDS_NEGATIVE = ["bad", "poor", "dull", "awful", "grim", "sad", "cold", "weak"]
WORDS_NEUTRAL = ["the", "a", "film", "story", "cast", "plot", "scene", "music", "and", "was", "very", "quite"]
SIZES = {"weak_train": 256, "transfer": 256, "val": 64, "test": 256}
MIN_ACCURACY = 0.75  # chance is 0.5; every stage reaches ~1.0 on CPU in fp32


def synthetic_rows(n: int, seed: int) -> list[dict]:
    """Texts with words of their label's class among neutral filler: learnable in a few dozen steps."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = int(rng.integers(2))
        strong = WORDS_POSITIVE if label else WORDS_NEGATIVE
        words = [*rng.choice(strong, int(rng.integers(1, 4))), *rng.choice(WORDS_NEUTRAL, int(rng.integers(4, 20)))]
        rng.shuffle(words)
        rows.append({"text": f"{i} " + " ".join(words), "label": ["negative", "positive"][label]})
    return rows


def word_tokenizer(out_dir: Path):
    """A word-level fast tokenizer over the synthetic vocabulary (and digits), with [PAD]/[UNK]/[CLS]/[SEP]."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {
        token: i
        for i, token in enumerate([*specials, *WORDS_POSITIVE, *WORDS_NEGATIVE, *WORDS_NEUTRAL, *map(str, range(10))])
    }
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(True)])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=128,
    )
    fast.save_pretrained(out_dir)
    return fast


def tiny_model(arch: str, out_dir: Path) -> Path:
    """A random 2-layer classifier (head_dim 32) saved with the word tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, LlamaConfig, LlamaForSequenceClassification

    tokenizer = word_tokenizer(out_dir)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=256,
        num_labels=2,
    )
    torch.manual_seed(0)
    if arch == "bert":
        model = BertForSequenceClassification(BertConfig(**common))
    else:
        model = LlamaForSequenceClassification(
            LlamaConfig(**common, num_key_value_heads=4, pad_token_id=tokenizer.pad_token_id)
        )
    model.save_pretrained(out_dir)
    return out_dir


class Report:
    """PASS/FAIL lines per stage, with wall time and what each stage measured."""

    def __init__(self) -> None:
        self.results: list[dict] = []

    def run(self, name: str, stage: Callable[[], dict]) -> dict | None:
        started = time.perf_counter()
        try:
            measured = stage() or {}
        except Exception:  # the smoke test reports every stage, so it keeps going
            seconds = time.perf_counter() - started
            print(f"FAIL {name:<28} {seconds:7.1f} s")
            traceback.print_exc()
            self.results.append({"stage": name, "passed": False, "seconds": seconds})
            return None
        seconds = time.perf_counter() - started
        shown = "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in measured.items())
        print(f"PASS {name:<28} {seconds:7.1f} s  {shown}", flush=True)
        self.results.append({"stage": name, "passed": True, "seconds": seconds, **measured})
        return measured


def steps_per_second(info: dict) -> dict:
    """Optimizer steps and steps/s over the stage's own time (model load and saving included)."""
    steps = sum(r.get("steps", 0) for r in info.get("rounds", [info]))
    return {"steps": steps, "steps_per_s": steps / info["seconds"] if info.get("seconds") else float("nan")}


def learned(measured: dict, key: str, floor: float = MIN_ACCURACY) -> dict:
    """``measured``, or an error when its accuracy shows the stage learned nothing (a broken bf16 path
    trains without crashing, so running is not enough)."""
    if not measured[key] > floor:
        raise AssertionError(f"{key} = {measured[key]:.3f} <= {floor}: the model did not learn the synthetic task")
    return measured


def test_accuracy(labels_or_predictions: Path, data_dir: Path) -> float:
    """Accuracy of the hard labels of a weak-label or prediction Parquet on the test split's gold."""
    import pandas as pd

    table = pd.read_parquet(labels_or_predictions)
    if "split" in table:
        table = table[table["split"] == "test"]
    gold = pd.read_parquet(data_dir / "test.parquet").set_index("id")["label"]
    return float((table["hard_label"].to_numpy() == gold.loc[table["id"]].to_numpy()).mean())


def smoke(arch: str, device: str, work: Path, data_dir: Path, report: Report, with_vllm: bool = True) -> None:
    from w2s.labeling import label_splits
    from w2s.strong import train_role
    from w2s.teacher import train_teacher

    model = tiny_model(arch, work / f"{arch}_init")
    train = {"epochs": 4, "batch_size": 32, "lr": 2e-3, "max_length": 64}
    teacher_dir = work / f"{arch}_teacher"

    def teacher() -> dict:
        info = train_teacher(data_dir, str(model), train, seed=0, out_dir=teacher_dir, device=device)
        return learned({**steps_per_second(info), "val_acc": info["val_accuracy"]}, "val_acc")

    labels = {split: work / f"{arch}_labels_{split}.parquet" for split in ("transfer", "test")}

    def labeling() -> dict:
        started = time.perf_counter()
        label_splits(
            teacher_dir,
            {s: data_dir / f"{s}.parquet" for s in labels},
            labels,
            {"engine": "transformers", "device": device, "max_length": 64},
        )
        return learned(
            {
                "texts_per_s": (SIZES["transfer"] + SIZES["test"]) / (time.perf_counter() - started),
                "weak_test_acc": test_accuracy(labels["test"], data_dir),
            },
            "weak_test_acc",
        )

    def student(mode: str) -> Callable[[], dict]:
        def run() -> dict:
            # LoRA adapts a random model through rank-8 updates only: it needs larger and more steps.
            settings = {**train, "lr": 1e-2, "epochs": 8} if mode == "lora" else train
            spec = {
                "mode": mode,
                "train": settings,
                "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
                "probe": {},
                "early_stopping": {"enabled": False},
            }
            predictions = work / f"{arch}_{mode}_predictions.parquet"
            info = train_role(
                "student",
                spec,
                {},
                str(labels["transfer"]),
                str(data_dir / "test.parquet"),
                {},
                str(model),
                ["negative", "positive"],
                0,
                device,
                work / f"{arch}_{mode}_model",
                predictions,
            )
            return learned({**steps_per_second(info), "test_acc": test_accuracy(predictions, data_dir)}, "test_acc")

        return run

    if report.run(f"{arch}: teacher ({device})", teacher) is None:
        return
    if report.run(f"{arch}: labeling (transformers)", labeling) is None:
        return
    if with_vllm:
        vllm_label_job(arch, teacher_dir, work, data_dir, report)
    report.run(f"{arch}: student full fine-tune", student("full_finetune"))
    report.run(f"{arch}: student LoRA", student("lora"))


def label_job(command: list[str], env: dict[str, str]) -> tuple[int, float | None, str]:
    """Run a ``python -m w2s label-weak`` job; returns its exit status, the seconds from its "labels written"
    log line to the end of its process (None if it never logged it) and its last output lines."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    written_at, tail = None, []
    for line in process.stdout:
        if written_at is None and "labels written" in line:
            written_at = time.perf_counter()
        tail = [*tail[-39:], line]
    status = process.wait()
    exited_at = time.perf_counter()
    return status, None if written_at is None else exited_at - written_at, "".join(tail)


def vllm_label_job(arch: str, teacher_dir: Path, work: Path, data_dir: Path, report: Report) -> None:
    """The teacher's weak labels from ``python -m w2s label-weak`` with the vLLM engine, where vllm is installed."""
    name = f"{arch}: label job (vllm)"
    if importlib.util.find_spec("vllm") is None:
        print(f"SKIP {name:<28} vllm is not installed")
        return
    outputs = {split: work / f"{arch}_vllm_labels_{split}.parquet" for split in ("transfer", "test")}

    def job() -> dict:
        command = [
            sys.executable,
            "-m",
            "w2s",
            "label-weak",
            "--checkpoint",
            str(teacher_dir),
            "--inputs",
            *(f"{s}={data_dir / f'{s}.parquet'}" for s in outputs),
            "--outputs",
            *(f"{s}={path}" for s, path in outputs.items()),
            "--settings",
            json.dumps({"engine": "vllm", "max_length": 64}),
        ]
        path = os.pathsep.join(filter(None, [str(ROOT / "workflow"), os.environ.get("PYTHONPATH")]))
        status, written_to_exit_s, tail = label_job(command, {**os.environ, "PYTHONPATH": path})
        if status != 0 or written_to_exit_s is None:
            raise RuntimeError(
                f"the label job exited with status {status}, labels written to exit: "
                f"{written_to_exit_s} s; its last output:\n{tail}"
            )
        return learned(
            {
                "exit_status": status,
                "written_to_exit_s": written_to_exit_s,
                "weak_test_acc": test_accuracy(outputs["test"], data_dir),
            },
            "weak_test_acc",
        )

    report.run(name, job)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--arch", nargs="+", default=["bert", "llama"], choices=["bert", "llama"])
    parser.add_argument("--json", type=Path, help="also write the per-stage results here")
    parser.add_argument("--no-vllm", action="store_true", help="skip the vLLM label job even where vllm is installed")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device visible: nothing to smoke-test (use --device cpu for a CPU run)")
        return 2
    if args.device == "cuda":
        print(f"device: {torch.cuda.get_device_name(0)}, bf16 supported: {torch.cuda.is_bf16_supported()}")
    print(f"torch {torch.__version__}")

    from w2s.data import prepare_splits

    report = Report()
    with tempfile.TemporaryDirectory(prefix="w2s-gpu-smoke-") as tmp:
        work = Path(tmp)
        source = work / "synthetic.jsonl"
        source.write_text("".join(json.dumps(row) + "\n" for row in synthetic_rows(sum(SIZES.values()) + 64, 0)))
        data_dir = work / "data"
        spec = {"source": "file", "path": str(source), "sizes": SIZES}
        if report.run("data: prepare_splits", lambda: prepare_splits("synthetic", spec, 0, data_dir) and {}) is None:
            return 1
        for arch in args.arch:
            smoke(arch, args.device, work, data_dir, report, with_vllm=not args.no_vllm)
    passed = sum(r["passed"] for r in report.results)
    print(f"{passed} passed, {len(report.results) - passed} failed")
    if args.json:
        args.json.write_text(json.dumps(report.results, indent=2))
    return 0 if passed == len(report.results) else 1


if __name__ == "__main__":
    sys.exit(main())
