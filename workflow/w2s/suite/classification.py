"""Suite tasks whose rows are already labeled items (single texts, text pairs, preference pairs).

Each entry names the hub repo, config, labeled splits and columns checked against its card
(and against the hub names EleutherAI/w2s used for the Burns et al. (2023) suite). Rows that
share a passage (MultiRC, MC-TACO, ANLI premises, ETHICS scenarios) share a group, a short
hash of that passage, so the splitter never puts one passage in two splits. Preference rows
(ETHICS utilitarianism, Anthropic HH) become balanced binary items with a seeded order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import PARQUET_EXPORT, Item, RowToItems, SuiteTask, passage_group, row_error

Row = Mapping[str, Any]


def _text(task: str, index: int, row: Row, column: str) -> str:
    value = row[column]
    if not isinstance(value, str) or not value.strip():
        raise row_error(task, index, f"column {column!r} is empty or not text: {value!r}")
    return value.strip()


def _label(task: str, index: int, value: Any, allowed: tuple[int, ...] = (0, 1)) -> int:
    """The row's integer label; bools count as 0/1; anything outside ``allowed`` is an error."""
    if isinstance(value, (bool, np.bool_)):
        value = int(value)
    if isinstance(value, (int, np.integer)) and int(value) in allowed:
        return int(value)
    raise row_error(task, index, f"label {value!r} is not one of {list(allowed)}")


def _single(task: str, template: str, columns: tuple[str, ...], group_by: str | None = None) -> RowToItems:
    """A formatter for rows holding one text (or text pair) and a 0/1 label."""

    def to_items(row: Row, index: int, rng: np.random.Generator) -> list[Item]:
        fields = {c: _text(task, index, row, c) for c in columns}
        label = _label(task, index, row["label"])
        group = passage_group(fields[group_by]) if group_by else f"r{index}"
        return [Item(template.format(**fields), label, group)]

    return to_items


def _anli(row: Row, index: int, rng: np.random.Generator) -> list[Item]:
    premise = _text("anli_r2", index, row, "premise")
    hypothesis = _text("anli_r2", index, row, "hypothesis")
    label = _label("anli_r2", index, row["label"], (0, 1, 2))
    text = f"Premise: {premise}\nHypothesis: {hypothesis}\nQuestion: Does the premise entail the hypothesis?"
    # 0 = entailment; neutral (1) and contradiction (2) both mean "does not entail"
    return [Item(text, int(label == 0), passage_group(premise))]


