"""SFT and DPO losses against hand-computed values, trl's losses against them (the oracles), and real training
steps of both backends (trl and the hand-written loop) on a tiny causal LM."""

import math

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from w2s.reasoning.prompts import PromptSettings, prompt_ids
from w2s.reasoning.tuning import IGNORE, collate, completion_logprobs, dpo_loss, encode, sft_loss, tune_student
from w2s.runtime import resolve_precision


def test_sft_loss_by_hand():
    # Position 0 predicts token 1 with p = 3/4, position 1 predicts token 0 with p = 1/2; position 2 is unused.
    logits = torch.tensor([[[0.0, math.log(3)], [0.0, 0.0], [5.0, -5.0]]])
    labels = torch.tensor([[IGNORE, 1, 0]])
    expected = -(math.log(3 / 4) + math.log(1 / 2)) / 2
    assert sft_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    total, count = completion_logprobs(logits, labels)
    assert total.item() == pytest.approx(math.log(3 / 4) + math.log(1 / 2), rel=1e-6) and count.item() == 2


def test_sft_loss_averages_over_tokens_not_sequences():
    logits = torch.zeros(2, 4, 2)  # every token has p = 1/2
    labels = torch.tensor([[IGNORE, 0, 1, 1], [IGNORE, IGNORE, IGNORE, 0]])
    assert sft_loss(logits, labels).item() == pytest.approx(math.log(2))


def test_dpo_loss_by_hand():
    # margin = 0.5 * ((-1 - -2) - (-3 - -2)) = 1 -> loss = log(1 + e^-1)
    loss, margin = dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0]), 0.5)
    assert margin.item() == pytest.approx(1.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)))
    # At the reference policy every pair's loss is log 2.
    same = torch.tensor([-4.0, -7.0])
    loss, _ = dpo_loss(same, same - 1, same, same - 1, 0.1)
    assert loss.item() == pytest.approx(math.log(2))


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A 2-layer random Llama with SmolLM2's tokenizer and chat template (real, loadable checkpoint)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from w2s.models import resolve_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint("builtin:SmolLM2-135M-Instruct"))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    out = tmp_path_factory.mktemp("tiny_lm") / "model"
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out, tokenizer


def test_encode_masks_the_prompt_and_ends_with_eos(tiny_lm):
    _, tokenizer = tiny_lm
    prompt = PromptSettings()
    ids, labels = encode(tokenizer, "What is 2+2?", "2+2=4\n#### 4", prompt, max_length=512)
    n_prompt = len(prompt_ids(tokenizer, "What is 2+2?", prompt))
    assert labels[:n_prompt] == [IGNORE] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:] and ids[-1] == tokenizer.eos_token_id
    short_ids, short_labels = encode(tokenizer, "What is 2+2?", "2+2=4\n#### 4", prompt, max_length=n_prompt + 2)
    assert len(short_ids) == n_prompt + 2 and short_labels[-2:] == short_ids[-2:]
    with pytest.raises(ValueError, match="no room"):
        encode(tokenizer, "What is 2+2?", "4", prompt, max_length=n_prompt)


def test_collate_pads_right_and_masks_padding():
    batch = collate([([5, 6, 7], [IGNORE, 6, 7]), ([5], [IGNORE])], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [IGNORE, IGNORE, IGNORE]]


def _train_set(path):
    rows = pd.DataFrame(
        {
            "stage": ["sft", "sft", "dpo", "dpo"],
            "problem_id": ["a", "b", "a", "b"],
            "question": ["What is 2+2?", "What is 3+3?", "What is 2+2?", "What is 3+3?"],
            "chosen": ["2+2=4\n#### 4", "3+3=6\n#### 6", "2+2=4\n#### 4", "3+3=6\n#### 6"],
            "rejected": [None, None, "2+2=5\n#### 5", "3+3=7\n#### 7"],
            "origin": "test",
        }
    )
    rows.to_parquet(path)
    return path


