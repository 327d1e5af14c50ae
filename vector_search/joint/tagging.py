"""Tags: a photo's nearest words in the joint space, from a filtered vocabulary.

They serve the engine (`Engine.tags`) and evaluation (tag accuracy), not training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from vector_search.search.index import normalize
from vector_search.text.vocab import FREQUENT_WORDS, STOP_WORDS
from vector_search.text.words import WordVectors

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
