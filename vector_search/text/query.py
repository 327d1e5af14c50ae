"""Text queries as word vectors, and re-weighting image features by one ImageNet class.

Query grammar (case-insensitive):

    query  :=  [sign] term (sign term)*        sign  :=  '+' | '-'
    term   :=  [weight ':'] word+              weight := a decimal number: 2, 0.5, .5 (at most 1e6)

- Terms are separated by `+` or `-`. A `-` between two letters or digits belongs to the
  word (`t-shirt`, `x-ray`); anywhere else it is the minus operator (`cat -dog`, `cat - dog`).
- A term's vector is the weighted mean of its known words' unit vectors (sentences.py): a term
  may be a whole sentence, "a black cat lying in the sun", where function and frequent words
  count little and, searching a collection, the words that tell its photos apart count most.
  `_` joins words like a space: `dining_table` == `dining table`, the way class folder names
  are read; punctuation separates words.
- The query vector is the sum of sign * weight * term vector: `cat + sofa - person`,
  `2:dog + 0.5:ocean`. For cosine search only its direction matters.
- In the sentence encoder's space (the default joint model) a term is encoded whole instead
  (`sentence_query_vector`): "a dog playing on the beach" is one vector, beach and all.
- Unknown words are skipped and reported (an unknown hyphenated word falls back to its
  parts); a term with no known word is dropped.

`QueryError` (a ValueError) is raised for an empty query, a malformed term or weight
(`x:dog`, `2:`, `:dog`, `cat ++ dog`, `cat +`, `cat + _`), a weight above 1e6, a query with
no known word, or terms that cancel out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from vector_search.errors import VectorSearchError
from vector_search.text.sentences import Collection, WordWeight, weigh_term
from vector_search.text.tokens import known_words
from vector_search.text.words import WordVectors

if TYPE_CHECKING:
    from vector_search.text.sentence_encoder import SentenceEncoder

_WEIGHT = re.compile(r"\d+(?:\.\d*)?|\.\d+")
MAX_WEIGHT = 1e6  # only ratios of weights matter; bigger ones would overflow float32 vectors


class QueryError(VectorSearchError, ValueError):
    """A text query that cannot be turned into a vector; the message says why."""


@dataclass(frozen=True)
class QueryVector:
    """A parsed query: its vector, its (weight, words) terms, the words skipped and how much each counted."""

    vector: np.ndarray  # (dim,) float32
    terms: list[tuple[float, str]]
    unknown: list[str]
    words: list[WordWeight]  # each known word and its signed share of the query, in order


def _split_terms(text: str) -> list[tuple[int, str]]:
    """Split on the + and - operators into (sign, term text) pairs, checking no term is empty."""
    pieces: list[tuple[int, str]] = []
    sign, start, leading = 1, 0, True
    for i, ch in enumerate(text):
        in_word = ch == "-" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
        if ch not in "+-" or in_word:
            continue
        term = text[start:i].strip()
        if term:
            pieces.append((sign, term))
        elif not leading:
            raise QueryError(f"empty term before {ch!r} at position {i + 1} in {text!r}")
        sign, start, leading = (1 if ch == "+" else -1), i + 1, False
    term = text[start:].strip()
    if not term:
        raise QueryError(f"query {text!r} ends with an operator: a term must follow it")
    pieces.append((sign, term))
    return pieces


def parse_query(text: str) -> list[tuple[float, str]]:
    """Parse a query into (signed weight, words) terms, words lower-cased and space-separated.

    >>> parse_query("2:cat + dining_table - 0.5:person")
    [(2.0, 'cat'), (1.0, 'dining table'), (-0.5, 'person')]
    """
    if not text or not text.strip():
        raise QueryError("empty query: type a word, a phrase or terms like 'cat + sofa - person'")
    terms: list[tuple[float, str]] = []
    for sign, term in _split_terms(text.strip()):
        weight, words = 1.0, term
        if ":" in term:
            weight_text, words = (s.strip() for s in term.split(":", 1))
            if not weight_text:
                raise QueryError(f"missing weight before ':' in {term!r}: write e.g. 2:dog")
            if not _WEIGHT.fullmatch(weight_text):
                raise QueryError(f"malformed weight {weight_text!r} in {term!r}: write a number, e.g. 2:dog or 0.5:ocean")
            if not words:
                raise QueryError(f"weight {weight_text} has no word after ':' in {term!r}")
            if ":" in words:
                raise QueryError(f"term {term!r} has more than one ':'")
            weight = float(weight_text)
            if weight > MAX_WEIGHT:
                raise QueryError(f"weight {weight_text[:20]} in {term[:40]!r} is too large (at most {MAX_WEIGHT:g})")
        phrase = " ".join(words.lower().replace("_", " ").split())
        if not phrase:
            raise QueryError(f"term {term!r} has no word")
        terms.append((sign * weight, phrase))
    return terms


def query_vector(text: str, words: WordVectors, collection: Collection | None = None) -> QueryVector:
    """The vector of a query (see the module docstring); raises QueryError if there is none.

    A term's words are weighed (sentences.weigh_term): function and frequent words count little,
    and against a `collection` the words that tell its photos apart count most."""
    terms = parse_query(text)
    total = np.zeros(words.vectors.shape[1], np.float64)
    unknown: list[str] = []
    counted: list[WordWeight] = []
    for weight, phrase in terms:
        known, missing = known_words(phrase, words)
        unknown += missing
        if known:
            vector, shares = weigh_term(known, words, collection)
            total += weight * vector
            counted += [replace(share, weight=weight * share.weight) for share in shares]
    if not counted:
        raise QueryError(f"no known word in query {text!r} (unknown: {', '.join(unknown)})")
    if not np.linalg.norm(total) > 1e-6:
        raise QueryError(f"the terms of query {text!r} cancel out: its vector is zero")
    return QueryVector(total.astype(np.float32), terms, unknown, counted)



def sentence_query_vector(text: str, encoder: SentenceEncoder) -> QueryVector:
    """The vector of a query in the sentence encoder's space: each term is encoded whole (a sentence
    stays a sentence: "a dog on the beach" is one term) and the terms combine by the grammar as in
    query_vector (`cat + sofa - person`, `2:dog`); each term counts as one entry of `words`."""
    terms = parse_query(text)
    total = np.zeros(encoder.dim, np.float64)
    for weight, phrase in terms:
        total += weight * encoder.encode_one(phrase)
    if not np.linalg.norm(total) > 1e-6:
        raise QueryError(f"the terms of query {text!r} cancel out: its vector is zero")
    return QueryVector(total.astype(np.float32), terms, [], [WordWeight(phrase, weight) for weight, phrase in terms])

# --- class re-weighting ---------------------------------------------------------------------------


def class_weights(
    classifier_w: np.ndarray, class_index: int, negative: Literal["clip", "keep"] = "clip"
) -> np.ndarray:
    """Per-feature weights of one ImageNet class: column `class_index` of the (d, 1000) classifier.

    feature_j * W[j, c] is feature j's contribution to class c's logit. The classic demo used
    the raw column ("keep"); since features are non-negative (post-ReLU), the cosine of two
    re-weighted vectors then sums f1_j * f2_j * W[j, c]**2: the sign cancels, and features that
    speak *against* the class count as much as those for it. "clip" (default) zeroes negative
    weights, keeping only evidence for the class.
    """
    if not 0 <= class_index < classifier_w.shape[1]:
        raise QueryError(f"class index {class_index} out of range 0..{classifier_w.shape[1] - 1}")
    column = np.asarray(classifier_w[:, class_index], np.float32)
    if negative == "clip":
        return np.maximum(column, 0.0)
    if negative == "keep":
        return column
    raise QueryError(f"negative must be 'clip' or 'keep', not {negative!r}")


def reweight(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Features (n, d) or (d,) multiplied elementwise by per-feature weights (d,)."""
    if features.shape[-1] != weights.shape[0]:
        raise QueryError(f"features have {features.shape[-1]} dimensions, weights {weights.shape[0]}")
    return (features * weights).astype(np.float32)


def reweighted_search(vectors: np.ndarray, vector: np.ndarray, weights: np.ndarray, k: int, block: int = 65_536,
                      among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ids and cosine distances of the k rows of `vectors` (or of the rows `among`) nearest to `vector`,
    both re-weighted: exact (the weights change the metric, so no saved index applies), in blocks of
    rows, never a re-weighted copy of the whole matrix (1 GB at 200k x 1280; `vectors` may be a memmap).
    `among`: candidate rows (from an index of the plain space, see store/ranking.py), read in order."""
    from vector_search.search.vectors import cosine_distances, top_k

    target = reweight(vector, weights)
    ids = None if among is None else np.unique(among)
    count = len(vectors) if ids is None else len(ids)
    rows = (lambda i: vectors[i : i + block]) if ids is None else (lambda i: vectors[ids[i : i + block]])
    parts = [cosine_distances(reweight(np.asarray(rows(i)), weights), target) for i in range(0, count, block)]
    distances = np.clip(np.concatenate(parts), 0, 2) if parts else np.zeros(0, np.float32)
    order, nearest = top_k(distances, k)
    return (order if ids is None else ids[order]), nearest