SETTINGS = {"lr": 3e-3, "epochs": 4, "batch_size": 2, "max_length": 128, "warmup_frac": 0.0, "dpo_beta": 0.5}


@pytest.mark.parametrize("backend", ["trl", "loop"])
def test_sft_then_dpo_learn_and_save_a_plain_checkpoint(tiny_lm, tmp_path, backend):
    from transformers import AutoModelForCausalLM

    model_dir, _ = tiny_lm
    settings = {**SETTINGS, "backend": backend}
    info = tune_student(str(model_dir), _train_set(tmp_path / "set.parquet"), settings, {}, 0, tmp_path / "out", "cpu")
    assert info["sft"]["examples"] == 2 and info["sft"]["steps"] == 4
    assert info["sft"]["final_loss"] < info["sft"]["first_loss"]
    assert info["dpo"]["pairs"] == 2
    assert info["dpo"]["first_loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at the start
    assert info["dpo"]["final_loss"] < info["dpo"]["first_loss"] and info["dpo"]["final_reward_margin"] > 0
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert reloaded.config.num_hidden_layers == 2
    assert (tmp_path / "out" / "training.json").exists() and (tmp_path / "out" / "tokenizer.json").exists()
    assert info["precision"] == resolve_precision("auto", torch.device("cpu"))  # what ran, recorded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "set.parquet"]  # no scratch or temporary left


@pytest.mark.parametrize("backend", ["trl", "loop"])
def test_training_is_deterministic_for_a_seed(tiny_lm, tmp_path, backend):
    model_dir, _ = tiny_lm
    train_set = _train_set(tmp_path / "set.parquet")
    weights = []
    for run in ("one", "two", "other_seed"):
        seed = 1 if run == "other_seed" else 0
        settings = {**SETTINGS, "epochs": 1, "backend": backend}
        tune_student(str(model_dir), train_set, settings, {}, seed, tmp_path / run, "cpu")
        weights.append(load_file(tmp_path / run / "model.safetensors"))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


@pytest.mark.parametrize("backend", ["trl", "loop"])
def test_lora_adapters_are_merged_before_saving(tiny_lm, tmp_path, backend):
    model_dir, _ = tiny_lm
    lora = {**SETTINGS, "epochs": 1, "lora": {"r": 4, "alpha": 8}, "backend": backend}
    tune_student(str(model_dir), _train_set(tmp_path / "set.parquet"), lora, {}, 0, tmp_path / "out", "cpu")
    saved = load_file(tmp_path / "out" / "model.safetensors")
    base = load_file(model_dir / "model.safetensors")
    assert not any("lora" in key for key in saved)
    assert set(saved) == set(base)
    assert any(not torch.equal(saved[k], base[k]) for k in base)


@pytest.mark.parametrize(
    "precision, native, bf16",
    [("auto", True, True), ("auto", False, False), ("fp32", True, False), ("bf16", False, True)],
)
def test_trl_autocast_follows_the_precision_setting(monkeypatch, tmp_path, precision, native, bf16):
    from w2s import runtime
    from w2s.reasoning.objectives import TuneSettings
    from w2s.reasoning.trl_tuning import trainer_args

    monkeypatch.setattr(runtime, "native_bf16", lambda device: native)
    for stage in ("sft", "dpo"):
        assert (
            trainer_args(stage, TuneSettings(precision=precision), 0, tmp_path, torch.device("cpu"), examples=4).bf16
            is bf16
        )


def test_unknown_training_settings_are_rejected(tiny_lm, tmp_path):
    model_dir, _ = tiny_lm
    with pytest.raises(ValueError, match="unknown reasoning training settings"):
        tune_student(
            str(model_dir),
            _train_set(tmp_path / "set.parquet"),
            {"learning_rate": 1e-3},
            {},
            0,
            tmp_path / "out",
            "cpu",
        )
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- warmup


def test_optimizer_and_warmup_steps_by_hand():
    from w2s.reasoning.objectives import optimizer_steps, warmup_steps

    assert optimizer_steps(10, 4, 3) == 9  # ceil(10 / 4) = 3 batches per epoch
    assert optimizer_steps(10, 4, 3, processes=2) == 6  # 8 examples per step: ceil(10 / 8) = 2 per epoch
    assert warmup_steps(1.0, 9) == 9 and warmup_steps(0.1, 9) == 1 and warmup_steps(0.0, 9) == 0
    assert warmup_steps(0.3, 10) == 3  # not ceil(3.0000000000000004) = 4
    assert warmup_steps(0.5, 6) == 3


WARMUP_ROWS = pd.DataFrame(
    {
        "stage": "sft",
        "problem_id": [str(i) for i in range(10)],
        "question": [f"What is {i}+{i}?" for i in range(10)],
        "chosen": [f"{i}+{i}={2 * i}\n#### {2 * i}" for i in range(10)],
        "rejected": None,
        "origin": "test",
    }
)


@pytest.mark.parametrize("frac, expected", [(1.0, 9), (0.1, 1)])
def test_both_backends_warm_up_for_the_same_steps(tiny_lm, tmp_path, monkeypatch, frac, expected):
    """10 examples in batches of 4 for 3 epochs: 9 optimizer steps; warmup 1.0 -> 9 steps, 0.1 -> 1."""
    from w2s.reasoning import tuning
    from w2s.reasoning.objectives import TuneSettings
    from w2s.reasoning.trl_tuning import trainer_args

    tune = TuneSettings(epochs=3, batch_size=4, warmup_frac=frac, precision="fp32")
    schedules = []
    monkeypatch.setattr(tuning, "linear_schedule", lambda step, total, warmup: schedules.append((total, warmup)) or 1.0)
    weight = torch.nn.Parameter(torch.ones(2))
    run = tuning._Run(torch.nn.ParameterList([weight]), tiny_lm[1], tune, PromptSettings(), torch.device("cpu"), 0)
    assert len(run._optimize(10, tune.epochs, 0.1, lambda indices: (weight**2).sum(), "sft")) == 9
    assert set(schedules) == {(9, expected)}
    for stage in ("sft", "dpo"):
        args = trainer_args(stage, tune, 0, tmp_path, torch.device("cpu"), examples=10)
        assert args.warmup_steps == expected and args.get_warmup_steps(9) == expected


def test_trl_warms_up_over_every_step_for_a_warmup_fraction_of_one(tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM

    from w2s.reasoning.objectives import TuneSettings
    from w2s.reasoning.trl_tuning import build_trainer, sft_dataset

    model_dir, tokenizer = tiny_lm
    rows = pd.DataFrame({"question": [f"{i}?" for i in range(10)], "chosen": [f"#### {i}" for i in range(10)]})
    tune = TuneSettings(epochs=3, batch_size=4, warmup_frac=1.0, precision="fp32", max_length=72)
    trainer = build_trainer(
        "sft",
        AutoModelForCausalLM.from_pretrained(model_dir),
        tokenizer,
        sft_dataset(tokenizer, rows, PromptSettings(), 72),
        tune,
        0,
        tmp_path,
        torch.device("cpu"),
    )
    trainer.train()
    rates = [entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]
    assert trainer.state.global_step == len(rates) == 9  # the step count trainer_args assumed
    assert all(b > a for a, b in zip(rates, rates[1:]))  # still warming up at the last step


# --------------------------------------------------------------------------- trl against the oracles

QUESTIONS = ["What is 2+2?", "What is 13+29?", "Tom has 3 apples and buys 5 more. How many?"]
CHOSEN = ["2+2=4\n#### 4", "13+29=42\n#### 42", "3+5=8\n#### 8"]
REJECTED = ["2+2=5\n#### 5", "#### 41", "3+5=9, so he has 9 apples\n#### 9"]


def _tiny_model(seed: int, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def _trl_trainer(stage, model, tokenizer, dataset, tmp_path, ref_model=None):
    from w2s.reasoning.objectives import TuneSettings
    from w2s.reasoning.trl_tuning import _trainer_classes, trainer_args

    # The oracles compare losses in fp32 (precision auto is bf16 autocast on an AMX CPU).
    settings = TuneSettings(batch_size=len(QUESTIONS), max_length=128, dpo_beta=0.3, precision="fp32")
    args = trainer_args(stage, settings, 0, tmp_path / stage, torch.device("cpu"), examples=len(dataset))
    args.precompute_ref_log_probs = False  # the reference model is given: its log-probs enter every step
    sft, dpo = _trainer_classes()
    extra = {"ref_model": ref_model} if stage == "dpo" else {}
    return (sft if stage == "sft" else dpo)(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, **extra
    )


def _sft_trainer(tokenizer, tmp_path):
    """trl's SFT trainer on the questions and their chosen answers, in fp32, all in one batch."""
    from w2s.reasoning.trl_tuning import sft_dataset

    rows = pd.DataFrame({"question": QUESTIONS, "chosen": CHOSEN})
    dataset = sft_dataset(tokenizer, rows, PromptSettings(), 128)
    return _trl_trainer("sft", _tiny_model(0, tokenizer), tokenizer, dataset, tmp_path)


def _batch(trainer) -> dict:
    return trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])


def test_trl_datasets_hold_the_tokens_of_the_shared_prompt(tiny_lm):
    from w2s.reasoning.trl_tuning import dpo_dataset, sft_dataset

    _, tokenizer = tiny_lm
    prompt = PromptSettings()
    rows = pd.DataFrame({"question": QUESTIONS, "chosen": CHOSEN, "rejected": REJECTED})
    sft, dpo = sft_dataset(tokenizer, rows, prompt, 128), dpo_dataset(tokenizer, rows, prompt, 128)
    for i, question in enumerate(QUESTIONS):
        ids, labels = encode(tokenizer, question, CHOSEN[i], prompt, 128)
        assert sft[i]["input_ids"] == ids and sft[i]["completion_mask"] == [int(x != IGNORE) for x in labels]
        assert dpo[i]["prompt_ids"] == prompt_ids(tokenizer, question, prompt)
        assert dpo[i]["prompt_ids"] + dpo[i]["chosen_ids"] == ids
        assert dpo[i]["chosen_ids"][-1] == dpo[i]["rejected_ids"][-1] == tokenizer.eos_token_id


def test_trl_sft_loss_equals_the_oracle(tiny_lm, tmp_path):
    _, tokenizer = tiny_lm
    trainer = _sft_trainer(tokenizer, tmp_path)
    batch = _batch(trainer)
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, dict(batch)).item()
        logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        oracle = sft_loss(logits, batch["labels"]).item()
    print(f"SFT: trl {trl_loss:.8f} oracle {oracle:.8f} difference {abs(trl_loss - oracle):.2e}")
    assert trl_loss == pytest.approx(oracle, abs=1e-5)
    assert (batch["labels"] != IGNORE).sum() == sum(
        len(encode(tokenizer, q, c, PromptSettings(), 128)[0]) - len(prompt_ids(tokenizer, q, PromptSettings()))
        for q, c in zip(QUESTIONS, CHOSEN)
    )


