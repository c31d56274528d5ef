"""Multiple-choice suite tasks on tiny fixtures in each dataset's hub column schema.

Each fixture is the tree of the branch the task reads (``hub_trees``): CosmosQA and PIQA the
parquet export branch without a README, the others their converted main with a README
declaring the config. It is loaded through ``load_suite`` with ``path``, the hub's code path. Texts, labels and groups are checked against hand-written values.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hub_trees import hub_tree

from w2s.data import SPLITS, prepare_splits
from w2s.suite import SUITE, SuiteError, load_suite
from w2s.suite.base import passage_group
from w2s.suite.multiple_choice import MULTIPLE_CHOICE


@pytest.fixture(autouse=True)
def hf_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def hub_copy(tmp_path: Path, name: str, splits: dict[str, pd.DataFrame]) -> str:
    """Task ``name``'s hub branch (``hub_trees``), one frame per split."""
    return hub_tree(tmp_path / "hub", name, splits)


def pairs(data) -> dict[str, list[tuple[str, int]]]:
    """Items by group, in order: {group: [(text, label), ...]}."""
    out: dict[str, list[tuple[str, int]]] = {}
    for text, label, group in zip(data.texts, data.labels, data.groups):
        out.setdefault(group, []).append((text, int(label)))
    return out


def answer(text: str) -> str:
    return text.split("\nAnswer: ")[1]


def test_registry_has_the_multiple_choice_tasks():
    expected = {
        "cosmos_qa",
        "dream",
        "hellaswag",
        "openbookqa",
        "quail",
        "quartz",
        "social_i_qa",
        "piqa",
        "arc_easy",
        "arc_challenge",
    }
    assert set(MULTIPLE_CHOICE) == expected and expected <= set(SUITE)
    for name, task in MULTIPLE_CHOICE.items():
        assert task.name == name and task.label_names == ("wrong", "correct")
        assert task.description


# --- CosmosQA ---------------------------------------------------------------------------


def cosmos_rows(labels: list[int], contexts: list[str]) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(n)],
            "context": contexts,
            "question": [f"Why {i}?" for i in range(n)],
            **{f"answer{k}": [f"a{k}-{i}" for i in range(n)] for k in range(4)},
            "label": labels,
        }
    )


def test_cosmos_qa_pairs_grouped_by_passage(tmp_path):
    train = cosmos_rows([2, 0], ["Same story.", "Same story."])
    path = hub_copy(tmp_path, "cosmos_qa", {"train": train, "validation": cosmos_rows([3], ["Other story."])})
    data = load_suite("c", {"name": "cosmos_qa", "path": path})
    assert data.label_names == ["wrong", "correct"] and len(data.texts) == 6
    by_group = pairs(data)
    shared = f"train-{passage_group('Same story.')}"
    assert set(by_group) == {shared, f"validation-{passage_group('Other story.')}"}
    items = by_group[shared]
    assert items[0] == ("Context: Same story.\nQuestion: Why 0?\nAnswer: a2-0", 1)
    assert items[1][1] == 0 and answer(items[1][0]) in {"a0-0", "a1-0", "a3-0"}
    assert items[2] == ("Context: Same story.\nQuestion: Why 1?\nAnswer: a0-1", 1)
    assert [label for _, label in by_group[f"validation-{passage_group('Other story.')}"]] == [1, 0]


def test_cosmos_qa_hidden_label_is_an_error(tmp_path):
    rows = cosmos_rows([1, -1], ["s", "t"])  # -1 is how the unlabeled test split reads
    path = hub_copy(tmp_path, "cosmos_qa", {"train": rows, "validation": rows})
    with pytest.raises(SuiteError, match="'cosmos_qa': row 1: correct index -1 out of range"):
        load_suite("c", {"name": "cosmos_qa", "path": path})


NOTA = "None of the above choices ."


def test_cosmos_qa_reads_the_export_branch_without_readme(tmp_path):
    path = hub_copy(tmp_path, "cosmos_qa", {"train": cosmos_rows([0], ["s"]), "validation": cosmos_rows([1], ["t"])})
    assert sorted(p.relative_to(path).as_posix() for p in Path(path).rglob("*.parquet")) == [
        "default/train/0000.parquet",
        "default/validation/0000.parquet",
    ]
    assert not (Path(path) / "README.md").exists()
    assert len(load_suite("c", {"name": "cosmos_qa", "path": path}).texts) == 4


