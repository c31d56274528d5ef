"""The Python API (w2s.api): a whole weak-to-strong experiment in memory gets the numbers of the file
stages the workflow runs (``python -m w2s <stage>``, called in-process here) for the same seed."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import make_tiny_classifier

from w2s import api
from w2s.cli import main as cli
from w2s.config import resolve_config
from w2s.experiments import method_spec, strong_spec, teacher_train_settings
from w2s.generalization import confidence_bands
from w2s.io import read_json, write_parquet
from w2s.tables import label_table
from w2s.weak_sources.aggregate import aggregate_label_files

TEACHER_TRAIN = {"epochs": 2, "batch_size": 8, "max_length": 64}
LABELING = {"engine": "transformers", "max_length": 64}
STRONG = {"mode": "full_finetune", "train": {"epochs": 2, "batch_size": 8, "max_length": 64}}
METHOD = {"loss": "logconf"}  # a registered loss other than the default
EVALUATION = {"min_pgr_gap": 0.0, "bootstrap_samples": 200}
# Tiny teachers score every text near 0.5: votes split at the median, so no teacher votes one class only.
AGGREGATION = {"binarize": "class_balance", "positive_rate": 0.5}


@pytest.fixture(scope="module")
def strong_checkpoint(tmp_path_factory):
    return make_tiny_classifier(tmp_path_factory.mktemp("api_strong") / "model", seed=1)


@pytest.fixture(scope="module")
def config(tiny_classifier, strong_checkpoint) -> dict:
    """The workflow's resolved config for the same settings: the file path gets what the rules pass."""
    return resolve_config(
        {
            "seeds": [0],
            "tasks": {
                "rotten_tomatoes": {
                    "source": "builtin",
                    "sizes": {"weak_train": 48, "transfer": 48, "val": 16, "test": 48},
                }
            },
            "models": {
                "tiny_weak": {"checkpoint": str(tiny_classifier)},
                "tiny_strong": {"checkpoint": str(strong_checkpoint)},
            },
            "weak": {"models": ["tiny_weak"], "train": TEACHER_TRAIN},
            "labeling": LABELING,
            "strong": {"models": ["tiny_strong"], **STRONG, "methods": {"logconf": METHOD}},
            "evaluation": EVALUATION,
        }
    )