def test_trl_dpo_loss_equals_the_oracle_with_a_reference_model(tiny_lm, tmp_path):
    from w2s.reasoning.trl_tuning import dpo_dataset

    _, tokenizer = tiny_lm
    rows = pd.DataFrame({"question": QUESTIONS, "chosen": CHOSEN, "rejected": REJECTED})
    policy, reference = _tiny_model(0, tokenizer), _tiny_model(1, tokenizer)
    trainer = _trl_trainer(
        "dpo", policy, tokenizer, dpo_dataset(tokenizer, rows, PromptSettings(), 128), tmp_path, ref_model=reference
    )
    batch = _batch(trainer)
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, IGNORE)
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, dict(batch)).item()
        logprobs = [
            completion_logprobs(m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, labels)[
                0
            ].chunk(2)
            for m in (trainer.model, reference)
        ]
        oracle, _ = dpo_loss(logprobs[0][0], logprobs[0][1], logprobs[1][0], logprobs[1][1], 0.3)
    print(f"DPO: trl {trl_loss:.8f} oracle {oracle.item():.8f} difference {abs(trl_loss - oracle.item()):.2e}")
    assert trl_loss == pytest.approx(oracle.item(), abs=1e-5)
    assert abs(oracle.item() - math.log(2)) > 1e-3  # the reference differs, so the margin is not trivially zero