def test_cosmos_qa_never_shows_none_of_the_above(tmp_path):
    n = 30
    rows = cosmos_rows([2] * n + [1], [f"Story {i}." for i in range(n + 1)])
    rows["answer2"] = [NOTA] * n + ["a2-last"]  # NOTA correct in the first n rows
    rows.loc[n, "answer3"] = "None of the above choices."  # and one wrong candidate in the last
    path = hub_copy(tmp_path, "cosmos_qa", {"train": rows, "validation": rows.iloc[[n]]})
    data = load_suite("c", {"name": "cosmos_qa", "path": path})
    by_group = pairs(data)
    for i in range(n):  # one wrong item: any other candidate, all of which are wrong
        ((text, label),) = by_group[f"train-{passage_group(f'Story {i}.')}"]
        assert label == 0 and answer(text) in {f"a0-{i}", f"a1-{i}", f"a3-{i}"}
    last = by_group[f"train-{passage_group(f'Story {n}.')}"]
    assert last[0] == (f"Context: Story {n}.\nQuestion: Why {n}?\nAnswer: a1-{n}", 1)
    assert answer(last[1][0]) in {f"a0-{n}", "a2-last"} and last[1][1] == 0
    assert not any("none of the above" in t.lower() for t in data.texts)
    assert len(data.texts) == n + 2 + 2


# --- DREAM ------------------------------------------------------------------------------


def dream_rows(answers: list[str]) -> pd.DataFrame:
    n = len(answers)
    return pd.DataFrame(
        {
            "id": list(range(n)),
            "dialogue_id": ["d-1"] * n,
            "dialogue": [["M: Hi.", "W: Tea, please."]] * n,
            "question": [f"What does she want {i}?" for i in range(n)],
            "choice": [["Tea.", "Coffee.", "Water."]] * n,
            "answer": answers,
        }
    )


def test_dream_pairs_grouped_by_dialogue(tmp_path):
    path = hub_copy(tmp_path, "dream", {s: dream_rows(["Tea.", "Water."]) for s in ("train", "validation", "test")})
    data = load_suite("d", {"name": "dream", "path": path})
    assert len(data.texts) == 12 and list(data.labels).count(1) == 6
    group = passage_group("M: Hi.\nW: Tea, please.")
    by_group = pairs(data)
    assert set(by_group) == {f"{s}-{group}" for s in ("train", "validation", "test")}
    items = by_group[f"train-{group}"]
    assert items[0] == ("Dialogue:\nM: Hi.\nW: Tea, please.\nQuestion: What does she want 0?\nAnswer: Tea.", 1)
    assert answer(items[1][0]) in {"Coffee.", "Water."} and items[1][1] == 0
    assert answer(items[2][0]) == "Water." and answer(items[3][0]) in {"Tea.", "Coffee."}


def test_dream_answer_not_among_choices(tmp_path):
    rows = dream_rows(["Tea.", "Juice."])
    path = hub_copy(tmp_path, "dream", {s: rows for s in ("train", "validation", "test")})
    with pytest.raises(SuiteError, match="'dream': row 1: answer 'Juice.' is not one of"):
        load_suite("d", {"name": "dream", "path": path})


# --- HellaSwag --------------------------------------------------------------------------


def hellaswag_rows(labels: list[str]) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "ind": list(range(n)),
            "activity_label": ["Baking"] * n,
            "ctx_a": ["A man mixes flour."] * n,
            "ctx_b": ["he"] * n,
            "ctx": [f"A man mixes flour {i}. he" for i in range(n)],
            "endings": [[f"e{k}-{i}" for k in range(4)] for i in range(n)],
            "source_id": ["x"] * n,
            "split": ["train"] * n,
            "split_type": ["indomain"] * n,
            "label": labels,
        }
    )


