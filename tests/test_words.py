"""Word vectors on the real packaged GloVe 6B 50-d and on small GloVe text files."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import GLOVE_SLICE

from vector_search import config
from vector_search.errors import VectorSearchError
from vector_search.search import index as search_index
from vector_search.search.index import exact_index, recall_at_k
from vector_search.text import words as words_module
from vector_search.text.words import (
    DEFAULT_INDEX_KIND,
    EXACT_SCAN_QUERIES,
    EXACT_SCAN_QUERIES_UNBUILT,
    PACKAGED_NAME,
    UnknownWordError,
    WordVectors,
    WordVectorsError,
    load_words,
)

TINY = """the 0.1 0.2 0.3
cat 1.0 0.0 0.5
dog 0.9 0.1 0.4
über -1.5 2.25 3e-2
"""


@pytest.fixture(scope="session")
def glove_cache() -> Path:
    """The packaged GloVe's cache in the user's cache folder, as the library uses it: its 400k-word
    index (slow tests only) is built once (about a minute on 2 cores), then reused by every run."""
    return config.cache_root() / "words" / PACKAGED_NAME


@pytest.fixture(scope="session")
def glove(glove_cache: Path) -> WordVectors:
    return load_words(cache_dir=glove_cache)


def write_tiny(path: Path, text: str = TINY) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def inodes(cache: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in sorted(cache.iterdir())}


def test_packaged_glove_loads(glove: WordVectors, glove_cache: Path) -> None:
    assert (len(glove), glove.dim, glove.vectors.shape) == (400_000, 50, (400_000, 50))
    assert glove.vectors.dtype == np.float32 and glove.vectors.flags.c_contiguous
    assert glove.words[:3] == ["the", ",", "."] and glove.name == PACKAGED_NAME
    np.testing.assert_allclose(glove.vector("the")[:3], [0.418, 0.24968, -0.41242])
    assert "cat" in glove and "Cat" in glove and "qqzzxqq" not in glove
    assert glove.index_of("The") == 0
    assert {"vectors.npy", "words.txt", "meta.json"} <= {p.name for p in glove_cache.iterdir()}


def refuse(what: str):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} was called")

    return fail


def test_packaged_cache_is_reused(glove: WordVectors, glove_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = inodes(glove_cache)
    monkeypatch.setattr(words_module, "_read_packaged", refuse("reading the packaged vectors"))
    again = load_words(cache_dir=glove_cache)
    assert inodes(glove_cache) == before  # nothing rewritten
    assert again.words == glove.words and again.fingerprint == glove.fingerprint
    assert isinstance(again.vectors, np.memmap)  # mapped, not read


def test_phrase_is_the_mean_of_known_words(glove: WordVectors) -> None:
    want = (glove.vector("dining") + glove.vector("table")) / 2
    for text in ("dining_table", "dining table", "Dining-Table", "  dining   TABLE "):
        phrase = glove.phrase(text)
        np.testing.assert_allclose(phrase.vector, want, rtol=1e-6)
        assert phrase.words == ["dining", "table"] and phrase.unknown == []
    mixed = glove.phrase("dining qqzzxqq table")
    np.testing.assert_allclose(mixed.vector, want, rtol=1e-6)
    assert mixed.unknown == ["qqzzxqq"]
    whole = glove.phrase("e-mail")  # a vocabulary word with a hyphen is taken whole
    assert whole.words == ["e-mail"]
    assert glove.phrase("cat,").words == ["cat"]  # punctuation is dropped, as in a query (tokens.words)


def test_unknown_word_error_suggests(glove: WordVectors) -> None:
    with pytest.raises(UnknownWordError) as err:
        glove.vector("umbrela")
    assert isinstance(err.value, KeyError) and isinstance(err.value, VectorSearchError)
    assert str(err.value).startswith("unknown word 'umbrela'")  # the message, not KeyError's repr of it
    assert "'umbrela'" in str(err.value) and "umbrella" in str(err.value) and "400000" in str(err.value)
    with pytest.raises(UnknownWordError, match="qqzzxqq"):
        glove.phrase("qqzzxqq_zzqqxx")


def test_empty_query_is_an_error(glove: WordVectors) -> None:
    for text in ("", "   ", "_-_"):
        with pytest.raises(WordVectorsError, match="empty"):
            glove.similar_words(text, kind="exact")


def test_similar_words_exact(glove: WordVectors) -> None:
    result = glove.similar_words("said", 10, kind="exact")
    words = [w for w, _ in result]
    assert len(result) == 10 and "said" not in words
    assert {"told", "asked", "says", "saying", "added"} & set(words)
    distances = [d for _, d in result]
    assert distances == sorted(distances) and 0 < distances[0] < 0.5
    phrase = [w for w, _ in glove.similar_words("dining table", 10, kind="exact")]
    assert "dining" not in phrase and "table" not in phrase


@pytest.mark.slow
def test_word_index_saved_and_reloaded(glove: WordVectors, glove_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default (hnsw) word index: built once and saved, then loaded (never rebuilt), recall >= 0.95.
    How long loading takes is measured by bench/bench_word_scan.py."""
    result = glove.similar_words("said", 10)
    words = [w for w, _ in result]
    assert "said" not in words and {"told", "asked", "says", "saying", "added"} & set(words)
    assert (glove_cache / "index.hnsw").is_file() and (glove_cache / "index.hnsw.json").is_file()

    before = inodes(glove_cache)
    with monkeypatch.context() as m:
        m.setattr(search_index, "build_index", refuse("building an index"))
        again = load_words(cache_dir=glove_cache)
        index = again.index()
    assert inodes(glove_cache) == before  # loaded, not rebuilt
    assert again.index_saved(DEFAULT_INDEX_KIND) and again.index_kind_for(EXACT_SCAN_QUERIES) == DEFAULT_INDEX_KIND

    rows = np.random.default_rng(0).choice(len(again), 500, replace=False)
    recall = recall_at_k(index, exact_index(again.vectors), again.vectors[rows], 10, exclude=rows)
    assert recall >= 0.95


