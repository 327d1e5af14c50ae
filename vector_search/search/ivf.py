"""faiss IVF-PQ with an exact re-rank: the image index of big collections.

Why (measured, docs/results.md "Index at scale"): at 1M x 1280 Annoy needs a search_k of ~2n
for a good recall (tens of ms a query, 5.7 KB/vector) and rebuilds from scratch on any change;
hnswlib holds ~5.4 KB/vector in RAM. IVF-PQ keeps a few dozen bytes per vector in a file that is
memory-mapped when serving, takes new vectors with `add` (no retraining), and its approximate
distances only pick candidates: the best `rerank` of them are re-ranked exactly from the rows
themselves (memory-mapped store vectors via `rows.SpaceRows`), so the order returned is exact.
Built chunkwise: the coarse quantizer and PQ are trained on a sample, the rows added in chunks.
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from vector_search import config
from vector_search.search.index import Index, IndexArgumentError, IndexFileError
from vector_search.search.rows import CHUNK, SpaceRows
from vector_search.search.vectors import normalize, top_k

if TYPE_CHECKING:
    import faiss

config.passive_openmp()  # now, before any library loads an OpenMP runtime (faiss's is loaded with it)


@functools.cache
def _faiss() -> ModuleType:
    """faiss, imported by the first IVF index built or opened (0.035 s: not by a small store's process)."""
    import faiss

    return faiss

KIND = "ivf"
TRAIN_SAMPLE = 65_536  # rows the quantizers are trained on (at least 39 per centroid, faiss's floor)


def _floor_pow2(x: float) -> int:
    return 1 << max(0, int(np.floor(np.log2(max(x, 1.0)))))


def default_params(n: int, dim: int) -> dict[str, Any]:
    """nlist ~ sqrt(n) (a power of 2, at least 39 rows per list), PQ with the most sub-quantizers up to
    64 of at least 2 dims each (64 of 20 dims at 1280-d, 25 of 2 at 50-d), 8 bits per code when
    there are rows to train them.
    nprobe and rerank: tuned at 1M x 1280 (bench/bench_scale.py, docs/results.md): recall@10 depends on
    the re-rank (200 -> 0.975, 400 -> 0.993, 800 -> 0.999), hardly on nprobe (16, 32, 64 alike)."""
    nlist = min(_floor_pow2(np.sqrt(n) * 1.5), _floor_pow2(n / 39), 4096)
    m = max(d for d in range(1, max(1, min(64, dim // 2)) + 1) if dim % d == 0)
    return {"nlist": nlist, "m": m, "nbits": min(8, _floor_pow2(n / 39).bit_length() - 1 or 1), **search_params(nlist, n)}


def search_params(nlist: int, n: int) -> dict[str, int]:
    """Query-time parameters: today's, also for an index saved with others (they change no file).
    16 lists, or more so that some 16,000 codes are scanned: at 4000 rows (64 lists of ~60) 16
    lists found 0.91 of the top 10, all 64 0.997."""
    return {"nprobe": min(nlist, max(16, 16_000 * nlist // max(n, 1))), "rerank": 400}


def check_params(params: dict[str, Any], n: int, dim: int) -> dict[str, Any]:
    defaults = default_params(n, dim)
    unknown = set(params) - set(defaults)
    if unknown:
        raise IndexArgumentError(f"unknown {KIND} parameters {sorted(unknown)}; expected {sorted(defaults)}")
    return {**defaults, **params}


class IvfIndex(Index):
    """An IVF-PQ candidate search over rows [0, len) of `rows`, re-ranked exactly from `rows`.

    `rows` is anything indexable by an id array giving float32 vectors (a matrix, a SpaceRows).
    Search parameters are fixed at build/load (faiss's nprobe is not safe to change while
    other threads search).
    """

    kind = KIND

    def __init__(self, rows, params: dict[str, Any], ivf: faiss.Index) -> None:
        super().__init__(rows, params)
        _faiss().extract_index_ivf(ivf).nprobe = int(params["nprobe"])
        self._faiss = ivf

    def _search(self, units: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        wanted = min(len(self), max(k, int(self.params["rerank"])))
        _, found = self._faiss.search(np.ascontiguousarray(units, np.float32), wanted)
        short = (found >= 0).sum(axis=1) < k
        if short.any():  # too few rows in the probed lists: probe them all (rare: tiny or skewed)
            every = _faiss().SearchParametersIVF(nprobe=int(self.params["nlist"]))
            found[short] = self._faiss.search(units[short], wanted, params=every)[1]
        ids = np.empty((len(units), k), np.int64)
        dist = np.empty((len(units), k), np.float32)
        for row, (unit, candidates) in enumerate(zip(units, found)):
            candidates = np.unique(candidates[candidates >= 0])  # sorted: sequential reads
            exact = np.float32(1) - self._cosines(candidates, unit)
            best, dist[row] = top_k(exact, k)
            ids[row] = candidates[best]
        return ids, dist

    def _cosines(self, ids: np.ndarray, unit: np.ndarray) -> np.ndarray:
        if isinstance(self._vectors, SpaceRows):
            return self._vectors.cosines(ids, unit)
        return normalize(self._vectors[ids]) @ unit

    def extend(self, rows) -> None:
        """Add rows [len(self), len(rows)) of `rows` (a longer view of the same rows): no retraining."""
        start = len(self)
        ivf = self._faiss
        for first in range(start, len(rows), CHUNK):
            ivf.add(np.ascontiguousarray(normalize(rows[first : first + CHUNK])))
        self._vectors = rows

    def _save(self, path: Path) -> None:
        _faiss().write_index(self._faiss, str(path))

    def _stored_vectors(self, ids: np.ndarray) -> np.ndarray:
        # PQ codes are lossy: the rows it was built from are checked by fingerprint (segments.py).
        return normalize(self._vectors[ids])


def build_ivf(rows, **params: Any) -> IvfIndex:
    """Train on a sample of `rows` (seeded), then add every row in chunks: one chunk in RAM at a time."""
    n, dim = rows.shape
    params = check_params(params, n, dim)
    sample = np.sort(np.random.default_rng(0).choice(n, size=min(n, TRAIN_SAMPLE), replace=False))
    ivf = _faiss().index_factory(dim, f"IVF{params['nlist']},PQ{params['m']}x{params['nbits']}")
    ivf.do_polysemous_training = False  # the factory's default: minutes of code reordering we never use
    ivf.train(np.ascontiguousarray(normalize(rows[sample])))
    index = IvfIndex(rows[:0] if isinstance(rows, np.ndarray) else rows.view(0, 0), params, ivf)
    index.extend(rows)
    return index


def open_ivf(path: Path, rows, meta: dict[str, Any], writable: bool = False) -> IvfIndex:
    """The IVF index saved at `path` (sidecar `meta` already checked) over `rows`: memory-mapped,
    so serving it costs the pages queries touch; `writable` reads it into RAM to `extend` it."""
    lib = _faiss()
    ivf = lib.read_index(str(path), 0 if writable else lib.IO_FLAG_MMAP | lib.IO_FLAG_READ_ONLY)
    if ivf.ntotal != len(rows):
        raise IndexFileError(f"{path}: holds {ivf.ntotal} rows, expected {len(rows)}; rebuild the index")
    params = check_params(meta.get("params", {}), len(rows), rows.shape[1])
    return IvfIndex(rows, {**params, **search_params(params["nlist"], len(rows))}, ivf)
