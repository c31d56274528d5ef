"""``w2s check-suite``: stream the first rows of suite tasks from the hub and run their formatters.

For users with the network: it shows, task by task, whether the layout a registry entry records
(branch, ``data_dir``, config, columns) still matches the hub, without downloading whole
datasets (``streaming=True``) and without writing anything under ``results/``. Each task gives
one line, ``ok`` with its item count or ``FAIL`` with the first line of the error: a network
failure is reported there too, never as a traceback.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import SuiteError
from .loader import open_split, split_items
from .registry import SUITE, get_task


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one task: its item count, or the error that stopped it."""

    task: str
    items: int = 0
    rows: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        """One line: ``ok   TASK  N items from M rows`` or ``FAIL TASK  error``."""
        if self.ok:
            return f"ok   {self.task}  {self.items} items from {self.rows} rows"
        return f"FAIL {self.task}  {self.error}"


def resolve_tasks(names: Sequence[str]) -> list[str]:
    """The tasks to check: ``names``, or the whole registry when empty; an unknown name is a
    SuiteError that lists the registry."""
    unknown = [n for n in names if n not in SUITE]
    if unknown:
        raise SuiteError(f"unknown suite task(s) {unknown}; available: {sorted(SUITE)}")
    return list(names) or list(SUITE)


def check_task(name: str, rows: int, local_root: str | None = None, seed: int = 0) -> CheckResult:
    """Stream the first ``rows`` rows of each split of ``name`` and format them. ``local_root``:
    read the task from ``local_root/<name>`` (a tree laid out like its branch), not the hub."""
    entry = get_task(name)
    path = str(Path(local_root) / name) if local_root else entry.hf_path
    rng = np.random.default_rng(seed)
    items = read = 0
    try:
        for split in entry.splits:
            stream = open_split(entry, path, split, streaming=True)
            head = list(itertools.islice(stream, rows))
            read += len(head)
            if not head:
                raise SuiteError(f"suite task {name!r}: split {split!r} has no rows")
            columns = getattr(stream, "column_names", None)
            items += len(split_items(entry, split, head, columns, rng))
    except Exception as exc:  # one line per task, whatever failed (network, layout, formatter)
        message = str(exc).strip().splitlines()
        return CheckResult(name, error=f"{type(exc).__name__}: {message[0] if message else ''}")
    return CheckResult(name, items=items, rows=read)


def check_suite(names: Sequence[str], rows: int, local_root: str | None = None) -> list[CheckResult]:
    """Check every task in ``names`` (all of the registry when empty), in order."""
    if rows < 1:
        raise SuiteError(f"--rows must be at least 1, got {rows}")
    return [check_task(name, rows, local_root) for name in resolve_tasks(names)]
