"""What the training loop trains: a transformer classifier (full fine-tune or LoRA) or a linear
probe on frozen features. Each learner maps example indices to logits, predicts probabilities for
a split and saves itself; the loop in ``train.py`` does not need to know which one it drives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .batching import collate, tokenize
from .inference import predict_proba
from .io import atomic_dir, write_json
from .models import check_lora_targets, lora_targets
from .settings import from_config
from .train import load_classifier, save_classifier, training_autocast


@dataclass(frozen=True)
class LoraSettings:
    """``strong.lora``: adapter rank, scaling, dropout and the modules that get adapters (None: the
    architecture's attention and MLP projections, see ``models.lora_targets``)."""

    r: int
    alpha: float
    dropout: float
    targets: list[str] | None = None

    @classmethod
    def from_config(cls, config: dict | None) -> LoraSettings:
        return from_config(cls, config, "LoRA")


def with_lora(model, lora: LoraSettings):
    """``model`` wrapped by peft: adapters on ``lora.targets`` (or the family's) in every transformer
    block, the head trained fully. A target that some block lacks is an error."""
    from peft import LoraConfig, TaskType, get_peft_model

    targets = lora_targets(model.config, lora.targets)
    wrapped = get_peft_model(
        model,
        LoraConfig(task_type=TaskType.SEQ_CLS, r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, **targets),
    )
    check_lora_targets(wrapped, **targets)
    return wrapped


class TextLearner:
    """A sequence classifier over the texts of each split; ``lora`` trains a LoRA adapter only.

    The stages pass ``gradient_checkpointing`` and ``precision`` from the training settings; the
    keyword defaults keep direct callers on plain training with ``auto`` precision.
    """

    def __init__(
        self,
        checkpoint: str,
        label_names: Sequence[str],
        texts: dict[str, list[str]],
        seed: int,
        device: torch.device,
        max_length: int,
        eval_batch_size: int,
        lora: dict | None = None,
        train_split: str = "transfer",
        gradient_checkpointing: bool = False,
        precision: str = "auto",
    ):
        self.model, self.tokenizer = load_classifier(checkpoint, label_names, seed)
        if gradient_checkpointing:
            # Non-reentrant checkpointing also works when only LoRA adapters require gradients.
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if lora is not None:
            self.model = with_lora(self.model, LoraSettings.from_config(lora))
        self.model.to(device)
        self.module, self.device, self.texts = self.model, device, texts
        self.max_length, self.eval_batch_size = max_length, eval_batch_size
        self.train_ids = tokenize(self.tokenizer, texts[train_split], max_length)
        self.lengths = [len(ids) for ids in self.train_ids]  # for length-bucketed training batches
        self.amp_dtype = training_autocast(precision, device)
        self.precision = "bf16" if self.amp_dtype == torch.bfloat16 else "fp32"  # what ran, for train_info

    def logits_of(self, index: torch.Tensor) -> torch.Tensor:
        batch = collate(self.tokenizer, [self.train_ids[i] for i in index]).to(self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            return self.model(**batch).logits

    def predict(self, split: str, index: np.ndarray | None = None) -> np.ndarray:
        texts = self.texts[split] if index is None else [self.texts[split][i] for i in index]
        return predict_proba(self.model, self.tokenizer, texts, self.max_length, self.eval_batch_size, desc=split)

    def save(self, out_dir: str | Path, info: dict) -> None:
        model = self.model.merge_and_unload() if hasattr(self.model, "merge_and_unload") else self.model
        info["precision"] = self.precision  # in the caller's dict too: the stages return what they saved
        save_classifier(model, self.tokenizer, out_dir, info)


class LinearHead(torch.nn.Module):
    """Logistic regression on standardized features."""

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor, num_classes: int):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        self.linear = torch.nn.Linear(len(mean), num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.scale)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return torch.softmax(self(torch.as_tensor(features, dtype=torch.float32)), dim=-1).numpy()

    def save(self, path: str | Path) -> None:
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> LinearHead:
        state = load_file(str(path))
        head = cls(state["mean"], state["scale"], state["linear.weight"].shape[0])
        head.load_state_dict(state)
        return head


class ProbeLearner:
    """A linear probe on frozen features of each split (standardized with transfer statistics)."""

    def __init__(self, features: dict[str, np.ndarray], num_classes: int, seed: int, l2: float):
        torch.manual_seed(seed)
        self.features = {split: torch.as_tensor(x, dtype=torch.float32) for split, x in features.items()}
        train = self.features["transfer"]
        self.module = LinearHead(train.mean(0), train.std(0).clamp_min(1e-6), num_classes)
        self.l2 = l2

    def logits_of(self, index: torch.Tensor) -> torch.Tensor:
        return self.module(self.features["transfer"][index])

    def penalty(self) -> torch.Tensor:
        return self.l2 * self.module.linear.weight.pow(2).sum()

    def predict(self, split: str, index: np.ndarray | None = None) -> np.ndarray:
        features = self.features[split] if index is None else self.features[split][index]
        return self.module.predict_proba(features)

    def save(self, out_dir: str | Path, info: dict) -> None:
        with atomic_dir(out_dir) as tmp:
            self.module.save(Path(tmp) / "probe.safetensors")
            write_json(info, Path(tmp) / "train_info.json")