def test_the_committed_glove_slice_is_real_glove(tmp_path: Path, glove: WordVectors) -> None:
    """tests/fixtures' slice, read as any glove.*.txt: GloVe's own rows, in frequency order."""
    part = load_words(GLOVE_SLICE, cache_dir=tmp_path / "cache")
    assert part.name == "glove.slice.50d" and part.dim == 50 and len(part) > 1000 and part.words[:3] == ["the", ",", "."]
    rows = [glove.index_of(w) for w in part.words]
    assert rows == sorted(rows) and {"cat", "cup", "rocket", "coffee"} <= set(part.words)
    np.testing.assert_allclose(part.vectors, np.asarray(glove.vectors)[rows], atol=5e-6)


def test_text_glove_of_another_dimension(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_tiny(tmp_path / "glove.tiny.3d.txt")
    monkeypatch.setenv("VECTOR_SEARCH_CACHE", str(tmp_path / "cache"))
    wv = load_words(source)
    cache = tmp_path / "cache" / "words" / "glove.tiny.3d"
    assert wv.name == "glove.tiny.3d" and wv.cache_dir == cache
    assert wv.words == ["the", "cat", "dog", "über"] and wv.dim == 3
    np.testing.assert_array_equal(wv.vector("über"), np.array([-1.5, 2.25, 0.03], np.float32))
    assert (cache / "words.txt").read_text(encoding="utf-8") == "the\ncat\ndog\nüber"

    before = inodes(cache)
    again = load_words(source)
    assert inodes(cache) == before
    assert again.words == wv.words
    np.testing.assert_array_equal(again.vectors, wv.vectors)
    assert [w for w, _ in again.similar_words("cat", 1, kind="annoy")] == ["dog"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: (c / "vectors.npy").write_bytes((c / "vectors.npy").read_bytes()[:-8]),
        lambda c: (c / "vectors.npy").write_bytes(b"garbage"),
        lambda c: (c / "words.txt").write_text("the\ncat\ndog\nuber", encoding="utf-8"),
        lambda c: (c / "meta.json").write_text("{", encoding="utf-8"),
        lambda c: (c / "words.txt").unlink(),
    ],
    ids=["truncated-vectors", "garbage-vectors", "corrupt-words", "corrupt-meta", "missing-words"],
)
def test_corrupt_cache_is_rebuilt(damage, tmp_path: Path) -> None:
    source = write_tiny(tmp_path / "glove.tiny.3d.txt")
    cache = tmp_path / "cache"
    first = load_words(source, cache_dir=cache)
    words, vectors = first.words, np.array(first.vectors)  # copy: damage() rewrites the mapped file in place
    damage(cache)
    again = load_words(source, cache_dir=cache)
    assert again.words == words
    np.testing.assert_array_equal(again.vectors, vectors)
    assert load_words(source, cache_dir=cache).words == words


