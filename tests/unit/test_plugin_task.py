"""The example plugin task: its formatter by hand, its rows from a local file, its identity in the data
rule's inputs and the label store's key."""

from __future__ import annotations

from pathlib import Path

import pytest

from w2s import plugins
from w2s.tasks import TASK_REGISTRY, load_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"


@pytest.fixture
def plugin_task():
    before = set(TASK_REGISTRY.names()), set(plugins.LOADED)
    plugins.load_plugins(["my_task.py"], EXAMPLES)
    yield
    for name in set(TASK_REGISTRY.names()) - before[0]:
        TASK_REGISTRY.unregister(name)
    for module in set(plugins.LOADED) - before[1]:
        del plugins.LOADED[module]


def test_the_formatter_hides_mentions_and_links(plugin_task):
    import sys

    format_tweet = sys.modules[TASK_REGISTRY.entry("tweet_polarity").obj.__module__].format_tweet
    assert format_tweet("@bob  loves https://t.co/x1 this\tcar") == "@user loves http this car"


def test_a_plugin_task_reads_its_own_local_file(plugin_task, tmp_path):
    path = tmp_path / "tweets.csv"
    path.write_text(
        "sentiment,text\npositive,@ann what a great ride\nneutral,the car is blue today\n"
        "negative,worst lane assist ever http://x.y\npositive,ok\n",
        encoding="latin-1",
    )
    data = load_task("tweets", {"source": "tweet_polarity", "options": {"path": str(path)}})
    # neutral dropped, "ok" below min_words 3, labels in the declared order
    assert data.texts == ["@user what a great ride", "worst lane assist ever http"]
    assert data.labels.tolist() == [1, 0] and data.label_names == ["negative", "positive"]


def test_the_task_source_is_in_the_label_key(plugin_task, tmp_path):
    from w2s.config import code_identity, task_extensions

    config = {"tasks": {"t": {"source": "tweet_polarity", "options": {}}}}
    identity = code_identity(task_extensions(config, "t"))
    assert identity[0]["name"] == "tweet_polarity" and identity[0]["plugin"].startswith("sha256:")
    builtin = code_identity(task_extensions({"tasks": {"t": {"source": "builtin", "name": "rotten_tomatoes"}}}, "t"))
    assert builtin[0]["plugin"] is None
