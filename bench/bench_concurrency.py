"""One shared Engine under concurrent mixed queries: errors (must be 0), queries/s, latency p50/p99.

    python bench/bench_concurrency.py [DATASET_DIR] [--threads 8] [--seconds 30] [-k 10]

The dataset (default: the 1000 Pascal Sentences photos) is indexed once into bench/out/ (reused
on later runs). One Engine then answers a mixed query set: similar images for indexed photos
(stored vectors), for photos that are not indexed and for uploads (both run the CNN), similar
words, tags and text search (when the engine has them), plus queries that must fail (unknown
word, not an image). Every answer under load is compared with the same query's single-threaded
answer (same items; distances within 1e-5; a failing query must fail with the same error);
a difference or an unexpected exception counts as an error.

tests/test_concurrency.py runs the same harness (imported from this file) on a small subset.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # here, not only under __main__: tests import this file
from _common import PASCAL  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("similar_images", "similar_words", "tags", "search")
TOLERANCE = 1e-5

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Query:
    """One query: an engine method, its argument (a path, upload bytes or text) and a short label."""

    kind: str
    arg: str | bytes
    label: str

    def run(self, engine, k: int) -> list:
        arg = io.BytesIO(self.arg) if isinstance(self.arg, bytes) else self.arg  # an upload: its own stream
        return getattr(engine, self.kind)(arg, k)


Answer = tuple  # ("ok", ((item, distance), ...)) or ("error", "ExceptionType: message")


def answer(engine, query: Query, k: int) -> Answer:
    try:
        return "ok", tuple((r.item, float(r.distance)) for r in query.run(engine, k))
    except Exception as err:  # compared with the single-threaded answer, never swallowed
        return "error", f"{type(err).__name__}: {err}"


def same(got: Answer, want: Answer, tolerance: float = TOLERANCE) -> bool:
    """Equal answers: the same error, or the same items with distances within `tolerance`.

    Items whose distances tie (within tolerance) may come in either order.
    """
    if got[0] != want[0] or len(got[1]) != len(want[1]):
        return False
    if got[0] == "error":
        return got[1] == want[1]
    for (item, d), (want_item, want_d) in zip(got[1], want[1]):
        if abs(d - want_d) > tolerance:
            return False
        if item != want_item and not any(i == item and abs(e - d) <= tolerance for i, e in want[1]):
            return False
    return True


def make_queries(engine, dataset: Path, scratch: Path, per_kind: int = 6) -> list[Query]:
    """A mixed query set over an indexed dataset; `scratch` receives photos that are not indexed."""
    paths = engine.store.paths
    rng = random.Random(0)
    picked = sorted(rng.sample(paths, min(len(paths), 3 * per_kind)))
    from PIL import Image, ImageOps

    queries = [Query("similar_images", p, "indexed photo") for p in picked[:per_kind]]
    scratch.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(picked[per_kind : per_kind + 3]):  # mirrored: new pixels, so the CNN runs
        outside = scratch / f"mirrored {i}.jpg"
        ImageOps.mirror(Image.open(p).convert("RGB")).save(outside, quality=90)
        queries.append(Query("similar_images", str(outside), "photo not indexed"))
    for p in picked[per_kind + 3 : per_kind + 5]:
        upload = io.BytesIO()
        ImageOps.mirror(Image.open(p).convert("RGB")).resize((200, 150)).save(upload, format="PNG")
        queries.append(Query("similar_images", upload.getvalue(), "upload"))
    queries.append(Query("similar_images", b"not an image", "bad upload"))
    words = ["cat", "said", "dining table", "ocean", "bus", "green grass", "qqzzxqq"]
    queries += [Query("similar_words", w, "words") for w in words]
    if hasattr(engine, "tags"):
        queries += [Query("tags", p, "tags") for p in picked[:3]]
        queries += [Query("tags", str(scratch / "mirrored 0.jpg"), "tags of a photo not indexed")]
    if hasattr(engine, "search"):
        texts = ["dog", "cat on a sofa", "dog + grass - person", "train station", "2:boat + water"]
        queries += [Query("search", t, "text search") for t in texts]
        queries.append(Query("search", "dog - dog", "bad text search (terms that cancel out)"))  # the sentence encoder reads any text
    return queries


@dataclass
class KindStats:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    seconds: float
    kinds: dict[str, KindStats]

    @property
    def total(self) -> int:
        return sum(len(s.latencies) for s in self.kinds.values())

    @property
    def errors(self) -> list[str]:
        return [e for s in self.kinds.values() for e in s.errors]

    def table(self) -> str:
        rows = [f"{'query type':<16}{'queries':>9}{'q/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"]
        for kind, s in sorted(self.kinds.items()):
            ms = sorted(x * 1000 for x in s.latencies)
            p50 = statistics.median(ms) if ms else float("nan")
            p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else float("nan")
            rows.append(f"{kind:<16}{len(ms):>9}{len(ms) / self.seconds:>9.1f}{p50:>9.1f}{p99:>9.1f}{len(s.errors):>8}")
        rows.append(f"{'all':<16}{self.total:>9}{self.total / self.seconds:>9.1f}{'':>18}{len(self.errors):>8}")
        return "\n".join(rows)


def reference_answers(engine, queries: list[Query], k: int) -> list[Answer]:
    """Each query answered once, one at a time: what every concurrent answer must equal."""
    return [answer(engine, q, k) for q in queries]


def _check(stats: KindStats, query: Query, got: Answer, want: Answer) -> None:
    if not same(got, want):
        stats.errors.append(f"{query.kind}({query.label}: {str(query.arg)[:60]!r}): got {str(got)[:300]}, want {str(want)[:300]}")


def run_load(engine, queries: list[Query], reference: list[Answer], threads: int = 8, seconds: float = 30, k: int = 10, seed: int = 0) -> LoadReport:
    """`threads` threads send random queries from the set for `seconds`; every answer is checked."""
    per_thread = [defaultdict(KindStats) for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    deadline = [0.0]

    def worker(t: int) -> None:
        rng = random.Random(seed * 1000 + t)
        stats = per_thread[t]
        start.wait()
        while time.perf_counter() < deadline[0]:
            i = rng.randrange(len(queries))
            begin = time.perf_counter()
            got = answer(engine, queries[i], k)
            stats[queries[i].kind].latencies.append(time.perf_counter() - begin)
            _check(stats[queries[i].kind], queries[i], got, reference[i])

    pool = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for thread in pool:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    begin = time.perf_counter()
    start.wait()
    for thread in pool:
        thread.join(timeout=seconds + 600)
    elapsed = time.perf_counter() - begin
    if any(thread.is_alive() for thread in pool):
        raise RuntimeError("a query thread is stuck (deadlock?)")
    return LoadReport(elapsed, _merge(per_thread))


def _merge(per_thread: list[dict[str, KindStats]]) -> dict[str, KindStats]:
    """One KindStats per query kind, pooling every thread's."""
    kinds: dict[str, KindStats] = defaultdict(KindStats)
    for stats in per_thread:
        for kind, s in stats.items():
            kinds[kind].latencies += s.latencies
            kinds[kind].errors += s.errors
    return dict(kinds)