def test_changed_source_rebuilds_cache(tmp_path: Path) -> None:
    source = write_tiny(tmp_path / "glove.tiny.3d.txt")
    cache = tmp_path / "cache"
    load_words(source, cache_dir=cache)
    write_tiny(source, TINY.replace("cat 1.0", "cat 7.0"))
    assert load_words(source, cache_dir=cache).vector("cat")[0] == 7.0


def test_malformed_text_names_the_line(tmp_path: Path) -> None:
    source = write_tiny(tmp_path / "bad.txt", TINY + "bird 0.1 0.2\n")
    with pytest.raises(WordVectorsError, match=r"bad.txt:5: expected 3 values, got 2"):
        load_words(source, cache_dir=tmp_path / "cache")


def test_word_index_is_built_once_across_threads(tmp_path: Path) -> None:
    source = write_tiny(tmp_path / "glove.tiny.3d.txt")
    wv = load_words(source, cache_dir=tmp_path / "cache")
    got = []
    threads = [threading.Thread(target=lambda: got.append(wv.index("hnsw"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(i is got[0] for i in got)
    assert (tmp_path / "cache" / "index.hnsw.json").is_file()
    reloaded = load_words(source, cache_dir=tmp_path / "cache").index("hnsw")
    np.testing.assert_array_equal(reloaded.search(wv.vector("cat"), 4)[0], got[0].search(wv.vector("cat"), 4)[0])


def test_damaged_word_index_is_rebuilt(tmp_path: Path) -> None:
    source = write_tiny(tmp_path / "glove.tiny.3d.txt")
    load_words(source, cache_dir=tmp_path / "cache").index("annoy")
    path = tmp_path / "cache" / "index.annoy"
    path.write_bytes(path.read_bytes()[:-16])
    wv = load_words(source, cache_dir=tmp_path / "cache")
    assert [w for w, _ in wv.similar_words("cat", 1, kind="annoy")] == ["dog"]
    assert json.loads((tmp_path / "cache" / "index.annoy.json").read_text())["file_size"] == path.stat().st_size


def test_few_queries_scan_many_use_the_index_sooner_once_it_is_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-shot query needs no index: the exact scan answers; the index is for many queries, and
    pays sooner once it is saved (a load) than while it must be built."""
    source = write_tiny(tmp_path / "glove.tiny.3d.txt")
    wv = load_words(source, cache_dir=tmp_path / "cache")
    assert not wv.index_saved(DEFAULT_INDEX_KIND)
    assert wv.index_kind_for(1) == wv.index_kind_for(EXACT_SCAN_QUERIES_UNBUILT - 1) == "exact"
    assert wv.index_kind_for(EXACT_SCAN_QUERIES_UNBUILT) == DEFAULT_INDEX_KIND
    with monkeypatch.context() as m:
        m.setattr(words_module, "load_or_build", refuse("loading or building an index"))
        m.setattr(words_module, "build_index", refuse("building an index"))
        assert [w for w, _ in wv.similar_words("cat", 1, kind=wv.index_kind_for(3))] == ["dog"]  # nothing built
    assert not list((tmp_path / "cache").glob("index.*"))

    wv.index(DEFAULT_INDEX_KIND)
    assert wv.index_saved(DEFAULT_INDEX_KIND)
    assert wv.index_kind_for(EXACT_SCAN_QUERIES - 1) == "exact" and wv.index_kind_for(EXACT_SCAN_QUERIES) == DEFAULT_INDEX_KIND
    changed = load_words(write_tiny(tmp_path / "glove.tiny.3d.txt", TINY.replace("cat 1.0", "cat 7.0")), cache_dir=tmp_path / "cache")
    assert not changed.index_saved(DEFAULT_INDEX_KIND)  # saved for other vectors: it would be rebuilt
