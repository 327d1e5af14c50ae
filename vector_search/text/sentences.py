"""Sentence queries: which words of a text carry it, and how much.

People type "a black and white cat lying in the sun", not "cat". As the plain mean of its
words, that query is mostly "a", "and", "in", "the": its first-caption class-P@10 on Pascal
Sentences is 0.16. A term's vector is instead the weighted mean of its words' vectors, each
word weighing

    weight(w) = sif(w) * (spread(w) / the term's largest spread) ** SHARPNESS

- function words (text.vocab.STOP_WORDS, single letters) weigh nothing, unless the term has
  nothing else;
- sif(w) = a / (a + p(w)), the smooth inverse frequency of Arora et al. (2017, "A simple but
  tough-to-beat baseline for sentence embeddings"), p(w) from the word's GloVe frequency rank
  r (0 = the most frequent) by Zipf's law, p = 1 / ((r + 1) * H), H the vocabulary size's harmonic number;
- spread(w), when the query is weighed against a collection: the standard deviation, over the
  photos, of the word's cosine to their joint vectors. A word every photo is equally close to
  ("sun", "ground") cannot tell them apart; "cat" can. SHARPNESS lets the most telling words
  carry the term.

Measured with bench/measure_sentences.py (blend model, each held-out caption ranking all
1000 photos, class-P@10; settings chosen on the training photos' captions, not the held-out):
plain mean 0.159, function words dropped 0.312, + SIF 0.370, + spread 0.567, + class words
and synonyms 0.634 (see docs/results.md).

A word naming a class of the collection, by the class's own name ("cat") or a synonym
(synonyms.py: "plane" -> aeroplane), is taken as the most telling (a handful of photos may
spread "parked" or "runway" wider than "plane") and weighs at least CLASS_WEIGHT times the
term's heaviest word. A synonym is read as the mean of its own unit vector and the class's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from vector_search.search.vectors import normalize
from vector_search.text.synonyms import class_name_synonyms, reached_class
from vector_search.text.vocab import STOP_WORDS, class_vectors, class_words
from vector_search.text.words import WordVectors

SIF_A = 3e-5  # Arora et al.'s a; 1e-3 .. 1e-5 measured, see bench/measure_sentences.py
SHARPNESS = 8  # 0 (SIF only) .. 20 measured; past 8 the gain is below 0.01
CLASS_WEIGHT = 3.0  # a word naming a class weighs at least this times the term's heaviest word (0, 1, 3 measured)
SPREAD_SAMPLE = 4000  # photos the spread is measured on (a fixed sample of larger collections)


@dataclass(frozen=True)
class WordWeight:
    """A word of a query and its part in it: its share of its term's vector times the term's
    signed weight (the shares of a term's words sum to the term's weight); `reaches` is the
    class it was read as, through a synonym."""

    word: str
    weight: float
    reaches: str | None = None

    def as_dict(self) -> dict:
        row = {"word": self.word, "weight": round(self.weight, 4)}
        if self.reaches:
            row["reaches"] = self.reaches
        return row


MAIN_SHARE = 0.1  # a word with at least this share of its term is one of the words that carry it


def word_shares(words: Sequence[WordWeight], markdown: bool = False) -> str:
    """`cat 99%, sun 0%, plane 100% (as aeroplane)`: each word's share of its term, as the CLI and
    the app show the words of a text query; `markdown` bolds the words that carry it."""
    parts = []
    for w in words:
        text = f"**{w.word}**" if markdown and abs(w.weight) >= MAIN_SHARE else w.word
        parts.append(f"{text} {w.weight:.0%}" + (f" (as {w.reaches})" if w.reaches else ""))
    return ", ".join(parts)


@dataclass(frozen=True)
class Collection:
    """What a query is weighed against: the collection's joint vectors and its class names."""

    units: np.ndarray  # (n, dim) unit joint vectors of (a sample of) the photos
    synonyms: dict[str, str]  # word -> class it names (synonyms.class_name_synonyms)
    classes: dict[str, np.ndarray]  # class -> unit vector of its name
    own: dict[str, str] = field(default_factory=dict)  # a class name's own word -> the class

    @classmethod
    def of(cls, joint_vectors: np.ndarray, classes: Sequence[str], words: WordVectors) -> "Collection":
        """The collection of a store's joint vectors and class (folder) names."""
        units = normalize(np.asarray(joint_vectors, np.float32))
        if len(units) > SPREAD_SAMPLE:
            units = units[np.random.default_rng(0).choice(len(units), SPREAD_SAMPLE, replace=False)]
        names = tuple(sorted({c for c in classes if _has_word(c, words)}))
        if len(set(classes)) < 2:  # one folder of photos: its name says nothing about any of them
            names = ()
        vectors = normalize(class_vectors(names, words)) if names else np.zeros((0, words.dim), np.float32)
        own = {w: name for name in names for w in class_words(name) if w in words}
        return cls(units, class_name_synonyms(names, words), dict(zip(names, vectors)), own)

    def spread(self, vectors: np.ndarray) -> np.ndarray:
        """(k,) standard deviation over the photos of each vector's cosine to them."""
        if not len(self.units):
            return np.ones(len(vectors), np.float32)
        return (self.units @ normalize(np.asarray(vectors, np.float32)).T).std(axis=0)