def _tweet(row: Row, index: int, rng: np.random.Generator) -> list[Item]:
    label = _label("twitter_sentiment", index, row["label"], (0, 1, 2))
    if label == 1:  # neutral tweets have no place in a negative/positive task
        return []
    return [Item(f"Tweet: {_text('twitter_sentiment', index, row, 'text')}", label // 2, f"r{index}")]


def _virtue(row: Row, index: int, rng: np.random.Generator) -> list[Item]:
    scenario = _text("ethics_virtue", index, row, "scenario")
    parts = scenario.split(" [SEP] ")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise row_error("ethics_virtue", index, f"scenario {scenario!r} is not 'sentence [SEP] trait'")
    sentence, trait = (p.strip() for p in parts)
    text = f"Scenario: {sentence}\nTrait: {trait}\nQuestion: Does the behavior in the scenario show this trait?"
    return [Item(text, _label("ethics_virtue", index, row["label"]), passage_group(sentence))]


def _utilitarianism(row: Row, index: int, rng: np.random.Generator) -> list[Item]:
    better = _text("ethics_utilitarianism", index, row, "baseline")
    worse = _text("ethics_utilitarianism", index, row, "less_pleasant")
    if better == worse:
        return []  # nothing to compare
    first_is_better = bool(rng.integers(2))
    a, b = (better, worse) if first_is_better else (worse, better)
    text = f"Scenario A: {a}\nScenario B: {b}\nQuestion: Is scenario A more pleasant than scenario B?"
    return [Item(text, int(first_is_better), f"r{index}")]


def _hh(row: Row, index: int, rng: np.random.Generator) -> list[Item]:
    chosen = _text("anthropic_hh", index, row, "chosen")
    rejected = _text("anthropic_hh", index, row, "rejected")
    if chosen == rejected:
        return []  # a few hub pairs are identical: no preference to learn
    items = [Item(chosen, 1, f"r{index}"), Item(rejected, 0, f"r{index}")]
    if rng.integers(2):
        items.reverse()
    return items


_BINARY = ("false", "true")
_ETHICS = "hendrycks/ethics"
_ETHICS_SPLITS = ("train", "validation", "test")
_GLUE_SPLITS = ("train", "validation")  # the GLUE/SuperGLUE test splits are unlabeled (-1)


def _task(
    name: str,
    hf_path: str,
    hf_config: str | None,
    splits: tuple[str, ...],
    columns: tuple[str, ...],
    label_names: tuple[str, ...],
    to_items: RowToItems,
    description: str,
    **layout: Any,
) -> SuiteTask:
    """An entry; ``layout``: where it sits on the hub (revision, data_dir, main_files)."""
    return SuiteTask(
        name=name,
        hf_path=hf_path,
        hf_config=hf_config,
        splits=splits,
        columns=columns,
        label_names=label_names,
        to_items=to_items,
        description=description,
        **layout,
    )


def _config_files(config: str) -> str:
    """The file of one split on main for a repo with a folder per config (the hub's conversion)."""
    return f"{config}/{{split}}-00000-of-00001.parquet"


# hendrycks/ethics keeps its loading script on main, which datasets >= 4 refuses; its parquet
# export branch has one folder per subset and no README, so a subset is chosen by data_dir.
def _ethics(subset: str) -> dict[str, Any]:
    return {"revision": PARQUET_EXPORT, "data_dir": subset}


CLASSIFICATION: dict[str, SuiteTask] = {
    t.name: t
    for t in (
        _task(
            "ethics_justice",
            _ETHICS,
            None,
            _ETHICS_SPLITS,
            ("label", "scenario"),
            ("unreasonable", "reasonable"),
            _single(
                "ethics_justice", "Statement: {scenario}\nQuestion: Is this claim reasonable (just)?", ("scenario",)
            ),
            "ETHICS justice: label 1 = reasonable; parquet per config with train/validation/"
            "test (hub tree and EleutherAI/w2s).",
            **_ethics("justice"),
        ),
        _task(
            "ethics_deontology",
            _ETHICS,
            None,
            _ETHICS_SPLITS,
            ("label", "scenario", "excuse"),
            ("unreasonable", "reasonable"),
            _single(
                "ethics_deontology",
                "Request: {scenario}\nExcuse: {excuse}\nQuestion: Is this a reasonable excuse?",
                ("scenario", "excuse"),
                group_by="scenario",
            ),
            "ETHICS deontology: several excuses per request, grouped by request; columns "
            "label/scenario/excuse as read by EleutherAI/w2s.",
            **_ethics("deontology"),
        ),
        _task(
            "ethics_virtue",
            _ETHICS,
            None,
            _ETHICS_SPLITS,
            ("label", "scenario"),
            ("no", "yes"),
            _virtue,
            "ETHICS virtue: scenario is 'sentence [SEP] trait', five traits per sentence, grouped by sentence.",
            **_ethics("virtue"),
        ),
        _task(
            "ethics_utilitarianism",
            _ETHICS,
            None,
            _ETHICS_SPLITS,
            ("baseline", "less_pleasant"),
            ("no", "yes"),
            _utilitarianism,
            "ETHICS utilitarianism: baseline is the more pleasant scenario; shown as A/B in a "
            "seeded order, label 1 = A is more pleasant.",
            **_ethics("utilitarianism"),
        ),
        _task(
            "anli_r2",
            "facebook/anli",
            "plain_text",
            ("train_r2", "dev_r2", "test_r2"),
            ("premise", "hypothesis", "label"),
            ("not_entailment", "entailment"),
            _anli,
            "ANLI round 2 (parquet, labels 0/1/2 = entailment/neutral/contradiction) made "
            "binary as in Burns et al.; premises repeat, so grouped by premise.",
            main_files=_config_files("plain_text"),
        ),
        _task(
            "cola",
            "nyu-mll/glue",
            "cola",
            _GLUE_SPLITS,
            ("sentence", "label"),
            ("unacceptable", "acceptable"),
            _single(
                "cola", "Sentence: {sentence}\nQuestion: Is this sentence grammatically acceptable?", ("sentence",)
            ),
            "GLUE CoLA (parquet; label 1 = acceptable).",
            main_files=_config_files("cola"),
        ),
        _task(
            "sst2",
            "nyu-mll/glue",
            "sst2",
            _GLUE_SPLITS,
            ("sentence", "label"),
            ("negative", "positive"),
            _single("sst2", "Review: {sentence}", ("sentence",)),
            "GLUE SST-2 (parquet; label 1 = positive).",
            main_files=_config_files("sst2"),
        ),
        _task(
            "paws",
            "google-research-datasets/paws",
            "labeled_final",
            ("train", "validation", "test"),
            ("sentence1", "sentence2", "label"),
            ("not_paraphrase", "paraphrase"),
            _single(
                "paws",
                "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nQuestion: Are these sentences paraphrases?",
                ("sentence1", "sentence2"),
            ),
            "PAWS labeled_final (parquet; label 1 = paraphrase).",
            main_files=_config_files("labeled_final"),
        ),
        _task(
            "multirc",
            "aps/super_glue",
            "multirc",
            _GLUE_SPLITS,
            ("paragraph", "question", "answer", "label"),
            _BINARY,
            _single(
                "multirc",
                "Passage: {paragraph}\nQuestion: {question}\nAnswer: {answer}\nIs this answer correct?",
                ("paragraph", "question", "answer"),
                group_by="paragraph",
            ),
            "SuperGLUE MultiRC (parquet mirror): one row per candidate answer, grouped by paragraph.",
            main_files=_config_files("multirc"),
        ),
        _task(
            "wic",
            "aps/super_glue",
            "wic",
            _GLUE_SPLITS,
            ("word", "sentence1", "sentence2", "label"),
            _BINARY,
            _single(
                "wic",
                "Sentence 1: {sentence1}\nSentence 2: {sentence2}\n"
                'Question: Does the word "{word}" mean the same in both sentences?',
                ("word", "sentence1", "sentence2"),
            ),
            "SuperGLUE WiC (parquet mirror; label 1 = same sense).",
            main_files=_config_files("wic"),
        ),
        _task(
            "mc_taco",
            "CogComp/mc_taco",
            None,
            ("validation", "test"),
            ("sentence", "question", "answer", "label"),
            ("no", "yes"),
            _single(
                "mc_taco",
                "Passage: {sentence}\nQuestion: {question}\nAnswer: {answer}\nIs this answer plausible?",
                ("sentence", "question", "answer"),
                group_by="sentence",
            ),
            "MC-TACO (label 1 = yes), grouped by passage sentence. The hub repo's main branch "
            "is a loading script, so the parquet export branch is read; it has no README, so "
            "its one config folder, plain_text, is chosen by data_dir.",
            revision=PARQUET_EXPORT,
            data_dir="plain_text",
        ),
        _task(
            "twitter_sentiment",
            "cardiffnlp/tweet_eval",
            "sentiment",
            ("train", "validation", "test"),
            ("text", "label"),
            ("negative", "positive"),
            _tweet,
            "TweetEval sentiment (parquet; 0/1/2 = negative/neutral/positive); neutral "
            "dropped, so binary negative vs positive.",
            main_files=_config_files("sentiment"),
        ),
        _task(
            "anthropic_hh",
            "Anthropic/hh-rlhf",
            None,
            ("train", "test"),
            ("chosen", "rejected"),
            ("rejected", "chosen"),
            _hh,
            "Anthropic HH-RLHF (jsonl): each pair gives the chosen (1) and the rejected (0) "
            "dialogue in one group, in a seeded order; identical pairs skipped. Main holds "
            "<subset>/{train,test}.jsonl.gz for four subsets and a README without configs; "
            "datasets reads every subset's train (test) file as the split.",
            main_files="helpful-base/{split}.jsonl.gz",
        ),
    )
}
