"""sentences.py and synonyms.py: how much each word of a sentence query counts, and class synonyms.

Weights are checked exactly on a tiny frequency-ordered vocabulary; synonyms on the real GloVe
vectors and the WordNet data the package ships.
"""

from __future__ import annotations

import numpy as np
import pytest

from vector_search.text.query import query_vector
from vector_search.text.sentences import Collection, sif_weights, weigh_term
from vector_search.text.synonyms import class_name_synonyms, reached_class, singular_forms
from vector_search.text.tokens import words as tokens
from vector_search.text.words import WordVectors


@pytest.fixture(scope="module")
def tiny() -> WordVectors:
    """Four words in frequency order: "the" ranks 0, "cat" 1, "sun" 2, "dog" 3 (H_4 = 25/12)."""
    vectors = np.array([[0.6, 0.8], [1.0, 0.0], [0.0, 1.0], [0.8, 0.6]], np.float32)
    return WordVectors(["the", "cat", "sun", "dog"], vectors, "tiny")


def shares(term: list[str], words: WordVectors, collection: Collection | None = None, **settings) -> list[float]:
    return [w.weight for w in weigh_term(term, words, collection, **settings)[1]]


def test_sif_weights_follow_zipf() -> None:
    # p(rank r) = 1 / ((r + 1) * 25/12): 12/25, 6/25, 4/25, 3/25; weight a / (a + p) with a = 0.1
    assert sif_weights([0, 1, 2, 3], 4, 0.1) == pytest.approx([5 / 29, 5 / 17, 5 / 13, 5 / 11])


def test_term_weights_exact(tiny: WordVectors) -> None:
    # cat 5/17 and sun 5/13: shares 13/30 and 17/30
    assert shares(["cat", "sun"], tiny, sif_a=0.1) == pytest.approx([13 / 30, 17 / 30])
    # "the" is a function word: it counts nothing, the others share as before
    assert shares(["the", "cat", "sun"], tiny, sif_a=0.1) == pytest.approx([0.0, 13 / 30, 17 / 30])
    # a term of function words only still means something: equal shares
    assert shares(["the"], tiny, sif_a=0.1) == pytest.approx([1.0])
    vector, _ = weigh_term(["cat", "sun"], tiny, sif_a=0.1)
    np.testing.assert_allclose(vector, [13 / 30, 17 / 30], rtol=1e-6)  # weighted mean of unit vectors


def test_collection_spread_weights_exact(tiny: WordVectors) -> None:
    # two photos at (1, 0) and (0.6, 0.8): cat's cosines 1, 0.6 (std 0.2), sun's 0, 0.8 (std 0.4)
    photos = np.array([[1.0, 0.0], [0.6, 0.8]], np.float32)
    collection = Collection(photos, {}, {})
    np.testing.assert_allclose(collection.spread(tiny.vectors[[1, 2]]), [0.2, 0.4], rtol=1e-6)
    # weight = sif * (spread / largest spread) ** sharpness: cat 5/17 * 0.5, sun 5/13 * 1 -> 13/47, 34/47
    assert shares(["cat", "sun"], tiny, collection, sif_a=0.1, sharpness=1) == pytest.approx([13 / 47, 34 / 47])
    # sharpness 3: cat 5/17 / 8, sun 5/13 -> 13/149, 136/149
    assert shares(["cat", "sun"], tiny, collection, sif_a=0.1, sharpness=3) == pytest.approx([13 / 149, 136 / 149])


def test_query_reports_every_word_with_its_signed_share(tiny: WordVectors) -> None:
    parsed = query_vector("2:The cat, sun! - dog", tiny)
    assert [w.word for w in parsed.words] == ["the", "cat", "sun", "dog"]
    # default a = 3e-5, far below every p here: weights ~ a / p, i.e. ~ rank + 1: cat 2/5, sun 3/5 of the term
    cat, sun = sif_weights([1, 2], 4)
    expected = [0.0, 2 * cat / (cat + sun), 2 * sun / (cat + sun), -1.0]
    assert [w.weight for w in parsed.words] == pytest.approx(expected)
    assert expected[1:3] == pytest.approx([0.8, 1.2], rel=1e-3)


