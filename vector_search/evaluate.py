"""Retrieval metrics as plain functions over numpy arrays."""

from __future__ import annotations

import numpy as np


def precision_at_k(relevant: np.ndarray, k: int) -> float:
    """Fraction of the first k results that are relevant; `relevant` is a ranked boolean array."""
    if k < 1:
        raise ValueError("k must be at least 1")
    return float(np.count_nonzero(np.asarray(relevant[:k], bool))) / k


def average_precision(relevant: np.ndarray) -> float:
    """Mean of precision@i over the ranks i of the relevant results (0.0 if there are none)."""
    relevant = np.asarray(relevant, bool)
    hits = np.flatnonzero(relevant)
    if not len(hits):
        return 0.0
    return float(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)))


def cosine_rankings(queries: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(q, n) item positions, most similar first, for each query row (cosine similarity)."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    x = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
    return np.argsort(-(q @ x.T), axis=1, kind="stable")


def mean_precision_at_k(
    queries: np.ndarray, query_labels: np.ndarray, items: np.ndarray, item_labels: np.ndarray, k: int = 10
) -> float:
    """Mean over queries of precision@k, ranking items by cosine; relevant = same label."""
    rankings = cosine_rankings(queries, items)
    labels = np.asarray(item_labels)
    return float(np.mean([precision_at_k(labels[r] == ql, k) for r, ql in zip(rankings, query_labels)]))
