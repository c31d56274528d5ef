"""Labeled texts, the one shape every task becomes, and their validation.

This module sits below the task registry (:mod:`w2s.tasks`), the Burns suite (:mod:`w2s.suite`) and
the data stage, and imports nothing else from the package, so all of them can use it without an
import loop. ``to_labeled`` checks raw texts and labels; ``from_columns`` also takes a task's group
and difficulty columns, and ``from_rows`` accepts what a task function returns (rows, columns or a
DataFrame).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MAX_EXAMPLES = 5
ROW_FIELDS = ("text", "label", "group", "difficulty")  # what a task function's rows may hold


class DataError(ValueError):
    """A task's input data is unusable; the message names the task and the problem."""


@dataclass
class LabeledTexts:
    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    groups: list[str] | None = None  # items sharing a group stay in one split
    difficulty: list | None = None  # raw values of a task's difficulty column (w2s.difficulty)


def _examples(items: Sequence[Any]) -> str:
    shown = ", ".join(repr(item) for item in list(items)[:MAX_EXAMPLES])
    return shown + (", ..." if len(items) > MAX_EXAMPLES else "")


def is_missing(value: Any) -> bool:
    """None, NaN or NA: a value a row does not have."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _as_int(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return None


def _check_texts(task: str, texts: Sequence[Any]) -> list[str]:
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        missing = sum(1 for i in bad if is_missing(texts[i]))
        raise DataError(
            f"task {task!r}: {len(bad)} of {len(texts)} rows have empty, whitespace-only, "
            f"non-string or missing text ({missing} missing); first row indices: {_examples(bad)}"
        )
    return list(texts)


def _infer_label_names(task: str, labels: Sequence[Any]) -> list[str]:
    if all(isinstance(v, str) for v in labels):
        return sorted(set(labels))
    ints = [_as_int(v) for v in labels]
    if all(i is not None for i in ints):
        negative = sorted({i for i in ints if i < 0})
        if negative:
            raise DataError(
                f"task {task!r}: integer labels must be >= 0 without label_names; found {_examples(negative)}"
            )
        return [str(i) for i in range(max(ints) + 1)]
    kinds = sorted({type(v).__name__ for v in labels})
    raise DataError(
        f"task {task!r}: labels must be all strings or all integers (or give label_names); found types {kinds}"
    )


def _map_labels(task: str, labels: Sequence[Any], label_names: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(label_names)}
    mapped = np.empty(len(labels), dtype=np.int64)
    unknown: Counter = Counter()
    unknown_rows: list[int] = []
    for row, value in enumerate(labels):
        as_int = None if isinstance(value, str) else _as_int(value)
        if isinstance(value, str) and value in index:
            mapped[row] = index[value]
        elif as_int is not None and 0 <= as_int < len(label_names):
            mapped[row] = as_int
        else:
            unknown[value] += 1
            unknown_rows.append(row)
    if unknown:
        listed = ", ".join(f"{v!r} ({n} rows)" for v, n in unknown.most_common(10))
        raise DataError(
            f"task {task!r}: {len(unknown_rows)} rows have labels outside label_names "
            f"{label_names}: {listed}; first row indices: {_examples(unknown_rows)}"
        )
    return mapped


def to_labeled(
    task: str, texts: Sequence[Any], labels: Sequence[Any], label_names: list[str] | None = None
) -> LabeledTexts:
    """Validate raw texts and labels and map labels to class indices."""
    texts = _check_texts(task, texts)
    missing = [i for i, v in enumerate(labels) if is_missing(v)]
    if missing:
        raise DataError(
            f"task {task!r}: {len(missing)} of {len(labels)} rows have a missing label; "
            f"first row indices: {_examples(missing)}"
        )
    names = list(label_names) if label_names else _infer_label_names(task, labels)
    mapped = _map_labels(task, labels, names)
    present = sorted(set(mapped.tolist()))
    if len(present) < 2:
        raise DataError(
            f"task {task!r}: need at least 2 classes, found {len(present)} "
            f"({[names[i] for i in present]}) in {len(texts)} rows"
        )
    return LabeledTexts(texts=texts, labels=mapped, label_names=names)


def require_columns(task: str, columns: Sequence[str], wanted: Sequence[str | None]) -> None:
    """Raise DataError naming the task and the first wanted column (None: not wanted) it lacks."""
    for column in wanted:
        if column is not None and column not in columns:
            raise DataError(f"task {task!r}: column {column!r} not found; available columns: {list(columns)}")


def _values(column: Any) -> list:
    """A column as a list of plain Python values (a pandas Series' numpy scalars converted)."""
    return column.tolist() if isinstance(column, (pd.Series, np.ndarray)) else list(column)


def from_columns(
    task: str,
    columns: Mapping[str, Sequence[Any]],
    label_names: list[str] | None = None,
    text: str = "text",
    label: str = "label",
    group: str | None = None,
    difficulty: str | None = None,
) -> LabeledTexts:
    """Labeled texts from named columns (a DataFrame, a ``datasets.Dataset`` or a dict of lists):
    ``text`` and ``label`` validated by :func:`to_labeled`, and the optional ``group`` (kept as
    strings; a missing group is an error) and ``difficulty`` (raw values) columns."""
    names = list(getattr(columns, "column_names", None) or columns.keys())
    require_columns(task, names, [text, label, group, difficulty])
    data = to_labeled(task, _values(columns[text]), _values(columns[label]), label_names)
    if group is not None:
        groups = _values(columns[group])
        missing = [i for i, g in enumerate(groups) if is_missing(g)]
        if missing:
            raise DataError(
                f"task {task!r}: {len(missing)} rows have no group ({group!r}); first row indices: {_examples(missing)}"
            )
        data.groups = [str(g) for g in groups]
    if difficulty is not None:
        data.difficulty = _values(columns[difficulty])
    return data


def from_rows(task: str, rows: Any, label_names: list[str] | None = None) -> LabeledTexts:
    """What a task function returns, as validated labeled texts: ``LabeledTexts`` as is (its label
    names must equal ``label_names`` when given), or rows holding ``text`` and ``label`` and
    optionally ``group`` and ``difficulty``: a list of mappings, a mapping of columns or a DataFrame."""
    if isinstance(rows, LabeledTexts):
        if label_names and list(label_names) != rows.label_names:
            raise DataError(f"task {task!r}: label_names {list(label_names)} differ from the task's {rows.label_names}")
        return rows
    if isinstance(rows, (str, bytes)) or not isinstance(rows, (Mapping, Sequence, pd.DataFrame)):
        raise DataError(
            f"task {task!r}: the task returned {type(rows).__name__}; expected rows with "
            f"{list(ROW_FIELDS[:2])} (and optionally {list(ROW_FIELDS[2:])}): a list of "
            "mappings, a mapping of columns or a DataFrame"
        )
    if isinstance(rows, Sequence) and not all(isinstance(row, Mapping) for row in rows):
        bad = next(i for i, row in enumerate(rows) if not isinstance(row, Mapping))
        raise DataError(
            f"task {task!r}: row {bad} is a {type(rows[bad]).__name__}, not a mapping with {list(ROW_FIELDS[:2])}"
        )
    try:
        frame = pd.DataFrame(rows)
    except ValueError as error:  # columns of unequal length
        raise DataError(f"task {task!r}: the task's rows do not form a table: {error}") from error
    unknown = sorted(set(map(str, frame.columns)) - set(ROW_FIELDS))
    if unknown:
        raise DataError(f"task {task!r}: the task's rows have unknown field(s) {unknown}; fields: {list(ROW_FIELDS)}")
    return from_columns(
        task,
        frame,
        label_names,
        group="group" if "group" in frame else None,
        difficulty="difficulty" if "difficulty" in frame else None,
    )
