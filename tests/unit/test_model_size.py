"""Parameter counts from safetensors headers, on hand-written files (no weights loaded, no network)."""

import json
import struct

from w2s.model_size import checkpoint_parameters, model_parameters, reference_parameters, safetensors_parameters


def _write_safetensors(path, shapes: dict[str, list[int]]) -> None:
    """A valid safetensors file: 8-byte header length, JSON header, then the float32 data."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes.items():
        size = 4
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def test_single_file_count_by_hand(tmp_path):
    # 3 x 4 weight + 4 bias + a scalar = 12 + 4 + 1
    _write_safetensors(tmp_path / "model.safetensors", {"w": [3, 4], "b": [4], "s": []})
    assert safetensors_parameters(tmp_path / "model.safetensors") == 17
    assert checkpoint_parameters(tmp_path) == 17
    assert reference_parameters(str(tmp_path)) == 17


def test_sharded_checkpoint_counts_each_shard_once(tmp_path):
    _write_safetensors(tmp_path / "a.safetensors", {"w": [2, 5]})
    _write_safetensors(tmp_path / "b.safetensors", {"v": [7], "u": [1, 1]})
    index = {"weight_map": {"w": "a.safetensors", "v": "b.safetensors", "u": "b.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert checkpoint_parameters(tmp_path) == 10 + 7 + 1


def test_weights_not_on_this_machine_give_none(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert checkpoint_parameters(tmp_path) is None  # a directory without safetensors
    assert reference_parameters(str(tmp_path / "missing")) is None
    assert reference_parameters("no-such-org/no-such-model-w2s") is None
    _write_safetensors(tmp_path / "model.safetensors", {"w": [2, 2]})
    models = {"here": {"checkpoint": str(tmp_path)}, "away": {"checkpoint": "./not/here"}}
    assert model_parameters(models) == {"here": 4, "away": None}
