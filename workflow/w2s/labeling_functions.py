"""Plain-Python labeling functions for movie-review sentiment (``rotten_tomatoes``: 0 = rotten, 1 = fresh).

Each function maps one text to a score in [0, 1], read as P(positive), or to ``None`` to abstain.
They are weak verifiers for :mod:`w2s.verifiers`: deliberately simple, individually noisy, and
built from different cues (word polarity, the clause after a contrast, set phrases, hedges) so
that their errors are not all the same.

Every function votes both ways (it can say positive or negative), because the label model
treats an abstain as missing: a function that only ever says "positive" would carry no signal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

from .registry import LABELING_FUNCTION_REGISTRY

POSITIVE_WORDS = frozenset(
    """
    good great best better fine nice fun funny hilarious charming delightful delight lovely beautiful
    beautifully gorgeous stunning moving touching poignant heartfelt warm sweet wonderful wonderfully
    enjoyable entertaining engaging engrossing absorbing compelling gripping riveting thrilling exciting
    brilliant brilliantly clever smart witty intelligent insightful thoughtful wise fresh original
    refreshing inventive imaginative remarkable impressive powerful strong solid excellent terrific
    superb masterpiece masterful perfect perfectly pleasure pleasant pleasurable satisfying rewarding
    memorable fascinating intriguing rich vivid affecting haunting honest tender uplifting joy joyous
    love loved lovable likable likeable winning worth worthy treat triumph succeeds success accomplished
    appealing amusing endearing irresistible sharp sly gem classic glorious exhilarating captivating
    beauty energetic lively subtle nuanced provocative ambitious assured confident inspired inspiring
""".split()
)

NEGATIVE_WORDS = frozenset(
    """
    bad worse worst dull boring bored bore tedious tiresome tired flat lame stupid dumb silly mess messy
    pointless predictable formulaic cliched clichéd cliche cliché clichés cliches mediocre forgettable
    bland lifeless listless sloppy annoying irritating contrived incoherent plodding slow sluggish
    awful terrible horrible dreadful painful unfunny waste wasted fails failed failure fail disappointing
    disappointment disappoints mindless shallow thin empty hollow uninspired unimaginative generic
    unconvincing implausible ridiculous preposterous overlong overwrought pretentious heavy-handed
    clumsy awkward muddled confused confusing junk trash garbage lousy weak poorly poor problem
    problems unfortunately routine banal trite stale labored laboured repetitive monotonous inept
    amateurish embarrassing excruciating unbearable insufferable numbing wearisome lacks lacking
    misfire misguided ugly crude cheap sour sappy schmaltzy mawkish manipulative dreary grating
""".split()
)

NEGATORS = frozenset("not no never nothing nor neither hardly barely without n't cannot".split())
NEGATION_WINDOW = 3  # a negator flips the polarity of the next few words ("not very funny")
CONTRAST_WORDS = frozenset("but yet however though although".split())

POSITIVE_PHRASES = (
    "one of the best",
    "one of the year's best",
    "must see",
    "must-see",
    "worth seeing",
    "worth watching",
    "worth the",
    "a joy",
    "a treat",
    "a pleasure",
    "a delight",
    "well worth",
    "well made",
    "well-made",
    "well acted",
    "well-acted",
    "at its best",
    "a triumph",
    "don't miss",
    "highly recommend",
    "beautifully",
    "a winner",
    "laugh-out-loud",
    "laugh out loud",
    "a must",
)
NEGATIVE_PHRASES = (
    "waste of",
    "not worth",
    "falls flat",
    "fall flat",
    "too long",
    "doesn't work",
    "does not work",
    "never quite",
    "not enough",
    "fails to",
    "not much",
    "not very",
    "no reason",
    "not funny",
    "too much",
    "runs out of",
    "nothing new",
    "by the numbers",
    "by-the-numbers",
    "worst",
    "it's hard to",
    "should have been",
    "could have been",
    "would have been",
    "mess",
)
# Hedges and backhanded praise signal a lukewarm (usually rotten) review.
HEDGE_WORDS = frozenset("merely only mildly somewhat passable watchable decent tolerable harmless adequate".split())

_TOKEN = re.compile(r"n't|[^\W\d_]+(?:[-'][^\W\d_]+)*|[!?]")


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens; "n't" is split off its verb so it counts as a negator."""
    return _TOKEN.findall(text.lower().replace("n't", " n't"))


def polarity(tokens: list[str]) -> int:
    """Positive minus negative lexicon hits, each hit flipped if a negator precedes it within the window."""
    score, negated_until = 0, -1
    for i, token in enumerate(tokens):
        if token in NEGATORS:
            negated_until = i + NEGATION_WINDOW
            continue
        hit = (token in POSITIVE_WORDS) - (token in NEGATIVE_WORDS)
        score += -hit if i <= negated_until else hit
    return score


def _squash(net: float) -> float | None:
    """Abstain on 0, else a probability that grows with the net evidence (1 hit -> 0.73)."""
    return None if net == 0 else 1.0 / (1.0 + math.exp(-net))


@LABELING_FUNCTION_REGISTRY.register("lexicon")
def lexicon(text: str) -> float | None:
    """Net word polarity with negation handling ("not funny" counts as negative)."""
    return _squash(polarity(tokenize(text)))


@LABELING_FUNCTION_REGISTRY.register("contrast_clause")
def contrast_clause(text: str) -> float | None:
    """Polarity of what follows the last "but"/"yet"/"however"/"though": the verdict usually sits
    there ("pretty to look at, but dull"). Abstains without a contrast word or a polar clause."""
    tokens = tokenize(text)
    positions = [i for i, t in enumerate(tokens) if t in CONTRAST_WORDS]
    if not positions:
        return None
    clause = tokens[positions[-1] + 1 :]
    net = polarity(clause)
    if net == 0:
        return None
    return 0.8 if net > 0 else 0.2


@LABELING_FUNCTION_REGISTRY.register("phrases")
def phrases(text: str) -> float | None:
    """Set phrases of recommendation ("one of the best", "worth seeing") or dismissal ("waste of",
    "falls flat"); abstains when none or both kinds appear."""
    lowered = " " + re.sub(r"\s+", " ", text.lower()) + " "
    positive = sum(p in lowered for p in POSITIVE_PHRASES)
    negative = sum(p in lowered for p in NEGATIVE_PHRASES)
    if positive == negative:
        return None
    return 0.85 if positive > negative else 0.15


@LABELING_FUNCTION_REGISTRY.register("hedges")
def hedges(text: str) -> float | None:
    """A hedge word ("merely watchable", "mildly amusing") votes negative; an exclamation without
    a hedge or negative word votes positive (enthusiasm). Abstains otherwise."""
    tokens = tokenize(text)
    if any(t in HEDGE_WORDS for t in tokens):
        return 0.3
    if "!" in tokens and polarity(tokens) >= 0:
        return 0.7
    return None


# Read-only name -> function view of the labeling-function registry (plugins included).
LABELING_FUNCTIONS: Mapping[str, Callable[[str], float | None]] = LABELING_FUNCTION_REGISTRY.view()