def test_trl_sft_labels_are_the_projects_encoding_position_by_position(tiny_lm, tmp_path):
    _, tokenizer = tiny_lm
    trainer = _sft_trainer(tokenizer, tmp_path)
    batch = _batch(trainer)
    for i, (question, completion) in enumerate(zip(QUESTIONS, CHOSEN)):
        ids, labels = encode(tokenizer, question, completion, PromptSettings(), 128)
        row_ids, row_labels, mask = (batch[key][i].tolist() for key in ("input_ids", "labels", "attention_mask"))
        real = [position for position, keep in enumerate(mask) if keep]  # the collator pads after the tokens
        assert [row_ids[p] for p in real] == ids
        assert [row_labels[p] for p in real] == labels  # prompt masked, completion and EOS kept, token by token
        assert all(row_labels[p] == IGNORE for p in range(len(mask)) if not mask[p])


@pytest.mark.parametrize("lora", [None, {"r": 4, "alpha": 8.0, "dropout": 0.0}])
def test_trl_dpo_as_run_precomputes_the_initial_policy_as_its_reference(tiny_lm, tmp_path, lora):
    """The production DPO setup (``build_trainer``): reference log-probs precomputed from the policy as it
    enters DPO (with LoRA: the base model, adapters off); after the policy moves, trl's loss is the DPO
    loss of the moved policy against those initial log-probs."""
    import copy

    from w2s.reasoning.objectives import TuneSettings
    from w2s.reasoning.trl_tuning import build_trainer, dpo_dataset

    _, tokenizer = tiny_lm
    rows = pd.DataFrame({"question": QUESTIONS, "chosen": CHOSEN, "rejected": REJECTED})
    policy = _tiny_model(0, tokenizer)
    initial = copy.deepcopy(policy).eval()
    settings = TuneSettings(batch_size=len(QUESTIONS), max_length=128, dpo_beta=0.3, precision="fp32", lora=lora)
    dataset = dpo_dataset(tokenizer, rows, PromptSettings(), 128)
    trainer = build_trainer("dpo", policy, tokenizer, dataset, settings, 0, tmp_path, torch.device("cpu"))
    batch = _batch(trainer)
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, IGNORE)

    def logprobs(model) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return completion_logprobs(logits, labels)[0].chunk(2)

    with torch.no_grad():
        reference_chosen, reference_rejected = logprobs(initial)
        assert batch["ref_chosen_logps"] == pytest.approx(reference_chosen, abs=1e-4)
        assert batch["ref_rejected_logps"] == pytest.approx(reference_rejected, abs=1e-4)
        generator = torch.Generator().manual_seed(1)
        for parameter in trainer.model.parameters():
            if parameter.requires_grad:  # the weights DPO trains (with LoRA: the adapters only)
                parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
        trl_loss = trainer.compute_loss(trainer.model, dict(batch)).item()
        policy_chosen, policy_rejected = logprobs(trainer.model)
        oracle, _ = dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, 0.3)
    assert trl_loss == pytest.approx(oracle.item(), abs=1e-5)
    assert abs(oracle.item() - math.log(2)) > 1e-3  # the policy moved: not the trivial loss of step 0
