"""Decoder-only models (SmolLM2-135M, Llama architecture) as classifiers: head seeding, pad token,
gradient accumulation, length-bucketed batches, last-token features, and SmolLM2 through the real
stages: fine-tuned as a weak teacher (``train_teacher``) and trained as a LoRA student (``train_role``),
each checkpoint reloaded and its recorded numbers recomputed from it."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from w2s.batching import bucketed_batches, collate, tokenize
from w2s.features import extract_features, read_features
from w2s.inference import pool
from w2s.io import read_provenance
from w2s.learners import TextLearner
from w2s.losses import build_loss
from w2s.models import is_decoder_only, lora_target_modules, resolve_checkpoint
from w2s.train import TrainSettings, load_classifier, one_hot, train_loop

SMOL = "builtin:SmolLM2-135M-Instruct"
TEXTS = ["a wonderful, moving film", "dull and far too long, with nothing in it", "great acting", "a mess"] * 2
LABELS = np.array([1, 0, 1, 0] * 2)


@pytest.fixture(scope="module")
def smol() -> str:
    return resolve_checkpoint(SMOL)


def test_bucketed_batches_cover_every_example_once_and_group_lengths():
    lengths = [int(x) for x in np.random.default_rng(0).integers(1, 100, 103)]
    batches = bucketed_batches(lengths, 4, 5, torch.Generator().manual_seed(0))
    flat = torch.cat(batches).tolist()
    assert sorted(flat) == list(range(103)) and len(batches) == 26  # ceil(103 / 4)
    again = bucketed_batches(lengths, 4, 5, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 30  # sorted within chunks of 20: far below the ~60 of random batches


def test_pool_hand_values():
    hidden = torch.arange(12, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    torch.testing.assert_close(pool(hidden, mask, "mean"), torch.tensor([[1.0, 2.0], [8.0, 9.0]]))
    torch.testing.assert_close(pool(hidden, mask, "last_token"), torch.tensor([[2.0, 3.0], [10.0, 11.0]]))
    torch.testing.assert_close(pool(hidden, mask, "cls"), torch.tensor([[0.0, 1.0], [6.0, 7.0]]))


def test_decoder_head_is_seeded_and_pad_token_synced(smol, tmp_path):
    first, tokenizer = load_classifier(smol, ["neg", "pos"], 0)
    second, _ = load_classifier(smol, ["neg", "pos"], 0)
    other, _ = load_classifier(smol, ["neg", "pos"], 1)
    assert is_decoder_only(first.config) and lora_target_modules(first.config)[0] == "q_proj"
    assert torch.equal(first.score.weight, second.score.weight)
    assert not torch.equal(first.score.weight, other.score.weight)
    assert first.config.pad_token_id == tokenizer.pad_token_id is not None and tokenizer.padding_side == "right"
    ids = tokenize(tokenizer, TEXTS[:2], 32)
    with torch.no_grad():
        batched = first(**collate(tokenizer, ids)).logits
        single = torch.cat([first(**collate(tokenizer, [i])).logits for i in ids])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)


def test_gradient_accumulation_equals_one_big_batch(smol):
    """One step of batch 8 in passes of 2 gives the loss and the weights of one pass of 8."""
    results = []
    for minibatch in (None, 2):
        settings = TrainSettings(
            epochs=1, batch_size=8, lr=1e-3, max_length=32, minibatch_size=minibatch, warmup_frac=0.0
        )
        # fp32: exact equality up to float rounding (bf16 autocast, auto on AMX-BF16 CPUs, rounds more)
        learner = TextLearner(
            smol, ["neg", "pos"], {"transfer": TEXTS}, 0, torch.device("cpu"), 32, 8, precision="fp32"
        )
        out = train_loop(
            learner.module,
            learner.logits_of,
            one_hot(LABELS, 2),
            build_loss("logconf"),
            settings,
            0,
            lengths=learner.lengths,
        )
        results.append((out["loss_curve"], learner.model.score.weight.detach().clone()))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-5)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-5, rtol=1e-4)


def test_last_token_features_and_provenance(smol, tiny_splits, tmp_path):
    inputs = {"test": str(tiny_splits / "test.parquet")}
    outputs = {"test": str(tmp_path / "test.parquet")}
    extract_features(SMOL, inputs, outputs, max_length=32, batch_size=8, device="cpu", layer=-2, pooling="auto")
    ids, x = read_features(outputs["test"])
    assert x.shape == (48, 576) and np.isfinite(x).all()
    meta = read_provenance(outputs["test"])
    assert meta["pooling"] == "last_token" and meta["layer"] == -2
    assert ids == pq.read_table(inputs["test"]).column("id").to_pylist()


EOS_TEXTS = ["great acting<|im_end|>", "a mess<|im_end|><|im_end|>"]  # SmolLM2's EOS, also its pad token


def test_a_text_ending_in_the_eos_string_is_pooled_at_its_own_last_token(smol):
    """Batched classification pools the last token of the text, as vLLM does, not the one before."""
    model, tokenizer = load_classifier(smol, ["neg", "pos"], 0)
    assert tokenizer.eos_token == tokenizer.pad_token == "<|im_end|>"
    ids = tokenize(tokenizer, EOS_TEXTS + TEXTS[:1], 32)
    assert all(row[-1] != tokenizer.pad_token_id for row in ids)
    batch = collate(tokenizer, ids)
    with torch.no_grad():
        pooled = model(**batch).logits
        hidden = model.model(**batch).last_hidden_state
        last = torch.stack([hidden[i, len(row) - 1] for i, row in enumerate(ids)])  # each text's own last token
        torch.testing.assert_close(pooled, model.score(last), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_vllm_labels_a_decoder_teacher_like_transformers(smol, tmp_path, monkeypatch):
    from w2s.labeling import label_texts
    from w2s.train import save_classifier

    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    model, tokenizer = load_classifier(smol, ["neg", "pos"], 0)
    save_classifier(model, tokenizer, tmp_path / "teacher", {})
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tmp_path / "teacher")  # reloads as a classifier, pad token kept
    assert config.architectures == ["LlamaForSequenceClassification"] and config.pad_token_id is not None
    # float32 pinned: compared at 1e-4 (dtype auto is bfloat16 on AMX-BF16 CPUs).
    texts = TEXTS + EOS_TEXTS  # texts that end in the EOS string, which is also the pad token
    tf = label_texts(
        tmp_path / "teacher", texts, {"engine": "transformers", "max_length": 32, "batch_size": 3, "dtype": "float32"}
    )
    vl = label_texts(
        tmp_path / "teacher",
        texts,
        {
            "engine": "vllm",
            "max_length": 32,
            "max_num_batched_tokens": 256,
            "max_num_seqs": 8,
            "in_process": True,
            "dtype": "float32",
        },
    )
    assert np.abs(tf - vl).max() < 1e-4 and tf.std(axis=0).max() > 1e-3


# --------------------------------------------------------------------------- SmolLM2 as teacher and LoRA student

STAGE_TRAIN = {"epochs": 1, "batch_size": 8, "max_length": 32, "eval_batch_size": 16}
SMOL_SIZES = {"weak_train": 24, "transfer": 24, "val": 8, "test": 16}  # 3 steps of batch 8 per role
LORA_TARGETS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def _direct_probs(model, tokenizer, texts: list[str], max_length: int) -> np.ndarray:
    """Softmax of one unpadded forward per text: no batching, padding or length sorting involved."""
    rows = []
    with torch.no_grad():
        for text in texts:
            batch = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
            rows.append(torch.softmax(model(**batch).logits.float(), dim=-1)[0].numpy())
    return np.stack(rows)


def _reload(path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return (
        AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval(),
        AutoTokenizer.from_pretrained(path),
    )


@pytest.fixture(scope="module")
def smol_splits(tmp_path_factory):
    from w2s.data import prepare_splits

    out_dir = tmp_path_factory.mktemp("smol_rotten_tomatoes") / "data"
    spec = {"source": "builtin", "sizes": SMOL_SIZES}
    prepare_splits("rotten_tomatoes", spec, seed=0, out_dir=out_dir)
    return out_dir


@pytest.fixture(scope="module")
def smol_teacher(smol, smol_splits, tmp_path_factory):
    """SmolLM2 fine-tuned as a weak teacher by the train_weak stage, and its transformers labels."""
    from w2s.labeling import label_splits
    from w2s.teacher import train_teacher

    root = tmp_path_factory.mktemp("smol_teacher")
    info = train_teacher(smol_splits, SMOL, STAGE_TRAIN, 0, root / "model", device="cpu")
    splits = ("transfer", "test")
    label_splits(
        root / "model",
        {s: smol_splits / f"{s}.parquet" for s in splits},
        {s: root / "labels" / f"{s}.parquet" for s in splits},
        {"engine": "transformers", "max_length": 32, "batch_size": 8, "device": "cpu", "dtype": "float32"},
    )
    return root, info


def test_smollm2_teacher_checkpoint_reloads_and_its_numbers_recompute(smol, smol_splits, smol_teacher):
    from transformers import AutoConfig, LlamaForSequenceClassification

    from w2s.io import read_json

    root, info = smol_teacher
    assert info["role"] == "weak_teacher" and info["steps"] == info["total_steps"] == 3  # 24 examples / 8
    assert len(info["loss_curve"]) == 3 and np.isfinite(info["loss_curve"]).all()
    assert read_json(root / "model" / "train_info.json") == info
    names = read_json(smol_splits / "manifest.json")["label_names"]
    config = AutoConfig.from_pretrained(root / "model")
    assert config.architectures == ["LlamaForSequenceClassification"] and list(config.id2label.values()) == names
    model, tokenizer = _reload(root / "model")
    assert isinstance(model, LlamaForSequenceClassification)
    assert model.config.pad_token_id is not None and model.config.pad_token_id == tokenizer.pad_token_id
    untrained, _ = load_classifier(smol, names, 0)
    assert not torch.equal(model.score.weight, untrained.score.weight)  # the trained head was saved

    val = pq.read_table(smol_splits / "val.parquet").to_pandas()
    val_probs = _direct_probs(model, tokenizer, val["text"].tolist(), 32)
    assert info["val_accuracy"] == pytest.approx(float((val_probs.argmax(1) == val["label"].to_numpy()).mean()))
    for split in ("transfer", "test"):
        labels = pq.read_table(root / "labels" / f"{split}.parquet").to_pandas()
        assert labels["id"].tolist() == pq.read_table(smol_splits / f"{split}.parquet").column("id").to_pylist()
        probs = _direct_probs(model, tokenizer, labels["text"].tolist(), 32)
        assert np.abs(np.stack(labels["soft_label"]) - probs).max() < 1e-4, split
        assert (labels["hard_label"].to_numpy() == probs.argmax(1)).all(), split


def _lora_student_spec() -> tuple[dict, dict]:
    """The strong spec and xent method of a resolved config (schema defaults) with SmolLM2 in LoRA mode."""
    from w2s.config import resolve_config
    from w2s.experiments import method_spec, strong_spec

    config = resolve_config(
        {
            "seeds": [0],
            "tasks": {"rotten_tomatoes": {"source": "builtin", "sizes": SMOL_SIZES}},
            "models": {"smol": {"checkpoint": SMOL}},
            "weak": {"models": ["smol"]},
            "strong": {"models": ["smol"], "mode": "lora", "train": STAGE_TRAIN, "methods": {"xent": {}}},
        }
    )
    return strong_spec(config, "smol"), method_spec(config, "xent")


def test_smollm2_lora_adapters_sit_on_every_llama_projection(smol):
    from w2s.strong import StrongTrainer

    spec, _ = _lora_student_spec()
    assert spec["mode"] == "lora" and spec["lora"]["targets"] is None  # the architecture's own targets
    trainer = StrongTrainer(spec, SMOL, ["neg", "pos"], 0, "cpu", {"transfer": TEXTS, "test": TEXTS}, None)
    model = trainer.new_learner(0).model
    adapted = [name for name, module in model.named_modules() if hasattr(module, "lora_A")]
    assert {name.rsplit(".", 1)[-1] for name in adapted} == LORA_TARGETS
    assert len(adapted) == len(LORA_TARGETS) * model.config.num_hidden_layers
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in name or ".score." in name for name in trainable)
    assert any(".score." in name for name in trainable)  # the new head trains fully


def test_smollm2_lora_student_merges_reloads_and_its_predictions_recompute(smol, smol_splits, smol_teacher, tmp_path):
    from safetensors.torch import load_file
    from transformers import LlamaForSequenceClassification

    from w2s.io import read_json
    from w2s.strong import train_role

    spec, method = _lora_student_spec()
    names = read_json(smol_splits / "manifest.json")["label_names"]
    labels = smol_teacher[0] / "labels"
    info = train_role(
        "student",
        spec,
        method,
        str(labels / "transfer.parquet"),
        str(smol_splits / "test.parquet"),
        {},
        SMOL,
        names,
        0,
        "cpu",
        tmp_path / "model",
        tmp_path / "predictions.parquet",
    )
    assert info["mode"] == "lora" and info["rounds"][0]["n_train"] == 24 and info["rounds"][0]["steps"] == 3

    merged = load_file(str(tmp_path / "model" / "model.safetensors"))
    base = load_file(str(Path(smol) / "model.safetensors"))
    assert not any("lora" in key for key in merged) and not (tmp_path / "model" / "adapter_config.json").exists()
    layer = "model.layers.0."
    for name in ("self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj"):
        assert not torch.equal(merged[f"{layer}{name}.weight"], base[f"{layer}{name}.weight"]), name  # merged
    for name in ("model.embed_tokens.weight", f"{layer}input_layernorm.weight", "model.norm.weight"):
        assert torch.equal(merged[name], base[name]), name  # outside the adapters: untouched

    model, tokenizer = _reload(tmp_path / "model")
    assert isinstance(model, LlamaForSequenceClassification) and model.config.pad_token_id == tokenizer.pad_token_id
    predictions = pq.read_table(tmp_path / "predictions.parquet").to_pandas()
    assert read_provenance(tmp_path / "predictions.parquet")["mode"] == "lora"
    for split, source in (("transfer", labels / "transfer.parquet"), ("test", smol_splits / "test.parquet")):
        rows = predictions[predictions["split"] == split]
        inputs = pq.read_table(source, columns=["id", "text"]).to_pandas()
        assert rows["id"].tolist() == inputs["id"].tolist(), split
        probs = _direct_probs(model, tokenizer, inputs["text"].tolist(), 32)
        assert np.abs(np.stack(rows["soft_label"]) - probs).max() < 1e-4, split
