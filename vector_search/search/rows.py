"""Rows of a search space computed on demand from a memory-mapped store, never materialised whole.

At 1M x 1280 the store's vectors are 5 GB: the image space (normalised, centred on a mean) cannot
be held as a matrix. `SpaceRows` gives the rows the index needs, when it needs them: a chunk
while building, the few hundred candidates of a query while re-ranking.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vector_search.search.vectors import normalize

CHUNK = 32_768  # rows per chunk when scanning a big store (~160 MB of 1280-d float32)


class SpaceRows:
    """Row i is `normalize(source[i]) - mean` (or just normalised without a mean), as float32.

    Slicing with a slice gives another lazy view; indexing with ids or a range of rows
    computes those rows only. `source` may be a np.memmap: only the rows asked for are read.
    """

    ndim = 2

    def __init__(self, source: np.ndarray, mean: np.ndarray | None = None) -> None:
        self.source = source
        self.mean = None if mean is None else np.asarray(mean, np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.source), int(self.source.shape[1]))

    def __len__(self) -> int:
        return len(self.source)

    def view(self, start: int, stop: int) -> "SpaceRows":
        """Rows [start, stop) as another lazy view."""
        return SpaceRows(self.source[start:stop], self.mean)

    def __getitem__(self, key) -> np.ndarray:
        units = normalize(self.source[key])
        return units if self.mean is None else units - self.mean

    def cosines(self, ids: np.ndarray, unit: np.ndarray) -> np.ndarray:
        """Cosine between the normalised rows `ids` and a unit vector, from dot products with the raw
        rows only (no centred copy: the re-rank of a query reads each candidate once).

        With u = x/|x| and c = u - mean: cos(c, unit) = (u.unit - mean.unit) / sqrt(1 - 2 u.mean + |mean|^2)."""
        x = np.asarray(self.source[ids], np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", x, x))
        u_squared = (norms > 0).astype(np.float32)  # a zero row stays zero, as normalize leaves it
        norms[norms == 0] = 1
        if self.mean is None:
            return (x @ unit) / norms
        dots = (x @ np.stack([unit, self.mean], axis=1)) / norms[:, None]
        lengths = np.sqrt(np.maximum(u_squared - 2 * dots[:, 1] + self.mean @ self.mean, 0))
        lengths[lengths == 0] = 1
        return (dots[:, 0] - self.mean @ unit) / lengths

    def chunks(self, start: int = 0, size: int = CHUNK) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) of each chunk of up to `size` rows from `start` to the end."""
        for first in range(start, len(self), size):
            yield first, self[first : first + size]


def chunked_mean(source: np.ndarray, size: int = CHUNK) -> np.ndarray:
    """Mean of the normalised rows of `source`, one chunk in memory at a time (float64 sum)."""
    total = np.zeros(source.shape[1], np.float64)
    for _, units in SpaceRows(source).chunks(size=size):
        total += units.sum(axis=0, dtype=np.float64)
    return (total / max(1, len(source))).astype(np.float32)
