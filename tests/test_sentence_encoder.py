"""The sentence encoder on the real model, and the one tokenizer (text/tokens.py).

Reference vectors: tests/data/minilm_reference.npz, made once by tools/make_minilm_reference.py
with an independent implementation (Hugging Face `tokenizers` on the upstream tokenizer.json, a
numpy fp32 forward pass of the upstream safetensors); their token counts are `tokenizers`'.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vector_search.text import sentence_encoder as se
from vector_search.text.tokens import basic_tokens, known_words, words

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.npz"


@pytest.fixture(scope="module")
def encoder() -> se.SentenceEncoder:
    return se.sentence_encoder()


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return {k: data[k] for k in data.files}


def test_vectors_match_the_independent_reference(encoder: se.SentenceEncoder, reference: dict[str, np.ndarray]) -> None:
    vectors = encoder.encode(list(reference["texts"]))
    assert vectors.shape == (len(reference["texts"]), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * reference["vectors"]).sum(axis=1)
    assert cosines.min() > 0.99, dict(zip(reference["texts"], cosines))  # int8 weights against fp32
    # each text is nearer its own reference than any other text's
    assert (np.argmax(vectors @ reference["vectors"].T, axis=1) == np.arange(len(vectors))).all()


def test_batches_and_single_texts_agree(encoder: se.SentenceEncoder, reference: dict[str, np.ndarray]) -> None:
    texts = list(reference["texts"])
    batch = encoder.encode(texts)
    for text, row in zip(texts, batch):
        np.testing.assert_allclose(encoder.encode_one(text), row, atol=1e-4)  # padding never leaks into the mean


def test_token_counts_are_those_of_the_reference_tokenizer(encoder: se.SentenceEncoder, reference: dict[str, np.ndarray]) -> None:
    counts = [len(encoder.tokenizer.token_ids(t, se.MAX_TOKENS)) for t in reference["texts"]]
    assert counts == reference["lengths"].tolist()


def test_long_text_is_cut_at_256_word_pieces(encoder: se.SentenceEncoder) -> None:
    long = "the cat sat on the mat " * 100
    ids = encoder.tokenizer.token_ids(long, se.MAX_TOKENS)
    assert len(ids) == 256 and ids[0] == encoder.tokenizer.cls and ids[-1] == encoder.tokenizer.sep
    # what lies past the cut does not count
    np.testing.assert_allclose(encoder.encode([long + " a red bus"])[0], encoder.encode([long])[0], atol=1e-6)


def test_empty_and_blank_texts_have_a_vector(encoder: se.SentenceEncoder) -> None:
    vectors = encoder.encode(["", "   ", "\u200b\t"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    assert encoder.encode([]).shape == (0, 384)


def test_wordpiece_edge_cases(encoder: se.SentenceEncoder) -> None:
    wp = encoder.tokenizer
    assert basic_tokens("Café CRÈME, naïve!") == ["cafe", "creme", ",", "naive", "!"]  # accents stripped, punctuation split
    assert basic_tokens("東京cat") == ["東", "京", "cat"]  # CJK characters one by one
    assert basic_tokens("a\x00b\u0007c \ufffd") == ["abc"]  # control characters dropped
    assert wp.token_ids("Zürich", 256) == wp.token_ids("zurich", 256)
    assert wp.token_ids("", 256) == [wp.cls, wp.sep]
    assert wp.unk in wp.token_ids("x" * 101, 256)  # a word past 100 characters is unknown
    assert wp.token_ids("unaffable", 256)[1:-1] == [wp.ids["una"], wp.ids["##ffa"], wp.ids["##ble"]]  # longest match first


def test_one_word_tokenizer() -> None:
    assert words("A cat, lying.") == ["a", "cat", "lying"]
    assert words("T-shirt dining_table -dog 2:cat") == ["t-shirt", "dining", "table", "dog", "2", "cat"]
    vocabulary = {"cat", "sea", "gull", "t-shirt"}
    assert known_words("cat, sea-gull t-shirt qqq", vocabulary) == (["cat", "sea", "gull", "t-shirt"], ["qqq"])


def test_sentences_are_read_whole(encoder: se.SentenceEncoder) -> None:
    """The point of the encoder: the word "beach" moves a dog query towards beach scenes."""
    dog, beach_dog, beach = encoder.encode(["a dog", "a dog playing on the beach", "a sandy beach by the sea"])
    assert beach_dog @ beach > dog @ beach + 0.1


def test_cached_texts_are_embedded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECTOR_SEARCH_CACHE", str(tmp_path))
    encoder = se.SentenceEncoder()
    first = encoder.encode_cached(["a photo of a cat", "a photo of a dog", "a photo of a cat"])
    np.testing.assert_allclose(first, encoder.encode(["a photo of a cat", "a photo of a dog", "a photo of a cat"]), atol=1e-6)
    saved = list(tmp_path.rglob("*.npz"))
    assert len(saved) == 1 and np.load(saved[0])["texts"].tolist() == ["a photo of a cat", "a photo of a dog"]
    fresh = se.SentenceEncoder()  # another process: reads the bank, embeds only the new text
    again = fresh.encode_cached(["a photo of a dog", "a photo of a cow"])
    np.testing.assert_array_equal(again[0], first[1])
    assert len(list(tmp_path.rglob("*.npz"))) == 2
    saved[0].write_bytes(b"damaged")  # a damaged file costs its texts a new embedding, never an error
    np.testing.assert_allclose(se.SentenceEncoder().encode_cached(["a photo of a cat"])[0], first[0], atol=1e-6)
    # a named bank is a folder of its own, read alone: another bank's texts are not in memory
    apart = se.SentenceEncoder()
    np.testing.assert_allclose(apart.encode_cached(["cat", "a photo of a dog"], bank="calibration")[1], first[1], atol=1e-6)
    assert len(list((tmp_path / "sentences").rglob("calibration/*.npz"))) == 1
    assert set(apart._banks) == {"calibration"} and set(apart._banks["calibration"]) == {"cat", "a photo of a dog"}
