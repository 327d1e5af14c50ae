"""Word search over the 400k-word GloVe 6B 50-d vocabulary: the classic way vs ours, side by side.

CLASSIC: parse a glove.6B.50d.txt line by line into a dict, build a 20-tree Annoy index, query
it with the default search_k. OURS: `load_words()` (memory-mapped cache) + the saved word index,
queried through `WordVectors.similar_words`. For each: start-up time, per-query latency p50/p99
over random vocabulary words (medians over --repeats runs) and recall@10 against an exact scan
(the query word itself left out everywhere). The GloVe text file is written once from the
packaged vectors into --workdir; our cache and indexes are built once into --cache-dir.

    python bench/bench_words.py [--queries 1000] [--repeats 3] [--kinds hnsw,annoy]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from vector_search import config
from vector_search.search.index import exact_index
from vector_search.text.words import PACKAGED_NAME, WordVectors, load_words


def write_glove_text(wv: WordVectors, path: Path) -> None:
    """A standard GloVe text file (``word v1 ... v50`` per line) of the packaged vectors."""
    if path.exists():
        return
    print(f"writing {path} (once) ...", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8") as f:
        for word, row in zip(wv.words, wv.vectors):
            f.write(word + " " + " ".join(f"{x:.6g}" for x in row.tolist()) + "\n")
    tmp.replace(path)


def classic_start(path: Path) -> tuple[dict[str, np.ndarray], list[str], AnnoyIndex]:
    """The tutorial way: parse the text into a dict, then build a 20-tree Annoy index."""
    embeddings: dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            values = line.split()
            embeddings[values[0]] = np.asarray(values[1:], dtype="float32")
    words = list(embeddings)
    ann = AnnoyIndex(len(embeddings[words[0]]), "angular")
    for i, word in enumerate(words):
        ann.add_item(i, embeddings[word])
    ann.build(20)
    return embeddings, words, ann


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def latency(query: Callable[[str], list[str]], words: list[str], repeats: int) -> tuple[float, float, list[list[str]]]:
    """Median over runs of the p50 and p99 per-query latency (ms), and the last run's results."""
    p50s, p99s = [], []
    for _ in range(repeats):
        times, results = [], []
        for w in words:
            start = time.perf_counter()
            results.append(query(w))
            times.append(time.perf_counter() - start)
        p50s.append(np.percentile(times, 50) * 1e3)
        p99s.append(np.percentile(times, 99) * 1e3)
    return statistics.median(p50s), statistics.median(p99s), results


def recall(results: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(r) & set(t)) / len(t) for r, t in zip(results, truth)]))


def measure_classic(text: Path, queries: list[str], truth: list[list[str]], repeats: int) -> tuple:
    """The table row of the classic way: start-up, p50, p99 and recall."""
    print("classic start-up (parse text + build 20-tree Annoy) ...", flush=True)
    startup, (embeddings, words, ann) = timed(lambda: classic_start(text))

    def classic_query(w: str) -> list[str]:
        return [words[i] for i in ann.get_nns_by_vector(embeddings[w], 11) if words[i] != w][:10]

    p50, p99, results = latency(classic_query, queries, repeats)
    return "classic: txt + annoy 20 trees", startup, p50, p99, recall(results, truth)


def measure_ours(cache_dir: Path, kind: str, queries: list[str], truth: list[list[str]], repeats: int) -> tuple:
    """The table row of our cache + a saved `kind` index: start-up (load both), p50, p99 and recall."""
    startups = []
    for _ in range(repeats):
        elapsed, ours = timed(lambda: load_words(cache_dir=cache_dir))
        startups.append(elapsed + timed(functools.partial(ours.index, kind))[0])
    params = ", ".join(f"{k}={v}" for k, v in ours.index(kind).params.items())

    def our_query(w: str) -> list[str]:
        return [x for x, _ in ours.similar_words(w, 10, kind=kind)]

    p50, p99, results = latency(our_query, queries, repeats)
    return f"ours: cache + {kind} ({params})", statistics.median(startups), p50, p99, recall(results, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kinds", default="hnsw,annoy", help="our index kinds to measure")
    parser.add_argument("--cache-dir", type=Path, default=config.cache_root() / "words" / PACKAGED_NAME)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vector_search_bench")
    args = parser.parse_args()
    kinds = args.kinds.split(",")

    # One-time preparation, not timed as start-up: our cache + indexes, the GloVe text file.
    prep, wv = timed(lambda: load_words(cache_dir=args.cache_dir))
    for kind in kinds:
        built, _ = timed(functools.partial(wv.index, kind))
        prep += built
    print(f"our cache + indexes ready in {prep:.1f}s (one-time build if absent)", flush=True)
    text = args.workdir / "glove.6B.50d.txt"
    write_glove_text(wv, text)

    rng = np.random.default_rng(0)
    rows = rng.choice(len(wv), args.queries, replace=False)
    queries = [wv.words[i] for i in rows]
    exact = exact_index(wv.vectors)
    ids, _ = exact.search_many(wv.vectors[rows], 11)
    truth = [[wv.words[i] for i in r if i != q][:10] for r, q in zip(ids.tolist(), rows.tolist())]

    table = [measure_classic(text, queries, truth, args.repeats)]  # its dict and forest are freed on return
    table += [measure_ours(args.cache_dir, kind, queries, truth, args.repeats) for kind in kinds]

    p50, p99, _ = latency(lambda w: wv.similar_words(w, 10, kind="exact"), queries[:200], 1)
    table.append(("exact numpy scan (200 queries)", float("nan"), p50, p99, 1.0))

    width = max(len(row[0]) for row in table)
    print(f"\n{'method':<{width}}  start-up s   p50 ms   p99 ms  recall@10")
    for name, start, p50, p99, rec in table:
        print(f"{name:<{width}}  {start:10.3f}  {p50:7.3f}  {p99:7.3f}  {rec:9.3f}")
    classic = table[0]
    for row in table[1:-1]:
        print(
            f"ratio {row[0].split(' (')[0]} / classic: start-up {row[1] / classic[1]:.4f}x, "
            f"p50 {row[2] / classic[2]:.2f}x, p99 {row[3] / classic[3]:.2f}x, recall {row[4] / classic[4]:.2f}x"
        )
    print(f"({args.queries} random vocabulary words, {args.repeats} runs; latency = median over runs)")


if __name__ == "__main__":
    main()
