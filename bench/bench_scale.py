"""The image index at 1M vectors: build, query latency and recall, serving memory, adding 10k.

Data (written once under --dir, default /tmp/vs_scale; ~5.5 GB, delete it when done):
1M synthetic 1280-d vectors of real structure, made from the 1000 real Pascal EfficientNet-lite0
vectors (the store of `vector-search index` on Pascal, or --pascal STORE_DIR): each synthetic
vector mixes k = 2 or 3 distinct real unit vectors (k uniform, the photos uniform) with
Dirichlet(1, ..., 1) weights, adds isotropic Gaussian noise of expected norm NOISE (0.3) and is
re-normalised. 1000 held-out queries are new mixtures made the same way (another seed). Ground
truth: exact top-10 by cosine in the space the engine searches (normalised, centred on the
collection mean: spaces.ImageSpace), by a chunked scan.

    PYTHONPATH=$PWD python3 bench/bench_scale.py [--n 1000000] [--dir /tmp/vs_scale] [STAGE ...]

Stages: data, truth, build, query, serve, add, threshold (default: all, in that order).
Queries run single-threaded (OMP/OpenBLAS threads = 1 in the serving child).

`library` then `update` (not in the default run) time what `vector-search index FOLDER` does on a
1M library: `library` makes a folder of n + add files, hard links (no disk) of half the Pascal
photos in their class folders (--dir/library), and a store of the n + add data rows whose items
are those files (--dir/update-ROWS), with the image index of the store of `add` copied (same
rows, generation and mean: segments.py accepts it). `update` (a fresh process) links `--add` new
files to the other half of the photos, runs `update_store` with an embedder that hands back
synthetic vectors (the network is measured elsewhere), merges the index like `Engine.index`, then
runs an unchanged update; it reports each phase, the index rows covered and the peak RSS.

`text` (after `library`, not in the default run) times the joint step of `vector-search index` on
that store (Engine.index_joint) and the first text query in fresh processes; `reweight` (at
--n 200000 after `store build`) measures re-weighted search from candidates against the exact scan.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vector_search import config
from vector_search.imaging.embedding import Embedder
from vector_search.search.index import build_index
from vector_search.search.rows import SpaceRows, chunked_mean
from vector_search.search.vectors import normalize
from vector_search.store.store import Item

sys.path.insert(0, str(Path(__file__).resolve().parent))

DIM = 1280
NOISE = 0.3
CHUNK = 50_000
K = 10


def real_units(pascal: Path) -> np.ndarray:
    """The live vectors of the store in folder `pascal` (format 2, or a features.npz read as it is:
    never converted, it is not this bench's store), unit length."""
    from vector_search.store.store import Store

    store = Store.load(pascal, convert=False)
    v = np.array(store.vectors if store.live is None else store.vectors[store.live], np.float32)
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
    units = normalize(queries if mean is None else normalize(queries) - mean)
    best_d = np.full((len(units), 0), np.inf, np.float32)
    best_i = np.zeros((len(units), 0), np.int64)
    for first, rows in SpaceRows(source, mean).chunks():
        d = np.float32(1) - units @ normalize(rows).T
        top = np.argpartition(d, k - 1, axis=1)[:, :k]
        best_d = np.concatenate([best_d, np.take_along_axis(d, top, axis=1)], axis=1)
        best_i = np.concatenate([best_i, top + first], axis=1)
        order = np.argsort(best_d, axis=1, kind="stable")[:, :k]
        best_d, best_i = np.take_along_axis(best_d, order, axis=1), np.take_along_axis(best_i, order, axis=1)
    return best_i


def stage_truth(args) -> None:
    """Exact top-10 over the n rows; after `add`, over the n + add rows, still centred on the mean of
    the n rows (the index keeps its mean until a rebuild: segments.py)."""
    rows = args.n + (args.add if args.after_add else 0)
    path = args.dir / f"truth-{rows}.npz"
    if path.exists():
        print(f"truth: {path} exists")
        return
    t = time.perf_counter()
    mean = chunked_mean(store_vectors(args))
    source = np.load(args.dir / "vectors.npy", mmap_mode="r")[:rows]
    queries = np.load(args.dir / "queries.npy")
    truth = exact_top(source, mean, queries)
    np.savez(path, mean=mean, truth=truth)
    print(f"truth: mean + exact top-{K} of {len(queries)} queries over {len(source)} rows in {time.perf_counter() - t:.0f} s")


def features_root(args) -> Path:
    return args.dir / f"store-{args.n}"


def synthetic_items(first: int, count: int) -> list:
    return [Item(f"synthetic/{i:07d}.jpg", 1000 + i, i, f"{i:064x}") for i in range(first, first + count)]


def stage_store(args) -> None:
    """Write the first n rows as a store (store.py, format 2), chunkwise from the memory-mapped data."""
    from vector_search.store.folders import store_dir
    from vector_search.store.store import Store

    directory = store_dir(features_root(args), ENCODER)
    if directory.exists():
        print(f"store: {directory} exists")
        return
    t = time.perf_counter()
    Store(directory, ENCODER, "/synthetic", synthetic_items(0, args.n), store_vectors(args)).save()
    print(f"store: {args.n} rows written in {time.perf_counter() - t:.0f} s -> {directory}")


def stage_build(args) -> None:
    """Build the image index the engine would (spaces.ImageSpace.of: mean, train, add, save)."""
    from vector_search.store.folders import open_store
    from vector_search.store.spaces import ImageSpace

    store = open_store(features_root(args), ENCODER)
    t = time.perf_counter()
    space = ImageSpace.of(store)
    took = time.perf_counter() - t
    files = sorted(store.directory.glob("images.ivf*"))
    report(args, "build", seconds=round(took, 1), n=len(store), kind=space.index.kind, params=space.index.main.params,
           files={f.name: f.stat().st_size for f in files})


def report(args, stage: str, **figures) -> None:
    line = json.dumps({"stage": stage, "n": args.n, **figures, "load": os.getloadavg()})
    print(line, flush=True)
    with open(args.dir / "results.jsonl", "a") as f:
        f.write(line + "\n")


def stage_serve(args, space: str = "image") -> None:
    """A fresh process opens the store and index and answers the queries single-threaded: times, recall, memory."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for grid in (False, True):
        argv = [sys.executable, __file__, "--n", str(args.n), "--dir", str(args.dir), "--space", space, "serve-child"]
        proc = subprocess.run(argv + (["--grid"] if grid else []), env=env, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                report(args, f"serve-{space}" + ("-grid" if grid else ""), **json.loads(line))


def memory() -> dict[str, int]:
    """RssAnon (private memory), RssFile (mapped file pages touched: page cache, shared, dropped
    under pressure) and VmHWM (peak RSS; unlike ru_maxrss, not inherited from the parent) of this
    process, in MiB."""
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {key: int(status[key].split()[0]) // 1024 for key in ("RssAnon", "RssFile", "VmHWM")}


def conse():
    """The untrained ConSE joint model of the encoder (numpy: its ImageNet head and GloVe)."""
    from vector_search.imaging.encoders import get_encoder
    from vector_search.joint import conse_model
    from vector_search.text.words import load_words

    return conse_model(get_encoder(ENCODER).classifier(), load_words(), ENCODER)


def stage_joint(args) -> None:
    """The joint space at n: ConSE vectors of the store (chunkwise), their IVF index, exact truth."""
    from vector_search.store.folders import open_store
    from vector_search.store.spaces import JointSpace

    store, model = open_store(features_root(args), ENCODER), conse()
    t = time.perf_counter()
    space = JointSpace.of(store, model)
    took = time.perf_counter() - t
    queries = model.transform(np.load(args.dir / "queries.npy"))
    truth = exact_top(np.asarray(space.vectors), None, queries)
    np.savez(args.dir / f"truth-joint-{args.n}.npz", queries=queries, truth=truth)
    report(args, "joint-build", seconds=round(took, 1), dim=space.vectors.shape[1], params=space.index.main.params)
    stage_serve(args, space="joint")


def stage_serve_child(args) -> None:
    import faiss

    from vector_search.store.folders import store_dir
    from vector_search.store.spaces import ImageSpace, JointSpace
    from vector_search.store.store import Store

    if args.space == "joint":
        model = conse()
        saved = np.load(args.dir / f"truth-joint-{args.n}.npz")
        queries, truth = saved["queries"], saved["truth"]
    else:
        queries = np.load(args.dir / "queries.npy")
    before = memory()
    t = time.perf_counter()
    store = Store.load(store_dir(features_root(args), ENCODER))
    opened = time.perf_counter() - t
    if args.space == "image":  # the store's own size: before or after `add`
        truth = np.load(args.dir / f"truth-{len(store)}.npz")["truth"]
    space = ImageSpace.of(store) if args.space == "image" else JointSpace.of(store, model)
    loaded = time.perf_counter() - t
    project = space.project if args.space == "image" else (lambda q: q)
    settings = [(None, None)] if not args.grid else [(p, r) for p in (16, 32, 64) for r in (200, 400, 800)]
    if args.grid:  # tuning: 300 queries per setting
        queries, truth = queries[:300], truth[:300]
    main = space.index.main
    for nprobe, rerank in settings:
        if nprobe:
            main.params.update(nprobe=nprobe, rerank=rerank)
            faiss.extract_index_ivf(main._faiss).nprobe = nprobe
        times, cpu, found = [], [], []
        for q in queries:
            start, start_cpu = time.perf_counter(), time.thread_time()
            ids, _ = space.index.search(project(q), K)
            times.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
            found.append(ids)
        after = memory()
        print(json.dumps({
            "nprobe": main.params["nprobe"], "rerank": main.params["rerank"],
            "recall@10": round(float(np.mean([len(np.intersect1d(f, t)) / K for f, t in zip(found, truth)])), 4),
            **percentiles(times, "ms"), **percentiles(cpu, "cpu_ms"), "rows": len(store), "store_open_s": round(opened, 3), "index_open_s": round(loaded - opened, 3),
            "added_rss_anon_mib": after["RssAnon"] - before["RssAnon"], "added_rss_file_mib": after["RssFile"] - before["RssFile"],
        }), flush=True)


def stage_add(args) -> None:
    """Append `--add` rows to the store and merge them into the index (faiss add, no retraining)."""
    from vector_search.store.folders import open_store
    from vector_search.store.spaces import ImageSpace

    store = open_store(features_root(args), ENCODER)
    if len(store) != args.n:
        print(f"add: the store has {len(store)} rows, not {args.n}: already added")
        return
    more = np.load(args.dir / "vectors.npy", mmap_mode="r")[args.n : args.n + args.add]
    t = time.perf_counter()
    store = store.append(synthetic_items(args.n, args.add), more)
    appended = time.perf_counter() - t
    space = ImageSpace.of(store, merge=True)
    took = time.perf_counter() - t
    report(args, "add", rows=args.add, store_append_s=round(appended, 1), total_s=round(took, 1),
           index_rows=len(space.index.main), fresh_rows=len(space.index) - space.index.covered)


def library_root(args) -> Path:
    return args.dir / "library"


def update_root(args) -> Path:
    return args.dir / f"update-{args.n + args.add}"


def pascal_halves(photos: Path) -> dict[str, tuple[list[Item], list[Item]]]:
    """Per Pascal class, its photos as items (class/name, size, mtime, sha256) split in two halves:
    the library links the first, the update the second (new content: they must be embedded)."""
    from vector_search.store.updates import file_sha256

    halves = {}
    for folder in sorted(p for p in photos.iterdir() if p.is_dir()):
        items = []
        for f in sorted(folder.glob("*.jpg")):
            st = f.stat()
            items.append(Item(f"{folder.name}/{f.name}", st.st_size, st.st_mtime_ns, file_sha256(f)))
        halves[folder.name] = (items[: len(items) // 2], items[len(items) // 2 :])
    return halves


def linked_items(photos: Path, folder: Path, count: int, half: int, prefix: str) -> list[Item]:
    """Hard-link `count` files under `folder` (class folders, round robin) to the photos of `half`
    (0 or 1); their items as the store records them (links share size, mtime and content)."""
    halves = pascal_halves(photos)
    classes = sorted(halves)
    items = []
    for i in range(count):
        name = classes[i % len(classes)]
        photo = halves[name][half][(i // len(classes)) % len(halves[name][half])]
        rel = f"{name}/{prefix}{i:07d}.jpg"
        (folder / name).mkdir(parents=True, exist_ok=True)
        os.link(photos / photo.path, folder / rel)
        items.append(Item(rel, photo.size, photo.mtime_ns, photo.sha256))
    return items


def stage_library(args) -> None:
    """The folder of n + add hard links and its store (the data's rows) with the `add` stage's index."""
    import shutil

    from vector_search.store.folders import store_dir
    from vector_search.store.store import Store

    folder, directory = library_root(args), store_dir(update_root(args), ENCODER)
    if directory.exists():
        print(f"library: {directory} exists")
        return
    rows = args.n + args.add
    shutil.rmtree(folder, ignore_errors=True)
    t = time.perf_counter()
    items = linked_items(args.photos, folder, rows, 0, "")
    linked = time.perf_counter() - t
    Store(directory, ENCODER, str(folder), items, np.load(args.dir / "vectors.npy", mmap_mode="r")[:rows]).save()
    written = time.perf_counter() - t - linked
    source = store_dir(features_root(args), ENCODER)
    covered = json.loads((source / "images.ivf.json").read_text())["n"] if (source / "images.ivf.json").exists() else 0
    if covered == rows:  # same vectors, generation 0, same mean: the fingerprint matches
        for f in source.glob("images.ivf*"):
            shutil.copy(f, directory / f.name)
    report(args, "library", files=rows, link_s=round(linked, 1), store_write_s=round(written, 1),
           index="copied from the add stage" if covered == rows else "built at the first update")


def precomputed(vectors: dict[str, np.ndarray], called: list[float]) -> Embedder:
    """An embedder that hands back `vectors[path]` (no network); appends the time it starts and
    ends to `called` (the end of the plan, the start of the commit)."""
    from vector_search.imaging.embedding import Embedded

    def embed(paths: list[str]):
        called.append(time.perf_counter())
        for start in range(0, len(paths), 256):
            chunk = paths[start : start + 256]
            yield Embedded(list(range(start, start + len(chunk))), np.stack([vectors[p] for p in chunk]), [])
        called.append(time.perf_counter())

    return embed


def stage_update(args) -> None:
    """`update-child` in a fresh process (its peak RSS is the update's own)."""
    argv = [sys.executable, __file__, "--n", str(args.n), "--add", str(args.add), "--dir", str(args.dir),
            "--pascal", str(args.pascal), "--photos", str(args.photos), "update-child"]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            report(args, "update", **json.loads(line))


def stage_update_child(args) -> None:
    from vector_search.store import locks
    from vector_search.store.folders import store_dir
    from vector_search.store.spaces import ImageSpace
    from vector_search.store.updates import update_store

    folder, root = library_root(args), update_root(args)
    directory = store_dir(root, ENCODER)
    index_json = directory / "images.ivf.json"
    if len(list((folder / "aeroplane").glob("new-*"))):
        print(f"update: {folder} already has the new files: run `library` again (after deleting {root})")
        return
    new = linked_items(args.photos, folder, args.add, 1, "new-")
    made = mixtures(real_units(args.pascal), args.add, np.random.default_rng(3))
    vectors = {os.path.join(folder, item.path): v for item, v in zip(new, made)}
    print(json.dumps({"run": "prepared", "new_files": len(new), **{f"{key}_mib": value for key, value in memory().items()}}))
    for run in ("add", "unchanged"):
        covered = json.loads(index_json.read_text())["n"] if index_json.exists() else 0
        called: list[float] = []
        t = time.perf_counter()
        with locks.writer_lock(directory, f"the feature store {directory}"):  # as Engine.index
            store, done = update_store(folder, root, ENCODER, embedder=precomputed(vectors, called))
            updated, peak = time.perf_counter(), memory()["VmHWM"]
            space = ImageSpace.of(store, merge=True)
        end = time.perf_counter()
        phases = {"walk_plan_s": round(called[0] - t, 1), "append_commit_s": round(updated - called[1], 1)} if called else {}
        print(json.dumps({
            "run": run, "files": len(store), "embedded": done.embedded, "unchanged": done.unchanged, **phases,
            "update_store_s": round(updated - t, 1), "index_merge_s": round(end - updated, 1), "total_s": round(end - t, 1),
            "index_rows_before": covered, "index_rows_after": getattr(space.index, "covered", len(space.index)), "index_kind": space.index.kind,
            "generation": store.generation, "VmHWM_after_update_store_mib": peak, **{f"{key}_mib": value for key, value in memory().items()},
        }), flush=True)


def stage_threshold(args) -> None:
    """Annoy (the seed's kind) against IVF-PQ + re-rank at growing sizes: where Annoy stops being best."""
    from vector_search.search.ivf import build_ivf

    queries = np.load(args.dir / "queries.npy")[:200]
    for n in args.sizes:
        source = np.load(args.dir / "vectors.npy", mmap_mode="r")[:n]
        mean = chunked_mean(source)
        truth = exact_top(source, mean, queries)
        rows = SpaceRows(source, mean)
        units = normalize(normalize(queries) - mean)
        for kind in ("annoy", "ivf"):
            t = time.perf_counter()
            index = build_index(rows[:], "annoy") if kind == "annoy" else build_ivf(rows)
            built = time.perf_counter() - t
            times, cpu, hits = [], [], []
            for q, want in zip(units, truth):
                start, start_cpu = time.perf_counter(), time.thread_time()
                ids, _ = index.search(q, K)
                times.append(time.perf_counter() - start)
                cpu.append(time.thread_time() - start_cpu)
                hits.append(len(np.intersect1d(ids, want)) / K)
            report(args, "threshold", size=n, kind=kind, params=index.params, build_s=round(built, 1),
                   **percentiles(times, "ms"), **percentiles(cpu, "cpu_ms"), recall_at_10=round(float(np.mean(hits)), 4))


TEXT_QUERY = "a dog running on the beach"


def text_env(args) -> dict[str, str]:
    """No trained joint model (an empty models folder): the default untrained one, ConSE in the sentence space."""
    return dict(os.environ, VECTOR_SEARCH_MODELS=str(args.dir / "models-untrained"))


def stage_text(args) -> None:
    """The first text query on the `library` store (n + add rows whose items are real files) after
    `index`: a fresh process runs the joint step of `vector-search index` (Engine.index_joint: the
    joint vectors of every row and their index, for the default untrained model), timed; then a
    fresh `vector-search search` process is timed from its start to its answer (twice: the second
    with the page cache warm), and a fresh process splits the time into import, open and query.
    `--keep-joint`: the joint files of an earlier run stay (the joint step of a later `index`)."""
    from vector_search.store.folders import store_dir

    directory = store_dir(update_root(args), ENCODER)
    for old in [] if args.keep_joint else directory.glob("joint*"):  # measure the build, not a reuse
        old.unlink()
    argv = [sys.executable, __file__, "--n", str(args.n), "--add", str(args.add), "--dir", str(args.dir), "text-child", "--step", "index"]
    for line in subprocess.run(argv, env=text_env(args), stdout=subprocess.PIPE, text=True).stdout.splitlines():
        if line.startswith("{"):
            report(args, "text-index", **json.loads(line))
    cli = [sys.executable, "-m", "vector_search", "search", TEXT_QUERY, "-k", "10", "--json", "--features", str(update_root(args))]
    for run in ("first", "again"):
        t = time.perf_counter()
        proc = subprocess.run(cli, env=text_env(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        took = time.perf_counter() - t
        rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        report(args, "text-query-cli", run=run, process_s=round(took, 2), code=proc.returncode, answers=sum(len(r.get("results", [])) for r in rows),
               files_written=sorted(p.name for p in directory.glob("joint*") if p.stat().st_mtime > time.time() - took), stderr=proc.stderr[-300:])
    for step in ("query", "split"):
        argv[-1] = step
        for line in subprocess.run(argv, env=text_env(args), stdout=subprocess.PIPE, text=True).stdout.splitlines():
            if line.startswith("{"):
                report(args, f"text-{step}", **json.loads(line))


def stage_text_child(args) -> None:
    t = time.perf_counter()
    from vector_search.engine import Engine

    imported = time.perf_counter()
    engine = Engine(update_root(args), ENCODER)
    if args.step == "index":
        engine.index_joint()
        space = engine.joint_space
        print(json.dumps({"rows": len(engine.store), "model": engine.joint.method, "text": engine.joint.text, "dim": int(space.vectors.shape[1]),
                          "joint_index_s": round(time.perf_counter() - imported, 1), "kind": space.index.kind,
                          "files_mb": {p.name: round(p.stat().st_size / 1e6, 1) for p in engine.store.directory.glob("joint*")}}), flush=True)
        return
    opened = len(engine.store)
    opened_at, cpu = time.perf_counter(), time.process_time()
    if args.step == "split":
        text_split(engine, {"import_s": imported - t, "store_open_s": opened_at - imported})
        return
    hits = engine.search(TEXT_QUERY, k=10)
    first, cpu = time.perf_counter(), time.process_time() - cpu
    engine.search("a red bus in the street", k=10)
    print(json.dumps({"rows": opened, "import_s": round(imported - t, 2), "store_open_s": round(opened_at - imported, 2),
                      "first_query_s": round(first - opened_at, 2), "first_query_cpu_s": round(cpu, 2), "second_query_ms": round(1e3 * (time.perf_counter() - first), 1),
                      "answers": len(hits)}), flush=True)


def text_split(engine, took: dict[str, float]) -> None:
    """The first text query's parts one after the other (a search overlaps the index read with the encoder's opening)."""
    from vector_search.text import query

    steps = {"model_s": lambda: engine.joint, "session_s": lambda: engine.sentences, "index_read_s": lambda: engine.joint_space,
             "text_scores_s": lambda: engine.current().text_scores, "encode_s": lambda: query.sentence_query_vector(TEXT_QUERY, engine.sentences),
             "search_and_paths_s": lambda: engine.search(TEXT_QUERY, k=10)}
    for name, step in steps.items():
        start = time.perf_counter()
        step()
        took[name] = time.perf_counter() - start
    print(json.dumps({name: round(s, 3) for name, s in took.items()} | {"model_arrays_made": engine.joint.arrays_made}), flush=True)


def reweight_truth(store, queries: np.ndarray, classes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Exact top-K ids of each query re-weighted by its class (weights[class]), by a chunked scan of
    every row (query.reweight, cosine): the queries of one class at once."""
    from vector_search.text.query import reweight

    best_d = np.full((len(queries), K), np.inf, np.float32)
    best_i = np.zeros((len(queries), K), np.int64)
    for first in range(0, len(store), CHUNK):
        rows = np.asarray(store.vectors[first : first + CHUNK], np.float32)
        for c in np.unique(classes):
            mine = np.flatnonzero(classes == c)
            d = np.float32(1) - normalize(reweight(queries[mine], weights[c])) @ normalize(reweight(rows, weights[c])).T
            top = np.argpartition(d, K - 1, axis=1)[:, :K]
            both_d = np.concatenate([best_d[mine], np.take_along_axis(d, top, axis=1)], axis=1)
            both_i = np.concatenate([best_i[mine], top + first], axis=1)
            order = np.argsort(both_d, axis=1, kind="stable")[:, :K]
            best_d[mine], best_i[mine] = np.take_along_axis(both_d, order, axis=1), np.take_along_axis(both_i, order, axis=1)
    return best_i


def stage_reweight(args) -> None:
    """Re-weighted search (`similar --reweight CLASS`) at n: candidates from the image index re-ranked
    with the weights (ranking.reweighted_ids) against the exact re-weighted scan, by candidate count.
    Each query is re-weighted by its own top ImageNet class (what a person picks for a photo) and,
    separately, by a random one of 20 classes; single-threaded (OMP/OpenBLAS threads = 1)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    argv = [sys.executable, __file__, "--n", str(args.n), "--dir", str(args.dir), "--queries", str(args.queries), "reweight-child"]
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            report(args, "reweight", **json.loads(line))


def stage_reweight_child(args) -> None:
    from vector_search.imaging.encoders import get_encoder
    from vector_search.store import ranking
    from vector_search.store.folders import open_store
    from vector_search.store.spaces import ImageSpace
    from vector_search.text.query import class_weights, reweighted_search

    store = open_store(features_root(args), ENCODER)
    space = ImageSpace.of(store)
    w, b = get_encoder(ENCODER).classifier()[:2]
    queries = np.load(args.dir / "queries.npy")[: args.queries]
    rng = np.random.default_rng(5)
    picks = {"top": np.argmax(queries @ w + b, axis=1), "random": rng.choice(rng.choice(w.shape[1], 20, replace=False), len(queries))}
    weights = np.stack([class_weights(w, c) for c in range(w.shape[1])])
    t = time.perf_counter()
    truth = {how: reweight_truth(store, queries, classes, weights) for how, classes in picks.items()}
    print(f"truth: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    times, cpu = [], []
    for q, c in list(zip(queries, picks["top"]))[:10]:  # the exact scan, for the ratio
        start, start_cpu = time.perf_counter(), time.thread_time()
        reweighted_search(store.vectors, q, weights[c], K)
        times.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    print(json.dumps({"method": "exact scan", "queries": len(times), **percentiles(times, "ms"), **percentiles(cpu, "cpu_ms"),
                      "rows": len(store)}), flush=True)
    for count in args.candidates:
        for how, classes in picks.items():
            times, cpu, hits = [], [], []
            for q, c, want in zip(queries, classes, truth[how]):
                start, start_cpu = time.perf_counter(), time.thread_time()
                ids, _ = ranking.reweighted_ids(store, space, q, weights[c], K, candidates=count)
                times.append(time.perf_counter() - start)
                cpu.append(time.thread_time() - start_cpu)
                hits.append(len(np.intersect1d(ids, want)) / K)
            print(json.dumps({"method": "candidates", "candidates": count, "class": how, "queries": len(queries),
                              "recall@10": round(float(np.mean(hits)), 4), "recall@10_min": round(float(np.min(hits)), 2),
                              **percentiles(times, "ms"), **percentiles(cpu, "cpu_ms"), "rows": len(store),
                              "index": space.index.kind}), flush=True)


def percentiles(seconds: list[float], unit: str) -> dict[str, float]:
    """p50 and p99 of per-query times in milliseconds. Wall time (`ms`) on a shared machine waits for
    a core; the thread's CPU time (`cpu_ms`) is what one query costs when it has one."""
    return {f"p{p}_{unit}": round(1e3 * float(np.percentile(seconds, p)), 2) for p in (50, 99)}


ENCODER = "efficientnet-lite0"
STAGES = {"data": stage_data, "truth": stage_truth, "store": stage_store, "build": stage_build, "serve": stage_serve,
          "add": stage_add, "serve-child": stage_serve_child,
          "joint": stage_joint, "library": stage_library, "update": stage_update, "update-child": stage_update_child,
          "threshold": stage_threshold, "reweight": stage_reweight, "reweight-child": stage_reweight_child,
          "text": stage_text, "text-child": stage_text_child}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stages", nargs="*", default=["data", "truth", "store", "build", "serve", "add", "joint", "threshold"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000], help="threshold: store sizes")
    parser.add_argument("--space", choices=["image", "joint"], default="image", help="serve-child: which space")
    parser.add_argument("--after-add", action="store_true", help="truth: over the rows after `add`")
    parser.add_argument("--candidates", type=int, nargs="+", default=[500, 1000, 2000, 4000],
                        help="reweight: candidate counts to measure")
    parser.add_argument("--keep-joint", action="store_true", help="text: keep the joint files of an earlier run")
    parser.add_argument("--step", choices=["index", "query", "split"], default="index", help="text-child: which step")
    parser.add_argument("--grid", action="store_true", help="serve-child: also a grid of nprobe x rerank")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--add", type=int, default=10_000, help="rows appended by the `add` stage")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/vs_scale"))
    parser.add_argument("--photos", type=Path, default=config.pascal_root() / "dataset", help="library: the Pascal photos")
    parser.add_argument("--pascal", type=Path, default=Path("features/efficientnet-lite0"), help="the Pascal store folder")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for stage in args.stages:
        STAGES[stage](args)


if __name__ == "__main__":
    main()
