"""The data stage: load a task, clean it, and write seeded, stratified, disjoint splits.

``prepare_splits`` validates everything in memory first and then writes
``{weak_train,transfer,val,test}.parquet`` and ``manifest.json`` as one atomic directory,
so a failure leaves no partial output. Texts are stored with surrounding whitespace
stripped; a row's id is ``{task}-{sha256(text)[:16]}``, the same for every seed.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .difficulty import assign_difficulty, check_pool_sizes, pool_mask
from .io import atomic_dir, sha256_file, stable_hash, write_json, write_parquet
from .labeled import DataError, LabeledTexts
from .tasks import load_task

__all__ = [
    "SPLITS",
    "SPLIT_SCHEMA",
    "allocate",
    "check_disjoint",
    "content_hash",
    "prepare_splits",
    "row_id",
]

SPLITS = ("weak_train", "transfer", "val", "test")
SPLIT_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.int64())])
# Present only for tasks with a difficulty setting: "easy" or "hard" (w2s.difficulty).
DIFFICULTY_FIELD = pa.field("difficulty", pa.string())
MANIFEST = "manifest.json"


@dataclass
class Cleaned:
    frame: pd.DataFrame
    n_dropped_duplicates: int = 0
    n_dropped_conflicting: int = 0
    n_dropped_balance: int = 0


def row_id(task: str, text: str) -> str:
    """Stable id of a text: the same for every seed."""
    return f"{task}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def content_hash(frame: pd.DataFrame) -> str:
    """Hash of the ids, texts and labels in row order (independent of the file encoding)."""
    return stable_hash(
        {"id": frame["id"].tolist(), "text": frame["text"].tolist(), "label": [int(v) for v in frame["label"]]},
        length=64,
    )


def _requested_sizes(task: str, spec: dict) -> dict[str, int]:
    sizes = dict(spec.get("sizes") or {})
    unknown = sorted(set(sizes) - set(SPLITS))
    missing = [s for s in SPLITS if s != "val" and s not in sizes]
    if unknown or missing:
        raise DataError(
            f"task {task!r}: sizes must have keys {list(SPLITS)} (val optional); unknown: {unknown}, missing: {missing}"
        )
    sizes.setdefault("val", 0)
    bad = {k: v for k, v in sizes.items() if not isinstance(v, int) or v < 0}
    if bad:
        raise DataError(f"task {task!r}: sizes must be non-negative integers; got {bad}")
    return {s: sizes[s] for s in SPLITS}


def _dedupe(task: str, frame: pd.DataFrame, enabled: bool) -> Cleaned:
    repeated = frame["text"].duplicated(keep=False)
    if not enabled:
        if repeated.any():
            examples = frame.loc[repeated, "text"].drop_duplicates().head(3).tolist()
            raise DataError(
                f"task {task!r}: dedupe is false but {int(repeated.sum())} rows repeat a text, "
                f"which would break split disjointness; e.g. {examples}. Set dedupe: true"
            )
        return Cleaned(frame)
    conflicting = frame.groupby("text")["label"].transform("nunique") > 1
    kept = frame[~conflicting]
    unique = kept.drop_duplicates("text")
    return Cleaned(unique, len(kept) - len(unique), int(conflicting.sum()))


def _balance(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, int]:
    counts = frame["label"].value_counts()
    smallest = int(counts.min())
    keep = []
    for label in sorted(counts.index):
        rows = np.flatnonzero(frame["label"].to_numpy() == label)
        keep.append(rng.choice(rows, size=smallest, replace=False))
    kept = frame.iloc[np.sort(np.concatenate(keep))]
    return kept, len(frame) - len(kept)


def _augment(need_row: list[int], need_col: list[int], open_cell: list[list[bool]], taken: list[list[bool]]) -> bool:
    """Round one more cell up along an augmenting path (rows short -> columns short)."""
    row_from: dict[int, int | None] = {r: None for r, need in enumerate(need_row) if need > 0}
    col_from: dict[int, int] = {}
    queue = deque(row_from)
    while queue:
        r = queue.popleft()
        for k in range(len(need_col)):
            if k in col_from or not open_cell[r][k] or taken[r][k]:
                continue
            col_from[k] = r
            if need_col[k] > 0:
                need_col[k] -= 1
                while True:
                    r = col_from[k]
                    taken[r][k] = True
                    back = row_from[r]
                    if back is None:
                        need_row[r] -= 1
                        return True
                    taken[r][back] = False
                    k = back
            for r2 in range(len(need_row)):
                if taken[r2][k] and r2 not in row_from:
                    row_from[r2] = k
                    queue.append(r2)
    return False


def allocate(class_counts: list[int], sizes: list[int]) -> np.ndarray:
    """Per-class counts for each split: exact split sizes, each within 1 of proportional.

    Returns a (classes x splits) integer matrix whose rows sum to at most ``class_counts``;
    each cell is the floor or ceiling of ``size * class_count / total``.
    """
    total = sum(class_counts)
    columns = list(sizes) + [total - sum(sizes)]
    alloc = [[n * s // total for s in columns] for n in class_counts]
    open_cell = [[(n * s) % total != 0 for s in columns] for n in class_counts]
    need_row = [n - sum(row) for n, row in zip(class_counts, alloc)]
    need_col = [s - sum(row[k] for row in alloc) for k, s in enumerate(columns)]
    taken = [[False] * len(columns) for _ in class_counts]
    while sum(need_col) > 0:
        if not _augment(need_row, need_col, open_cell, taken):
            raise RuntimeError("stratified allocation failed; this is a bug")
    matrix = np.array(alloc, dtype=np.int64) + np.array(taken, dtype=np.int64)
    return matrix[:, :-1]


def _split(
    frame: pd.DataFrame, sizes: dict[str, int], num_classes: int, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    labels = frame["label"].to_numpy()
    counts = [int((labels == c).sum()) for c in range(num_classes)]
    matrix = allocate(counts, [sizes[s] for s in SPLITS])
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for c in range(num_classes):
        rows = rng.permutation(np.flatnonzero(labels == c))
        bounds = np.concatenate([[0], np.cumsum(matrix[c])])
        for k, split in enumerate(SPLITS):
            parts[split].append(rows[bounds[k] : bounds[k + 1]])
    return {
        split: frame.iloc[np.concatenate(parts[split])].sort_values("id").reset_index(drop=True) for split in SPLITS
    }


def _split_grouped(frame: pd.DataFrame, sizes: dict[str, int], rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """Assign whole groups to splits in a seeded order until each split's size is reached."""
    groups = rng.permutation(np.array(sorted(frame["group"].unique()), dtype=object))
    by_group = frame.groupby("group").indices
    parts: dict[str, list[int]] = {s: [] for s in SPLITS}
    left = list(groups)
    for split in SPLITS:
        rest = []
        for group in left:  # take a group only if it fits, so split sizes stay exact
            rows = by_group[group].tolist()
            if len(parts[split]) + len(rows) <= sizes[split]:
                parts[split].extend(rows)
            else:
                rest.append(group)
        left = rest
        if len(parts[split]) < sizes[split]:
            raise DataError(
                f"groups cannot fill split {split!r} to {sizes[split]} examples "
                f"(got {len(parts[split])}); lower the sizes"
            )
    return {split: frame.iloc[parts[split]].sort_values("id").reset_index(drop=True) for split in SPLITS}


