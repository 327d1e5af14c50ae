"""Opening a big feature store (format 2): a synthetic store of N x DIM float32 rows is written
through the store's own API (an empty `Store.save()`, then `Store.append` of CHUNK rows at a
time, one item table each, as an indexing run's checkpoints do), then opened in fresh processes:

- `Store.load` seconds and the resident memory it adds (VmRSS after imports vs after the load);
- the first `find(path)` (reads the item tables: Arrow columns, no Python object per row), a
  `path(i)`, and the memory they add;
- appending 10k rows to the N-row store (one commit: vectors fsynced, a table, the manifest).

Vectors are random unit vectors (their values do not matter to opening); paths, sizes, mtimes and
sha256s are synthetic. The files are deleted afterwards unless --keep.

    python bench/bench_store.py [--rows 1000000] [--dim 1280] [--dir /tmp/vs_bench_store] [--opens 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, run_child  # noqa: E402

CHUNK = 50_000


def rss_mib() -> float:
    """Resident memory now (VmRSS), MiB."""
    line = next(line for line in open("/proc/self/status") if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def synthetic_items(start: int, stop: int):
    from vector_search.store.store import Item

    return [Item(f"class{i % 20:02d}/photo_{i:07d}.jpg", 100_000 + i, 1_700_000_000_000_000_000 + i,
                 hashlib.sha256(i.to_bytes(8, "little")).hexdigest()) for i in range(start, stop)]


def unit_rows(rng, n: int, dim: int):
    import numpy as np

    rows = rng.standard_normal((n, dim), dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def write(folder: Path, rows: int, dim: int) -> dict:
    """Write the synthetic store; returns the seconds it took and the rows/s of the appends."""
    import numpy as np

    from vector_search.store.store import Store

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    empty = Store(folder, "synthetic", "/photos")
    empty.save(complete=False)
    store = empty
    for first in range(0, rows, CHUNK):
        n = min(CHUNK, rows - first)
        store = store.append(synthetic_items(first, first + n), unit_rows(rng, n, dim), complete=first + n >= rows)
    seconds = time.perf_counter() - start
    return {"write_seconds": seconds, "write_rows_per_s": rows / seconds, "tables": len(store.manifest.tables)}


def child_open(folder: Path) -> None:
    """In a fresh process: time and memory of opening the store, of a first find and a path."""
    import numpy as np  # noqa: F401  (imported before the baseline, as any user of the store has)
    import pyarrow  # noqa: F401

    from vector_search.store.store import Store

    base = rss_mib()
    start = time.perf_counter()
    store = Store.load(folder)
    open_s = time.perf_counter() - start
    opened = rss_mib()
    n = len(store)
    start = time.perf_counter()
    row = store.find(f"/photos/class{(n - 1) % 20:02d}/photo_{n - 1:07d}.jpg")
    find_s = time.perf_counter() - start
    found = rss_mib()
    start = time.perf_counter()
    again = store.find(f"/photos/class00/photo_{0:07d}.jpg")
    find2_s = time.perf_counter() - start
    assert (row, again) == (n - 1, 0) and store.path(row).endswith(f"photo_{n - 1:07d}.jpg")
    print(json.dumps({"rows": n, "dim": store.vectors.shape[1], "open_s": open_s, "open_rss_mib": opened - base,
                      "first_find_s": find_s, "next_find_s": find2_s, "find_rss_mib": found - opened, "base_rss_mib": base}))


def child_append(folder: Path, rows: int) -> None:
    """In a fresh process: append `rows` rows to the store (one commit) and time it."""
    import numpy as np

    from vector_search.store.store import Store

    store = Store.load(folder)
    n, dim = len(store), store.vectors.shape[1]
    items, vectors = synthetic_items(n, n + rows), unit_rows(np.random.default_rng(1), rows, dim)
    start = time.perf_counter()
    store = store.append(items, vectors, complete=True)
    print(json.dumps({"append_rows": rows, "append_s": time.perf_counter() - start, "rows_after": len(store)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/vs_bench_store"))
    parser.add_argument("--opens", type=int, default=3, help="fresh processes that open the store")
    parser.add_argument("--keep", action="store_true", help="keep the store's files")
    parser.add_argument("--child", choices=["open", "append"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.dir / "synthetic"
    if args.child == "open":
        return child_open(folder)
    if args.child == "append":
        return child_append(folder, 10_000)

    print(machine())
    shutil.rmtree(args.dir, ignore_errors=True)
    try:
        written = write(folder, args.rows, args.dim)
        print(f"wrote {args.rows} x {args.dim} in {written['write_seconds']:.1f} s ({written['write_rows_per_s']:.0f} rows/s, "
              f"{written['tables']} item tables), {sum(f.stat().st_size for f in folder.iterdir()) / 2**30:.2f} GiB")
        opens = [run_child([__file__, "--child", "open", "--dir", str(args.dir)]) for _ in range(args.opens)]
        for key, unit in [("open_s", "s"), ("open_rss_mib", "MiB"), ("first_find_s", "s"), ("next_find_s", "s"), ("find_rss_mib", "MiB")]:
            print(f"{key:14s} median {median([o[key] for o in opens]):.3f} {unit}  (runs: {', '.join(f'{o[key]:.3f}' for o in opens)})")
        appended = run_child([__file__, "--child", "append", "--dir", str(args.dir)])
        print(f"append 10000 rows to {args.rows}: {appended['append_s']:.2f} s (one commit, fsynced)")
        print(f"load average after: {machine().split('load average ')[1]}")
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