def test_hellaswag_string_label(tmp_path):
    path = hub_copy(tmp_path, "hellaswag", {"train": hellaswag_rows(["2", "0"]), "validation": hellaswag_rows(["3"])})
    data = load_suite("h", {"name": "hellaswag", "path": path})
    by_group = pairs(data)
    assert list(by_group) == ["train-q0", "train-q1", "validation-q0"]
    assert by_group["train-q0"][0] == ("Context: A man mixes flour 0. he\nWhat happens next?\nAnswer: e2-0", 1)
    assert answer(by_group["train-q0"][1][0]) in {"e0-0", "e1-0", "e3-0"}
    assert answer(by_group["train-q1"][0][0]) == "e0-1"
    assert answer(by_group["validation-q0"][0][0]) == "e3-0"


def test_hellaswag_empty_label_is_an_error(tmp_path):
    rows = hellaswag_rows(["1", ""])  # the hub's test split has empty labels
    path = hub_copy(tmp_path, "hellaswag", {"train": rows, "validation": rows})
    with pytest.raises(SuiteError, match="'hellaswag': row 1: label '' is not an integer"):
        load_suite("h", {"name": "hellaswag", "path": path})


# --- OpenBookQA -------------------------------------------------------------------------


def obqa_rows(keys: list[str]) -> pd.DataFrame:
    n = len(keys)
    choices = [{"text": [f"t{k}-{i}" for k in range(4)], "label": ["A", "B", "C", "D"]} for i in range(n)]
    return pd.DataFrame(
        {
            "id": [f"o{i}" for i in range(n)],
            "question_stem": [f"Which is {i}?" for i in range(n)],
            "choices": choices,
            "answerKey": keys,
        }
    )


def test_openbookqa_main_config(tmp_path):
    path = hub_copy(tmp_path, "openbookqa", {s: obqa_rows(["C", "A"]) for s in ("train", "validation", "test")})
    data = load_suite("o", {"name": "openbookqa", "path": path})
    assert len(data.texts) == 12
    by_group = pairs(data)
    assert by_group["test-q0"][0] == ("Question: Which is 0?\nAnswer: t2-0", 1)
    assert answer(by_group["test-q0"][1][0]) in {"t0-0", "t1-0", "t3-0"}
    assert by_group["train-q1"][0] == ("Question: Which is 1?\nAnswer: t0-1", 1)


def test_openbookqa_answer_key_is_stripped(tmp_path):
    path = hub_copy(tmp_path, "openbookqa", {s: obqa_rows([" B", "D "]) for s in ("train", "validation", "test")})
    by_group = pairs(load_suite("o", {"name": "openbookqa", "path": path}))
    assert by_group["train-q0"][0] == ("Question: Which is 0?\nAnswer: t1-0", 1)
    assert by_group["train-q1"][0] == ("Question: Which is 1?\nAnswer: t3-1", 1)


def test_openbookqa_unknown_answer_key(tmp_path):
    rows = obqa_rows(["B", "E"])
    path = hub_copy(tmp_path, "openbookqa", {s: rows for s in ("train", "validation", "test")})
    with pytest.raises(
        SuiteError,
        match=r"'openbookqa': row 1: answerKey 'E' is not one of "
        r"the choice labels \['A', 'B', 'C', 'D'\]",
    ):
        load_suite("o", {"name": "openbookqa", "path": path})


# --- QuAIL ------------------------------------------------------------------------------


def quail_rows(correct: list[int], contexts: list[str]) -> pd.DataFrame:
    n = len(correct)
    return pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(n)],
            "context_id": [f"c{i}" for i in range(n)],
            "question_id": [str(i) for i in range(n)],
            "domain": ["fiction"] * n,
            "metadata": [{"author": "A", "title": "T", "url": "u"}] * n,
            "context": contexts,
            "question": [f"Who {i}?" for i in range(n)],
            "question_type": ["Causality"] * n,
            "answers": [[f"ans{k}-{i}" for k in range(4)] for i in range(n)],
            "correct_answer_id": correct,
        }
    )


def test_quail_grouped_by_passage(tmp_path):
    train = quail_rows([1, 3, 0], ["Story A.", "Story A.", "Story B."])
    path = hub_copy(tmp_path, "quail", {"train": train, "validation": quail_rows([2], ["Story C."])})
    data = load_suite("q", {"name": "quail", "path": path})
    by_group = pairs(data)
    story_a = f"train-{passage_group('Story A.')}"
    assert [len(v) for v in by_group.values()] == [4, 2, 2]
    assert by_group[story_a][0] == ("Passage: Story A.\nQuestion: Who 0?\nAnswer: ans1-0", 1)
    assert answer(by_group[story_a][2][0]) == "ans3-1"
    assert answer(by_group[f"validation-{passage_group('Story C.')}"][0][0]) == "ans2-0"


