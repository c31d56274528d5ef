"""benchmarks/gpu_smoke.py, the script a session lent a GPU runs: here on the CPU, so it cannot rot."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_smoke.py"
STEPS = ("teacher (cpu)", "labeling (transformers)", "student full fine-tune", "student LoRA")


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_every_stage_passes_on_the_cpu_and_learns(tmp_path):
    out = tmp_path / "smoke.json"
    result = _run("--device", "cpu", "--no-vllm", "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 passed, 0 failed" in result.stdout
    stages = json.loads(out.read_text())
    assert [s["stage"] for s in stages][1:] == [f"{arch}: {step}" for arch in ("bert", "llama") for step in STEPS]
    assert all(s["passed"] for s in stages)
    assert all(s[key] > 0.75 for s in stages for key in ("val_acc", "weak_test_acc", "test_acc") if key in s)


@pytest.mark.slow
def test_the_vllm_label_job_reports_its_exit_status_and_exit_time(tmp_path):
    pytest.importorskip("vllm")
    out = tmp_path / "smoke.json"
    result = _run("--device", "cpu", "--arch", "bert", "--json", str(out), timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    stages = {s["stage"]: s for s in json.loads(out.read_text())}
    job = stages["bert: label job (vllm)"]
    assert job["passed"] and job["exit_status"] == 0 and job["weak_test_acc"] > 0.75
    assert 0 <= job["written_to_exit_s"] < 60  # an exit that hangs after the labels shows here
    assert "written_to_exit_s=" in result.stdout


def test_without_vllm_its_stage_says_so(monkeypatch, capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "vllm" else real_find_spec(name, *args)
    )
    report = smoke.Report()
    smoke.vllm_label_job("bert", tmp_path / "teacher", tmp_path, tmp_path / "data", report)
    assert report.results == []
    out = capsys.readouterr().out
    assert out.startswith("SKIP bert: label job (vllm)") and out.rstrip().endswith("vllm is not installed")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_without_a_gpu_it_says_so_and_exits_2():
    result = _run(timeout=120)
    assert result.returncode == 2 and "no CUDA device" in result.stdout
