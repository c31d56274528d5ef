"""One task registry: shipped, suite and plugin tasks and the hf/file sources under one name each;
a plugin task is a function that returns rows, validated like every other task."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hub_trees import hub_tree

from w2s.config import ConfigError, resolve_config
from w2s.data import SPLITS, prepare_splits
from w2s.labeled import DataError, from_rows
from w2s.plugins import load_plugin
from w2s.registry import RegistryError
from w2s.tasks import TASK_REGISTRY, check_task, load_task, register_task, task_provenance

SIZES = {"weak_train": 4, "transfer": 4, "val": 2, "test": 4}
ROWS = [
    {"text": f"item {i}", "label": ["no", "yes"][i % 2], "group": f"g{i // 2}", "difficulty": i % 3} for i in range(14)
]


@pytest.fixture
def registered():
    """Names registered by the test, unregistered afterwards so tests do not leak into each other."""
    names: list[str] = []
    yield names
    for name in names:
        if name in TASK_REGISTRY:
            TASK_REGISTRY.unregister(name)


def test_every_kind_of_task_is_in_one_registry():
    names = TASK_REGISTRY.names()
    assert {"rotten_tomatoes", "tweet_sentiment", "boolq", "sciq", "hf", "file", "builtin", "suite"} <= set(names)
    kinds = {name: TASK_REGISTRY.entry(name).meta.get("kind") for name in ("rotten_tomatoes", "boolq", "hf")}
    assert kinds == {"rotten_tomatoes": "rows", "boolq": "suite", "hf": "source"}


def test_a_suite_task_is_a_source_of_its_own(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    rows = pd.DataFrame(
        {"question": ["is a true", "is b true"], "answer": [True, False], "passage": ["A is.", "B is not."]}
    )
    path = hub_tree(tmp_path / "hub", "boolq", {"train": rows, "validation": rows})
    direct = load_task("b", {"source": "boolq", "path": path})
    assert direct.texts[0] == "Passage: A is.\nQuestion: is a true?" and direct.labels.tolist() == [1, 0, 1, 0]
    assert direct.groups == ["train-q0", "train-q1", "validation-q0", "validation-q1"]
    by_name = load_task("b", {"source": "suite", "name": "boolq", "path": path})
    assert by_name.texts == direct.texts and by_name.label_names == direct.label_names == ["false", "true"]


def test_a_plugin_function_returning_rows_is_a_task(registered):
    @register_task("toy_rows", label_names=["no", "yes"])
    def toy_rows():
        return ROWS

    registered.append("toy_rows")
    data = load_task("mine", {"source": "toy_rows"})
    assert data.texts == [f"item {i}" for i in range(14)]
    assert data.labels.tolist() == [0, 1] * 7 and data.label_names == ["no", "yes"]
    assert data.groups[:4] == ["g0", "g0", "g1", "g1"]
    assert data.difficulty[:4] == [0, 1, 2, 0] and type(data.difficulty[0]) is int
    # `source: builtin` selects it by name too, and the spec's label_names override the task's
    again = load_task("toy_rows", {"source": "builtin", "label_names": ["yes", "no"]})
    assert again.labels.tolist() == [1, 0] * 7


@pytest.mark.parametrize("shape", ["columns", "frame"])
def test_rows_may_be_columns_or_a_frame(registered, shape):
    columns = {"text": ["a", "b", "c"], "label": [2, 0, 2]}
    rows = columns if shape == "columns" else pd.DataFrame(columns)
    register_task(f"toy_{shape}")(lambda: rows)
    registered.append(f"toy_{shape}")
    data = load_task("t", {"source": f"toy_{shape}"})
    assert data.labels.tolist() == [2, 0, 2] and data.label_names == ["0", "1", "2"]
    assert data.groups is None and data.difficulty is None


@pytest.mark.parametrize(
    "rows,message",
    [
        ([{"text": "a", "label": 0}, {"text": "b"}], r"1 of 2 rows have a missing label; first row indices: 1"),
        ([{"text": "a", "label": 0}, {"text": "b", "label": 0}], r"need at least 2 classes, found 1"),
        ([{"text": " ", "label": 0}, {"text": "b", "label": 1}], r"1 of 2 rows have empty.*indices: 0"),
        ([{"text": "a", "label": 0, "source": "x"}], r"the task's rows have unknown field\(s\) \['source'\]"),
        ([{"label": 0}, {"label": 1}], r"column 'text' not found"),
        (
            [{"text": "a", "label": 0, "group": "q"}, {"text": "b", "label": 1, "group": None}],
            r"1 rows have no group \('group'\); first row indices: 1",
        ),
        ([("a", 0), ("b", 1)], r"row 0 is a tuple, not a mapping"),
        ({"text": ["a", "b"], "label": [0]}, r"the task's rows do not form a table: All arrays"),
        ("a,0\nb,1", r"the task returned str; expected rows"),
        (None, r"the task returned NoneType"),
    ],
)
def test_bad_rows_are_data_errors_naming_the_task(registered, rows, message):
    register_task("toy_bad")(lambda: rows)
    registered.append("toy_bad")
    with pytest.raises(DataError, match=r"task 'mine': " + message):
        load_task("mine", {"source": "toy_bad"})


def test_an_error_raised_by_the_task_function_propagates(registered):
    @register_task("toy_raises")
    def toy_raises(spec):
        raise DataError(f"no file at {spec['path']}")

    registered.append("toy_raises")
    with pytest.raises(DataError, match="no file at /nowhere"):
        load_task("mine", {"source": "toy_raises", "path": "/nowhere"})


@dataclass
class Repeat:
    times: int = 1
    prefix: str = "x"


def test_options_reach_the_function_and_unknown_ones_are_errors(registered):
    @register_task("toy_options", options=Repeat)
    def toy_options(task, options):
        return [{"text": f"{options.prefix}{task}{i}", "label": i % 2} for i in range(2 * options.times)]

    registered.append("toy_options")
    data = load_task("t", {"source": "toy_options", "options": {"times": 2}})
    assert data.texts == ["xt0", "xt1", "xt2", "xt3"]
    with pytest.raises(DataError, match=r"task 't': unknown option 'time' for task 'toy_options'"):
        check_task("t", {"source": "toy_options", "options": {"time": 2}})
    with pytest.raises(DataError, match=r"task 't': source 'file' takes no options; got \['times'\]"):
        load_task("t", {"source": "file", "path": "x.csv", "options": {"times": 2}})
    with pytest.raises(DataError, match=r"task 'rotten_tomatoes' takes no options"):
        check_task("t", {"source": "builtin", "name": "rotten_tomatoes", "options": {"times": 2}})


def test_registering_a_taken_name_names_both_sources(registered):
    with pytest.raises(RegistryError) as info:
        register_task("rotten_tomatoes")(lambda: ROWS)
    message = str(info.value)
    assert "task 'rotten_tomatoes' is registered twice" in message
    assert "by w2s.tasks (" in message and f"by {__name__} (" in message
    assert TASK_REGISTRY.entry("rotten_tomatoes").source.startswith("w2s.tasks (")
    with pytest.raises(RegistryError, match=r"by w2s.suite.registry \(.*\) and by "):
        register_task("boolq")(lambda: ROWS)


def test_unknown_names_list_every_registered_name(registered):
    register_task("toy_listed")(lambda: ROWS)
    registered.append("toy_listed")
    with pytest.raises(DataError, match=r"unknown source 'nope'; registered: \[.*'boolq'.*'file'.*'toy_listed'"):
        load_task("t", {"source": "nope"})
    with pytest.raises(
        DataError,
        match=r"unknown builtin task 'boolq'; builtin tasks: \['rotten_tomatoes', "
        r"'toy_listed', 'tweet_sentiment'\]; every registered task: \[.*'hf'",
    ):
        check_task("t", {"source": "builtin", "name": "boolq"})
    with pytest.raises(DataError, match=r"unknown suite task 'toy_listed'; suite tasks: \['amazon_polarity'"):
        check_task("t", {"source": "suite", "name": "toy_listed"})


PLUGIN = """
from w2s.tasks import register_task