def test_quail_correct_id_out_of_range(tmp_path):
    rows = quail_rows([0, 4], ["s", "t"])
    path = hub_copy(tmp_path, "quail", {"train": rows, "validation": rows})
    with pytest.raises(SuiteError, match="'quail': row 1: correct index 4 out of range for 4 candidates"):
        load_suite("q", {"name": "quail", "path": path})


def test_quail_passages_never_cross_splits(tmp_path):
    contexts = [f"Story {i // 2}." for i in range(40)]  # 20 passages, 2 questions each
    train = quail_rows([i % 4 for i in range(40)], contexts)
    val = quail_rows([0, 1], ["Held out.", "Held out."])
    spec = {
        "source": "suite",
        "name": "quail",
        "path": hub_copy(tmp_path, "quail", {"train": train, "validation": val}),
        "sizes": {"weak_train": 24, "transfer": 24, "val": 12, "test": 20},
    }
    manifest = prepare_splits("quail", spec, 0, tmp_path / "out")
    assert manifest["n_groups"] == 21
    split_of: dict[str, str] = {}
    for split in SPLITS:
        frame = pq.read_table(tmp_path / "out" / f"{split}.parquet").to_pandas()
        for text in frame["text"]:
            passage = text.split("\n")[0]
            assert split_of.setdefault(passage, split) == split


# --- QuaRTz -----------------------------------------------------------------------------


def quartz_rows(keys: list[str], paras: list[str]) -> pd.DataFrame:
    n = len(keys)
    return pd.DataFrame(
        {
            "id": [f"z{i}" for i in range(n)],
            "question": [f"More or less {i}?" for i in range(n)],
            "choices": [{"text": [f"more{i}", f"less{i}"], "label": ["A", "B"]} for i in range(n)],
            "answerKey": keys,
            "para": paras,
            "para_id": ["p"] * n,
        }
    )


def test_quartz_two_choices_grouped_by_paragraph(tmp_path):
    rows = quartz_rows(["B", "A"], ["Heat rises.", "Heat rises."])
    path = hub_copy(tmp_path, "quartz", {s: rows for s in ("train", "validation", "test")})
    data = load_suite("z", {"name": "quartz", "path": path})
    items = pairs(data)[f"validation-{passage_group('Heat rises.')}"]
    assert items == [
        ("Passage: Heat rises.\nQuestion: More or less 0?\nAnswer: less0", 1),
        ("Passage: Heat rises.\nQuestion: More or less 0?\nAnswer: more0", 0),
        ("Passage: Heat rises.\nQuestion: More or less 1?\nAnswer: more1", 1),
        ("Passage: Heat rises.\nQuestion: More or less 1?\nAnswer: less1", 0),
    ]
    assert len(data.texts) == 12


def test_quartz_unknown_answer_key(tmp_path):
    rows = quartz_rows(["A", "C"], ["p", "q"])
    path = hub_copy(tmp_path, "quartz", {s: rows for s in ("train", "validation", "test")})
    with pytest.raises(SuiteError, match="'quartz': row 1: answerKey 'C' is not one of"):
        load_suite("z", {"name": "quartz", "path": path})


# --- Social IQa -------------------------------------------------------------------------


def siqa_rows(labels: list[str]) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "context": [f"Sam helped {i}." for i in range(n)],
            "question": ["How does Sam feel?"] * n,
            **{f"answer{x}": [f"{x.lower()}{i}" for i in range(n)] for x in "ABC"},
            "label": labels,
        }
    )


