"""Problems with verifiable answers for the generative reasoning track (w2s.reasoning.problems):
the reasoning_gym, file and hf sources, their data checks, and the atomic output directory."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from w2s.io import read_json
from w2s.labeled import DataError
from w2s.reasoning.answers import answers_match, extract_answer
from w2s.reasoning.problems import MANIFEST, PROBLEM_SCHEMA, PROBLEMS, load_problems, prepare_problems, problem_id

SIZES = {"train": 6, "test": 4}
COLUMNS = ["problem_id", "split", "question", "answer", "solution"]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def gsm_records(n: int, start: int = 0) -> list[dict]:
    """GSM8K-style records: "What is i + 3?" with a worked answer ending in "#### i+3"."""
    return [
        {"question": f"What is {i} + 3?", "answer": f"{i} + 3 = {i + 3}\n#### {i + 3}"} for i in range(start, start + n)
    ]


def file_spec(path: Path, **extra) -> dict:
    return {"source": "file", "path": str(path), "sizes": dict(SIZES), **extra}


def assert_well_formed(problems: pd.DataFrame, task: str, sizes: dict = SIZES) -> None:
    assert list(problems.columns) == COLUMNS
    assert problems["split"].value_counts().to_dict() == sizes
    assert problems["problem_id"].is_unique
    assert problems["problem_id"].tolist() == [problem_id(task, q) for q in problems["question"]]
    train = set(problems.loc[problems["split"] == "train", "question"])
    test = set(problems.loc[problems["split"] == "test", "question"])
    assert not train & test


def test_problem_id_is_the_task_and_a_hash_of_the_question():
    question = "What is 2 + 2?"
    assert problem_id("gsm", question) == f"gsm-{hashlib.sha1(question.encode()).hexdigest()[:12]}"
    assert problem_id("gsm", question) != problem_id("math", question)
    assert problem_id("gsm", question) != problem_id("gsm", "What is 2 + 3?")


# --------------------------------------------------------------------------- reasoning_gym


GYM_SPEC = {"source": "reasoning_gym", "name": "gsm_symbolic", "sizes": SIZES}


@pytest.fixture(scope="module")
def gym_problems():
    pytest.importorskip("reasoning_gym")
    return load_problems("gsm", GYM_SPEC, seed=0)


def test_reasoning_gym_splits(gym_problems):
    problems, dropped = gym_problems
    assert_well_formed(problems, "gsm")
    assert problems["question"].str.strip().ne("").all()
    assert set(dropped) == {"duplicates_dropped"}
    assert isinstance(dropped["duplicates_dropped"], int) and dropped["duplicates_dropped"] >= 0


def test_reasoning_gym_solutions_end_with_the_gold_answer(gym_problems):
    problems, _ = gym_problems
    for row in problems.itertuples():
        assert isinstance(row.solution, str) and row.solution.strip()
        # The worked solution ends in "#### <answer>" (reasoning-gym may write 69 as "69.0" there).
        last_line = row.solution.rstrip().splitlines()[-1]
        assert last_line.startswith("#### "), row.solution[-80:]
        assert answers_match(last_line.removeprefix("#### "), row.answer), (last_line, row.answer)
        assert answers_match(extract_answer(row.solution), row.answer)


def test_reasoning_gym_is_stable_across_calls(gym_problems):
    again, _ = load_problems("gsm", GYM_SPEC, seed=0)
    pd.testing.assert_frame_equal(again, gym_problems[0])


def test_reasoning_gym_seed_changes_the_split(gym_problems):
    first, _ = gym_problems
    other, _ = load_problems("gsm", GYM_SPEC, seed=1)
    assert_well_formed(other, "gsm")

    def split_of(frame):
        return dict(zip(frame["problem_id"], frame["split"]))

    assert split_of(other) != split_of(first)


def test_reasoning_gym_data_seed_changes_the_pool(gym_problems):
    first, _ = gym_problems
    other, _ = load_problems("gsm", {**GYM_SPEC, "data_seed": 7}, seed=0)
    assert set(other["question"]) != set(first["question"])


def test_prepare_problems_reasoning_gym_manifest(gym_problems, tmp_path):
    out = tmp_path / "problems" / "gsm"
    manifest = prepare_problems("gsm", GYM_SPEC, 0, out)
    assert manifest["task"] == "gsm"
    assert manifest["seed"] == 0
    assert manifest["spec"] == GYM_SPEC
    assert manifest["counts"] == SIZES
    assert manifest["with_solution"] == 10
    assert read_json(out / MANIFEST) == manifest
    written = pd.read_parquet(out / PROBLEMS)
    pd.testing.assert_frame_equal(written, gym_problems[0], check_dtype=False)


# --------------------------------------------------------------------------- file


def test_file_gsm8k_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", gsm_records(10))
    problems, dropped = load_problems("arith", file_spec(path), seed=0)
    assert_well_formed(problems, "arith")
    assert dropped == {"duplicates_dropped": 0}
    assert set(problems["question"]) == {f"What is {i} + 3?" for i in range(10)}
    for row in problems.itertuples():
        i = int(row.question.split()[2])
        assert row.answer == str(i + 3)
        assert row.solution == f"{i} + 3 = {i + 3}\n#### {i + 3}"  # gsm8k answers are their own solution


def test_answer_only_gold_gives_no_solution(tmp_path):
    """A dataset whose answer field is only '#### <answer>' has gold answers but no worked solutions,
    so the gold ceiling cannot fine-tune on bare answers."""
    records = [{"question": f"What is {i} + 3?", "answer": f"#### {i + 3}"} for i in range(10)]
    problems, _ = load_problems("arith", file_spec(write_jsonl(tmp_path / "a.jsonl", records)), seed=0)
    assert problems["solution"].isna().all()
    assert sorted(problems["answer"].astype(int)) == [i + 3 for i in range(10)]


def test_file_drops_duplicate_questions(tmp_path):
    records = gsm_records(10) + [gsm_records(1)[0]]
    problems, dropped = load_problems("arith", file_spec(write_jsonl(tmp_path / "d.jsonl", records)), seed=0)
    assert dropped == {"duplicates_dropped": 1}
    assert_well_formed(problems, "arith")


def test_file_seed_changes_the_split(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", gsm_records(10))
    train = [
        set(load_problems("arith", file_spec(path), seed)[0].query("split == 'train'")["question"]) for seed in (0, 1)
    ]
    assert train[0] != train[1]


def test_file_split_column_is_respected(tmp_path):
    records = [{**r, "split": "train" if i < 6 else "test"} for i, r in enumerate(gsm_records(10))]
    problems, _ = load_problems("arith", file_spec(write_jsonl(tmp_path / "d.jsonl", records)), seed=3)
    assert_well_formed(problems, "arith")
    assert set(problems.query("split == 'train'")["question"]) == {f"What is {i} + 3?" for i in range(6)}
    assert set(problems.query("split == 'test'")["question"]) == {f"What is {i} + 3?" for i in range(6, 10)}


def test_file_csv_and_parquet(tmp_path):
    frame = pd.DataFrame(gsm_records(10))
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    from_csv, _ = load_problems("arith", file_spec(tmp_path / "d.csv"), seed=0)
    from_parquet, _ = load_problems("arith", file_spec(tmp_path / "d.parquet"), seed=0)
    assert_well_formed(from_csv, "arith")
    pd.testing.assert_frame_equal(from_csv, from_parquet)


def test_file_boxed_answers_with_custom_fields(tmp_path):
    records = [
        {"problem": f"Halve {2 * i + 1}.", "solution": f"Half of {2 * i + 1} is \\boxed{{\\frac{{{2 * i + 1}}}{{2}}}}."}
        for i in range(10)
    ]
    path = write_jsonl(tmp_path / "math.jsonl", records)
    spec = file_spec(path, question_field="problem", answer_field="solution", answer_format="boxed")
    problems, _ = load_problems("halves", spec, seed=0)
    assert_well_formed(problems, "halves")
    for row in problems.itertuples():
        n = int(row.question.split()[1].rstrip("."))
        assert row.answer == f"\\frac{{{n}}}{{2}}"
    assert problems["solution"].isna().all()  # boxed answers are not worked solutions unless named

    with_solution, _ = load_problems("halves", {**spec, "solution_field": "solution"}, seed=0)
    for row in with_solution.itertuples():
        assert row.solution.endswith(f"\\boxed{{{row.answer}}}.")


def test_file_plain_answers(tmp_path):
    records = [{"question": f"How many legs do {i} cats have?", "answer": 4 * i} for i in range(1, 10)]
    records.append({"question": "What does a $1,080 bill cost?", "answer": " $1,080. "})
    spec = file_spec(write_jsonl(tmp_path / "plain.jsonl", records), answer_format="plain")
    problems, _ = load_problems("legs", spec, seed=0)
    assert_well_formed(problems, "legs")
    answers = dict(zip(problems["question"], problems["answer"]))
    assert answers["How many legs do 3 cats have?"] == "12"
    assert answers["What does a $1,080 bill cost?"] == "1,080"
    assert problems["solution"].isna().all()


@pytest.mark.parametrize(
    "records, message",
    [
        ([{"question": "   ", "answer": "#### 1"}] + gsm_records(10, 1), "1 record\\(s\\) with an empty question"),
        (gsm_records(4) + [{"question": None, "answer": "#### 1"}] + gsm_records(6, 10), "empty question"),
        ([{"question": "What is x?", "answer": ""}] + gsm_records(10, 1), "1 record\\(s\\) without an answer"),
        ([{"question": "What is x?", "answer": None}] + gsm_records(10, 1), "without an answer"),
        (
            gsm_records(3) + [{"question": "What is x?"}] + gsm_records(7, 10),
            "without an answer \\(first indices \\[3\\]\\)",
        ),
        ([{"q": f"Q{i}?", "answer": f"#### {i}"} for i in range(10)], "records have no field\\(s\\) \\['question'\\]"),
        ([{"question": f"Q{i}?", "a": f"#### {i}"} for i in range(10)], "no field\\(s\\) \\['answer'\\]"),
        (gsm_records(9), "the pool has 9 distinct problems, 10 requested"),
        (gsm_records(9) + gsm_records(1), "the pool has 9 distinct problems, 10 requested"),
        ([{"question": "What is x?", "answer": "x is five"}] + gsm_records(10, 1), "record 0: .*'#### <answer>'"),
    ],
    ids=[
        "blank-question",
        "null-question",
        "empty-answer",
        "null-answer",
        "missing-answer",
        "no-question-field",
        "no-answer-field",
        "too-few",
        "too-few-after-dedup",
        "no-hash-line",
    ],
)
def test_file_data_errors(tmp_path, records, message):
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    with pytest.raises(DataError, match=f"reasoning task 'bad'.*{message}"):
        load_problems("bad", file_spec(path), seed=0)


def test_file_too_few_in_a_given_split(tmp_path):
    records = [{**r, "split": "train" if i < 7 else "test"} for i, r in enumerate(gsm_records(10))]
    with pytest.raises(DataError, match="split 'test' has 3 distinct problems, 4 requested"):
        load_problems("bad", file_spec(write_jsonl(tmp_path / "d.jsonl", records)), seed=0)


def test_file_train_test_overlap_is_an_error(tmp_path):
    records = [{**r, "split": "train"} for r in gsm_records(6)]
    records += [{**r, "split": "test"} for r in gsm_records(4, 100)]
    records.append({**gsm_records(1)[0], "split": "test"})  # "What is 0 + 3?" in both splits
    with pytest.raises(DataError, match="in both train and test"):
        load_problems("leak", file_spec(write_jsonl(tmp_path / "d.jsonl", records)), seed=0)


@pytest.mark.parametrize(
    "spec_update, message",
    [
        ({"path": "does/not/exist.jsonl"}, "does not exist"),
        ({"answer_format": "latex"}, "answer_format must be one of"),
        ({"source": "kaggle"}, "unknown source 'kaggle'"),
    ],
)
def test_file_spec_errors(tmp_path, spec_update, message):
    spec = {**file_spec(write_jsonl(tmp_path / "d.jsonl", gsm_records(10))), **spec_update}
    with pytest.raises(DataError, match=message):
        load_problems("bad", spec, seed=0)


def test_file_unsupported_type(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("What is 1 + 1?\n")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        load_problems("bad", file_spec(path), seed=0)


# --------------------------------------------------------------------------- hf (a local dataset directory)


def save_dataset_dict(path: Path, splits: dict[str, dict[str, list]]) -> Path:
    datasets = pytest.importorskip("datasets")
    datasets.DatasetDict({name: datasets.Dataset.from_dict(columns) for name, columns in splits.items()}).save_to_disk(
        str(path)
    )
    return path


def math_columns(numbers) -> dict[str, list]:
    return {
        "problem": [f"What is {n} squared?" for n in numbers],
        "solution": [f"{n} * {n} = {n * n}, so \\boxed{{{n * n}}}" for n in numbers],
    }


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> Path:
    """A MATH-like local dataset with 'train' and 'validation' (no 'test') splits."""
    return save_dataset_dict(
        tmp_path_factory.mktemp("hf") / "math_like",
        {"train": math_columns(range(1, 9)), "validation": math_columns(range(101, 106))},
    )


def hf_spec(path: Path, **extra) -> dict:
    return {
        "source": "hf",
        "name": str(path),
        "sizes": dict(SIZES),
        "question_field": "problem",
        "answer_field": "solution",
        "answer_format": "boxed",
        "splits": {"test": "validation"},
        **extra,
    }


def test_hf_local_dataset_directory(hf_dir):
    problems, dropped = load_problems("sq", hf_spec(hf_dir), seed=0)
    assert_well_formed(problems, "sq")
    assert dropped == {"duplicates_dropped": 0}
    numbers = {row.question: int(row.question.split()[2]) for row in problems.itertuples()}
    train = problems.query("split == 'train'")
    test = problems.query("split == 'test'")
    assert {numbers[q] for q in train["question"]} <= set(range(1, 9))
    assert {numbers[q] for q in test["question"]} <= set(range(101, 106))
    for row in problems.itertuples():
        assert row.answer == str(numbers[row.question] ** 2)
    assert problems["solution"].isna().all()


def test_hf_solution_field_and_stability(hf_dir):
    spec = hf_spec(hf_dir, solution_field="solution")
    first, _ = load_problems("sq", spec, seed=0)
    again, _ = load_problems("sq", spec, seed=0)
    pd.testing.assert_frame_equal(first, again)
    for row in first.itertuples():
        assert row.solution.endswith(f"\\boxed{{{row.answer}}}")


def test_hf_missing_split(hf_dir):
    with pytest.raises(DataError, match="could not load split 'test'"):
        load_problems("sq", hf_spec(hf_dir, splits={}), seed=0)


def test_hf_too_few_in_a_split(hf_dir):
    with pytest.raises(DataError, match="split 'validation' has 5 distinct problems, 6 requested"):
        load_problems("sq", hf_spec(hf_dir, sizes={"train": 6, "test": 6}), seed=0)


def test_hf_train_test_overlap_is_an_error(tmp_path):
    path = save_dataset_dict(
        tmp_path / "leaky", {"train": math_columns(range(1, 7)), "test": math_columns([6, 7, 8, 9])}
    )
    with pytest.raises(DataError, match="1 question\\(s\\) are in both train and test, e.g. 'What is 6 squared\\?'"):
        load_problems("sq", hf_spec(path, splits={}), seed=0)


def test_hf_gsm8k_format_with_default_fields(tmp_path):
    path = save_dataset_dict(
        tmp_path / "gsm_like",
        {
            "train": pd.DataFrame(gsm_records(6)).to_dict("list"),
            "test": pd.DataFrame(gsm_records(4, 50)).to_dict("list"),
        },
    )
    problems, _ = load_problems("gsm", {"source": "hf", "name": str(path), "sizes": dict(SIZES)}, seed=0)
    assert_well_formed(problems, "gsm")
    assert problems.query("split == 'test'")["answer"].tolist() == ["53", "54", "55", "56"]
    for row in problems.itertuples():
        assert row.solution.endswith(f"\n#### {row.answer}")


# --------------------------------------------------------------------------- prepare_problems (atomic output)


def test_prepare_problems_writes_parquet_and_manifest(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", gsm_records(10) + gsm_records(1))
    spec = file_spec(path)
    out = tmp_path / "out" / "arith"
    manifest = prepare_problems("arith", spec, 0, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([PROBLEMS, MANIFEST])
    assert [p.name for p in out.parent.iterdir()] == ["arith"]  # no temporary directory left behind
    assert manifest["counts"] == SIZES
    assert manifest["with_solution"] == 10
    assert manifest["duplicates_dropped"] == 1
    assert manifest["spec"] == spec
    assert len(manifest["data_hash"]) == 64
    assert read_json(out / MANIFEST) == manifest
    written = pd.read_parquet(out / PROBLEMS)
    assert written.columns.tolist() == PROBLEM_SCHEMA.names
    expected, _ = load_problems("arith", spec, seed=0)
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)


def test_prepare_problems_content_hash_tracks_the_problems(tmp_path):
    spec = file_spec(write_jsonl(tmp_path / "data.jsonl", gsm_records(10)))
    same = [prepare_problems("arith", spec, 0, tmp_path / f"out{i}")["data_hash"] for i in range(2)]
    other = prepare_problems("arith", spec, 1, tmp_path / "out_seed1")["data_hash"]
    assert same[0] == same[1]
    assert other != same[0]


def test_prepare_problems_leaves_no_output_when_loading_fails(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "", "answer": "#### 1"}] + gsm_records(10, 1))
    out = tmp_path / "out" / "bad"
    with pytest.raises(DataError, match="empty question"):
        prepare_problems("bad", file_spec(path), 0, out)
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_prepare_problems_keeps_the_previous_output_when_loading_fails(tmp_path):
    out = tmp_path / "out" / "arith"
    prepare_problems("arith", file_spec(write_jsonl(tmp_path / "good.jsonl", gsm_records(10))), 0, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = write_jsonl(tmp_path / "bad.jsonl", gsm_records(5))
    with pytest.raises(DataError, match="5 distinct problems, 10 requested"):
        prepare_problems("arith", file_spec(bad), 0, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in out.parent.iterdir()] == ["arith"]


def test_prepare_problems_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    import w2s.reasoning.problems as problems_module

    def failing_write_json(obj, path):
        raise OSError("disk full")

    monkeypatch.setattr(problems_module, "write_json", failing_write_json)
    out = tmp_path / "out" / "arith"
    with pytest.raises(OSError, match="disk full"):
        prepare_problems("arith", file_spec(write_jsonl(tmp_path / "d.jsonl", gsm_records(10))), 0, out)
    assert not out.exists()  # problems.parquet was written, but only inside the temporary directory
    assert list(out.parent.iterdir()) == []
