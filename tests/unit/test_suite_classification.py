"""Classification entries of the task suite, on tiny fixtures in each hub dataset's schema.

Each fixture is the tree of the branch the task reads (``hub_trees``): ETHICS and MC-TACO the
parquet export branch, ``<config>/<split>/0000.parquet`` without a README, the others their
converted main with a README declaring the config. All load through ``load_suite``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hub_trees import hub_tree

from w2s.suite import SUITE, SuiteError, load_suite
from w2s.suite.base import passage_group
from w2s.suite.classification import CLASSIFICATION


@pytest.fixture(autouse=True)
def hf_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def load(tmp_path: Path, name: str, frames, seed: int = 0, extra=None):
    path = hub_tree(tmp_path / "hub", name, frames, extra)
    return load_suite(name, {"name": name, "path": path}, seed)


def test_every_entry_is_in_the_suite_with_a_description():
    assert set(CLASSIFICATION) <= set(SUITE)
    assert all(t.description and len(t.label_names) == 2 for t in CLASSIFICATION.values())


# The export branch holds every ETHICS subset side by side; a task must read its own folder only.
OTHER_SUBSETS = {
    f"{subset}/{split}/0000.parquet": pd.DataFrame({"label": [0], "input": [f"{subset} row"]})
    for subset in ("commonsense", "deontology", "virtue")
    for split in ("train", "test")
}


def test_ethics_justice(tmp_path):
    rows = pd.DataFrame({"label": [1, 0], "scenario": ["I get paid because I worked.", "I get paid as I am tall."]})
    data = load(tmp_path, "ethics_justice", rows, extra=OTHER_SUBSETS)
    assert not (tmp_path / "hub" / "README.md").exists()
    assert (tmp_path / "hub" / "justice" / "validation" / "0000.parquet").is_file()
    assert len(data.texts) == 6 and data.label_names == ["unreasonable", "reasonable"]
    assert data.texts[0] == ("Statement: I get paid because I worked.\nQuestion: Is this claim reasonable (just)?")
    assert list(data.labels) == [1, 0] * 3
    assert data.groups == ["train-r0", "train-r1", "validation-r0", "validation-r1", "test-r0", "test-r1"]


def test_ethics_deontology_groups_by_request(tmp_path):
    request = "Could you walk the dog?"
    rows = pd.DataFrame(
        {
            "label": [1, 0, 1],
            "scenario": [request, request, "Could you cook?"],
            "excuse": ["The dog is at the vet.", "I like cats.", "I am sick."],
        }
    )
    data = load(tmp_path, "ethics_deontology", rows)
    assert data.texts[1] == (
        "Request: Could you walk the dog?\nExcuse: I like cats.\nQuestion: Is this a reasonable excuse?"
    )
    assert list(data.labels[:3]) == [1, 0, 1]
    assert data.groups[0] == data.groups[1] == "train-" + passage_group(request)
    assert data.groups[2] != data.groups[0]


def test_ethics_virtue_splits_sentence_and_trait(tmp_path):
    rows = pd.DataFrame(
        {"label": [0, 1], "scenario": ["Sam took the cash. [SEP] honest", "Sam took the cash. [SEP] dishonest"]}
    )
    data = load(tmp_path, "ethics_virtue", rows)
    assert data.texts[1] == (
        "Scenario: Sam took the cash.\nTrait: dishonest\nQuestion: Does the behavior in the scenario show this trait?"
    )
    assert list(data.labels[:2]) == [0, 1]
    assert data.groups[0] == data.groups[1] == "train-" + passage_group("Sam took the cash.")


def test_ethics_utilitarianism_seeded_balanced_order(tmp_path):
    n = 40
    rows = pd.DataFrame(
        {
            "baseline": [f"I won prize {i}." for i in range(n)] + ["Same."],
            "less_pleasant": [f"I lost prize {i}." for i in range(n)] + ["Same."],
        }
    )
    data = load(tmp_path, "ethics_utilitarianism", rows)
    assert len(data.texts) == 3 * n  # the identical pair gives nothing
    for text, label in zip(data.texts, data.labels):
        first = text.split("\n")[0]
        assert label == int(first.startswith("Scenario A: I won"))
        assert text.endswith("Question: Is scenario A more pleasant than scenario B?")
    assert 0.3 < data.labels.mean() < 0.7
    again = load_suite("ethics_utilitarianism", {"name": "ethics_utilitarianism", "path": str(tmp_path / "hub")}, 0)
    assert again.texts == data.texts


def test_anli_r2_is_entailment_vs_not_grouped_by_premise(tmp_path):
    premise = "A man plays guitar on a stage."
    rows = pd.DataFrame(
        {
            "uid": ["a", "b", "c"],
            "premise": [premise, premise, "A cat sleeps."],
            "hypothesis": ["A man plays music.", "A woman sings.", "A dog barks."],
            "label": [0, 1, 2],
            "reason": ["", "", ""],
        }
    )
    data = load(tmp_path, "anli_r2", rows)
    assert len(data.texts) == 9 and data.label_names == ["not_entailment", "entailment"]
    assert data.texts[0] == (
        "Premise: A man plays guitar on a stage.\n"
        "Hypothesis: A man plays music.\n"
        "Question: Does the premise entail the hypothesis?"
    )
    assert list(data.labels[:3]) == [1, 0, 0]
    assert data.groups[0] == data.groups[1] == "train_r2-" + passage_group(premise)
    assert data.groups[3].startswith("dev_r2-") and data.groups[6].startswith("test_r2-")


@pytest.mark.parametrize(
    "name, text",
    [
        ("cola", "Sentence: The cat sat.\nQuestion: Is this sentence grammatically acceptable?"),
        ("sst2", "Review: The cat sat."),
    ],
)
def test_glue_single_sentence(tmp_path, name, text):
    rows = pd.DataFrame({"sentence": ["The cat sat.", "Cat the sat."], "label": [1, 0], "idx": [0, 1]})
    data = load(tmp_path, name, rows)
    assert len(data.texts) == 4 and data.texts[0] == text
    assert list(data.labels) == [1, 0, 1, 0]
    assert data.groups == ["train-r0", "train-r1", "validation-r0", "validation-r1"]


def test_paws(tmp_path):
    rows = pd.DataFrame(
        {"id": [1, 2], "sentence1": ["A met B.", "A met B."], "sentence2": ["B met A.", "A met C."], "label": [1, 0]}
    )
    data = load(tmp_path, "paws", rows)
    assert len(data.texts) == 6
    assert data.texts[1] == ("Sentence 1: A met B.\nSentence 2: A met C.\nQuestion: Are these sentences paraphrases?")
    assert list(data.labels[:2]) == [1, 0] and data.label_names == ["not_paraphrase", "paraphrase"]


def test_multirc_groups_answers_by_paragraph(tmp_path):
    paragraph = "Ann has two dogs and a cat."
    rows = pd.DataFrame(
        {
            "paragraph": [paragraph, paragraph, "Bo lives in Rome."],
            "question": ["How many dogs?", "How many dogs?", "Where does Bo live?"],
            "answer": ["Two", "Three", "Rome"],
            "idx": [
                {"paragraph": 0, "question": 0, "answer": 0},
                {"paragraph": 0, "question": 0, "answer": 1},
                {"paragraph": 1, "question": 0, "answer": 0},
            ],
            "label": [1, 0, 1],
        }
    )
    data = load(tmp_path, "multirc", rows)
    assert data.texts[1] == (
        "Passage: Ann has two dogs and a cat.\nQuestion: How many dogs?\nAnswer: Three\nIs this answer correct?"
    )
    assert list(data.labels[:3]) == [1, 0, 1]
    assert data.groups[0] == data.groups[1] == "train-" + passage_group(paragraph)
    assert data.groups[2] != data.groups[0] and data.groups[3].startswith("validation-")


def test_wic(tmp_path):
    rows = pd.DataFrame(
        {
            "word": ["bank", "bank"],
            "sentence1": ["He sat by the bank.", "The bank was steep."],
            "sentence2": ["The bank lent money.", "We fished from the bank."],
            "start1": [14, 4],
            "start2": [4, 20],
            "end1": [18, 8],
            "end2": [8, 24],
            "idx": [0, 1],
            "label": [0, 1],
        }
    )
    data = load(tmp_path, "wic", rows)
    assert data.texts[0] == (
        "Sentence 1: He sat by the bank.\nSentence 2: The bank lent money.\n"
        'Question: Does the word "bank" mean the same in both sentences?'
    )
    assert list(data.labels) == [0, 1, 0, 1] and data.label_names == ["false", "true"]


@pytest.mark.parametrize(
    "name", ["ethics_justice", "ethics_deontology", "ethics_virtue", "ethics_utilitarianism", "mc_taco"]
)
def test_export_branch_tasks_choose_their_folder_by_data_dir(name):
    # the export branch has no README, so datasets knows one config, 'default': a config name
    # such as 'plain_text' or 'justice' cannot be found there
    entry = SUITE[name]
    assert entry.revision == "refs/convert/parquet" and entry.hf_config is None
    assert entry.files == f"{entry.data_dir}/{{split}}/0000.parquet"
    assert entry.load_kwargs(entry.hf_path) == {
        "name": None,
        "data_dir": entry.data_dir,
        "data_files": None,
        "revision": "refs/convert/parquet",
    }
    assert entry.load_kwargs("/some/local/copy")["revision"] is None


def test_mc_taco_groups_by_sentence(tmp_path):
    sentence = "He ate breakfast."
    rows = pd.DataFrame(
        {
            "sentence": [sentence, sentence],
            "question": ["How long did it take?"] * 2,
            "answer": ["20 minutes", "3 years"],
            "label": [1, 0],
            "category": ["Event Duration"] * 2,
        }
    )
    data = load(tmp_path, "mc_taco", rows)
    assert data.texts[0] == (
        "Passage: He ate breakfast.\nQuestion: How long did it take?\nAnswer: 20 minutes\nIs this answer plausible?"
    )
    assert list(data.labels) == [1, 0, 1, 0]
    assert data.groups[:2] == ["validation-" + passage_group(sentence)] * 2
    assert data.groups[2] == "test-" + passage_group(sentence)


def test_twitter_sentiment_drops_neutral(tmp_path):
    rows = pd.DataFrame({"text": ["I hate Mondays", "It is Monday", "I love Fridays"], "label": [0, 1, 2]})
    data = load(tmp_path, "twitter_sentiment", rows)
    assert data.texts[:2] == ["Tweet: I hate Mondays", "Tweet: I love Fridays"]
    assert list(data.labels) == [0, 1] * 3 and data.groups[:2] == ["train-r0", "train-r2"]


def test_anthropic_hh_pairs_are_balanced_groups(tmp_path):
    rows = pd.DataFrame(
        {
            "chosen": ["\n\nHuman: Hi\n\nAssistant: Hello!", "\n\nHuman: x"],
            "rejected": ["\n\nHuman: Hi\n\nAssistant: Go away.", "\n\nHuman: x"],
        }
    )
    data = load(tmp_path, "anthropic_hh", rows)
    assert len(data.texts) == 4  # the identical second pair is skipped in both splits
    assert data.groups == ["train-r0"] * 2 + ["test-r0"] * 2
    by_text = dict(zip(data.texts[:2], data.labels[:2]))
    assert by_text == {"Human: Hi\n\nAssistant: Hello!": 1, "Human: Hi\n\nAssistant: Go away.": 0}
    assert data.label_names == ["rejected", "chosen"]


def test_anthropic_hh_reads_every_subset_but_red_team(tmp_path):
    # main holds <subset>/{train,test}.jsonl.gz per subset, plus red-team transcripts whose file
    # names no split: datasets reads every subset's train (test) file as the split
    other = pd.DataFrame(
        {"chosen": ["\n\nHuman: Help\n\nAssistant: Sure."], "rejected": ["\n\nHuman: Help\n\nAssistant: No."]}
    )
    red_team = pd.DataFrame({"transcript": ["\n\nHuman: x"], "rating": [1.0]})
    rows = pd.DataFrame(
        {"chosen": ["\n\nHuman: Hi\n\nAssistant: Hello!"], "rejected": ["\n\nHuman: Hi\n\nAssistant: Go away."]}
    )
    data = load(
        tmp_path,
        "anthropic_hh",
        rows,
        extra={
            "harmless-base/train.jsonl.gz": other,
            "harmless-base/test.jsonl.gz": other,
            "red-team-attempts/red_team_attempts.jsonl.gz": red_team,
        },
    )
    assert len(data.texts) == 8 and sorted(set(data.groups)) == ["test-r0", "test-r1", "train-r0", "train-r1"]
    assert sum("Assistant: Sure." in t for t in data.texts) == 2


BAD_ROWS = [
    (
        "ethics_justice",
        {"label": [1, 2], "scenario": ["a", "b"]},
        "'ethics_justice': row 1: label 2 is not one of \\[0, 1\\]",
    ),
    (
        "ethics_deontology",
        {"label": [1, 0], "scenario": ["a", "b"], "excuse": ["c", " "]},
        "'ethics_deontology': row 1: column 'excuse' is empty",
    ),
    (
        "ethics_virtue",
        {"label": [1, 0], "scenario": ["a [SEP] kind", "b kind"]},
        "'ethics_virtue': row 1: scenario 'b kind' is not 'sentence \\[SEP\\] trait'",
    ),
    (
        "ethics_utilitarianism",
        {"baseline": ["a", ""], "less_pleasant": ["b", "c"]},
        "'ethics_utilitarianism': row 1: column 'baseline' is empty",
    ),
    (
        "anli_r2",
        {"uid": ["a"], "premise": ["p"], "hypothesis": ["h"], "label": [3], "reason": [""]},
        "'anli_r2': row 0: label 3 is not one of \\[0, 1, 2\\]",
    ),
    ("cola", {"sentence": ["a", "b"], "label": [1, -1], "idx": [0, 1]}, "'cola': row 1: label -1 is not one of"),
    (
        "paws",
        {"id": [1], "sentence1": ["a"], "sentence2": [None], "label": [1]},
        "'paws': row 0: column 'sentence2' is empty or not text: None",
    ),
    (
        "twitter_sentiment",
        {"text": ["a", "b"], "label": [2, 3]},
        "'twitter_sentiment': row 1: label 3 is not one of \\[0, 1, 2\\]",
    ),
    (
        "anthropic_hh",
        {"chosen": ["a", "b"], "rejected": ["c", ""]},
        "'anthropic_hh': row 1: column 'rejected' is empty",
    ),
]


@pytest.mark.parametrize("name, columns, match", BAD_ROWS, ids=[r[0] for r in BAD_ROWS])
def test_bad_row_names_task_row_and_problem(tmp_path, name, columns, match):
    with pytest.raises(SuiteError, match=match):
        load(tmp_path, name, pd.DataFrame(columns))


def test_missing_column_is_named(tmp_path):
    rows = pd.DataFrame({"text": ["a", "b"]})
    with pytest.raises(SuiteError, match=r"'twitter_sentiment'.*missing column\(s\) \['label'\]"):
        load(tmp_path, "twitter_sentiment", rows)
