"""Which precision ``auto`` resolves to on each kind of device, and what an explicit bf16 is refused on.

CUDA devices are patched in (availability, compute capability, name) as a V100 (7.0) and an A100
(8.0); CPUs through torch's capability query, with and without AMX-BF16 and AVX512-BF16.
"""

import json

import pytest
import torch

from w2s import runtime
from w2s.runtime import engine_dtype, native_bf16, resolve_precision, resolved_precisions

CUDA = torch.device("cuda")
CPU = torch.device("cpu")
GPUS = {(7, 0): "Tesla V100-SXM2-16GB", (7, 5): "Tesla T4", (8, 0): "NVIDIA A100-SXM4-40GB"}


def _cuda(monkeypatch, capability: tuple[int, int]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: GPUS[capability])
    # torch's own answer includes emulation (True on 7.x): it must not decide anything.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    _cpu(monkeypatch, amx=True, avx512=True)  # the CPU's answer must not leak into CUDA's


def _cpu(monkeypatch, amx: bool, avx512: bool) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": amx, "avx512_bf16": avx512})


@pytest.mark.parametrize("capability, native", [((7, 0), False), ((7, 5), False), ((8, 0), True)])
def test_cuda_bf16_is_native_from_capability_8_0(monkeypatch, capability, native):
    _cuda(monkeypatch, capability)
    assert native_bf16(CUDA) is native
    # auto: bf16 where native; otherwise fp32 for training and features, float16 for a BERT engine.
    assert resolve_precision("auto", CUDA) == ("bf16" if native else "fp32")
    assert resolve_precision("auto", CUDA, "features") == ("bf16" if native else "fp32")
    assert engine_dtype("auto", "cuda", "bert") == ("bfloat16" if native else "float16")
    assert engine_dtype("auto", "auto", "bert") == ("bfloat16" if native else "float16")  # auto picks CUDA


def test_engine_dtype_below_8_0_is_float32_where_float16_is_unsafe_or_unknown(monkeypatch):
    _cuda(monkeypatch, (7, 0))
    assert engine_dtype("auto", "cuda", "gemma2") == "float32"  # vLLM refuses it in float16
    assert engine_dtype("auto", "cuda", None) == "float32"  # unknown model: fp32 is always correct
    assert engine_dtype("auto", "cuda", "qwen2") == "float16"


def test_explicit_bf16_on_a_v100_names_the_device_and_its_capability(monkeypatch):
    _cuda(monkeypatch, (7, 0))
    match = r"Tesla V100-SXM2-16GB.*compute capability 7\.0"
    with pytest.raises(ValueError, match=match):
        resolve_precision("bf16", CUDA)
    with pytest.raises(ValueError, match=match):
        engine_dtype("bfloat16", "cuda")
    from w2s.train import training_autocast

    with pytest.raises(ValueError, match=match):  # what the learners call before any training step
        training_autocast("bf16", CUDA)
    # Explicit settings that the device runs pass through.
    assert resolve_precision("fp32", CUDA) == "fp32" and engine_dtype("float16", "cuda") == "float16"


def test_explicit_bf16_on_an_a100_passes(monkeypatch):
    _cuda(monkeypatch, (8, 0))
    assert resolve_precision("bf16", CUDA) == "bf16" and engine_dtype("bfloat16", "cuda") == "bfloat16"


@pytest.mark.parametrize("amx, avx512, native", [(True, True, True), (False, True, True), (False, False, False)])
def test_cpu_bf16_is_native_with_amx_or_avx512_bf16(monkeypatch, amx, avx512, native):
    _cpu(monkeypatch, amx, avx512)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert native_bf16(CPU) is native
    for stage in runtime.STAGES[:2]:
        assert resolve_precision("auto", CPU, stage) == ("bf16" if native else "fp32")
    assert engine_dtype("auto", "cpu") == ("bfloat16" if native else "float32")
    assert engine_dtype("auto") == ("bfloat16" if native else "float32")
    # A CPU runs explicit bf16 whatever it has (emulated without either instruction set).
    assert resolve_precision("bf16", CPU) == "bf16" and engine_dtype("bfloat16", "cpu") == "bfloat16"


@pytest.mark.parametrize("stage", runtime.STAGES)
def test_a_stage_measured_slower_in_bf16_stays_fp32_on_avx512_bf16_only(monkeypatch, stage):
    """The per-stage table decides AVX512-BF16-only CPUs, and only them: AMX CPUs keep bf16."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(runtime.AVX512_BF16_AUTO, stage, False)
    _cpu(monkeypatch, amx=False, avx512=True)
    assert runtime.auto_bf16(CPU, stage) is False
    assert [runtime.auto_bf16(CPU, other) for other in runtime.STAGES if other != stage] == [True, True]
    _cpu(monkeypatch, amx=True, avx512=True)
    assert runtime.auto_bf16(CPU, stage) is True


def test_auto_never_resolves_to_auto_and_bad_names_are_refused(monkeypatch):
    _cpu(monkeypatch, amx=False, avx512=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolved_precisions("auto", "auto") == {"train_precision": "fp32", "engine_dtype": "float32"}
    _cuda(monkeypatch, (7, 5))
    assert resolved_precisions("auto", "auto", model_type="llama") == {
        "train_precision": "fp32",
        "engine_dtype": "float16",
    }
    with pytest.raises(ValueError, match="'fp16' is not one of"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="stage 'labels' is not one of"):
        runtime.auto_bf16(CPU, "labels")


def test_checkpoint_model_type_reads_a_local_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gemma2"}))
    assert runtime.checkpoint_model_type(tmp_path) == "gemma2"
    assert runtime.checkpoint_model_type(tmp_path / "missing") is None
    assert runtime.checkpoint_model_type(None) is None
