"""Parameter counts of checkpoints, read from safetensors headers (no weights are loaded).

A safetensors file starts with an 8-byte little-endian header length and a JSON header naming
every tensor's shape, so counting parameters costs a few kilobytes of reading however large the
model. Sharded checkpoints list their shards in ``model.safetensors.index.json``.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from pathlib import Path

INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "model.safetensors"


def safetensors_parameters(path: str | Path) -> int:
    """Number of scalar parameters stored in one .safetensors file."""
    with open(path, "rb") as handle:
        (header_length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_length))
    return sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")


def checkpoint_parameters(directory: str | Path) -> int | None:
    """Parameters of the checkpoint in ``directory`` (single file or sharded); None without safetensors."""
    directory = Path(directory)
    if (directory / INDEX_NAME).is_file():
        shards = set(json.loads((directory / INDEX_NAME).read_text())["weight_map"].values())
        return sum(safetensors_parameters(directory / shard) for shard in sorted(shards))
    if (directory / WEIGHTS_NAME).is_file():
        return safetensors_parameters(directory / WEIGHTS_NAME)
    return None


def _local_directory(reference: str) -> Path | None:
    """The local directory of a checkpoint reference: builtin, a path, or a hub name already cached."""
    from .models import ModelResolutionError, resolve_checkpoint

    try:
        resolved = Path(resolve_checkpoint(reference))
    except ModelResolutionError:  # a missing local path or builtin: no weights here, so no size
        return None
    if resolved.is_dir():
        return resolved
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(reference, local_files_only=True, allow_patterns=["*.json", "*.safetensors"]))
    except Exception:  # not cached (offline) or not a hub name: the size is unknown, not an error
        return None


def reference_parameters(reference: str) -> int | None:
    """Parameters of a configured checkpoint reference, or None when its weights are not on this machine."""
    directory = _local_directory(reference)
    return None if directory is None else checkpoint_parameters(directory)


def model_parameters(models: Mapping[str, Mapping]) -> dict[str, int | None]:
    """Parameter count per configured model name (the ``models`` config section).

    This is the pretrained checkpoint's size: the backbone a linear probe reads and the starting
    point of fine-tuning; the classification head (a few thousand parameters) is not counted.
    """
    return {name: reference_parameters(spec["checkpoint"]) for name, spec in models.items()}
