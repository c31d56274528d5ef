"""Process-level settings shared by every stage: seeds, threads, device."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
from collections.abc import Iterator

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


CUDA_BF16_CAPABILITY = (8, 0)  # Ampere: bf16 tensor cores; vLLM refuses bf16 below this
PRECISIONS = ("auto", "fp32", "bf16")
STAGES = ("train", "features", "engine")
# On CPUs with AVX512-BF16 but no AMX (AMD Zen 4, Intel Cooper Lake), whether ``auto`` picks bf16, per
# stage, from benchmarks/precision.py on a Zen 4 EPYC (benchmarks/README.md, "bf16 on a CPU without AMX").
# AMX-BF16 CPUs and CUDA devices of capability >= 8.0 use bf16 in every stage.
AVX512_BF16_AUTO = {"train": True, "features": True, "engine": True}
# Model types that vLLM refuses to run in float16 (vllm.config.model._FLOAT16_NOT_SUPPORTED_MODELS).
FP16_UNSTABLE_MODEL_TYPES = frozenset({"gemma2", "gemma3", "gemma3_text", "glm4"})


def cpu_bf16_kind() -> str | None:
    """How this CPU multiplies bf16: ``amx`` (AMX-BF16 tiles), ``avx512_bf16`` (dot-product
    instructions only), or None (bf16 is converted to fp32 and back: slower than fp32). From torch's
    own CPU capability query."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    found = capabilities() if capabilities is not None else {}
    if found.get("amx_bf16", False):
        return "amx"
    return "avx512_bf16" if found.get("avx512_bf16", False) else None


def cuda_capability(device: torch.device) -> tuple[int, int]:
    major, minor = torch.cuda.get_device_capability(device)
    return int(major), int(minor)


def describe_device(device: torch.device) -> str:
    """The device as an error message names it: its name and what decides its bf16 support."""
    if device.type == "cuda":
        major, minor = cuda_capability(device)
        return f"CUDA device {torch.cuda.get_device_name(device)!r} (compute capability {major}.{minor})"
    if device.type == "cpu":
        return f"CPU (bf16 support: {cpu_bf16_kind() or 'none, emulated'})"
    return f"device {device}"


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware: a CUDA device of compute capability
    >= 8.0 (torch's ``is_bf16_supported()`` also says yes on 7.x, where bf16 is emulated), or a CPU
    with AMX-BF16 or AVX512-BF16."""
    if device.type == "cuda":
        return torch.cuda.is_available() and cuda_capability(device) >= CUDA_BF16_CAPABILITY
    if device.type == "cpu":
        return cpu_bf16_kind() is not None
    return False


def auto_bf16(device: torch.device, stage: str) -> bool:
    """Whether ``auto`` runs ``stage`` (one of :data:`STAGES`) in bf16 on ``device``: where it is native
    (:func:`native_bf16`) and, on a CPU without AMX, where :data:`AVX512_BF16_AUTO` measured it faster."""
    if stage not in STAGES:
        raise ValueError(f"precision stage {stage!r} is not one of {STAGES}")
    if not native_bf16(device):
        return False
    return device.type != "cpu" or cpu_bf16_kind() == "amx" or AVX512_BF16_AUTO[stage]


def check_bf16(device: torch.device, what: str) -> None:
    """Refuse bf16 on a CUDA device without it in hardware, naming the device and its capability (vLLM
    would refuse it; training would run emulated, slower than fp32). A CPU runs an explicit bf16 on any
    model, only slower without AVX512-BF16 or AMX, so it stays allowed there, e.g. to reproduce
    results computed in bf16 elsewhere."""
    if device.type == "cuda" and not native_bf16(device):
        raise ValueError(
            f"{what} bf16 was requested but the {describe_device(device)} has no native bf16 "
            f"(needs compute capability >= {CUDA_BF16_CAPABILITY[0]}.{CUDA_BF16_CAPABILITY[1]}); "
            "use fp32 (or auto)"
        )


def resolve_precision(precision: str, device: torch.device, stage: str = "train") -> str:
    """``auto`` -> ``bf16`` where :func:`auto_bf16` says so for ``stage`` (``train`` or ``features``), else
    ``fp32`` (also on CUDA devices below capability 8.0); ``fp32`` and ``bf16`` pass through, bf16 only
    where :func:`check_bf16` allows it. What a stage records in its outputs' provenance."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if precision == "auto":
        return "bf16" if auto_bf16(device, stage) else "fp32"
    if precision == "bf16":
        check_bf16(device, f"{stage} precision")
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


def checkpoint_model_type(checkpoint: str | os.PathLike | None) -> str | None:
    """``model_type`` from a local checkpoint's config.json; None when there is no such file."""
    if checkpoint is None:
        return None
    try:
        with open(os.path.join(checkpoint, "config.json"), encoding="utf-8") as f:
            return json.load(f).get("model_type")
    except (OSError, ValueError):
        return None


def engine_dtype(dtype: str, device: str = "auto", model_type: str | None = None) -> str:
    """The concrete dtype an inference engine (vLLM labeling and sampling, the transformers labeling
    engine) runs in, never ``auto``, so provenance names what ran. ``auto``: bfloat16 where
    :func:`auto_bf16` says so for the ``engine`` stage; float32 on other CPUs (bf16 is emulated there);
    on CUDA devices below capability 8.0, where vLLM refuses bf16, float16 for a ``model_type`` known to
    run in it, float32 when the type is unknown (None) or one that vLLM refuses in float16
    (:data:`FP16_UNSTABLE_MODEL_TYPES`): a model trained in bf16 can overflow fp16's range, and fp32 is
    always correct. Explicit dtypes pass through; ``bfloat16`` only where :func:`check_bf16` allows it."""
    torch_device = pick_device(device)
    if dtype == "bfloat16":
        check_bf16(torch_device, "engine dtype")
    if dtype != "auto":
        return dtype
    if auto_bf16(torch_device, "engine"):
        return "bfloat16"
    if torch_device.type == "cuda" and model_type is not None and model_type not in FP16_UNSTABLE_MODEL_TYPES:
        return "float16"
    return "float32"


def resolved_precisions(
    train_precision: str, dtype: str, device: str = "auto", model_type: str | None = None
) -> dict[str, str]:
    """What a teacher trained with ``train_precision`` and labelled by an engine with ``dtype`` run on
    ``device`` (``auto``: CUDA when visible), resolved on this machine: ``{"train_precision": "fp32" |
    "bf16", "engine_dtype": "float32" | "bfloat16" | "float16"}``. ``model_type`` (the checkpoint's,
    :func:`checkpoint_model_type`) decides float16 vs float32 on CUDA below capability 8.0."""
    return {
        "train_precision": resolve_precision(train_precision, pick_device(device), "train"),
        "engine_dtype": engine_dtype(dtype, device, model_type),
    }
