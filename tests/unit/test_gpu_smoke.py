"""benchmarks/gpu_smoke.py, the script a session lent a GPU runs: here on the CPU, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_smoke.py"


def test_every_stage_passes_on_the_cpu_and_learns(tmp_path):
    out = tmp_path / "smoke.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 passed, 0 failed" in result.stdout
    stages = json.loads(out.read_text())
    assert [s["stage"] for s in stages][1:] == [f"{arch}: {step}" for arch in ("bert", "llama") for step in
                                                ("teacher (cpu)", "labeling (transformers)",
                                                 "student full fine-tune", "student LoRA")]
    assert all(s["passed"] for s in stages)
    assert all(s[key] > 0.75 for s in stages for key in ("val_acc", "weak_test_acc", "test_acc") if key in s)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_without_a_gpu_it_says_so_and_exits_2():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no CUDA device" in result.stdout