@pytest.fixture(scope="module")
def in_memory(tiny_splits, tiny_classifier, strong_checkpoint, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("api_memory")
    data = api.read_splits(tiny_splits)
    s = data.splits
    teacher = api.train_teacher(
        s["weak_train"],
        data.label_names,
        str(tiny_classifier),
        out / "teacher",
        settings=TEACHER_TRAIN,
        seed=0,
        val=s["val"],
        device="cpu",
    )
    weak = api.label(teacher.model_dir, {"transfer": s["transfer"], "test": s["test"]}, LABELING)
    ceiling = api.train_ceiling(
        s["transfer"], s["test"], data.label_names, str(strong_checkpoint), spec=STRONG, seed=0, device="cpu"
    )
    student = api.train_student(
        s["transfer"],
        weak["transfer"],
        s["test"],
        data.label_names,
        str(strong_checkpoint),
        method=METHOD,
        spec=STRONG,
        seed=0,
        device="cpu",
    )
    result = api.evaluate(
        s["test"], s["transfer"], weak, student, ceiling, EVALUATION, method=METHOD, experiment={"method": "logconf"}
    )
    return {"data": data, "teacher": teacher, "weak": weak, "ceiling": ceiling, "student": student, "result": result}


@pytest.fixture(scope="module")
def on_files(tiny_splits, config, tmp_path_factory) -> dict:
    """The same experiment through the CLI stages, with the arguments the rules give them."""
    out = tmp_path_factory.mktemp("api_files")
    split = {name: str(tiny_splits / f"{name}.parquet") for name in ("weak_train", "transfer", "val", "test")}
    models = config["models"]
    cli(
        [
            "train-teacher",
            "--train",
            split["weak_train"],
            "--val",
            split["val"],
            "--manifest",
            str(tiny_splits / "manifest.json"),
            "--checkpoint",
            models["tiny_weak"]["checkpoint"],
            "--settings",
            json.dumps(teacher_train_settings(config, "tiny_weak")),
            "--seed",
            "0",
            "--device",
            "cpu",
            "--out-dir",
            str(out / "teacher"),
        ]
    )
    weak = {name: str(out / f"weak_{name}.parquet") for name in ("transfer", "test")}
    cli(
        [
            "label",
            "--checkpoint",
            str(out / "teacher"),
            "--inputs",
            *(f"{s}={split[s]}" for s in weak),
            "--outputs",
            *(f"{s}={path}" for s, path in weak.items()),
            "--settings",
            json.dumps(config["labeling"]),
        ]
    )
    common = [
        "--spec",
        json.dumps(strong_spec(config, "tiny_strong")),
        "--manifest",
        str(tiny_splits / "manifest.json"),
        "--test",
        split["test"],
        "--checkpoint",
        models["tiny_strong"]["checkpoint"],
        "--seed",
        "0",
        "--device",
        "cpu",
    ]
    cli(
        [
            "train-strong",
            "--role",
            "ceiling",
            "--targets",
            split["transfer"],
            *common,
            "--out-model",
            str(out / "ceiling"),
            "--out-predictions",
            str(out / "ceiling.parquet"),
        ]
    )
    cli(
        [
            "train-strong",
            "--role",
            "student",
            "--method",
            json.dumps(method_spec(config, "logconf")),
            "--targets",
            weak["transfer"],
            *common,
            "--out-model",
            str(out / "student"),
            "--out-predictions",
            str(out / "student.parquet"),
        ]
    )
    cli(
        [
            "evaluate",
            "--test",
            split["test"],
            "--transfer",
            split["transfer"],
            "--weak-test",
            weak["test"],
            "--weak-transfer",
            weak["transfer"],
            "--methods",
            "logconf",
            "--students",
            str(out / "student.parquet"),
            "--ceiling",
            str(out / "ceiling.parquet"),
            "--settings",
            json.dumps(config["evaluation"]),
            "--experiment",
            "{}",
            "--outputs",
            str(out / "metrics.json"),
            "--bands",
            json.dumps(confidence_bands(config["strong"]["methods"])),
        ]
    )
    return {"dir": out, "weak": weak}


def _probs(path, split: str | None = None) -> tuple[list[str], np.ndarray]:
    frame = pd.read_parquet(path)
    if split is not None:
        frame = frame[frame["split"] == split]
    return frame["id"].tolist(), np.stack(frame["soft_label"].to_numpy())


def test_weak_labels_match_the_label_stage(in_memory, on_files):
    assert (
        in_memory["teacher"].info["val_accuracy"]
        == read_json(on_files["dir"] / "teacher/train_info.json")["val_accuracy"]
    )
    for split, path in on_files["weak"].items():
        ids, probs = _probs(path)
        assert in_memory["weak"][split].ids == ids
        np.testing.assert_array_equal(in_memory["weak"][split].probs, probs)


@pytest.mark.parametrize("role", ["ceiling", "student"])
def test_strong_predictions_match_the_strong_stage(in_memory, on_files, role):
    for split in ("transfer", "test"):
        ids, probs = _probs(on_files["dir"] / f"{role}.parquet", split)
        predictions = in_memory[role].predictions[split]
        assert predictions.ids == ids
        np.testing.assert_array_equal(predictions.probs, probs)


def test_evaluation_matches_the_evaluate_stage(in_memory, on_files):
    written = read_json(on_files["dir"] / "metrics.json")
    result = in_memory["result"]
    assert result.pgr is not None and result.pgr == written["pgr"]
    assert (result.weak_acc, result.student_acc, result.ceiling_acc) == (
        written["weak_acc"],
        written["student_acc"],
        written["ceiling_acc"],
    )
    assert result.interval["kind"] == written["pgr_ci_kind"]
    assert (result.interval["low"], result.interval["high"]) == (written["pgr_ci_low"], written["pgr_ci_high"])
    # Every metric, nested ones included, as the stage writes them.
    assert json.loads(json.dumps(result.metrics, sort_keys=True, default=str)) == written


def test_evaluate_aligns_predictions_by_id(in_memory):
    """Rows given in another order score the same: evaluate matches predictions to gold by id."""
    data, weak, student = in_memory["data"], in_memory["weak"], in_memory["student"]
    order = np.random.default_rng(0).permutation(len(data.splits["test"]))

    def shuffled(labels: api.Labels) -> api.Labels:
        return api.Labels([labels.ids[i] for i in order], labels.probs[order])

    result = api.evaluate(
        data.splits["test"],
        data.splits["transfer"],
        {**weak, "test": shuffled(weak["test"])},
        {**student.predictions, "test": shuffled(student.predictions["test"])},
        shuffled(in_memory["ceiling"].predictions["test"]),
        EVALUATION,
        method=METHOD,
        experiment={"method": "logconf"},
    )
    assert result.metrics == in_memory["result"].metrics


def test_train_student_aligns_weak_labels_by_id(in_memory, strong_checkpoint):
    """Weak labels given in another row order train the same student: targets are matched to texts by id."""
    data, weak = in_memory["data"], in_memory["weak"]["transfer"]
    order = np.random.default_rng(1).permutation(len(weak.ids))
    shuffled = api.Labels([weak.ids[i] for i in order], weak.probs[order])
    student = api.train_student(
        data.splits["transfer"],
        shuffled,
        data.splits["test"],
        data.label_names,
        str(strong_checkpoint),
        method=METHOD,
        spec=STRONG,
        seed=0,
        device="cpu",
    )
    np.testing.assert_array_equal(student.predictions["test"].probs, in_memory["student"].predictions["test"].probs)


def test_aggregate_matches_the_aggregation_stage(in_memory, on_files, tiny_classifier, tmp_path):
    """Two binary teachers (the trained one and its untrained start) aggregated in memory and from files."""
    splits = {s: in_memory["data"].splits[s] for s in ("transfer", "test")}
    untrained = api.label(tiny_classifier, splits, LABELING)
    files = {"untrained": {}}
    for split, labels in untrained.items():
        table = label_table(pa.table({"id": splits[split].ids, "text": splits[split].texts}), labels.probs)
        write_parquet(table, tmp_path / f"untrained_{split}.parquet")
        files["untrained"][split] = tmp_path / f"untrained_{split}.parquet"
    teachers = {"trained": on_files["weak"], **files}
    outputs = {s: tmp_path / f"aggregated_{s}.parquet" for s in splits}
    metadata = aggregate_label_files(teachers, outputs, AGGREGATION, fit_split="transfer")
    aggregated = api.aggregate({"trained": in_memory["weak"], "untrained": untrained}, splits, AGGREGATION)
    for split, path in outputs.items():
        ids, probs = _probs(path)
        assert aggregated.labels[split].ids == ids
        np.testing.assert_array_equal(aggregated.labels[split].probs, probs)
    assert json.dumps(aggregated.metadata, sort_keys=True, default=str) == json.dumps(
        metadata, sort_keys=True, default=str
    )


def test_bad_input_is_named(in_memory):
    data = in_memory["data"]
    with pytest.raises(ValueError, match="2 ids but 1 texts"):
        api.Split(["a", "b"], ["text"])
    with pytest.raises(ValueError, match="one row of class probabilities per id"):
        api.Labels(["a", "b"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"weak labels: 1 examples have no row"):
        partial = api.Labels(in_memory["weak"]["transfer"].ids[1:], in_memory["weak"]["transfer"].probs[1:])
        api.train_student(
            data.splits["transfer"], partial, data.splits["test"], data.label_names, "unused", spec=STRONG
        )
    with pytest.raises(ValueError, match="unknown strong spec keys"):
        api.train_ceiling(data.splits["transfer"], data.splits["test"], data.label_names, "unused", spec={"epochs": 1})
    with pytest.raises(ValueError, match="linear_probe mode needs features"):
        api.train_ceiling(data.splits["transfer"], data.splits["test"], data.label_names, "unused")


def test_importing_the_api_is_cheap():
    code = "import sys, w2s.api; print(sorted({'torch', 'transformers', 'vllm'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
