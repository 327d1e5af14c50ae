"""Vector arithmetic every search shares: unit rows, cosine distances, a matrix's fingerprint, and
the one exact top-k."""

from __future__ import annotations

import hashlib

import numpy as np


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Float32 copy of `vectors` with L2-normalised rows (last axis); zero rows stay zero."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, norms, out=np.zeros(v.shape, np.float32), where=norms > 0)


def cosine_distances(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Float32 cosine distances (1 - cos) from each row of `matrix` to `vector`.

    `vector` of shape (dim,) gives (n,); a batch of shape (q, dim) gives (q, n).
    """
    return np.float32(1) - normalize(vector) @ normalize(matrix).T


def vectors_fingerprint(vectors: np.ndarray) -> str:
    """Cheap content fingerprint of a matrix: shape, dtype and up to 1024 evenly spaced rows."""
    v = np.asarray(vectors)
    rows = np.unique(np.linspace(0, len(v) - 1, num=min(len(v), 1024)).astype(np.int64))
    h = hashlib.sha256(f"{v.shape}|{v.dtype.str}".encode())
    h.update(np.ascontiguousarray(v[rows]).tobytes())
    return h.hexdigest()[:32]


def top_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the k smallest entries of a (n,) vector or of each row of a (q, n)
    matrix, smallest first, equal values by position: the first k of a stable sort, in O(n) a row.
    The one exact top-k of the package (negate similarities to get the largest)."""
    v = np.asarray(values)
    rows = np.atleast_2d(v)
    n = rows.shape[1]
    k = min(k, n)
    if k < n:
        ids = np.argpartition(rows, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(rows, ids, axis=1).max(axis=1, initial=-np.inf)[:, None] if k else None
        if k and ((rows <= kth).sum(axis=1) > k).any():  # ties at the k-th value: keep the lowest positions
            for r in np.flatnonzero((rows <= kth).sum(axis=1) > k):
                ids[r] = np.argsort(rows[r], kind="stable")[:k]
    else:
        ids = np.broadcast_to(np.arange(n), rows.shape)
    found = np.take_along_axis(rows, ids, axis=1)
    order = np.lexsort((ids, found), axis=-1)
    ids, found = np.take_along_axis(ids, order, axis=1).astype(np.int64), np.take_along_axis(found, order, axis=1)
    return (ids[0], found[0]) if v.ndim == 1 else (ids, found)