def cold_start(make_engine: Callable[[], object], queries: list[Query], reference: list[Answer], threads: int = 8, k: int = 10) -> LoadReport:
    """A fresh engine whose first queries arrive from `threads` threads at once (lazy loading races):
    each thread answers every query once, in its own order."""
    engine = make_engine()
    per_thread = [defaultdict(KindStats) for _ in range(threads)]
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        order = list(range(len(queries)))
        random.Random(t).shuffle(order)
        start.wait()
        for i in order:
            begin = time.perf_counter()
            got = answer(engine, queries[i], k)
            per_thread[t][queries[i].kind].latencies.append(time.perf_counter() - begin)
            _check(per_thread[t][queries[i].kind], queries[i], got, reference[i])

    begin = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=1800)
    if any(thread.is_alive() for thread in pool):
        raise RuntimeError("a query thread is stuck (deadlock?)")
    return LoadReport(time.perf_counter() - begin, _merge(per_thread))


def engine_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments this benchmark shares with bench_serve.py: the photos, the store, the model, k."""
    parser.add_argument("dataset", nargs="?", type=Path, default=PASCAL)
    parser.add_argument("--store", type=Path, default=ROOT / "bench" / "out" / "concurrency_features")
    parser.add_argument("--model", type=Path, help="joint model for tags/search (default: the engine's: models/joint-*.npz if trained, else ConSE)")
    parser.add_argument("-k", type=int, default=10)
    return parser


def latencies_alone(engine, queries: list[Query], k: int, repeats: int = 1) -> dict[str, KindStats]:
    """Each query asked `repeats` times in this thread, one after the other: latencies per kind."""
    alone: dict[str, KindStats] = defaultdict(KindStats)
    for _ in range(repeats):
        for q in queries:
            begin = time.perf_counter()
            answer(engine, q, k)
            alone[q.kind].latencies.append(time.perf_counter() - begin)
    return alone


def main() -> int:
    parser = engine_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    from vector_search.engine import Engine

    t0 = time.perf_counter()
    Engine(args.store).index(args.dataset)  # instant when already indexed
    engine = Engine(args.store, model_path=args.model)
    with tempfile.TemporaryDirectory() as scratch:
        queries = make_queries(engine, args.dataset, Path(scratch))
        reference = reference_answers(engine, queries, args.k)  # also loads everything, single-threaded
        single = reference_answers(engine, queries, args.k)
        timings = latencies_alone(engine, queries, args.k)
        print(f"{len(engine.store)} photos indexed, {len(queries)} distinct queries "
              f"({', '.join(f'{sum(q.kind == kind for q in queries)} {kind}' for kind in KINDS if any(q.kind == kind for q in queries))}); "
              f"setup {time.perf_counter() - t0:.0f} s")
        assert all(same(a, b) for a, b in zip(single, reference)), "single-threaded answers differ between two runs"
        if hasattr(engine, "joint"):
            print(f"joint model: {engine.joint.method}")
        print("single thread, p50 ms: " + ", ".join(f"{kind} {statistics.median(v.latencies) * 1000:.1f}" for kind, v in timings.items()))

        cold = cold_start(lambda: Engine(args.store, model_path=args.model), queries, reference, args.threads, args.k)
        print(f"\ncold start: {args.threads} threads hit a fresh engine at once, each asks all {len(queries)} queries: "
              f"{cold.seconds:.1f} s, {len(cold.errors)} errors")
        load = run_load(engine, queries, reference, args.threads, args.seconds, args.k)
        print(f"\n{args.threads} threads, {load.seconds:.0f} s of mixed queries on one engine ({os.cpu_count()} cores):")
        print(load.table())
        for e in (cold.errors + load.errors)[:10]:
            print("ERROR", e)
    return 1 if cold.errors or load.errors else 0


if __name__ == "__main__":
    sys.exit(main())
