"""The verifier report, for evaluation only (it reads gold): every aggregator's test accuracy, each
verifier's true and estimated rates, the merged dependent verifiers and the label model's EM convergence
(EM steps, the last step's largest move, converged or not), beside the label model's accuracy too.

Aggregators are fitted on transfer; those that use labels take transfer gold as their dev labels and
are flagged ``uses_labels``. A prediction's class comes from :func:`w2s.tables.binary_hard_labels`,
the rule the aggregated weak labels use, so a score of exactly 0.5 is class 0 here as in training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from .. import verifiers
from ..tables import binary_hard_labels
from ..verifiers.label_model import convergence_summary
from .aggregate import label_model_report, scores_for_splits


def aggregate_accuracy(predicted: pd.Series, gold: pd.Series) -> float:
    """Accuracy of aggregated P(positive) scores (indexed by item id) against gold, with the labels' tie rule."""
    return float((binary_hard_labels(predicted.to_numpy()) == gold.loc[predicted.index].to_numpy()).mean())


def evaluate_verifiers(
    teacher_files: Mapping[str, Mapping[str, str | Path]],
    labeling_functions: Sequence[str],
    settings: dict | None,
    gold_files: Mapping[str, str | Path],
) -> tuple[dict, pd.DataFrame]:
    """The report (JSON-ready dict) and the verifier table with true_* columns on test."""
    scores, _ = scores_for_splits(teacher_files, ["transfer", "test"], labeling_functions)
    gold = {
        split: pq.read_table(path, columns=["id", "label"]).to_pandas().set_index("id")["label"]
        for split, path in gold_files.items()
    }
    transfer_items = set(gold["transfer"].index)
    test_scores = scores[~scores["item_id"].isin(transfer_items)]
    accuracies = {}
    configured = (settings or {}).get("aggregator")
    for aggregator in verifiers.AGGREGATORS:
        # the configured aggregator's options belong to it alone; every other one runs with its defaults
        own = {} if aggregator == configured else {"aggregator_options": {}}
        s = verifiers.resolve_settings({**(settings or {}), "aggregator": aggregator, **own})
        uses_labels = aggregator in verifiers.LABEL_USING_AGGREGATORS
        model = verifiers.fit(scores, s, gold["transfer"] if uses_labels else None, transfer_items)
        predicted = verifiers.apply(model, test_scores).set_index("item_id")["score"]
        accuracies[aggregator] = {
            "test_accuracy": aggregate_accuracy(predicted, gold["test"]),
            "uses_labels": uses_labels,
        }
        if aggregator == "best_single":
            accuracies[aggregator]["verifier"] = model["steps"]["aggregate"]["verifier"]
        if aggregator == "label_model":  # beside its accuracy: whether the EM behind it converged
            accuracies[aggregator].update(convergence_summary(model["steps"]["label_model"]))
    label_model_options = {} if configured == "label_model" else {"aggregator_options": {}}
    settings = verifiers.resolve_settings({**(settings or {}), "aggregator": "label_model", **label_model_options})
    label_model = verifiers.fit(scores, settings, None, transfer_items)
    table = verifiers.verifier_table(label_model, test_scores, gold=gold["test"])
    report = {
        "aggregators": accuracies,
        "n_test": int(len(gold["test"])),
        "label_model": label_model_report(label_model),
    }
    return report, table
