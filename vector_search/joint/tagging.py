"""Tags: a photo's nearest words in the joint space, from a filtered vocabulary.

They serve the engine (`Engine.tags`) and evaluation (tag accuracy), not training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from vector_search.imaging.imagenet import class_synonyms
from vector_search.joint.sentence import IMAGENET_SYNONYMS
from vector_search.search.index import normalize
from vector_search.text.sentence_encoder import SentenceEncoder
from vector_search.text.vocab import FREQUENT_WORDS, STOP_WORDS
from vector_search.text.words import WordVectors

MIN_TAG_LENGTH = 3
# Words offered as tags in the sentence space (each is one text for the encoder to embed: fewer than
# GloVe's 50,000; the 10,000 most frequent hold the gallery's and Pascal's words).
SENTENCE_TAG_WORDS = 10_000
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


def sentence_tag_vocabulary(words: WordVectors, encoder: SentenceEncoder, size: int = SENTENCE_TAG_WORDS) -> TagVocabulary:
    """Tags in the sentence encoder's space: the `size` most frequent words that pass `is_tag_word`,
    and ImageNet's class names of up to 3 words that all pass it ("coffee mug", "space shuttle"),
    each embedded as a text of its own once (cached on disk by the encoder)."""
    entries = [w for w in words.words[:size] if is_tag_word(w)]
    seen = set(entries)
    for names in class_synonyms():
        for name in names[:IMAGENET_SYNONYMS]:
            phrase = " ".join(name.lower().split())
            if phrase not in seen and len(phrase.split()) <= 3 and all(is_tag_word(w) for w in phrase.split()):
                seen.add(phrase)
                entries.append(phrase)
    return TagVocabulary(entries, encoder.encode_cached(entries))


def tags(joint_vectors: np.ndarray, vocabulary: TagVocabulary, k: int = 5) -> list[list[tuple[str, float]]]:
    """The k nearest tag words to each joint vector, as (word, cosine distance), nearest first."""
    sims = normalize(np.atleast_2d(joint_vectors)) @ vocabulary.units.T
    k = min(k, sims.shape[1])
    best = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(best, np.argsort(-np.take_along_axis(sims, best, 1), axis=1), 1)
    return [[(vocabulary.words[j], float(1.0 - s[j])) for j in row] for s, row in zip(sims, order)]
