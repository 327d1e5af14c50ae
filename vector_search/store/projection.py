"""A 2-D map of embeddings: t-SNE (or PCA) of the cosine geometry, for plotting.

Vectors are L2-normalised first, so Euclidean distances on them rank pairs like the cosine
distances every search in the project uses. t-SNE runs on the first 50 principal components
(the usual speed-up; 1000 x 1280 Lite0 vectors take a few seconds on 2 cores). A store's map
(`store_map`) plots a fixed-size sample of its photos, so a million-photo store maps as fast as a
five-thousand-photo one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from vector_search.errors import VectorSearchError
from vector_search.store.sampling import sample_rows

if TYPE_CHECKING:
    from vector_search.store.store import Store


class ProjectionError(VectorSearchError, ValueError):
    """A projection method or an input matrix the 2-D projection cannot use."""

METHODS = ("tsne", "pca")
PCA_DIMS = 50
MAP_SAMPLE = 5000  # photos on a store's map: t-SNE's time grows faster than n; more dots show no more


def project_2d(vectors: np.ndarray, method: Literal["tsne", "pca"] = "tsne", seed: int = 0) -> np.ndarray:
    """(n, d) vectors -> (n, 2) float32 coordinates; deterministic for a given seed.

    Any n works: fewer than 2 points map to the origin, and t-SNE's perplexity is lowered for
    small sets (it must stay below n). Raises ValueError for a non-2-D or non-finite input or an
    unknown method.
    """
    if method not in METHODS:
        raise ProjectionError(f"unknown projection method {method!r}; choose one of {', '.join(METHODS)}")
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ProjectionError(f"expected an (n, d) array of vectors, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ProjectionError("vectors contain NaN or infinite values")
    n = len(x)
    if n < 2 or x.shape[1] == 0:
        return np.zeros((n, 2), np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = x - x.mean(axis=0)
    if not np.abs(x).max() > 1e-9:  # all points identical: nothing to spread out
        return np.zeros((n, 2), np.float32)

    from sklearn.decomposition import PCA

    dims = min(PCA_DIMS if method == "tsne" else 2, n, x.shape[1])
    x = PCA(n_components=dims, random_state=seed).fit_transform(x)
    if method == "pca" or n < 4:
        points = np.zeros((n, 2))
        points[:, : x.shape[1]] = x[:, :2]
        return points.astype(np.float32)

    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (n - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(x).astype(np.float32)


@dataclass(frozen=True)
class StoreMap:
    """A 2-D map of a store's photos: which rows it plots (all of them in a small store), and where."""

    rows: np.ndarray  # (m,) store rows, sorted
    points: np.ndarray  # (m, 2) float32, points[j] for store row rows[j]
    total: int  # photos in the store


def store_map(store: Store, size: int | None = None, seed: int = 0) -> StoreMap:
    """t-SNE of a seeded sample of at most `size` (None: MAP_SAMPLE) photos, stratified by class
    (sampling.py), saved in the store with its fingerprint: computed once per store, the same in
    every process. Saved row-aligned like every derived array (NaN for rows not on the map:
    8 bytes a row, 8 MB at 1M)."""
    size = MAP_SAMPLE if size is None else size
    live = store.live  # rows marked deleted; None: every row is live
    rows = sample_rows(store.classes, size, seed, live)
    saved = store.load_array("map", method="tsne", sample=size, seed=seed)
    points = None if saved is None else np.asarray(saved[rows], np.float32)
    if points is None or not np.isfinite(points).all():
        points = project_2d(store.vectors[rows], method="tsne", seed=seed)
        aligned = np.full((len(store), 2), np.nan, np.float32)
        aligned[rows] = points
        store.save_array("map", aligned, method="tsne", sample=size, seed=seed)
    return StoreMap(rows, points, len(store) if live is None else int(np.count_nonzero(live)))
