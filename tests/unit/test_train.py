"""The fine-tuning loop and the weak-teacher stage on tiny real checkpoints and data."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from w2s.learners import TextLearner
from w2s.losses import build_loss
from w2s.teacher import train_teacher
from w2s.train import TrainSettings, linear_schedule, one_hot, train_loop

TEXTS = ["a wonderful, moving film", "dull and far too long", "great acting", "a boring mess"] * 4
LABELS = np.array([1, 0, 1, 0] * 4)
SETTINGS = TrainSettings(epochs=2, batch_size=4, lr=1e-3, max_length=16)


def _fine_tune(checkpoint, seed: int, settings: TrainSettings) -> tuple[TextLearner, dict]:
    learner = TextLearner(
        str(checkpoint), ["neg", "pos"], {"transfer": TEXTS}, seed, torch.device("cpu"), settings.max_length, 8
    )
    result = train_loop(learner.module, learner.logits_of, one_hot(LABELS, 2), build_loss("xent"), settings, seed)
    return learner, result


def _train(checkpoint, seed: int) -> dict[str, torch.Tensor]:
    learner, _ = _fine_tune(checkpoint, seed, SETTINGS)
    return {k: v.clone() for k, v in learner.model.state_dict().items()}


def test_linear_schedule_hand_values():
    # 10 steps, 2 warmup: 0.5, 1.0, then (10 - step) / 8
    assert [linear_schedule(s, 10, 2) for s in (0, 1, 2, 6, 9)] == [0.5, 1.0, 1.0, 0.5, 0.125]


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


def test_same_seed_same_weights_different_seed_different(tiny_classifier):
    first, second, other = _train(tiny_classifier, 0), _train(tiny_classifier, 0), _train(tiny_classifier, 1)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_training_reduces_the_loss(tiny_classifier):
    settings = TrainSettings(epochs=15, batch_size=8, lr=5e-3, max_length=16, warmup_frac=0.0)
    losses = _fine_tune(tiny_classifier, 0, settings)[1]["loss_curve"]
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:2])


def test_teacher_stage_writes_a_loadable_safetensors_checkpoint(tiny_classifier, tiny_splits, tmp_path):
    out = tmp_path / "weak" / "model"
    info = train_teacher(tiny_splits, str(tiny_classifier), {"epochs": 1, "batch_size": 16}, 0, out)
    assert (out / "model.safetensors").exists() and not list(out.glob("*.bin"))
    assert load_file(out / "model.safetensors")
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.id2label == {0: "rotten", 1: "fresh"}
    saved = json.loads((out / "train_info.json").read_text())
    assert saved["steps"] == info["steps"] == 3  # 48 examples / batch 16
    assert 0.0 <= saved["val_accuracy"] <= 1.0
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_teacher_rejects_unknown_setting(tiny_classifier, tiny_splits, tmp_path):
    with pytest.raises(ValueError, match="unknown training settings"):
        train_teacher(tiny_splits, str(tiny_classifier), {"epoch": 1}, 0, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def _cpu_capabilities(monkeypatch, amx_bf16: bool) -> None:
    """Pretend the CPU has (or lacks) native bf16 (AMX-BF16 and AVX512-BF16), as torch's capability query
    reports it (AVX512-BF16 alone: tests/unit/test_runtime.py)."""
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": amx_bf16, "avx512_bf16": amx_bf16})


@pytest.mark.parametrize("amx, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_is_bf16_only_with_native_bf16_on_the_cpu(monkeypatch, amx, expected):
    from w2s.runtime import native_bf16, resolve_precision
    from w2s.train import training_autocast

    _cpu_capabilities(monkeypatch, amx)
    cpu = torch.device("cpu")
    assert native_bf16(cpu) is amx
    assert resolve_precision("auto", cpu) == expected
    assert training_autocast("auto", cpu) == (torch.bfloat16 if amx else None)
    # Explicit settings win over the capability: fp32 stays fp32 with AMX, bf16 is bf16 without.
    assert training_autocast("fp32", cpu) is None and resolve_precision("fp32", cpu) == "fp32"
    assert training_autocast("bf16", cpu) == torch.bfloat16 and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError):
        training_autocast("fp16", cpu)


@pytest.mark.parametrize("bf16_supported", [True, False])
def test_auto_precision_on_cuda_follows_bf16_support(monkeypatch, bf16_supported):
    from w2s.runtime import resolve_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (8, 0) if bf16_supported else (7, 0))
    _cpu_capabilities(monkeypatch, not bf16_supported)  # the CPU's answer must not leak into CUDA's
    assert resolve_precision("auto", torch.device("cuda")) == ("bf16" if bf16_supported else "fp32")


@pytest.mark.parametrize("amx", [True, False])
def test_saved_teacher_records_the_precision_that_ran(tiny_classifier, monkeypatch, tmp_path, amx):
    _cpu_capabilities(monkeypatch, amx)
    learner, result = _fine_tune(tiny_classifier, 0, SETTINGS)
    assert learner.precision == ("bf16" if amx else "fp32")
    learner.save(tmp_path / "model", {"settings": {"precision": "auto"}})
    info = json.loads((tmp_path / "model" / "train_info.json").read_text())
    assert info["precision"] == learner.precision and info["settings"]["precision"] == "auto"
    assert np.isfinite(result["loss_curve"]).all()
