"""Problems with verifiable answers, split into ``train`` (the weak teacher solves them and the
student learns from its solutions) and ``test`` (every model is evaluated there).

Sources (one ``reasoning.tasks`` entry each):
- ``reasoning_gym``: generated offline by the reasoning-gym package (e.g. ``gsm_symbolic``);
- ``hf``: a Hugging Face dataset name (``openai/gsm8k`` with config ``main``, a MATH mirror) or a
  local dataset directory, with its own train/test splits;
- ``file``: a local .jsonl/.csv/.parquet file, split here.

Output: ``problems.parquet`` (problem_id, split, question, answer, solution) and a manifest.
Gold answers are only read by evaluation and by the ``gold`` ceiling; ``solution`` (a worked
solution, when the dataset has one) only by the ``gold`` ceiling.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..io import atomic_dir, stable_hash, write_json, write_parquet
from ..labeled import DataError
from ..tasks import read_table
from .answers import gold_answer, is_worked_solution

SPLITS = ("train", "test")
PROBLEMS = "problems.parquet"
MANIFEST = "manifest.json"
PROBLEM_SCHEMA = pa.schema(
    [
        ("problem_id", pa.string()),
        ("split", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("solution", pa.string()),
    ]
)


def problem_id(task: str, question: str) -> str:
    return f"{task}-{hashlib.sha1(question.encode()).hexdigest()[:12]}"


def _rows(task: str, records: list[dict], spec: dict) -> pd.DataFrame:
    """Questions, gold answers and worked solutions from raw records, every row checked."""
    question_field = spec.get("question_field", "question")
    answer_field = spec.get("answer_field", "answer")
    solution_field = spec.get("solution_field")
    answer_format = spec.get("answer_format", "gsm8k")
    if records:
        missing = [f for f in (question_field, answer_field) if f not in records[0]]
        if missing:
            raise DataError(
                f"reasoning task {task!r}: records have no field(s) {missing}; fields: {sorted(records[0])}"
            )
    rows, empty, unanswered = [], [], []
    for i, record in enumerate(records):
        question, raw_answer = record.get(question_field), record.get(answer_field)
        if not isinstance(question, str) or not question.strip():
            empty.append(i)
            continue
        if (
            raw_answer is None
            or (isinstance(raw_answer, float) and np.isnan(raw_answer))
            or str(raw_answer).strip() == ""
        ):
            unanswered.append(i)
            continue
        try:
            answer = gold_answer(str(raw_answer), answer_format)
        except ValueError as error:
            raise DataError(f"reasoning task {task!r}, record {i}: {error}") from None
        solution = record.get(solution_field) if solution_field else None
        if solution is None and answer_format == "gsm8k":
            solution = str(raw_answer)  # GSM8K's answer field is the worked solution ending in ####
        if not is_worked_solution(solution):
            solution = None  # a bare final answer is gold, but no solution to fine-tune on
        rows.append(
            {"question": question.strip(), "answer": answer, "solution": solution, "split_hint": record.get("split")}
        )
    if empty:
        raise DataError(
            f"reasoning task {task!r}: {len(empty)} record(s) with an empty question (first indices {empty[:5]})"
        )
    if unanswered:
        raise DataError(
            f"reasoning task {task!r}: {len(unanswered)} record(s) without an answer (first indices {unanswered[:5]})"
        )
    return pd.DataFrame(rows, columns=["question", "answer", "solution", "split_hint"])


def _reasoning_gym(task: str, spec: dict, total: int) -> list[dict]:
    try:
        import reasoning_gym
    except ImportError as error:
        raise DataError(
            f"reasoning task {task!r}: source reasoning_gym needs the reasoning-gym package (pip install reasoning-gym)"
        ) from error
    # Oversample: templates can repeat a question, and duplicates are dropped.
    size = int(total * 1.25) + 8
    dataset = reasoning_gym.create_dataset(
        spec["name"], size=size, seed=spec.get("data_seed", 0), **spec.get("options", {})
    )
    records = []
    for entry in dataset:
        metadata = entry.get("metadata") or {}
        records.append(
            {"question": entry["question"], "answer": f"#### {entry['answer']}", "solution": metadata.get("answer_cot")}
        )
    return records


def _load_hf_split(task: str, spec: dict, split: str) -> list[dict]:
    import datasets

    name = spec["name"]
    try:
        path = Path(name).expanduser()
        if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
            loaded = datasets.load_from_disk(str(path))
            dataset = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        else:
            dataset = datasets.load_dataset(name, spec.get("config"), split=split)
    except Exception as error:
        raise DataError(f"reasoning task {task!r}: could not load split {split!r} of {name!r}: {error}") from error
    return [dict(row) for row in dataset]


def _read_file(task: str, spec: dict) -> list[dict]:
    path = Path(spec["path"]).expanduser()
    return read_table(task, path, spec.get("question_field", "question")).to_dict("records")


def _dedupe(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    deduped = frame.drop_duplicates("question", keep="first")
    return deduped.reset_index(drop=True), len(frame) - len(deduped)


def _take(task: str, frame: pd.DataFrame, n: int, rng: np.random.Generator, what: str) -> pd.DataFrame:
    if len(frame) < n:
        raise DataError(f"reasoning task {task!r}: {what} has {len(frame)} distinct problems, {n} requested")
    return frame.iloc[np.sort(rng.permutation(len(frame))[:n])]


def load_problems(task: str, spec: dict, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The task's train and test problems (seeded choice) and what was dropped on the way."""
    sizes = spec["sizes"]
    rng = np.random.default_rng(seed)
    source = spec["source"]
    if source in ("reasoning_gym", "file"):
        if source == "reasoning_gym":
            records = _reasoning_gym(task, spec, sizes["train"] + sizes["test"])
            rows = _rows(task, records, {"answer_format": "gsm8k", "solution_field": "solution"})
        else:
            rows = _rows(task, _read_file(task, spec), spec)
        if source == "file" and len(rows) and rows["split_hint"].notna().all():
            # Dedupe within each split only, so a question in both is caught as overlap below.
            parts = {s: _dedupe(rows[rows["split_hint"] == s]) for s in SPLITS}
            duplicates = sum(dropped for _, dropped in parts.values())
            chosen = {s: _take(task, parts[s][0], sizes[s], rng, f"split {s!r}") for s in SPLITS}
        else:
            frame, duplicates = _dedupe(rows)
            pool = _take(task, frame, sizes["train"] + sizes["test"], rng, "the pool")
            order = rng.permutation(len(pool))
            chosen = {
                "train": pool.iloc[np.sort(order[: sizes["train"]])],
                "test": pool.iloc[np.sort(order[sizes["train"] :])],
            }
    elif source == "hf":
        chosen, duplicates = {}, 0
        for split in SPLITS:
            hf_split = spec.get("splits", {}).get(split, split)
            frame, dropped = _dedupe(_rows(task, _load_hf_split(task, spec, hf_split), spec))
            duplicates += dropped
            chosen[split] = _take(task, frame, sizes[split], rng, f"split {hf_split!r}")
    else:
        raise DataError(f"reasoning task {task!r}: unknown source {source!r}; expected reasoning_gym, hf or file")
    overlap = set(chosen["train"]["question"]) & set(chosen["test"]["question"])
    if overlap:
        raise DataError(
            f"reasoning task {task!r}: {len(overlap)} question(s) are in both train and test, "
            f"e.g. {next(iter(overlap))[:80]!r}"
        )
    parts = []
    for split in SPLITS:
        part = chosen[split].drop(columns="split_hint").copy()
        part.insert(0, "split", split)
        part.insert(0, "problem_id", [problem_id(task, q) for q in part["question"]])
        parts.append(part)
    problems = pd.concat(parts, ignore_index=True)
    problems["solution"] = problems["solution"].astype(object).where(problems["solution"].notna(), None)
    return problems, {"duplicates_dropped": int(duplicates)}


def prepare_problems(task: str, spec: dict, seed: int, out_dir: str | Path) -> dict:
    """Write ``problems.parquet`` and ``manifest.json`` to ``out_dir`` as one atomic directory."""
    problems, dropped = load_problems(task, spec, seed)
    table = pa.Table.from_pandas(problems, schema=PROBLEM_SCHEMA, preserve_index=False)
    manifest = {
        "task": task,
        "spec": spec,
        "seed": seed,
        "counts": {s: int((problems["split"] == s).sum()) for s in SPLITS},
        "with_solution": int(problems["solution"].notna().sum()),
        **dropped,
        "data_hash": stable_hash(problems.to_dict("records"), length=64),
    }
    with atomic_dir(out_dir) as tmp:
        write_parquet(table, tmp / PROBLEMS, provenance={"task": task, "seed": seed})
        write_json(manifest, tmp / MANIFEST)
    return manifest