@register_task("plugin_reviews", label_names=["bad", "good"])
def plugin_reviews(spec):
    words = spec.get("name", "fine")
    return {"text": [f"{words} review {i}" for i in range(40)], "label": ["good", "bad"] * 20,
            "group": [f"r{i // 2}" for i in range(40)]}
"""


def test_a_plugin_file_task_runs_through_the_data_stage(tmp_path, registered):
    (tmp_path / "my_tasks.py").write_text(PLUGIN)
    plugin = load_plugin("my_tasks.py", tmp_path)
    registered.append("plugin_reviews")
    spec = {"source": "plugin_reviews", "sizes": SIZES}
    manifest = prepare_splits("reviews", spec, 0, tmp_path / "out")
    assert {split: manifest["splits"][split]["n"] for split in SPLITS} == SIZES
    assert manifest["n_groups"] == 20
    assert task_provenance("reviews", spec)["plugin"] == plugin.identity()
    assert task_provenance("rt", {"source": "builtin", "name": "rotten_tomatoes"})["plugin"] is None


def test_the_config_checks_task_names_after_plugins_load(tmp_path, registered):
    (tmp_path / "my_tasks.py").write_text(PLUGIN)
    config = {
        "models": {"a": {"checkpoint": "x"}, "b": {"checkpoint": "y"}},
        "weak": {"models": ["a"]},
        "strong": {"models": ["b"]},
        "plugins": ["my_tasks.py"],
        "tasks": {
            "reviews": {"source": "plugin_reviews", "sizes": SIZES},
            "boolq": {"source": "suite", "sizes": SIZES},
        },
    }
    registered.append("plugin_reviews")
    resolved = resolve_config(config, tmp_path)
    assert resolved["tasks"]["reviews"]["source"] == "plugin_reviews"
    config["tasks"]["reviews"]["source"] = "plugin_review"
    with pytest.raises(
        ConfigError,
        match=r"tasks\.reviews: .*unknown source 'plugin_review'; "
        r"registered: \[.*'plugin_reviews'",
    ):
        resolve_config(config, tmp_path)


def test_from_rows_keeps_labeled_texts_and_checks_their_names():
    data = from_rows("t", [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    assert from_rows("t", data) is data
    assert from_rows("t", data, ["x", "y"]) is data
    with pytest.raises(DataError, match=r"label_names \['y', 'x'\] differ from the task's \['x', 'y'\]"):
        from_rows("t", data, ["y", "x"])
    assert np.array_equal(data.labels, [0, 1])
