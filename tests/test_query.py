"""query.py: the query grammar on real GloVe, and class re-weighting with the real Lite0 classifier."""

from __future__ import annotations

import numpy as np
import pytest

from vector_search.imaging.imagenet import find_class
from vector_search.search.vectors import normalize
from vector_search.text.query import QueryError, class_weights, parse_query, query_vector, reweight
from vector_search.text.sentences import sif_weights
from vector_search.text.words import WordVectors


@pytest.fixture(scope="module")
def words(tmp_glove: WordVectors) -> WordVectors:
    return tmp_glove  # the session's GloVe (conftest), cached in a temp folder


@pytest.mark.parametrize(
    "text, expected",
    [
        ("cat", [(1.0, "cat")]),
        ("  Cat  Sofa ", [(1.0, "cat sofa")]),
        ("cat + sofa - person", [(1.0, "cat"), (1.0, "sofa"), (-1.0, "person")]),
        ("cat+sofa -person", [(1.0, "cat"), (1.0, "sofa"), (-1.0, "person")]),
        ("cat+sofa-bed", [(1.0, "cat"), (1.0, "sofa-bed")]),  # a - between letters is part of the word
        ("2:dog", [(2.0, "dog")]),
        ("0.5:ocean + .5:beach", [(0.5, "ocean"), (0.5, "beach")]),
        ("dining_table", [(1.0, "dining table")]),
        ("2: dining_table - 0.5 : person", [(2.0, "dining table"), (-0.5, "person")]),
        ("-cat", [(-1.0, "cat")]),
        ("+cat", [(1.0, "cat")]),
        ("t-shirt - x-ray", [(1.0, "t-shirt"), (-1.0, "x-ray")]),
        ("cat -dog", [(1.0, "cat"), (-1.0, "dog")]),
    ],
)
def test_parse_query(text: str, expected: list[tuple[float, str]]) -> None:
    assert parse_query(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty query"),
        ("   \t", "empty query"),
        ("x:dog", "malformed weight 'x'"),
        ("-2:dog + 1e3:cat", "malformed weight '1e3'"),
        ("2:", "no word after"),
        (":dog", "missing weight"),
        ("cat ++ dog", "empty term"),
        ("cat + - dog", "empty term"),
        ("cat +", "ends with an operator"),
        ("cat -", "ends with an operator"),
        ("2:3:dog", "more than one ':'"),
        ("cat + _", "has no word"),
        ("9" * 400 + ":cat", "too large"),
        ("cat + 1000001:dog", "too large"),
    ],
)
def test_malformed_queries(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(text)
    assert issubclass(QueryError, ValueError)


def test_phrase_is_the_weighted_mean_and_terms_are_weighted(words: WordVectors) -> None:
    cat, sofa, person, dining, table = normalize(np.stack([words.vector(w) for w in ("cat", "sofa", "person", "dining", "table")]))
    share_cat, share_sofa = sif_weights([words.index_of("cat"), words.index_of("sofa")], len(words)) / sum(
        sif_weights([words.index_of("cat"), words.index_of("sofa")], len(words)))
    np.testing.assert_allclose(query_vector("cat sofa", words).vector, share_cat * cat + share_sofa * sofa, rtol=1e-5)
    np.testing.assert_allclose(query_vector("cat + sofa - person", words).vector, cat + sofa - person, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(query_vector("2:cat - 0.5:sofa", words).vector, 2 * cat - 0.5 * sofa, rtol=1e-5, atol=1e-6)
    table_query = query_vector("dining_table", words)
    w_dining, w_table = sif_weights([words.index_of("dining"), words.index_of("table")], len(words))
    expected = (w_dining * dining + w_table * table) / (w_dining + w_table)
    np.testing.assert_allclose(table_query.vector, expected, rtol=1e-5)
    assert table_query.terms == [(1.0, "dining table")] and table_query.unknown == []


def test_unknown_words_are_skipped_and_reported(words: WordVectors) -> None:
    cat = normalize(words.vector("cat")[None])[0]
    q = query_vector("cat qzxqzx + wqwqwq", words)
    np.testing.assert_allclose(q.vector, cat, rtol=1e-5)
    assert q.unknown == ["qzxqzx", "wqwqwq"]
    hyphen = query_vector("cat-qzxqzx", words)  # an unknown hyphenated word falls back to its parts
    np.testing.assert_allclose(hyphen.vector, cat, rtol=1e-5)
    assert hyphen.unknown == ["qzxqzx"]
    with pytest.raises(QueryError, match="no known word.*qzxqzx"):
        query_vector("qzxqzx wqwqwq", words)
    with pytest.raises(QueryError, match="cancel out"):
        query_vector("cat - cat", words)


def test_class_weights_clip_or_keep_negative_weights(lite0) -> None:
    w, _ = lite0.classifier()
    siamese = find_class("Siamese cat")
    assert siamese == 284
    kept, clipped = class_weights(w, siamese, "keep"), class_weights(w, siamese, "clip")
    np.testing.assert_array_equal(kept, w[:, 284])
    assert (kept < 0).any() and (clipped >= 0).all()
    np.testing.assert_array_equal(clipped, np.maximum(kept, 0))

    # With non-negative features, "keep" and |w| give the same cosines: the sign cancels.
    rng = np.random.default_rng(0)
    features = rng.random((6, w.shape[0]), dtype=np.float32) * 6
    a = normalize(reweight(features, kept))
    b = normalize(reweight(features, np.abs(kept)))
    np.testing.assert_allclose(a @ a.T, b @ b.T, atol=1e-5)

    assert reweight(features[0], clipped).shape == (w.shape[0],)
    with pytest.raises(ValueError, match="dimensions"):
        reweight(features[:, :10], clipped)
    with pytest.raises(ValueError, match="out of range"):
        class_weights(w, 1000)
    with pytest.raises(ValueError, match="clip"):
        class_weights(w, 284, "abs")  # type: ignore[arg-type]
