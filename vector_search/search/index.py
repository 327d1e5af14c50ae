"""Nearest-neighbour search by cosine distance: one interface over exact numpy, Annoy and HNSW.

Every index works on L2-normalised float32 rows and returns COSINE distances (1 - cos, in
[0, 2]), best first, with int64 ids = row numbers of the matrix it was built from. Saved
indexes carry a JSON sidecar (``path + ".json"``) recording kind, dim, n, params, a caller
fingerprint, the format version, the file size and its checksum; `load_index` refuses any file
that does not match it before a native library reads a byte of it. Searching is safe from many threads at once on one built or loaded index.
"""

from __future__ import annotations

import errno
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import annoy
import hnswlib
import numpy as np

from vector_search.errors import VectorSearchError
from vector_search.fileio import atomic_paths, checksum, load_json, load_npy, write_json
from vector_search.search.vectors import normalize, top_k

log = logging.getLogger(__name__)

# Every index kind: build_index makes the first three from a matrix; "ivf" (faiss IVF-PQ, ivf.py) is
# built over a store's rows with a fresh segment (segments.open_segmented). A store records its kind.
KINDS = ("exact", "annoy", "hnsw", "ivf")
MATRIX_KINDS = KINDS[:3]  # the kinds build_index makes
FORMAT = "vector_search.index"
FORMAT_VERSION = 1  # (sidecars without the file's checksum are refused: rebuilt)

# Largest (queries x rows) block of distances the exact index materialises at once (64 MiB).
_EXACT_BLOCK = 1 << 24
# Rows compared between a loaded index and the vectors handed to `load_index`.
_SPOT_CHECKS = 8


class IndexFileError(VectorSearchError, RuntimeError):
    """A saved index is missing, truncated, of another format version, or does not match."""


class IndexArgumentError(VectorSearchError, ValueError):
    """An index kind, parameter, query shape or k the index cannot use."""


def _annoy_to_cosine(angular: np.ndarray) -> np.ndarray:
    """Annoy's angular distance sqrt(2 - 2cos) -> cosine distance 1 - cos."""
    a = np.asarray(angular, dtype=np.float32)
    return a * a / np.float32(2)


def default_params(kind: str, n: int, dim: int) -> dict[str, Any]:
    """Build/search parameters for `kind`, chosen by measurement on the 2-core dev machine.

    Recall@10 against exact search, the query item left out; latency p50 per query under load.
    Words (dim <= 300; GloVe 6B 50-d, 400k words, 1000 random vocabulary queries):
      hnsw M=16 ef_construction=200: ef 40/60/80/100 -> 0.951/0.967/0.975/0.981, p50 0.16-0.33 ms
        (ef_construction=64 builds 2x faster but needs ef=150 for 0.966; M=12 or 24 are no better);
      annoy 20 trees: search_k 10000 -> 0.92 (1.3 ms), 20000 -> 0.96 (2.5 ms).
    Images (1280/4096-d): real EfficientNet-lite0 features of 1000 photos reach 1.0 with every
    kind; on a harder synthetic 20k x 1280 matrix (ReLU of a 64-d latent) annoy 20 trees needs
    search_k = 2n for 0.999 (n -> 0.95) and hnsw needs ef=300 for 0.990 (ef 400 -> 0.996).
    """
    if kind == "exact":
        return {}
    words = dim <= 300
    if kind == "annoy":
        return {"n_trees": 20, "search_k": 20_000 if words else max(10_000, 2 * n)}
    if kind == "hnsw":
        return {"M": 16, "ef_construction": 200, "ef": 80 if words else 400}
    if kind == "ivf":
        raise IndexArgumentError("an ivf index is built over a store's rows (segments.open_segmented), not from a matrix")
    raise IndexArgumentError(f"unknown index kind {kind!r}; expected one of {KINDS}")


