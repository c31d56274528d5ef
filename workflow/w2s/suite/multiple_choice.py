"""Multiple-choice suite tasks: each question becomes a balanced binary pair.

Every row yields the correct candidate (label 1) and one seeded wrong candidate
(label 0) through ``binary_pair``. Items from one question share a group; for
datasets with several questions per passage (CosmosQA, DREAM, QuAIL, QuaRTz) the
group is a short hash of the passage text, so a passage never crosses splits.

Hub names, configs, splits and columns were read from each dataset's hub card
(``dataset_info`` features); test splits whose labels are hidden (CosmosQA,
HellaSwag, PIQA) are not read. ``ybisk/piqa`` and ``allenai/cosmos_qa`` keep a loading script
on their main branch, which ``datasets`` >= 4 refuses, so their parquet export branch is read,
its config folder chosen by ``data_dir`` (that branch has no README declaring configs).

CosmosQA's "None of the above choices ." is never shown as an answer: alone in a binary item
it refers to choices the item does not show. A row whose correct answer it is gives one item, a
seeded other candidate labeled wrong (every other candidate is wrong there), as in
openai/weak-to-strong and EleutherAI/w2s; other rows draw their wrong candidate from the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .base import PARQUET_EXPORT, Item, SuiteTask, binary_pair, passage_group, row_error

_LABELS = ("wrong", "correct")


def _regroup(items: list[Item], group: str) -> list[Item]:
    return [Item(item.text, item.label, group) for item in items]


def _index(task: str, index: int, value: Any, column: str, offset: int = 0) -> int:
    """``value`` (an int or a digit string) minus ``offset``; a clear error otherwise."""
    try:
        return int(str(value).strip()) - offset
    except ValueError:
        raise row_error(task, index, f"{column} {value!r} is not an integer") from None


def _keyed_pair(
    task: str, index: int, stem: str, choices: Mapping[str, Sequence[str]], key: str, rng: np.random.Generator
) -> list[Item]:
    """A pair from AI2-style ``choices`` ({'text': [...], 'label': [...]}) and a key."""
    labels = list(choices["label"])
    key = key.strip() if isinstance(key, str) else key  # lm-evaluation-harness strips it too
    if key not in labels:
        raise row_error(task, index, f"answerKey {key!r} is not one of the choice labels {labels}")
    return binary_pair(task, index, stem, list(choices["text"]), labels.index(key), rng)


def is_none_of_the_above(answer: Any) -> bool:
    """CosmosQA's "None of the above choices ." (spacing and case aside)."""
    return isinstance(answer, str) and " ".join(answer.lower().split()).rstrip(" .") == "none of the above choices"


