"""A relevance score for a distance: how it compares with the distances of random pairs.

score(d) = the share of a null sample of distances that are larger than d, calibrated per
collection (no labels needed, whatever the encoder or joint model):

- photo to photo (`of_rows`): the distances of random pairs of photos, SAMPLE_QUERIES photos
  against SAMPLE_ROWS others. Random pairs of a library are nearly all non-matching, so 0.99 says
  "closer than 99% of unrelated pairs".
- text to photo (`of_best`): for each of SAMPLE_WORDS random common words, the distance of its
  BEST photo. A text query always gets its nearest photos, however absent the thing it names, so
  its answers are compared with what a random query's best answer looks like: a query for
  something the library shows beats nearly all (score near 1); one for something absent scores
  like a random word's best (around 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vector_search.search.vectors import cosine_distances

SAMPLE_ROWS = 2_000
SAMPLE_QUERIES = 200
SAMPLE_WORDS = 1_000
BEST_ROWS = 50_000  # rows a random word's best photo is sought among (all of a smaller store)
KEPT = 4_096  # quantiles of the null distances kept: scores to 1/4096


def sample_words(words: list[str], seed: int = 0) -> list[str]:
    """SAMPLE_WORDS of `words` drawn at random (seeded: the same calibration in every process), in their order."""
    rng = np.random.default_rng(seed)
    return [words[i] for i in np.sort(rng.choice(len(words), min(SAMPLE_WORDS, len(words)), replace=False))]


@dataclass(frozen=True)
class Calibration:
    """The sorted distances of random pairs (quantiles)."""

    null: np.ndarray

    def score(self, distances: np.ndarray | float) -> np.ndarray:
        """Share of random pairs farther than each distance (0..1)."""
        below = np.searchsorted(self.null, np.asarray(distances, np.float32), side="left")
        return 1.0 - below / len(self.null)

    @classmethod
    def of(cls, rows, queries: np.ndarray, seed: int = 0, live: np.ndarray | None = None) -> "Calibration":
        """From the distances of SAMPLE_QUERIES `queries` to SAMPLE_ROWS random live rows of `rows`
        (a row and itself never pair: when queries are rows, the diagonal is dropped by chance alone)."""
        rng = np.random.default_rng(seed)
        ids = np.arange(len(rows)) if live is None else np.flatnonzero(live)
        picked = np.sort(rng.choice(ids, min(SAMPLE_ROWS, len(ids)), replace=False)) if len(ids) else ids
        chosen = queries[np.sort(rng.choice(len(queries), min(SAMPLE_QUERIES, len(queries)), replace=False))]
        distances = cosine_distances(np.asarray(rows[picked], np.float32), np.asarray(chosen, np.float32)).ravel()
        distances = distances[distances > 1e-6]  # a row paired with itself
        if not len(distances):
            return cls(np.ones(1, np.float32))
        return cls(np.quantile(distances, np.linspace(0, 1, KEPT)).astype(np.float32))

    @classmethod
    def of_best(cls, rows, queries: np.ndarray, seed: int = 0, live: np.ndarray | None = None) -> "Calibration":
        """From the distance of each of SAMPLE_WORDS random `queries` to its nearest live row (among
        BEST_ROWS random ones on a bigger store: the best distances there are slightly larger)."""
        rng = np.random.default_rng(seed)
        ids = np.arange(len(rows)) if live is None else np.flatnonzero(live)
        if not len(ids) or not len(queries):
            return cls(np.ones(1, np.float32))
        if len(ids) > BEST_ROWS:
            ids = np.sort(rng.choice(ids, BEST_ROWS, replace=False))
        chosen = np.asarray(queries[np.sort(rng.choice(len(queries), min(SAMPLE_WORDS, len(queries)), replace=False))], np.float32)
        best = np.full(len(chosen), 2.0, np.float32)
        for start in range(0, len(ids), 8192):
            block = np.asarray(rows[ids[start : start + 8192]], np.float32)
            best = np.minimum(best, cosine_distances(block, chosen).min(axis=1))
        return cls(np.sort(best))

    @classmethod
    def of_rows(cls, rows, seed: int = 0, live: np.ndarray | None = None) -> "Calibration":
        """Random pairs of rows (photo to photo)."""
        rng = np.random.default_rng(seed + 1)
        ids = np.arange(len(rows)) if live is None else np.flatnonzero(live)
        queries = np.asarray(rows[np.sort(rng.choice(ids, min(SAMPLE_QUERIES, len(ids)), replace=False))], np.float32) if len(ids) else np.zeros((0, rows.shape[1]), np.float32)
        return cls.of(rows, queries, seed, live) if len(queries) else cls(np.ones(1, np.float32))