def _has_word(name: str, words: WordVectors) -> bool:
    return any(w in words for w in name.lower().split("_") if w)


def is_function_word(word: str) -> bool:
    """A word that carries no content: text.vocab.STOP_WORDS, or a single letter ("a", "s")."""
    return word in STOP_WORDS or (len(word) == 1 and word.isalpha())


@functools.lru_cache(maxsize=4)
def _harmonic(n: int) -> float:
    return float(np.sum(1.0 / np.arange(1, n + 1, dtype=np.float64)))


def sif_weights(ranks: np.ndarray, vocabulary_size: int, a: float = SIF_A) -> np.ndarray:
    """a / (a + p) with p = 1 / ((rank + 1) * H), Zipf's law over a frequency-ordered vocabulary
    (H = 1 + 1/2 + ... + 1/vocabulary_size, so the p sum to 1)."""
    harmonic = _harmonic(vocabulary_size)
    p = 1.0 / ((np.asarray(ranks, np.float64) + 1.0) * harmonic)
    return a / (a + p)


def weigh_term(
    known: list[str], words: WordVectors, collection: Collection | None = None,
    sharpness: float = SHARPNESS, sif_a: float = SIF_A, class_weight: float = CLASS_WEIGHT,
) -> tuple[np.ndarray, list[WordWeight]]:
    """A term's vector from its known words (module docstring) and each word's share of it;
    `sharpness` and `sif_a` are the settings (bench/measure_sentences.py varies them)."""
    reaches = [reached_class(w, collection.synonyms) if collection else None for w in known]
    naming = np.array([bool(r or (collection and reached_class(w, collection.own))) for w, r in zip(known, reaches)])
    vectors = normalize(np.asarray([words.vector(w) for w in known], np.float32))
    for i, name in enumerate(reaches):
        if name is not None and name in collection.classes:  # type: ignore[union-attr]
            vectors[i] = normalize(((vectors[i] + collection.classes[name]) / 2)[None])[0]  # type: ignore[union-attr]
    weights = sif_weights([words.index_of(w) for w in known], len(words), sif_a)
    content = np.array([not is_function_word(w) for w in known])
    if content.any():
        weights = np.where(content, weights, 0.0)
    if collection is not None and sharpness:
        spread = collection.spread(vectors)
        top = max(float(spread[weights > 0].max()), 1e-12)
        spread = np.where(naming, top, spread)  # a word naming a class tells as much as the term's most telling word
        weights = weights * (spread / top) ** sharpness
        if naming.any() and class_weight:
            weights = np.where(naming, np.maximum(weights, class_weight * weights.max()), weights)
    if not weights.sum() > 0:
        weights = np.ones(len(known))
    shares = weights / weights.sum()
    return (shares @ vectors).astype(np.float32), [WordWeight(w, float(s), r) for w, s, r in zip(known, shares, reaches)]
