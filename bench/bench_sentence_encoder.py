"""The sentence encoder's costs: load, one query (warm, median), a batch of captions, RSS, per thread count.

Each variant runs in a fresh child process, the thread counts back to back in one run, so their
ratio is comparable even on a loaded machine (the load average is printed).

    python bench/bench_sentence_encoder.py [--queries 50] [--captions 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _common import load_average, machine, median, print_child_result, run_child, table

QUERIES = ["a dog playing on the beach", "a goose by the river", "two people riding horses", "a black cat on a sofa", "a red bus"]


def child(threads: int, queries: int, captions: int) -> None:
    from vector_search import config

    start = time.perf_counter()
    from vector_search.text.sentence_encoder import SentenceEncoder

    encoder = SentenceEncoder(threads=threads)
    load = time.perf_counter() - start
    times = []
    for i in range(queries):
        text = f"{QUERIES[i % len(QUERIES)]} {i}"  # a new text each time: the LRU cache is not measured
        t = time.perf_counter()
        encoder.encode_one(text)
        times.append(time.perf_counter() - t)
    lines = [line.strip() for f in sorted((config.pascal_root() / "sentence").rglob("*.txt"))
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip()][:captions]
    t = time.perf_counter()
    encoder.encode(lines)
    batch = time.perf_counter() - t
    print_child_result({"threads": threads, "load_s": load, "query_ms": 1000 * median(times[1:]), "captions": len(lines), "batch_s": batch})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--captions", type=int, default=1000)
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.queries, args.captions)
    print(machine())
    rows = []
    for threads in (1, 2):
        r = run_child(["bench/bench_sentence_encoder.py", "--child", str(threads), "--queries", str(args.queries), "--captions", str(args.captions)])
        rows.append([threads, r["load_s"], r["query_ms"], r["captions"], r["batch_s"], r["maxrss_mib"]])
        print(json.dumps(r), file=sys.stderr)
    print(table(["threads", "load s", "query ms (median)", "captions", "batch s", "peak RSS MiB"], rows))
    print(f"ratio 2 threads / 1 thread: query {rows[1][2] / rows[0][2]:.2f}, batch {rows[1][4] / rows[0][4]:.2f}; load average after: {load_average()}")


if __name__ == "__main__":
    main()
