"""From a query vector to the answers a person sees: the k nearest allowed rows of a store's space,
each with its calibrated score (search/calibration.py), weak ones dropped on request; rows deleted,
or whose file is gone (or leads out of the server's root) since indexing, are skipped."""

from __future__ import annotations

import os

import numpy as np

from vector_search import config
from vector_search.answers import Result
from vector_search.imaging.images import outside
from vector_search.search.calibration import Calibration
from vector_search.search.filtered import filtered_search
from vector_search.store.metadata import Filters
from vector_search.store.store import Store

STALE_MARGIN = 8  # extra hits fetched so files deleted since indexing can be dropped
# Re-weighted search (reweighted): above REWEIGHT_SCAN_MAX rows, candidates from the plain image index,
# re-ranked exactly with the weights. Measured at 200k (bench/bench_scale.py reweight): see docs/scale.md.
REWEIGHT_SCAN_MAX = 20_000
REWEIGHT_CANDIDATES = 1_000


def ranked(
    store: Store,
    space,  # store.spaces.ImageSpace or JointSpace: .index, .vectors
    vector: np.ndarray,
    k: int,
    filters: Filters | None = None,
    exclude: int | None = None,
    calibration: Calibration | None = None,
    min_score: float | None = None,
) -> list[Result]:
    """The k rows of `space` nearest to `vector` (already in the space) that pass `filters`, best first."""
    wanted = k + 1 + STALE_MARGIN
    if filters is None:
        ids, distances = space.index.search(vector, wanted)
    else:
        ids, distances = filtered_search(space.index, space.vectors, vector, wanted, filters.allowed(store))
    return results(store, ids, distances, k, exclude, calibration, min_score)


def reweighted(store: Store, space, vector: np.ndarray, weights: np.ndarray, k: int, filters: Filters | None = None,
               exclude: int | None = None) -> list[Result]:
    """The k photos nearest to `vector` with every feature re-weighted (its own metric, so no score) that
    pass `filters` (reweighted_ids)."""
    allowed = None if filters is None else filters.allowed(store)
    ids, distances = reweighted_ids(store, space, vector, weights, k + 1 + STALE_MARGIN, allowed)
    return results(store, ids, distances, k, exclude)


def reweighted_ids(store: Store, space, vector: np.ndarray, weights: np.ndarray, k: int, allowed: np.ndarray | None = None,
                   candidates: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ids and re-weighted cosine distances of the k rows nearest to `vector`, both re-weighted, among
    `allowed` rows: query.reweighted_search over every (allowed) row of a small store; on one of more
    than REWEIGHT_SCAN_MAX rows over the `candidates` (REWEIGHT_CANDIDATES) nearest in the plain image `space`
    (spaces.ImageSpace: its index), so that no query scans all N rows."""
    from vector_search.text.query import reweighted_search

    among = None if allowed is None else np.flatnonzero(allowed)
    if len(store) > REWEIGHT_SCAN_MAX:
        query, count = space.project(vector), max(candidates or REWEIGHT_CANDIDATES, k)
        if allowed is None:
            among = space.index.search(query, count)[0]
        else:
            among = filtered_search(space.index, space.vectors, query, count, allowed)[0]
    return reweighted_search(store.vectors, vector, weights, k, among=among)


def results(store: Store, ids: np.ndarray, distances: np.ndarray, k: int, exclude: int | None = None,
            calibration: Calibration | None = None, min_score: float | None = None) -> list[Result]:
    """The first k hits as Results, skipping `exclude`, deleted rows, files deleted (or, in server mode,
    led out of the root) since indexing; with a calibration, each has its score and those under
    `min_score` are dropped."""
    scores = calibration.score(distances) if calibration is not None else [None] * len(ids)
    hits = (Result(store.path(i), float(d), None if s is None else float(s)) for i, d, s in zip(ids, distances, scores)
            if i != exclude and store.is_live(i) and (min_score is None or s is None or s >= min_score))
    root = config.serve_root()
    return [r for r in hits if os.path.exists(r.item) and not (root and outside(r.item, root))][:k]