class Index(ABC):
    """Nearest neighbours of float vectors by cosine distance. Subclasses implement `_search`."""

    kind: str

    def __init__(self, vectors: np.ndarray, params: dict[str, Any]) -> None:
        # `vectors` is the caller's matrix, kept by reference only (no copy): the exact fallback
        # when an approximate structure cannot return k results.
        self._vectors = vectors
        self.dim = int(vectors.shape[1])
        self.params = dict(params)

    def __len__(self) -> int:
        return len(self._vectors)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} n={len(self)} dim={self.dim} params={self.params}>"

    @abstractmethod
    def _search(self, units: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(q, k) ids and cosine distances for normalised (q, dim) queries, 0 < k <= len;
        None when the structure cannot return k results for every query."""

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids (int64) and cosine distances (float32) of the k nearest rows, best first."""
        vector = np.asarray(vector)
        if vector.shape != (self.dim,):
            raise IndexArgumentError(f"query has shape {vector.shape}, expected ({self.dim},)")
        ids, dist = self.search_many(vector[None, :], k)
        return ids[0], dist[0]

    def search_many(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`search` for each row of a (q, dim) batch: two (q, min(k, len)) arrays."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise IndexArgumentError(f"queries have shape {vectors.shape}, expected (q, {self.dim})")
        if k < 0:
            raise IndexArgumentError(f"k must be >= 0, got {k}")
        k = min(k, len(self))
        if k == 0 or len(vectors) == 0:
            return np.empty((len(vectors), k), np.int64), np.empty((len(vectors), k), np.float32)
        units = normalize(vectors)
        found = self._search(units, k)
        if found is None:
            found = _exact_search(normalize(self._vectors), units, k)
        ids, dist = found
        return ids.astype(np.int64, copy=False), np.clip(dist, 0, 2).astype(np.float32, copy=False)

    def save(self, path: str | Path, fingerprint: str) -> None:
        """Write the index to `path` and its sidecar to ``path + ".json"``, replaced together or not at all."""
        path = Path(path)
        with atomic_paths(path, _sidecar(path)) as (tmp, sidecar):
            self._save(tmp)
            meta = {"format": FORMAT, "version": FORMAT_VERSION, "kind": self.kind, "dim": self.dim, "n": len(self)}
            write_json(sidecar, dict(meta, params=self.params, fingerprint=fingerprint, file_size=tmp.stat().st_size, crc32=checksum(tmp)))

    @abstractmethod
    def _save(self, path: Path) -> None: ...

    @abstractmethod
    def _stored_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The normalised vectors the structure holds for `ids` (used to check a loaded file)."""


def _exact_search(units: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k of normalised `queries` against normalised `units`, in bounded blocks."""
    block = max(1, _EXACT_BLOCK // max(1, len(units)))
    parts = [top_k(np.float32(1) - queries[i : i + block] @ units.T, k) for i in range(0, len(queries), block)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class ExactIndex(Index):
    """Brute-force numpy scan over the normalised matrix: the reference for recall.

    Many threads scanning at once oversubscribe OpenBLAS's own threads (25x slower measured on
    2 cores); a server that uses it from a thread pool should run with OPENBLAS_NUM_THREADS=1.
    """

    kind = "exact"

    def __init__(self, vectors: np.ndarray, units: np.ndarray | None = None) -> None:
        super().__init__(vectors, {})
        self._units = normalize(vectors) if units is None else units

    def _search(self, units: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return _exact_search(self._units, units, k)

    def _save(self, path: Path) -> None:
        with open(path, "wb") as f:
            np.save(f, np.ascontiguousarray(self._units), allow_pickle=False)

    def _stored_vectors(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self._units[ids])


class AnnoyIndex(Index):
    """Annoy forest (angular metric), memory-mapped when loaded; `search_k` is a floor per query."""

    kind = "annoy"

    def __init__(self, vectors: np.ndarray, params: dict[str, Any], ann: annoy.AnnoyIndex) -> None:
        super().__init__(vectors, params)
        self._ann = ann

    def _search(self, units: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        search_k = max(int(self.params["search_k"]), k * int(self.params["n_trees"]))
        ids = np.empty((len(units), k), np.int64)
        dist = np.empty((len(units), k), np.float32)
        for row, unit in enumerate(units):
            found, angular = self._ann.get_nns_by_vector(unit.tolist(), k, search_k, True)
            if len(found) < k:
                return None
            ids[row] = found
            dist[row] = angular
        return ids, _annoy_to_cosine(dist)

    def _save(self, path: Path) -> None:
        # save() re-maps the index from the written file, which atomic_paths then renames.
        self._ann.save(str(path))

    def _stored_vectors(self, ids: np.ndarray) -> np.ndarray:
        return normalize(np.array([self._ann.get_item_vector(int(i)) for i in ids], np.float32))


class HnswIndex(Index):
    """hnswlib graph in cosine space; `ef` is fixed at build/load time (setting it is not thread-safe)."""

    kind = "hnsw"

    def __init__(self, vectors: np.ndarray, params: dict[str, Any], graph: hnswlib.Index) -> None:
        super().__init__(vectors, params)
        graph.set_ef(int(params["ef"]))
        self._graph = graph

    def _search(self, units: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            # One query: stay on the calling thread; a batch: let hnswlib use every core.
            ids, dist = self._graph.knn_query(units, k=k, num_threads=1 if len(units) == 1 else -1)
        except RuntimeError:  # hnswlib: fewer than k reachable results
            return None
        return ids.astype(np.int64), dist

    def _save(self, path: Path) -> None:
        self._graph.save_index(str(path))
        if path.stat().st_size < len(self) * self.dim * 4:  # hnswlib reports no write error: check it wrote the vectors
            raise OSError(errno.ENOSPC, f"hnswlib wrote a truncated {path.name}")

    def _stored_vectors(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self._graph.get_items(ids), np.float32)


def _check_params(kind: str, params: dict[str, Any], n: int, dim: int) -> dict[str, Any]:
    defaults = default_params(kind, n, dim)
    unknown = set(params) - set(defaults)
    if unknown:
        raise IndexArgumentError(f"unknown {kind} parameters {sorted(unknown)}; expected {sorted(defaults)}")
    return {**defaults, **params}


def build_index(vectors: np.ndarray, kind: str = "annoy", **params: Any) -> Index:
    """Build an index of `kind` over the rows of `vectors`; missing params come from `default_params`.

    annoy: n_trees, search_k. hnsw: M, ef_construction, ef.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise IndexArgumentError(f"need a non-empty (n, dim) matrix, got shape {vectors.shape}")
    n, dim = vectors.shape
    params = _check_params(kind, params, n, dim)
    if kind == "exact":
        return ExactIndex(vectors)
    units = normalize(vectors)
    if kind == "annoy":
        ann = annoy.AnnoyIndex(dim, "angular")
        for i, unit in enumerate(units):
            ann.add_item(i, unit)
        ann.build(int(params["n_trees"]), n_jobs=-1)
        return AnnoyIndex(vectors, params, ann)
    graph = hnswlib.Index(space="cosine", dim=dim)
    graph.init_index(n, M=int(params["M"]), ef_construction=int(params["ef_construction"]), random_seed=100)
    graph.add_items(units, np.arange(n), num_threads=-1)
    return HnswIndex(vectors, params, graph)


def exact_index(vectors: np.ndarray) -> Index:
    """Brute-force index: the reference the approximate kinds are measured against."""
    return build_index(vectors, "exact")


def _sidecar(path: Path) -> Path:
    return Path(f"{path}.json")


def load_index(path: str | Path, vectors: np.ndarray, fingerprint: str) -> Index:
    """Load an index saved by `Index.save` for `vectors` (the matrix it was built from); IndexFileError
    if it is missing, truncated, of another version, fingerprint or shape, or holds other vectors."""
    path, vectors = Path(path), np.asarray(vectors)
    meta = read_sidecar(path, vectors.shape, fingerprint)
    kind, n, dim = meta.get("kind"), len(vectors), vectors.shape[1]
    try:
        params = _check_params(kind, meta.get("params", {}), n, dim)
        index = _open(path, kind, vectors, params)
    except (OSError, RuntimeError, ValueError, IndexError) as e:
        raise IndexFileError(f"{path}: unreadable {kind} index ({e}); rebuild the index") from e
    rows = np.unique(np.linspace(0, n - 1, num=min(n, _SPOT_CHECKS)).astype(np.int64))
    if not np.allclose(index._stored_vectors(rows), normalize(vectors[rows]), atol=1e-4):
        raise IndexFileError(f"{path}: its stored vectors differ from the given ones; rebuild the index")
    return index


def read_sidecar(path: Path, shape: tuple[int, ...], fingerprint: str) -> dict[str, Any]:
    """The sidecar of the index at `path`, checked against the (n, dim) `shape` and `fingerprint`
    it must have been built for and the index file's size; IndexFileError if anything differs."""
    try:
        meta = load_json(_sidecar(path))
    except (OSError, ValueError) as e:
        raise IndexFileError(f"{path}: missing or unreadable sidecar {_sidecar(path).name}: {e}") from e

    def fail(why: str) -> IndexFileError:
        return IndexFileError(f"{path}: {why}; rebuild the index")

    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise fail(f"not a {FORMAT} v{FORMAT_VERSION} index")
    if meta.get("fingerprint") != fingerprint:
        raise fail(f"built for fingerprint {meta.get('fingerprint')!r}, expected {fingerprint!r}")
    if len(shape) != 2 or (meta.get("n"), meta.get("dim")) != tuple(shape):
        raise fail(f"built for {meta.get('n')} x {meta.get('dim')} vectors, got {tuple(shape)}")
    size = path.stat().st_size if path.is_file() else None
    if size != meta.get("file_size"):
        raise fail(f"file size {size} differs from the recorded {meta.get('file_size')} (missing or truncated)")
    if checksum(path) != meta.get("crc32"):
        raise fail("its bytes differ from its checksum (damaged)")
    return meta


def load_or_build(path: str | Path, vectors: np.ndarray, fingerprint: str, kind: str = "annoy") -> Index:
    """The index saved at `path` if it matches `vectors`, `fingerprint` and today's default
    parameters; otherwise build one with the defaults and save it there."""
    params = default_params(kind, *np.shape(vectors))
    try:
        index = load_index(path, vectors, fingerprint)
        if index.params == params:
            return index
        log.warning("rebuilding %s: built with %s, defaults now %s", path, index.params, params)
    except IndexFileError as err:
        if Path(path).exists():
            log.warning("rebuilding %s: %s", path, err)
    log.info("building the %s index over %d vectors (once)", kind, len(vectors))
    index = build_index(vectors, kind, **params)
    try:
        index.save(path, fingerprint)
    except OSError as err:  # a cache (a full disk, a read-only store): answer from memory, save it another time
        log.warning("%s; using the index from memory", err)
    return index


def _open(path: Path, kind: str, vectors: np.ndarray, params: dict[str, Any]) -> Index:
    n, dim = vectors.shape
    if kind == "exact":
        units = load_npy(path, mmap=True)
        if units.shape != (n, dim) or units.dtype != np.float32:
            raise IndexFileError(f"holds a {units.dtype} {units.shape} matrix")
        return ExactIndex(vectors, units)
    if kind == "annoy":
        ann = annoy.AnnoyIndex(dim, "angular")
        ann.load(str(path))  # memory-mapped
        if ann.get_n_items() != n:
            raise IndexFileError(f"holds {ann.get_n_items()} items, expected {n}")
        return AnnoyIndex(vectors, params, ann)
    graph = hnswlib.Index(space="cosine", dim=dim)
    graph.load_index(str(path), max_elements=n)
    if graph.get_current_count() != n:
        raise IndexFileError(f"holds {graph.get_current_count()} items, expected {n}")
    return HnswIndex(vectors, params, graph)


def recall_at_k(
    index: Index, reference: Index, queries: np.ndarray, k: int = 10, exclude: np.ndarray | None = None
) -> float:
    """Mean fraction of `reference`'s k nearest ids that `index` also returns in its k nearest;
    `exclude` (one id per query, e.g. the query item itself) is dropped from both lists first."""
    extra = 0 if exclude is None else 1
    got, _ = index.search_many(queries, k + extra)
    want, _ = reference.search_many(queries, k + extra)
    fractions = []
    for row, (g, w) in enumerate(zip(got, want)):
        if exclude is not None:
            g, w = g[g != exclude[row]], w[w != exclude[row]]
        g, w = g[:k], w[:k]
        fractions.append(len(np.intersect1d(g, w)) / len(w) if len(w) else 1.0)
    return float(np.mean(fractions))
