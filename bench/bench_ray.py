"""Indexing on Ray Data (`index --ray`, local mode) beside the local path, on the same photos.

The folder: 10 photos of each Pascal class (200), copied to a temp folder. Each run is a fresh
subprocess indexing it into an empty store with `updates.update_store` (the local embedder, or
ray_embedding.ray_embedder on a local Ray); runs alternate local, Ray, local, Ray... (--repeats
rounds), medians reported.

- photos/s end to end: photos / seconds from "start indexing" to "store saved", TensorFlow's import
  and the model's build included on both sides (the Ray actor imports TensorFlow itself); Ray's
  `ray.init` is NOT in it: it is timed apart (`init s`).
- first batch s: from "start indexing" to the first batch of vectors in hand (the start-up: Ray's
  workers and actor, TensorFlow, the model). No rate after the first batch is given: on 200
  photos it measured 22-61 photos/s for Ray (local 12-17) from run to run, so it says how much
  work was queued before the first batch reached the driver, not how fast the pipeline runs.
- CPU s: user + system seconds of the child and the processes it started, over the same span
  (on a machine shared with other work, the wall clock depends on how many threads each side
  runs; the CPU it burns does much less).
- peak memory: the largest sum, sampled every 0.2 s, of the proportional set size (Pss: shared
  pages split between the processes that map them) of the child and every process it started
  (Ray's GCS, raylet and workers included; the object store's shared memory counted once).

    python bench/bench_ray.py [--repeats 3] [--per-class 10] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL, load_average, machine, median, print_child_result, run_child, subset, table  # noqa: E402

ENCODER = "efficientnet-lite0"


def tree_pids(root: int) -> set[int]:
    """Process `root` and all its descendants (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass  # exited meanwhile
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return tree


def tree_pss_mib(root: int) -> float:
    """Pss of process `root` and all its descendants, in MiB."""
    total_kib = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total_kib += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return total_kib / 1024


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of process `root` and its living descendants."""
    ticks = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


class PeakSampler:
    """Samples tree_pss_mib(this process) every `interval` s in a thread; `.peak` is the largest."""

    def __init__(self, interval: float = 0.2) -> None:
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak = max(self.peak, tree_pss_mib(os.getpid()))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def child(mode: str, dataset: Path, batch_size: int) -> dict:
    """Index `dataset` into an empty store, locally or on a fresh local Ray; times and peak memory."""
    from vector_search.store.updates import update_store

    sampler, result, first = PeakSampler(), {}, []
    embedder = None
    if mode == "ray":
        from vector_search.imaging.ray_embedding import connect, import_ray, ray_embedder

        ray = import_ray()
        start = time.perf_counter()
        connect(ray, None)
        result["init_seconds"] = time.perf_counter() - start
        embedder = ray_embedder(ENCODER, batch_size=batch_size)

    def progress(done: int, total: int) -> None:
        if not first:
            first.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as root:
        start, cpu = time.perf_counter(), tree_cpu_seconds(os.getpid())
        store, report = update_store(dataset, root, ENCODER, progress=progress, batch_size=batch_size, embedder=embedder)
        seconds, cpu = time.perf_counter() - start, tree_cpu_seconds(os.getpid()) - cpu
    if mode == "ray":
        ray.shutdown()
    photos = len(store)
    return {
        **result,
        "mode": mode,
        "photos": photos,
        "skipped": len(report.skipped),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "first_batch_seconds": first[0] - start,
        "peak_pss_mib": sampler.stop(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (local, Ray) runs (default: %(default)s)")
    parser.add_argument("--per-class", type=int, default=10, help="photos per Pascal class (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DATASET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print_child_result(child(args.child[0], Path(args.child[1]), args.batch_size))
        return

    print(f"machine: {machine()}")
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "photos"
        subset(dataset, args.per_class * len([p for p in PASCAL.iterdir() if p.is_dir()]))
        for _ in range(args.repeats):
            for mode in runs:
                argv = [str(Path(__file__).resolve()), "--child", mode, str(dataset), "--batch-size", str(args.batch_size)]
                runs[mode].append(run_child(argv))
                print(json.dumps(runs[mode][-1]), flush=True)
    rows = []
    for mode, results in runs.items():
        m = {key: median([r[key] for r in results]) for key, value in results[0].items() if not isinstance(value, str)}
        rows.append([mode, m["photos"], median([r["photos"] / r["seconds"] for r in results]), m["first_batch_seconds"],
                     m["seconds"], m["cpu_seconds"], m.get("init_seconds", "-"), m["peak_pss_mib"], m["maxrss_mib"]])
    print(table(["path", "photos", "photos/s end to end", "first batch s", "index s", "CPU s (tree)", "init s",
                 "peak Pss MiB (tree)", "driver maxrss MiB"], rows))
    local, ray = (median([r["photos"] / r["seconds"] for r in runs[k]]) for k in ("local", "ray"))
    with_init = median([r["photos"] / (r["seconds"] + r["init_seconds"]) for r in runs["ray"]])
    print(f"Ray / local photos/s end to end: {ray / local:.2f}x ({with_init / local:.2f}x counting ray.init); "
          f"medians of {args.repeats} rounds; load average now {load_average()}")


if __name__ == "__main__":
    main()