def _cosmos_qa(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
    candidates = [row[f"answer{k}"] for k in range(4)]
    stem = f"Context: {row['context']}\nQuestion: {row['question']}"
    correct = _index("cosmos_qa", index, row["label"], "label")
    group = passage_group(row["context"])
    if not 0 <= correct < len(candidates):
        raise row_error("cosmos_qa", index, f"correct index {correct} out of range for {len(candidates)} candidates")
    if is_none_of_the_above(candidates[correct]):
        others = [
            c
            for k, c in enumerate(candidates)
            if k != correct and isinstance(c, str) and c.strip() and not is_none_of_the_above(c)
        ]
        if not others:
            raise row_error("cosmos_qa", index, "no candidate besides 'None of the above'")
        return [Item(f"{stem}\nAnswer: {others[int(rng.integers(len(others)))]}", 0, group)]
    shown = [c for k, c in enumerate(candidates) if k == correct or not is_none_of_the_above(c)]
    items = binary_pair("cosmos_qa", index, stem, shown, shown.index(candidates[correct]), rng)
    return _regroup(items, group)


def _dream(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
    dialogue = "\n".join(row["dialogue"])
    choices = list(row["choice"])
    if row["answer"] not in choices:
        raise row_error("dream", index, f"answer {row['answer']!r} is not one of the choices {choices}")
    stem = f"Dialogue:\n{dialogue}\nQuestion: {row['question']}"
    items = binary_pair("dream", index, stem, choices, choices.index(row["answer"]), rng)
    return _regroup(items, passage_group(dialogue))


def _hellaswag(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
    correct = _index("hellaswag", index, row["label"], "label")
    stem = f"Context: {row['ctx']}\nWhat happens next?"
    return binary_pair("hellaswag", index, stem, list(row["endings"]), correct, rng)


def _openbookqa(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
    stem = f"Question: {row['question_stem']}"
    return _keyed_pair("openbookqa", index, stem, row["choices"], row["answerKey"], rng)


def _quail(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
    stem = f"Passage: {row['context']}\nQuestion: {row['question']}"
    correct = _index("quail", index, row["correct_answer_id"], "correct_answer_id")
    return _regroup(
        binary_pair("quail", index, stem, list(row["answers"]), correct, rng), passage_group(row["context"])
    )


def _quartz(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
    stem = f"Passage: {row['para']}\nQuestion: {row['question']}"
    items = _keyed_pair("quartz", index, stem, row["choices"], row["answerKey"], rng)
    return _regroup(items, passage_group(row["para"]))


def _social_i_qa(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
    candidates = [row["answerA"], row["answerB"], row["answerC"]]
    stem = f"Context: {row['context']}\nQuestion: {row['question']}"
    correct = _index("social_i_qa", index, row["label"], "label", offset=1)  # "1".."3"
    return binary_pair("social_i_qa", index, stem, candidates, correct, rng)


def _piqa(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
    correct = _index("piqa", index, row["label"], "label")
    return binary_pair("piqa", index, f"Goal: {row['goal']}", [row["sol1"], row["sol2"]], correct, rng)


def _arc(task: str):
    def to_items(row: Mapping[str, Any], index: int, rng: np.random.Generator) -> list[Item]:
        stem = f"Question: {row['question']}"
        return _keyed_pair(task, index, stem, row["choices"], row["answerKey"], rng)

    return to_items


_AI2_COLUMNS = ("question", "choices", "answerKey")

MULTIPLE_CHOICE: dict[str, SuiteTask] = {
    "cosmos_qa": SuiteTask(
        name="cosmos_qa",
        hf_path="allenai/cosmos_qa",
        hf_config=None,
        revision=PARQUET_EXPORT,
        data_dir="default",
        splits=("train", "validation"),
        columns=("context", "question", "answer0", "answer1", "answer2", "answer3", "label"),
        label_names=_LABELS,
        to_items=_cosmos_qa,
        description="CosmosQA commonsense reading comprehension, 4 answers, int label "
        "0-3 (card); test labels are hidden; grouped by passage; 'None of the "
        "above choices .' never shown (module docstring); main is a loading "
        "script, so the parquet export branch is read.",
    ),
    "dream": SuiteTask(
        name="dream",
        hf_path="dataset-org/dream",
        hf_config=None,
        main_files="plain_text/{split}-00000-of-00001.parquet",
        splits=("train", "validation", "test"),
        columns=("dialogue", "question", "choice", "answer"),
        label_names=_LABELS,
        to_items=_dream,
        description="DREAM dialogue reading comprehension; answer is the text of one of "
        "the 3 choices (card); grouped by dialogue.",
    ),
    "hellaswag": SuiteTask(
        name="hellaswag",
        hf_path="Rowan/hellaswag",
        hf_config=None,
        splits=("train", "validation"),
        columns=("ctx", "endings", "label"),
        label_names=_LABELS,
        to_items=_hellaswag,
        description="HellaSwag sentence completion, 4 endings, label is a digit string "
        "(card); test labels are empty, so test is not read.",
    ),
    "openbookqa": SuiteTask(
        name="openbookqa",
        hf_path="allenai/openbookqa",
        hf_config="main",
        main_files="main/{split}-00000-of-00001.parquet",
        splits=("train", "validation", "test"),
        columns=("question_stem", "choices", "answerKey"),
        label_names=_LABELS,
        to_items=_openbookqa,
        description="OpenBookQA 'main' config: choices {text, label} and a letter "
        "answerKey (card), stripped of spaces; parquet on the hub.",
    ),
    "quail": SuiteTask(
        name="quail",
        hf_path="textmachinelab/quail",
        hf_config="quail",
        main_files="quail/{split}-00000-of-00001.parquet",
        splits=("train", "validation"),
        columns=("context", "question", "answers", "correct_answer_id"),
        label_names=_LABELS,
        to_items=_quail,
        description="QuAIL reading comprehension, 4 answers and correct_answer_id (card; "
        "converted to parquet, config 'quail'); grouped by passage; the "
        "'challenge' split is not read.",
    ),
    "quartz": SuiteTask(
        name="quartz",
        hf_path="allenai/quartz",
        hf_config=None,
        splits=("train", "validation", "test"),
        columns=("para", "question", "choices", "answerKey"),
        label_names=_LABELS,
        to_items=_quartz,
        description="QuaRTz qualitative relations, 2 choices {text, label} and answerKey "
        "(card; converted to parquet); grouped by paragraph.",
    ),
    "social_i_qa": SuiteTask(
        name="social_i_qa",
        hf_path="lighteval/siqa",
        hf_config=None,
        splits=("train", "validation"),
        columns=("context", "question", "answerA", "answerB", "answerC", "label"),
        label_names=_LABELS,
        to_items=_social_i_qa,
        description="Social IQa via the parquet mirror lighteval/siqa (allenai/social_i_qa "
        "is script-only); label is the string '1'-'3' (card).",
    ),
    "piqa": SuiteTask(
        name="piqa",
        hf_path="ybisk/piqa",
        hf_config=None,
        revision=PARQUET_EXPORT,
        data_dir="plain_text",
        splits=("train", "validation"),
        columns=("goal", "sol1", "sol2", "label"),
        label_names=_LABELS,
        to_items=_piqa,
        description="PIQA physical commonsense, two solutions, label 0/1 (test labels hidden); "
        "read from the hub's parquet export branch (main is a loading script).",
    ),
    "arc_easy": SuiteTask(
        name="arc_easy",
        hf_path="allenai/ai2_arc",
        hf_config="ARC-Easy",
        main_files="ARC-Easy/{split}-00000-of-00001.parquet",
        splits=("train", "validation", "test"),
        columns=_AI2_COLUMNS,
        label_names=_LABELS,
        to_items=_arc("arc_easy"),
        description="ARC-Easy science questions: choices {text, label}, answerKey a "
        "letter or digit (card); parquet on the hub.",
    ),
    "arc_challenge": SuiteTask(
        name="arc_challenge",
        hf_path="allenai/ai2_arc",
        hf_config="ARC-Challenge",
        main_files="ARC-Challenge/{split}-00000-of-00001.parquet",
        splits=("train", "validation", "test"),
        columns=_AI2_COLUMNS,
        label_names=_LABELS,
        to_items=_arc("arc_challenge"),
        description="ARC-Challenge science questions: choices {text, label}, answerKey a "
        "letter or digit (card); parquet on the hub.",
    ),
}
