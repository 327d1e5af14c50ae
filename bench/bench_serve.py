"""`vector-search serve` under load: 8 HTTP clients on 127.0.0.1, a mix of every route, beside the
same queries asked of the Engine in-process (what the CLI does).

    python bench/bench_serve.py [DATASET_DIR] [--clients 8] [--requests 2000] [--seconds 60]

The dataset (default: the 1000 Pascal Sentences photos) is indexed once into bench/out/ (reused).
The query mix is bench_concurrency's (make_queries): similar photos by path (indexed, not indexed),
uploads (POST /similar), similar words, tags, text search, and queries that must fail. Every HTTP
answer is checked against the in-process answer of the same query (same items, distances within
1e-5; a query that fails in-process must get a 4xx): a difference, a 5xx or a connection error
counts as an error. Bounded: the load stops after `--requests` answers or `--seconds`, whichever
comes first. Latency per route, p50 / p99 in ms, for: the Engine in-process, one thread (the CLI's
work per query, start-up excluded); the Engine in-process, `--clients` threads; HTTP, one client;
HTTP, `--clients` clients (client-side: request sent to body parsed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, machine  # noqa: E402
from bench_concurrency import (  # noqa: E402
    KindStats,
    LoadReport,
    Query,
    engine_arguments,
    latencies_alone,
    make_queries,
    reference_answers,
    run_load,
    same,
)

ROOT = Path(__file__).resolve().parents[1]
ROUTES = {"similar_images": "/similar", "similar_words": "/words", "tags": "/tags", "search": "/search"}


def http_answer(base: str, query: Query, k: int) -> tuple[tuple, int]:
    """(answer in bench_concurrency's form, HTTP status) of one query asked over HTTP."""
    route = ROUTES[query.kind]
    if isinstance(query.arg, bytes):  # an upload
        boundary = uuid.uuid4().hex
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload.png"\r\n\r\n'.encode()
                + query.arg + f"\r\n--{boundary}--\r\n".encode())
        request = urllib.request.Request(f"{base}{route}?k={k}", data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    else:
        field = "path" if query.kind in ("similar_images", "tags") else "q"
        request = urllib.request.Request(f"{base}{route}?{urllib.parse.urlencode({field: query.arg, 'k': k})}")
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            body = json.loads(response.read())
            return ("ok", tuple((r["item"], r["distance"]) for r in body["results"])), response.status
    except urllib.error.HTTPError as err:
        return ("error", json.loads(err.read())["detail"]), err.code


def checked(got: tuple, status: int, want: tuple) -> str | None:
    """None if the HTTP answer is the in-process one (a failing query: a 4xx), else what is wrong."""
    if want[0] == "error":
        return None if 400 <= status < 500 else f"status {status} for a query that fails in-process ({want[1][:80]})"
    return None if status == 200 and same(got, want) else f"status {status}: got {str(got)[:200]}, want {str(want)[:200]}"


def http_load(base: str, queries: list[Query], reference: list, clients: int, requests: int, seconds: float, k: int) -> LoadReport:
    """`clients` threads ask random queries until `requests` answers or `seconds` have passed."""
    per_client = [defaultdict(KindStats) for _ in range(clients)]
    left = [requests]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(c: int) -> None:
        rng = random.Random(c)
        while time.perf_counter() < deadline:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            i = rng.randrange(len(queries))
            begin = time.perf_counter()
            try:
                got, status = http_answer(base, queries[i], k)
                problem = checked(got, status, reference[i])
            except OSError as err:
                problem = f"{type(err).__name__}: {err}"
            stats = per_client[c][queries[i].kind]
            stats.latencies.append(time.perf_counter() - begin)
            if problem:
                stats.errors.append(f"{queries[i].kind}({str(queries[i].arg)[:60]!r}): {problem}")

    begin = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 600)
    kinds: dict[str, KindStats] = defaultdict(KindStats)
    for stats in per_client:
        for kind, s in stats.items():
            kinds[kind].latencies += s.latencies
            kinds[kind].errors += s.errors
    return LoadReport(time.perf_counter() - begin, dict(kinds))


def start_server(store: Path, model: Path | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "vector_search", "serve", "--store", str(store), "--port", str(port)]
    proc = subprocess.Popen(argv + (["--model", str(model)] if model else []), cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = proc.stdout.readline()
    if not line.startswith("serving on"):
        raise RuntimeError(f"the server did not start: {line!r}")
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{base}/health", timeout=5).close()
            return proc, base
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server does not answer /health")


def main() -> int:
    parser = engine_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()

    from vector_search.engine import Engine

    print(machine())
    Engine(args.store).index(args.dataset)  # instant when already indexed
    engine = Engine(args.store, model_path=args.model)
    with tempfile.TemporaryDirectory() as scratch:
        queries = make_queries(engine, args.dataset, Path(scratch))
        reference = reference_answers(engine, queries, args.k)  # loads everything
        alone = latencies_alone(engine, queries, args.k, repeats=3)
        in_process = run_load(engine, queries, reference, threads=args.clients, seconds=min(args.seconds, 30), k=args.k)
        proc, base = start_server(args.store, args.model)
        try:
            one = http_load(base, queries, reference, 1, len(queries) * 3, args.seconds, args.k)
            many = http_load(base, queries, reference, args.clients, args.requests, args.seconds, args.k)
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"{len(engine.store)} photos, {len(queries)} distinct queries, k={args.k}, load {load_average()}\n")
    for title, report in [("Engine in-process, 1 thread (the CLI's work per query)", LoadReport(sum(sum(s.latencies) for s in alone.values()), dict(alone))),
                          (f"Engine in-process, {args.clients} threads", in_process),
                          ("HTTP, 1 client", one), (f"HTTP, {args.clients} clients on 127.0.0.1", many)]:
        print(f"{title}: {report.total} answers in {report.seconds:.1f} s, {len(report.errors)} errors")
        print(report.table() + "\n")
    for error in many.errors[:10] + one.errors[:5]:
        print("ERROR", error)
    return 1 if many.errors or one.errors else 0


if __name__ == "__main__":
    sys.exit(main())
