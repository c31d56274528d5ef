"""Typed settings from plain config dicts, with unknown keys rejected by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def from_config(cls: type[T], config: dict | None, what: str) -> T:
    """``cls(**config)`` for a dataclass, or a ValueError naming the keys ``cls`` does not have."""
    config = dict(config or {})
    unknown = set(config) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} settings: {sorted(unknown)}")
    return cls(**config)


Check = Callable[[bool, str, str], None]


def merged_settings(what: str, defaults: Mapping, given: Mapping | None) -> tuple[dict, Check]:
    """``given`` merged over ``defaults`` (an unknown key is a ValueError naming the known ones), and
    ``check(ok, key, requirement)``, which raises ``ValueError("<what> setting key=value: requirement")``."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown {what} settings {unknown}; known: {sorted(defaults)}")
    resolved = {**defaults, **given}

    def check(ok: bool, key: str, requirement: str) -> None:
        if not ok:
            raise ValueError(f"{what} setting {key}={resolved[key]!r}: {requirement}")

    return resolved, check


def is_int(value) -> bool:
    """An integer, numpy's included, and not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A real number, numpy's included, and not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
