"""What verifying files before use costs (#19): the checksum's speed, opening a store with and
without checking its vectors, the writer's pass over a big vector file, and the memory of a
queries file that never ends.

    python bench/bench_verify.py [--mib 512]

Prints: CRC-32 (what fileio.checksum uses) vs SHA-256 throughput on the same bytes (ratio); a
store of 1000 x 1280 opened by a fresh reader (checked) vs a writer's open (not checked), best of
5 (ratio); storefiles.damaged_rows over --mib MiB of vectors (MB/s: the cost `index` adds on a
store too big to check at every open); peak RSS of `vector-search words --queries-file /dev/zero`.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from _common import ROOT, machine

from vector_search.store import files as storefiles
from vector_search.store.store import Item, Store


def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512, help="size of the big vector file for the writer's pass")
    args = parser.parse_args()
    print(machine())

    data = np.random.default_rng(0).bytes(256 << 20)
    crc, sha = best(lambda: zlib.crc32(data), 3), best(lambda: hashlib.sha256(data).digest(), 3)
    print(f"checksum of 256 MiB: CRC-32 {256 / crc:.0f} MiB/s, SHA-256 {256 / sha:.0f} MiB/s (CRC-32 {sha / crc:.1f}x faster)")

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "store"
        items = [Item(f"c{i % 20}/{i}.jpg", 1, 1, f"{i:064x}") for i in range(1000)]
        vectors = np.random.default_rng(1).random((1000, 1280), np.float32)
        Store(directory, "efficientnet-lite0", "photos").append(items, vectors)

        def fresh(checkpoint: bool) -> None:
            storefiles._CHECKED_RANGES.clear()  # as a new process
            Store.load(directory, checkpoint=checkpoint)

        checked, unchecked = best(lambda: fresh(False)), best(lambda: fresh(True))
        print(f"open a 1000 x 1280 store: checked {checked * 1000:.1f} ms, unchecked {unchecked * 1000:.1f} ms "
              f"({checked / unchecked:.1f}x; +{(checked - unchecked) * 1000:.1f} ms)")

        rows = (args.mib << 20) // (1280 * 4)
        big = np.lib.format.open_memmap(Path(tmp) / "big.npy", "w+", np.float32, (rows, 1280))
        big[:] = 0.5
        big.flush()
        checksums = [(rows, f"{zlib.crc32(np.ascontiguousarray(big).data):08x}")]
        storefiles._CHECKED_RANGES.clear()
        seconds = best(lambda: (storefiles._CHECKED_RANGES.clear(), storefiles.damaged_rows(big, checksums, Path(tmp) / "big.npy")), 3)
        print(f"damaged_rows over {args.mib} MiB ({rows} rows of 1280): {seconds:.2f} s, {args.mib / seconds:.0f} MiB/s")

    out = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "vector_search", "words", "--queries-file", "/dev/zero", "--json"],
                         cwd=ROOT, capture_output=True, text=True)
    rss = next(line.split(":")[1].strip() for line in out.stderr.splitlines() if "Maximum resident" in line)
    print(f"words --queries-file /dev/zero: {len(out.stdout.splitlines())} error lines, exit {out.returncode}, peak RSS {int(rss) / 1024:.0f} MiB")
    print(machine())


if __name__ == "__main__":
    main()
