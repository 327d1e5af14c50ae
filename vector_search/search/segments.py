"""A main index over the first rows of a store plus an exact "fresh" segment over the rest.

Within one store generation rows are only appended or marked deleted (store.py), so an index built
over rows [0, m) stays valid as the store grows: it records m (its row count) and a fingerprint of
the generation, a sample of those rows and the centring mean; rows [m, n) are searched exactly
beside it and rows no longer live are dropped from the answers. `vector-search index` merges the
fresh rows into the main index (faiss `add`, no retraining) once there are MERGE_AT of them; a new
generation (compaction, rebuild) means a new index.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from vector_search.fileio import load_json, load_npy, save_npy
from vector_search.search.index import Index, IndexFileError, exact_index, read_sidecar
from vector_search.search.ivf import build_ivf, open_ivf
from vector_search.search.rows import SpaceRows, chunked_mean
from vector_search.search.vectors import top_k, vectors_fingerprint

log = logging.getLogger(__name__)

MERGE_AT = 2_000  # fresh rows that `vector-search index` merges into the main index
FRESH_IN_MEMORY = 16_384  # fresh rows held normalised in RAM (80 MiB at 1280-d); more are scanned in blocks


class SegmentedIndex:
    """Search `main` (rows [0, m) of `rows`) and an exact scan of rows [m, n); `live` masks rows out.

    Answers like `index.Index`: cosine distances, best first, ids = row numbers of `rows`. Also
    wraps an index over every row (m = n) just to drop the deleted ones (spaces.py).
    """

    def __init__(self, main: Index, rows: SpaceRows | np.ndarray, live: np.ndarray | None = None) -> None:
        self.main, self.rows, self.live = main, rows, live
        self.kind, self.params = main.kind, main.params
        self.dim = rows.shape[1]
        self.covered = len(main)
        fresh = len(rows) - self.covered
        # The fresh rows are few (merged at MERGE_AT): held in RAM, normalised once. Many (an index run
        # killed before its merge) are scanned block by block instead, so memory stays bounded.
        self.fresh = None if not fresh else exact_index(rows[self.covered :]) if fresh <= FRESH_IN_MEMORY else _Scan(rows, self.covered)
        self.dead = 0 if live is None else int(len(live) - np.count_nonzero(live))

    def __len__(self) -> int:
        return len(self.rows)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        ids, dist = self.search_many(np.asarray(vector)[None, :], k)
        return ids[0], dist[0]

    def search_many(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest live rows of each query; fetches a margin for deleted rows, more if needed."""
        k = min(k, len(self) - self.dead)
        fetch = k + min(self.dead, 4 * k + 32)
        while True:
            ids, dist = self._both(vectors, fetch)
            keep = np.ones(ids.shape, bool) if self.live is None else self.live[ids]
            if fetch >= len(self) or keep.sum(axis=1).min(initial=k) >= k:
                break
            fetch *= 4
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # live hits first, in distance order
        return np.take_along_axis(ids, order, axis=1), np.take_along_axis(dist, order, axis=1)

    def _both(self, vectors: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        ids, dist = self.main.search_many(vectors, min(fetch, self.covered))
        if self.fresh is not None:
            more_ids, more_dist = self.fresh.search_many(vectors, min(fetch, len(self.fresh)))
            ids, dist = _best(ids, dist, more_ids + self.covered, more_dist, fetch)
        return ids, dist


def _best(ids: np.ndarray, dist: np.ndarray, more_ids: np.ndarray, more_dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest of two answers to the same queries (ids, distances per query row), nearest first."""
    ids, dist = np.concatenate([ids, more_ids], axis=1), np.concatenate([dist, more_dist], axis=1)
    order, nearest = top_k(dist, k)
    return np.take_along_axis(ids, order, axis=1), nearest


class _Scan:
    """An exact scan of rows [start, n) of `rows`, one block of FRESH_IN_MEMORY rows at a time."""

    def __init__(self, rows: SpaceRows | np.ndarray, start: int) -> None:
        self.rows, self.start = rows, start
        log.warning("%d rows are not in the index yet: they are scanned exactly (slow) until `vector-search index`"
                    " merges them", len(rows) - start)

    def __len__(self) -> int:
        return len(self.rows) - self.start

    def search_many(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        ids = np.zeros((len(vectors), 0), np.int64)
        dist = np.zeros((len(vectors), 0), np.float32)
        for first in range(self.start, len(self.rows), FRESH_IN_MEMORY):
            block = exact_index(self.rows[first : first + FRESH_IN_MEMORY])
            more_ids, more_dist = block.search_many(vectors, min(k, len(block)))
            ids, dist = _best(ids, dist, more_ids + (first - self.start), more_dist, k)
        return ids, dist


def _fingerprint(source: np.ndarray, rows: int, generation: int, mean: np.ndarray | None) -> str:
    centre = "raw" if mean is None else hashlib.sha256(np.asarray(mean, np.float32).tobytes()).hexdigest()[:12]
    return f"g{generation}-{vectors_fingerprint(source[:rows])}-{centre}"


def open_segmented(
    path: Path, source: np.ndarray, generation: int, live: np.ndarray | None = None, centre: bool = False, merge: bool = False
) -> SegmentedIndex:
    """The IVF index at `path` over `source` (rows of store `generation`, memory-mapped), opened
    memory-mapped with the rows it does not cover as the fresh segment; built (chunkwise) when
    missing or stale. `centre`: the space is normalised rows minus their mean (saved beside the
    index as PATH.mean.npy, kept until a rebuild). `merge`: add MERGE_AT or more fresh rows to the
    index and save it (`vector-search index`)."""
    n = len(source)
    try:
        covered = int(load_json(f"{path}.json")["n"])
        mean = load_npy(f"{path}.mean.npy") if centre else None
        if not 0 < covered <= n:
            raise IndexFileError(f"{path}: covers {covered} rows of a store of {n}")
        meta = read_sidecar(path, (covered, source.shape[1]), _fingerprint(source, covered, generation, mean))
        rows = SpaceRows(source, mean)
        main = open_ivf(path, rows.view(0, covered), meta, writable=merge and n - covered >= MERGE_AT)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        if Path(path).exists():
            log.warning("rebuilding %s: %s", path, err)
        log.info("building the ivf index over %d vectors (once)", n)
        mean = chunked_mean(source) if centre else None
        rows = SpaceRows(source, mean)
        main = build_ivf(rows)
        _save(main, path, source, generation, mean)
        return SegmentedIndex(main, rows, live)
    if merge and n - covered >= MERGE_AT:
        log.info("merging %d fresh rows into %s", n - covered, path)
        main.extend(rows)
        _save(main, path, source, generation, mean)
    return SegmentedIndex(main, rows, live)


def _save(main: Index, path: Path, source: np.ndarray, generation: int, mean: np.ndarray | None) -> None:
    """Save the mean (if any) and then the index, whose fingerprint covers the mean: a crash between
    the two leaves an index that does not match, rebuilt at the next open."""
    try:
        if mean is not None:
            save_npy(f"{path}.mean.npy", mean)
        main.save(path, _fingerprint(source, len(main), generation, mean))
    except OSError as err:  # a cache (a full disk, a read-only store): answer from memory, save it another time
        log.warning("%s; using the index from memory", err)
