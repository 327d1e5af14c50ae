"""The image index at 1M vectors: build, query latency and recall, serving memory, adding 10k.

Data (written once under --dir, default /tmp/vs_scale; ~5.5 GB, delete it when done):
1M synthetic 1280-d vectors of real structure, made from the 1000 real Pascal EfficientNet-lite0
vectors (the store of `vector-search index` on Pascal, or --pascal FEATURES.npz): each synthetic
vector mixes k = 2 or 3 distinct real unit vectors (k uniform, the photos uniform) with
Dirichlet(1, ..., 1) weights, adds isotropic Gaussian noise of expected norm NOISE (0.3) and is
re-normalised. 1000 held-out queries are new mixtures made the same way (another seed). Ground
truth: exact top-10 by cosine in the space the engine searches (normalised, centred on the
collection mean: spaces.ImageSpace), by a chunked scan.

    PYTHONPATH=$PWD python3 bench/bench_scale.py [--n 1000000] [--dir /tmp/vs_scale] [STAGE ...]

Stages: data, truth, build, query, serve, add, threshold (default: all, in that order).
Queries run single-threaded (OMP/OpenBLAS threads = 1 in the serving child).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from vector_search import index as nn
from vector_search.rows import SpaceRows, chunked_mean

sys.path.insert(0, str(Path(__file__).resolve().parent))

DIM = 1280
NOISE = 0.3
CHUNK = 50_000
K = 10


def real_units(pascal: Path) -> np.ndarray:
    with np.load(pascal, allow_pickle=False) as data:
        v = data["vectors"].astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def mixtures(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors, each a Dirichlet-weighted mix of 2-3 distinct real rows plus noise of norm ~NOISE."""
    parts = rng.integers(2, 4, size=n)
    picks = np.stack([rng.choice(len(real), size=3, replace=False) for _ in range(n)])
    weights = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    two = parts == 2
    weights[two, 2] = 0
    weights[two] /= weights[two].sum(axis=1, keepdims=True)
    out = np.einsum("nk,nkd->nd", weights, real[picks])
    out += rng.standard_normal((n, real.shape[1]), dtype=np.float32) * np.float32(NOISE / np.sqrt(real.shape[1]))
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def stage_data(args) -> None:
    path = args.dir / "vectors.npy"
    if path.exists():
        print(f"data: {path} exists")
        return
    real = real_units(args.pascal)
    tmp = args.dir / "vectors.tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(args.n + args.add, DIM))
    t = time.perf_counter()
    for start in range(0, len(out), CHUNK):
        rng = np.random.default_rng([1, start])
        out[start : start + CHUNK] = mixtures(real, min(CHUNK, len(out) - start), rng)
    out.flush()
    del out
    np.save(args.dir / "queries.npy", mixtures(real, args.queries, np.random.default_rng(2)))
    os.replace(tmp, path)
    print(f"data: {args.n + args.add} x {DIM} vectors in {time.perf_counter() - t:.0f} s -> {path}")


def store_vectors(args) -> np.ndarray:
    """The first n rows of the data: the store's vectors (memory-mapped)."""
    return np.load(args.dir / "vectors.npy", mmap_mode="r")[: args.n]


def exact_top(source: np.ndarray, mean: np.ndarray | None, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Exact top-k ids of each query in the space of `source` (normalised, minus `mean`), chunked."""
    units = nn.normalize(queries if mean is None else nn.normalize(queries) - mean)
    best_d = np.full((len(units), 0), np.inf, np.float32)
    best_i = np.zeros((len(units), 0), np.int64)
    for first, rows in SpaceRows(source, mean).chunks():
        d = np.float32(1) - units @ nn.normalize(rows).T
        top = np.argpartition(d, k - 1, axis=1)[:, :k]
        best_d = np.concatenate([best_d, np.take_along_axis(d, top, axis=1)], axis=1)
        best_i = np.concatenate([best_i, top + first], axis=1)
        order = np.argsort(best_d, axis=1, kind="stable")[:, :k]
        best_d, best_i = np.take_along_axis(best_d, order, axis=1), np.take_along_axis(best_i, order, axis=1)
    return best_i


def stage_truth(args) -> None:
    path = args.dir / f"truth-{args.n}.npz"
    if path.exists():
        print(f"truth: {path} exists")
        return
    t = time.perf_counter()
    source = store_vectors(args)
    mean = chunked_mean(source)
    queries = np.load(args.dir / "queries.npy")
    truth = exact_top(source, mean, queries)
    np.savez(path, mean=mean, truth=truth)
    print(f"truth: mean + exact top-{K} of {len(queries)} queries over {len(source)} rows in {time.perf_counter() - t:.0f} s")


STAGES = {"data": stage_data, "truth": stage_truth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stages", nargs="*", default=list(STAGES))
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--add", type=int, default=10_000, help="rows appended by the `add` stage")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/vs_scale"))
    parser.add_argument("--pascal", type=Path, default=Path("features/efficientnet-lite0/features.npz"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for stage in args.stages:
        STAGES[stage](args)


if __name__ == "__main__":
    main()