def test_social_i_qa_one_based_string_label(tmp_path):
    path = hub_copy(tmp_path, "social_i_qa", {"train": siqa_rows(["3", "1"]), "validation": siqa_rows(["2"])})
    data = load_suite("s", {"name": "social_i_qa", "path": path})
    by_group = pairs(data)
    assert list(by_group) == ["train-q0", "train-q1", "validation-q0"]
    assert by_group["train-q0"][0] == ("Context: Sam helped 0.\nQuestion: How does Sam feel?\nAnswer: c0", 1)
    assert answer(by_group["train-q0"][1][0]) in {"a0", "b0"}
    assert answer(by_group["train-q1"][0][0]) == "a1"
    assert answer(by_group["validation-q0"][0][0]) == "b0"


def test_social_i_qa_label_zero_is_out_of_range(tmp_path):
    rows = siqa_rows(["1", "0"])
    path = hub_copy(tmp_path, "social_i_qa", {"train": rows, "validation": rows})
    with pytest.raises(SuiteError, match="'social_i_qa': row 1: correct index -1 out of range"):
        load_suite("s", {"name": "social_i_qa", "path": path})


# --- PIQA -------------------------------------------------------------------------------


def piqa_rows(labels: list[int]) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "goal": [f"Open jar {i}" for i in range(n)],
            "sol1": [f"twist lid {i}" for i in range(n)],
            "sol2": [f"hit jar {i}" for i in range(n)],
            "label": labels,
        }
    )


def test_piqa_pairs_the_right_solution_with_the_other(tmp_path):
    path = hub_copy(tmp_path, "piqa", {"train": piqa_rows([0, 1]), "validation": piqa_rows([1])})
    data = load_suite("p", {"name": "piqa", "path": path})
    by_group = pairs(data)
    assert list(by_group) == ["train-q0", "train-q1", "validation-q0"]
    assert sorted(by_group["train-q0"], key=lambda item: -item[1]) == [
        ("Goal: Open jar 0\nAnswer: twist lid 0", 1),
        ("Goal: Open jar 0\nAnswer: hit jar 0", 0),
    ]
    assert answer(by_group["train-q1"][0][0]) == "hit jar 1" and by_group["train-q1"][0][1] == 1
    assert SUITE["piqa"].revision == "refs/convert/parquet"


def test_piqa_hidden_test_label_is_an_error(tmp_path):
    path = hub_copy(tmp_path, "piqa", {"train": piqa_rows([0, -1]), "validation": piqa_rows([1])})
    with pytest.raises(SuiteError, match="'piqa': row 1: correct index -1 out of range"):
        load_suite("p", {"name": "piqa", "path": path})


# --- ARC --------------------------------------------------------------------------------


def arc_rows(keys: list[str], labels: list[str]) -> pd.DataFrame:
    n = len(keys)
    return pd.DataFrame(
        {
            "id": [f"Mercury_{i}" for i in range(n)],
            "question": [f"Which gas {i}?" for i in range(n)],
            "choices": [{"text": [f"g{k}-{i}" for k in range(len(labels))], "label": labels} for i in range(n)],
            "answerKey": keys,
        }
    )


@pytest.mark.parametrize("name,config", [("arc_easy", "ARC-Easy"), ("arc_challenge", "ARC-Challenge")])
def test_arc_letter_and_digit_keys(tmp_path, name, config):
    assert SUITE[name].hf_config == config
    splits = {
        "train": arc_rows(["B"], ["A", "B", "C", "D"]),
        "validation": arc_rows(["3"], ["1", "2", "3", "4"]),
        "test": arc_rows(["A"], ["A", "B", "C"]),
    }
    data = load_suite("a", {"name": name, "path": hub_copy(tmp_path, name, splits)})
    by_group = pairs(data)
    assert by_group["train-q0"][0] == ("Question: Which gas 0?\nAnswer: g1-0", 1)
    assert answer(by_group["validation-q0"][0][0]) == "g2-0"
    assert answer(by_group["test-q0"][0][0]) == "g0-0"
    assert answer(by_group["test-q0"][1][0]) in {"g1-0", "g2-0"}


def test_arc_unknown_answer_key(tmp_path):
    rows = arc_rows(["A", "5"], ["1", "2", "3", "4"])
    path = hub_copy(tmp_path, "arc_challenge", {s: rows for s in ("train", "validation", "test")})
    with pytest.raises(SuiteError, match="'arc_challenge': row 0: answerKey 'A' is not one"):
        load_suite("a", {"name": "arc_challenge", "path": path})
