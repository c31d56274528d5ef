"""Process-level settings shared by every stage: seeds, threads, device."""

from __future__ import annotations

import contextlib
import math
import os
import random
from typing import Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(preference: str = "auto") -> torch.device:
    """``auto`` takes CUDA when visible (a GPU granted by Slurm or present locally), else the CPU."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but no CUDA device is visible")
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(preference)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs that support it; full fp32 on the CPU (no bf16 speed-up there)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore what was there."""
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def vllm_cpu_environment(kv_cache_gb: float, in_process: bool) -> dict[str, str]:
    """Variables a vLLM engine reads at start: its CPU KV cache (whole GiB, rounded up; a value the
    user set wins) and, with ``in_process``, the engine core in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0)."""
    values = {}
    if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        values["VLLM_CPU_KVCACHE_SPACE"] = str(max(1, math.ceil(kv_cache_gb)))
    if in_process:
        values["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    return values
