"""Nearest neighbours among allowed rows only (a filter: a subfolder, a date range, a camera), so
that k answers still come back however few rows pass.

Two ways, chosen by how many rows pass: few (at most EXACT_ROWS, or under MIN_SHARE of the rows)
are scanned exactly, their vectors only; many are asked of the index with an over-fetch of
k / share x OVERFETCH (+ a margin), keeping the allowed hits, and scanned exactly if that still
leaves fewer than k. Distances are the index's (cosine), so both ways rank alike.
"""

from __future__ import annotations

import numpy as np

from vector_search.search.vectors import cosine_distances

EXACT_ROWS = 20_000  # an exact scan of 20k x 1280 floats: ~25 ms, under an over-fetch that misses
MIN_SHARE = 0.02  # below this share of rows passing, an over-fetch would ask for 50x k: scan instead
OVERFETCH = 2
BLOCK = 65_536  # rows scanned at once


def filtered_search(index, rows, vector: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids and cosine distances of the k rows nearest to `vector` among `allowed` (bool per row),
    best first. `index` answers over `rows` (its .search(vector, n)); `rows[ids]` gives row vectors."""
    ids = np.flatnonzero(allowed)
    k = min(k, len(ids))
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    share = len(ids) / max(len(allowed), 1)
    if len(ids) > EXACT_ROWS and share >= MIN_SHARE:
        fetch = min(len(allowed), int(k / share * OVERFETCH) + 32)
        found, distances = index.search(vector, fetch)
        keep = allowed[found]
        if keep.sum() >= k:
            return found[keep][:k], distances[keep][:k]
    return exact_among(rows, ids, vector, k)


def exact_among(rows, ids: np.ndarray, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k of rows `ids` nearest to `vector`, by an exact scan in blocks."""
    best_ids, best = np.zeros(0, np.int64), np.zeros(0, np.float32)
    for start in range(0, len(ids), BLOCK):
        block = ids[start : start + BLOCK]
        distances = np.clip(cosine_distances(np.asarray(rows[block], np.float32), vector), 0, 2)
        best_ids, best = np.concatenate([best_ids, block]), np.concatenate([best, distances])
        order = np.argsort(best, kind="stable")[:k]
        best_ids, best = best_ids[order], best[order]
    return best_ids, best
