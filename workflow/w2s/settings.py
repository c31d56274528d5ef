"""Typed settings from plain config dicts, with unknown keys rejected by name."""

from __future__ import annotations

from dataclasses import fields
from typing import TypeVar

T = TypeVar("T")


def from_config(cls: type[T], config: dict | None, what: str) -> T:
    """``cls(**config)`` for a dataclass, or a ValueError naming the keys ``cls`` does not have."""
    config = dict(config or {})
    unknown = set(config) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} settings: {sorted(unknown)}")
    return cls(**config)