def test_tokens_drop_punctuation_keep_inner_hyphens() -> None:
    assert tokens("A t-shirt, on the sofa-bed... (2 cats)") == ["a", "t-shirt", "on", "the", "sofa-bed", "2", "cats"]


def test_singular_forms() -> None:
    assert singular_forms("airplanes")[:2] == ["airplanes", "airplane"]
    assert "bus" in singular_forms("buses") and "pony" in singular_forms("ponies")
    assert singular_forms("glass") == ["glass"]


PASCAL_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "dining_table",
                  "dog", "horse", "motorbike", "person", "potted_plant", "sheep", "sofa", "train", "tv_monitor")


def test_class_words_reach_their_synonyms(tmp_glove: WordVectors) -> None:
    synonyms = class_name_synonyms(PASCAL_CLASSES, tmp_glove)
    for word in ("plane", "airplane", "aircraft"):
        assert synonyms[word] == "aeroplane", word  # WordNet: the synset and its general name
    assert synonyms["television"] == "tv_monitor"  # GloVe: mutual nearest neighbours of tv
    assert synonyms["motorcycle"] == "motorbike"
    assert synonyms["couch"] == "sofa" and synonyms["cattle"] == "cow"
    assert synonyms["bike"] == "bicycle"  # bicycle's own synset beats motorbike's hypernym
    for word in ("animal", "seat", "furniture", "factory", "lizard"):
        assert word not in synonyms, word  # shared by several classes, or another sense
    assert "aeroplane" not in synonyms and "tv" not in synonyms  # a class's own words are not synonyms
    assert reached_class("airplanes", synonyms) == "aeroplane"


def test_a_sentence_reaches_a_class_through_a_synonym(tmp_glove: WordVectors) -> None:
    photos = np.asarray([tmp_glove.vector(w) for w in ("aeroplane", "boat", "cat", "dog")], np.float32)
    collection = Collection.of(photos, ["aeroplane", "boat", "cat", "dog"], tmp_glove)
    parsed = query_vector("Two airplanes parked at the airport.", tmp_glove, collection)
    by_word = {w.word: w for w in parsed.words}
    assert by_word["airplanes"].reaches == "aeroplane"
    assert by_word["the"].weight == 0.0 and by_word["at"].weight == 0.0
    assert sum(w.weight for w in parsed.words) == pytest.approx(1.0)
    sims = Collection.of(photos, [], tmp_glove).units @ parsed.vector
    assert int(np.argmax(sims)) == 0  # the aeroplane


def test_sentence_figures_exact_on_a_tiny_collection(tiny: WordVectors) -> None:
    from vector_search.evaluation.sentences import sentence_retrieval

    photos = np.asarray([tiny.vector(w) for w in ("cat", "sun", "dog")], np.float32)  # joint vectors on their words
    captions = [["The cat."], ["sun"], ["dog", "cat"]]  # the last photo's second caption names another class
    collection = Collection.of(photos, ["cat", "sun", "dog"], tiny)
    figures = sentence_retrieval(photos, ["cat", "sun", "dog"], captions, np.arange(3), lambda text: query_vector(text, tiny, collection).vector, k=1)
    # "cat" ranks the cat photo (1.0) before the dog photo (0.8): the dog photo's own rank is 2
    assert figures["captions"] == 4 and figures["photos"] == 3
    assert figures["recall_at_1"] == 0.75 and figures["recall_at_5"] == 1.0 and figures["median_rank"] == 1.0
    assert figures["class_precision_at_1_all_photos"] == 0.75
    assert figures["first_caption_class_precision_at_1_all_photos"] == 1.0
    assert figures["recall_at_1_all_photos"] == 0.75 and figures["median_rank_all_photos"] == 1.0  # here all photos are held out


def test_one_folder_of_photos_names_no_class(tmp_glove: WordVectors) -> None:
    photos = np.asarray([tmp_glove.vector(w) for w in ("aeroplane", "cat")], np.float32)
    collection = Collection.of(photos, ["photos", "photos"], tmp_glove)
    assert collection.own == {} and collection.synonyms == {} and collection.classes == {}
    assert query_vector("a photo of a plane", tmp_glove, collection).words[-1].reaches is None
