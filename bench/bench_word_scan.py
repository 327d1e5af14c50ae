"""When does the word index pay? An exact scan of the 400k x 50 GloVe matrix against the HNSW index.

A one-shot `vector-search words dog` needs no index: the exact float32 scan answers in
milliseconds, while the index costs a build (once per user, ~1 min on 2 idle cores) or a load from
the cache (later processes). This prints each cost and the break-even number of queries in one
process: below it the scan finishes first (`words.EXACT_SCAN_QUERIES` and
`EXACT_SCAN_QUERIES_UNBUILT` are set from it).

    python bench/bench_word_scan.py [--queries 300] [--build]   # --build: also time a fresh build
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine

from vector_search.search.index import build_index, default_params, load_or_build
from vector_search.text.words import DEFAULT_INDEX_KIND, load_words


def per_query_ms(search, queries: np.ndarray) -> float:
    """Median milliseconds of one k=11 search."""
    times = []
    for q in queries:
        start = time.perf_counter()
        search(q, 11)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--build", action="store_true", help="also time building the HNSW index from scratch")
    args = parser.parse_args()
    print(machine())
    words = load_words()
    queries = words.vectors[np.random.default_rng(0).choice(len(words), args.queries, replace=False)]

    start = time.perf_counter()
    exact = words.index("exact")  # normalises the matrix: the scan's only set-up
    exact_setup = time.perf_counter() - start
    exact_ms = per_query_ms(exact.search, queries)

    kind = DEFAULT_INDEX_KIND
    path = words.cache_dir / f"index.{kind}"
    load_or_build(path, words.vectors, words.fingerprint, kind)  # saved once, as the library does
    start = time.perf_counter()
    index = load_or_build(path, words.vectors, words.fingerprint, kind)
    load = time.perf_counter() - start
    index_ms = per_query_ms(index.search, queries)
    build = float("nan")
    if args.build:
        start = time.perf_counter()
        build_index(words.vectors, kind, **default_params(kind, *words.vectors.shape)).save(
            Path(tempfile.mkdtemp()) / "index", words.fingerprint
        )
        build = time.perf_counter() - start

    gain_ms = exact_ms - index_ms
    print(f"exact scan: set-up {exact_setup * 1e3:.0f} ms, {exact_ms:.2f} ms a query ({len(words)} x {words.dim} float32)")
    print(f"{kind}: load {load * 1e3:.0f} ms, build {build:.1f} s, {index_ms:.3f} ms a query")
    print(f"break-even, index saved: {(load - exact_setup) / gain_ms * 1e3:.0f} queries")
    if args.build:
        print(f"break-even, index to build: {(build - exact_setup) / gain_ms * 1e3:.0f} queries")


if __name__ == "__main__":
    main()