def _split_any(
    frame: pd.DataFrame, sizes: dict[str, int], num_classes: int, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """Stratified splits, or whole groups per split when the frame has a ``group`` column."""
    if "group" in frame:
        return _split_grouped(frame, sizes, rng)
    return _split(frame, sizes, num_classes, rng)


def _split_easy_to_hard(
    task: str, frame: pd.DataFrame, sizes: dict[str, int], num_classes: int, setting: dict, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """Test from the test pool first, then weak_train, transfer and val from what is left of the
    training pool (less every group the test split holds), so splits stay disjoint and group-aware."""
    levels = frame["difficulty"].to_numpy()
    test_pool = frame[pool_mask(levels, setting.get("test", "hard"))]
    test = _split_any(test_pool, {**dict.fromkeys(SPLITS, 0), "test": sizes["test"]}, num_classes, rng)["test"]
    left = frame[pool_mask(levels, setting.get("train", "easy")) & ~frame["id"].isin(test["id"]).to_numpy()]
    if "group" in frame:
        left = left[~left["group"].isin(set(test["group"]))]
    available = sum(sizes[s] for s in SPLITS if s != "test")
    if len(left) < available:
        raise DataError(
            f"task {task!r}: the training pool {setting.get('train', 'easy')!r} has {len(left)} items "
            f"left after the test split, fewer than weak_train + transfer + val = {available}"
        )
    splits = _split_any(left, {**sizes, "test": 0}, num_classes, rng)
    splits["test"] = test
    return splits


def check_disjoint(splits: dict[str, pd.DataFrame], task: str = "?") -> None:
    """Raise DataError if an id repeats within a split or an id or text is shared by two splits."""
    for name, frame in splits.items():
        repeated = frame["id"][frame["id"].duplicated()].tolist()
        if repeated:
            raise DataError(f"task {task!r}: split {name!r} repeats {len(repeated)} ids, e.g. {repeated[:3]}")
    for (a, fa), (b, fb) in combinations(splits.items(), 2):
        for column in ("id", "text"):
            shared = sorted(set(fa[column]) & set(fb[column]))
            if shared:
                raise DataError(
                    f"task {task!r}: splits {a!r} and {b!r} share {len(shared)} {column}s, e.g. {shared[:3]}"
                )


def check_groups(splits: dict[str, pd.DataFrame], task: str = "?") -> None:
    """Raise DataError if one group id appears in two splits."""
    for (a, fa), (b, fb) in combinations(splits.items(), 2):
        shared = sorted(set(fa["group"]) & set(fb["group"]))
        if shared:
            raise DataError(f"task {task!r}: splits {a!r} and {b!r} share {len(shared)} groups, e.g. {shared[:3]}")


def _clean(name: str, spec: dict, data: LabeledTexts, rng: np.random.Generator) -> Cleaned:
    texts = [t.strip() for t in data.texts]
    frame = pd.DataFrame({"id": [row_id(name, t) for t in texts], "text": texts, "label": data.labels.astype(np.int64)})
    if data.groups is not None:
        frame["group"] = data.groups
    if spec.get("difficulty"):
        frame["difficulty"] = assign_difficulty(name, spec["difficulty"], texts, data.difficulty)
    cleaned = _dedupe(name, frame, spec.get("dedupe", True))
    cleaned.frame = cleaned.frame.sort_values("id").reset_index(drop=True)
    present = sorted(set(cleaned.frame["label"]))
    if len(present) < 2:
        raise DataError(
            f"task {name!r}: only {len(present)} class left after dropping "
            f"{cleaned.n_dropped_conflicting} rows with conflicting labels"
        )
    if spec.get("balance", False):
        cleaned.frame, cleaned.n_dropped_balance = _balance(cleaned.frame, rng)
    return cleaned


def _ensure_replaceable(name: str, out_dir: Path) -> None:
    ours = {f"{s}.parquet" for s in SPLITS} | {MANIFEST}
    if not out_dir.is_dir():
        return
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in ours)
    if foreign:
        raise DataError(f"task {name!r}: refusing to replace {str(out_dir)!r}: it holds other files {foreign[:5]}")


def _split_summary(frame: pd.DataFrame, label_names: list[str], path: Path) -> dict:
    counts = frame["label"].value_counts()
    return {
        "file": path.name,
        "n": len(frame),
        "class_counts": {n: int(counts.get(i, 0)) for i, n in enumerate(label_names)},
        "sha256": sha256_file(path),
        "content_hash": content_hash(frame),
    }


def prepare_splits(name: str, spec: dict, seed: int, out_dir: str | Path) -> dict:
    """Load, validate, dedupe/balance and split task ``name``; write the splits and manifest.

    Returns the manifest (also written to ``out_dir/manifest.json``).
    """
    out_dir = Path(out_dir)
    sizes = _requested_sizes(name, spec)
    data = load_task(name, spec)
    rng = np.random.default_rng(seed)
    cleaned = _clean(name, spec, data, rng)
    available, requested = len(cleaned.frame), sum(sizes.values())
    if requested > available:
        raise DataError(
            f"task {name!r}: sizes {sizes} request {requested} examples but only {available} "
            f"are available ({len(data.texts)} loaded; dropped: {cleaned.n_dropped_duplicates} "
            f"duplicates, {cleaned.n_dropped_conflicting} conflicting, "
            f"{cleaned.n_dropped_balance} for balance)"
        )
    difficulty = spec.get("difficulty")
    if difficulty:
        check_pool_sizes(name, cleaned.frame["difficulty"].to_numpy(), difficulty, sizes)
        splits = _split_easy_to_hard(name, cleaned.frame, sizes, len(data.label_names), difficulty, rng)
    else:
        splits = _split_any(cleaned.frame, sizes, len(data.label_names), rng)
    if data.groups is not None:
        check_groups(splits, name)
        splits = {s: f.drop(columns="group") for s, f in splits.items()}
    check_disjoint(splits, name)
    _ensure_replaceable(name, out_dir)
    manifest = {
        "task": name,
        "seed": seed,
        "source": dict(spec),
        "label_names": data.label_names,
        "num_classes": len(data.label_names),
        "n_loaded": len(data.texts),
        "n_dropped_duplicates": cleaned.n_dropped_duplicates,
        "n_dropped_conflicting": cleaned.n_dropped_conflicting,
        "n_dropped_balance": cleaned.n_dropped_balance,
        "n_available": available,
        "sizes": sizes,
        "splits": {},
    }
    if data.groups is not None:
        manifest["group_column"] = spec.get("group_column")
        manifest["n_groups"] = int(cleaned.frame["group"].nunique())
    if difficulty:
        manifest["difficulty"] = {
            "setting": dict(difficulty),
            "counts": {
                split: frame["difficulty"].value_counts().sort_index().to_dict() for split, frame in splits.items()
            },
        }
    schema = SPLIT_SCHEMA.append(DIFFICULTY_FIELD) if difficulty else SPLIT_SCHEMA
    with atomic_dir(out_dir) as tmp:
        for split, frame in splits.items():
            path = tmp / f"{split}.parquet"
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            provenance = {
                "task": name,
                "split": split,
                "seed": seed,
                "source": dict(spec),
                "label_names": data.label_names,
                "content_hash": content_hash(frame),
            }
            write_parquet(table, path, provenance=provenance)
            manifest["splits"][split] = _split_summary(frame, data.label_names, path)
        written = {s: pq.read_table(tmp / f"{s}.parquet").to_pandas() for s in SPLITS}
        check_disjoint(written, name)
        manifest["data_hash"] = stable_hash(
            {"label_names": data.label_names, "splits": {s: manifest["splits"][s]["content_hash"] for s in SPLITS}},
            length=64,
        )
        write_json(manifest, tmp / MANIFEST)
    return manifest
