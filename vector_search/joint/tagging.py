"""Tags: a photo's nearest words in the joint space, from a filtered vocabulary.

They serve the engine (`Engine.tags`) and evaluation (tag accuracy), not training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from vector_search.joint.targets import FREQUENT_WORDS
from vector_search.search.index import normalize
from vector_search.text.words import WordVectors

# Function words never worth a tag (a short list; the FREQUENT_WORDS cut removes rare junk).
STOP_WORDS = frozenset(
    """
    about above across after again against all almost alone along already also although always am among an and
    another any anyone anything anyway anywhere are around as at back be became because become been before
    behind being below beside besides between beyond both but by can cannot could did do does doing done down
    during each either else enough even ever every everyone everything except few for from further had has have
    having he her here hers herself him himself his how however if in indeed into is it its itself just least
    less many may me might mine more most mostly much must my myself neither never nevertheless next no nobody
    none nor not nothing now nowhere of off often on once one only onto or other others otherwise our ours
    ourselves out over own per perhaps please rather same several she should since so some somehow someone
    something sometime sometimes somewhere still such than that the their theirs them themselves then there
    thereby therefore these they this those though through throughout thus to together too toward towards under
    until up upon us very via was we well were what whatever when whence whenever where whereas wherever whether
    which while whither who whoever whole whom whose why will with within without would yet you your yours
    yourself yourselves
    """.split()
)
MIN_TAG_LENGTH = 3
_LETTERS = re.compile(r"[^\W\d_]+")  # letters only (any script), no digits, punctuation or _


def is_tag_word(word: str) -> bool:
    """The tag filter: purely alphabetic, at least MIN_TAG_LENGTH letters, not a stop word."""
    return len(word) >= MIN_TAG_LENGTH and _LETTERS.fullmatch(word) is not None and word not in STOP_WORDS


@dataclass(frozen=True)
class TagVocabulary:
    """The words that can be tags (filtered once), with their unit vectors."""

    words: list[str]
    units: np.ndarray  # (m, dim) float32


def tag_vocabulary(words: WordVectors, size: int = FREQUENT_WORDS) -> TagVocabulary:
    """The `size` most frequent words that pass `is_tag_word` (GloVe is frequency-ordered)."""
    rows = [i for i, w in enumerate(words.words[:size]) if is_tag_word(w)]
    return TagVocabulary([words.words[i] for i in rows], normalize(np.asarray(words.vectors[rows])))


def tags(joint_vectors: np.ndarray, vocabulary: TagVocabulary, k: int = 5) -> list[list[tuple[str, float]]]:
    """The k nearest tag words to each joint vector, as (word, cosine distance), nearest first."""
    sims = normalize(np.atleast_2d(joint_vectors)) @ vocabulary.units.T
    k = min(k, sims.shape[1])
    best = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(best, np.argsort(-np.take_along_axis(sims, best, 1), axis=1), 1)
    return [[(vocabulary.words[j], float(1.0 - s[j])) for j in row] for s, row in zip(sims, order)]
