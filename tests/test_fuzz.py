"""Fuzzing the text inputs (hypothesis) against the real GloVe 6B 50-d vocabulary, loaded once.

Contract: no text crashes the query parser, the query-to-vector step or the word lookup. Each
either answers (finite vectors, well-formed results) or fails with the library's own clear
error (a VectorSearchError: QueryError, UnknownWordError, WordVectorsError) and a non-empty
message, for a reason the input shows (no known word); never IndexError, TypeError, a numpy
ValueError, an overflow to inf/nan, or anything else.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vector_search.engine import Engine
from vector_search.errors import VectorSearchError
from vector_search.text.query import QueryError, QueryVector, parse_query, query_vector
from vector_search.text.words import UnknownWordError, WordVectors, load_words

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,  # the same examples on every machine (derandomised below), nothing written
    derandomize=True,
)

# The word lookups suggest spellings for unknown words (difflib over 20k words): fewer examples.
FUZZ_WORDS = settings(FUZZ, max_examples=200)

# Pieces that exercise the grammar: operators, weights (good, odd, huge), joiners, real words,
# words with hyphens, case, unicode digits and letters that change length when lower-cased.
TOKENS = [
    "cat", "dog", "Dog", "DINING_TABLE", "dining", "table", "t-shirt", "x-ray", "e-mail", "sofa", "person",
    "+", "-", " - ", " + ", ":", "::", "_", "__", "-_-", " ", "  ", "\t", "\n",
    "2", "0.5", ".5", "5.", "0", "00", "1e5", "9" * 400, "1" + "0" * 39, "-1", "inf", "nan", "NaN",
    "٣", "𝟐", "½", "²", "İ", "ß", "ǅ", "\u0130stanbul", "é", "\u0301", "\x00", "\ufeff", "\u200b", "🐱", "qqzzxq",
]
texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(TOKENS), max_size=10).map("".join),
    st.lists(st.sampled_from(TOKENS), max_size=8).map(" ".join),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=4)), max_size=8).map("".join),
)
# Queries the examples always include. Two were bugs this file found in query.py (now fixed, with
# regression cases in test_query.py): a term of only '_' parsed to an empty term, and a weight
# too big for float32 ("9" * 400, 1e39) gave an inf query vector.
EDGE = ["", " ", "+", "-", "cat +", "+ cat", "- cat", "cat - cat", "2:", ":dog", "x:dog", "2:3:dog", "cat ++ dog",
        "_", "cat + _", "_:cat", "9" * 400 + ":cat", "1" + "0" * 39 + ":dog", "1e5:cat", "0:cat", "0:cat + dog",
        "t-shirt", "-t-shirt", "cat-", "-", "--", "dining_table - table", "\x00", "İ", "🐱"]


@pytest.fixture(scope="module")
def glove() -> WordVectors:
    words = load_words()
    words.index()  # build or load the word index once, before the timed examples
    return words


def clear(err: Exception) -> bool:
    return bool(str(err).strip())


def no_known_word(glove: WordVectors, text: str) -> bool:
    """Why a phrase may be refused: neither the text nor any of its words (runs of letters and digits,
    whole or split at hyphens; punctuation is no word) is a vocabulary word."""
    key = text.strip().lower()
    return key not in glove and not any(t in glove for t in re.findall(r"[^\W_]+(?:-[^\W_]+)*|[^\W_]+", key))


def examples(*values: str, **fixed: object):
    """@example(text=value, **fixed) for each value."""

    def decorate(test):
        for value in reversed(values):
            test = example(text=value, **fixed)(test)
        return test

    return decorate


@FUZZ
@given(text=texts)
@examples(*EDGE)
def test_parse_query(text: str) -> None:
    try:
        terms = parse_query(text)
    except QueryError as err:
        assert clear(err)
        return
    assert terms and all(isinstance(w, float) and isinstance(p, str) for w, p in terms)
    assert all(np.isfinite(w) for w, _ in terms), f"{text!r} parsed to a non-finite weight: {terms}"
    assert all(p.strip() for _, p in terms), f"{text!r} parsed to a term with no word: {terms}"


@FUZZ
@given(text=texts)
@examples(*EDGE)
def test_query_vector(glove: WordVectors, text: str) -> None:
    try:
        query = query_vector(text, glove)
    except QueryError as err:
        assert clear(err)
        return
    assert isinstance(query, QueryVector)
    assert query.vector.shape == (glove.dim,) and query.vector.dtype == np.float32
    assert np.isfinite(query.vector).all(), f"{text!r} gave a non-finite query vector"
    assert np.linalg.norm(query.vector) > 0


@FUZZ_WORDS
@given(text=texts)
@examples(*EDGE, "cat", "CAT", "e-mail")
def test_word_vector(glove: WordVectors, text: str) -> None:
    try:
        vector = glove.vector(text)
    except UnknownWordError as err:
        assert clear(err) and text not in glove
        return
    assert vector.shape == (glove.dim,) and np.isfinite(vector).all() and text in glove


@FUZZ_WORDS
@given(text=texts)
@examples(*EDGE, "dining_table", "Dining-Table", "e-mail")
def test_phrase(glove: WordVectors, text: str) -> None:
    try:
        phrase = glove.phrase(text)
    except VectorSearchError as err:
        assert clear(err) and no_known_word(glove, text), err
        return
    assert phrase.words and all(w in glove for w in phrase.words)
    assert phrase.vector.shape == (glove.dim,) and np.isfinite(phrase.vector).all()


@FUZZ_WORDS
@given(text=texts, k=st.integers(-3, 40))
@examples(*EDGE, k=10)
@examples("cat", "said", "dining table", k=-1)
@examples("cat", k=0)
def test_similar_words(glove: WordVectors, text: str, k: int) -> None:
    try:
        found = glove.similar_words(text, k)
    except VectorSearchError as err:
        assert clear(err) and (no_known_word(glove, text) or k < 0), err
        return
    if k <= 0:
        assert found == []
        return
    assert len(found) == k
    distances = [d for _, d in found]
    assert all(np.isfinite(distances)) and all(0 <= d <= 2 for d in distances) and distances == sorted(distances)
    own = set(glove.phrase(text).words)
    assert not own & {w for w, _ in found}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine(tmp_path_factory.mktemp("no_store"))  # words only: no image store needed


@FUZZ_WORDS
@given(text=texts, k=st.integers(1, 20))
@examples(*EDGE, k=5)
def test_engine_similar_words(engine: Engine, text: str, k: int) -> None:
    """What the CLI `words` command and the app call: the same contract through the engine."""
    try:
        found = engine.similar_words(text, k)
    except VectorSearchError as err:
        assert clear(err) and no_known_word(engine.words, text), err
        return
    assert len(found) == k and all(isinstance(r.item, str) and 0 <= r.distance <= 2 for r in found)
