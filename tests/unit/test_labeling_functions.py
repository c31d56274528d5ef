"""Labeling functions for rotten_tomatoes: hand-written sentences, then coverage and accuracy on real reviews."""

from __future__ import annotations

import numpy as np
import pytest

from w2s import verifiers
from w2s.labeling_functions import LABELING_FUNCTIONS, contrast_clause, hedges, lexicon, phrases, polarity, tokenize
from w2s.tasks import load_task


def test_tokenize_splits_negation_off_its_verb():
    assert tokenize("It isn't clichéd, it's FUN!") == ["it", "is", "n't", "clichéd", "it's", "fun", "!"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("A wonderful, moving film.", 2),
        ("Dull, tedious and boring.", -3),
        ("This is not funny.", -1),  # negation flips a positive word
        ("Not bad at all.", 1),  # ... and a negative one
        ("It doesn't feel very fresh.", -1),  # "n't" is a negator; the window spans "feel very"
        ("Not that it matters, the film is wonderful.", 1),  # ... but not beyond three words
        ("The movie has actors.", 0),
    ],
)
def test_polarity_counts_words_with_negation(text, expected):
    assert polarity(tokenize(text)) == expected


def test_lexicon_scores_and_abstains():
    assert lexicon("A wonderful, moving film.") == pytest.approx(1 / (1 + np.exp(-2)))
    assert lexicon("This is not funny.") == pytest.approx(1 / (1 + np.exp(1)))
    assert lexicon("The movie has actors.") is None
    assert lexicon("Good but bad.") is None  # a tie is no evidence


def test_contrast_clause_reads_the_clause_after_the_last_contrast():
    assert contrast_clause("Beautifully shot, but ultimately dull.") == 0.2
    assert contrast_clause("It starts slowly, yet it is wonderful.") == 0.8
    assert contrast_clause("Slow, but not boring.") == 0.8
    assert contrast_clause("A wonderful film.") is None  # no contrast word
    assert contrast_clause("Dull, but the actors try.") is None  # the clause after it is neutral


def test_phrases():
    assert phrases("One of the best films of the year.") == 0.85
    assert phrases("A waste of two good actors.") == 0.15
    assert phrases("It is a film.") is None
    assert phrases("One of the best casts, a waste of it.") is None  # one of each kind


def test_hedges():
    assert hedges("Merely watchable.") == 0.3
    assert hedges("What a ride!") == 0.7
    assert hedges("What a mess!") is None  # enthusiasm about a negative
    assert hedges("A film.") is None


def test_every_function_returns_a_probability_or_abstains():
    texts = ["", "!", "not", "but", "A wonderful film!", "Merely dull, but not a waste of time."]
    for function in LABELING_FUNCTIONS.values():
        for text in texts:
            score = function(text)
            assert score is None or 0.0 <= score <= 1.0


def test_coverage_and_accuracy_on_rotten_tomatoes():
    """On 2,000 rotten_tomatoes reviews (a seed-0 random sample, 57.3% fresh), measured:

    ============== ======== ============================
    function       coverage accuracy where it fires
    ============== ======== ============================
    lexicon        0.479    0.811
    contrast_clause 0.076   0.742
    phrases        0.066    0.774
    hedges         0.057    0.649
    ============== ======== ============================

    Asserted: every function fires on at least 3% of reviews and is right on more than 60% of
    those (chance is 50%; always saying "fresh" would get 57%); the lexicon covers over 40% at
    over 75% accuracy.
    """
    data = load_task("rotten_tomatoes", {"source": "builtin"})
    index = np.random.default_rng(0).permutation(len(data.texts))[:2000]
    texts, labels = [data.texts[i] for i in index], data.labels[index]
    ids = [str(i) for i in index]
    scores = verifiers.scores_from_labeling_functions(ids, texts, LABELING_FUNCTIONS)
    gold = dict(zip(ids, labels))
    measured = {}
    for name, rows in scores.groupby("verifier_id"):
        votes = (rows["raw_score"] >= 0.5).astype(int).to_numpy()
        truth = rows["item_id"].map(gold).to_numpy()
        measured[name] = (len(rows) / len(ids), float(np.mean(votes == truth)))
    assert set(measured) == set(LABELING_FUNCTIONS)
    for name, (coverage, accuracy) in measured.items():
        assert coverage >= 0.03, (name, coverage)
        assert accuracy > 0.60, (name, accuracy)
    assert measured["lexicon"][0] > 0.40 and measured["lexicon"][1] > 0.75
