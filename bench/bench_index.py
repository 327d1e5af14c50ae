"""Indexing time through the real CLI: a cold first `index` of a folder, then an unchanged re-run.

    python bench/bench_index.py [DATASET_DIR] [--encoder efficientnet-lite0] [--repeats 1]

Each repeat indexes into a fresh temporary store (model load and weight cache included, as a
user's first run), then runs `index` again with nothing changed. Prints seconds and images/s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vector_search.imaging.images import find_images

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL  # noqa: E402


def timed_index(dataset: Path, store: Path, encoder: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "vector_search", "index", str(dataset), "--store", str(store), "--encoder", encoder],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=PASCAL)
    parser.add_argument("--encoder", default="efficientnet-lite0")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    n = len(find_images(args.dataset)[0])

    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cold.append(timed_index(args.dataset, Path(tmp), args.encoder))
            warm.append(timed_index(args.dataset, Path(tmp), args.encoder))
    c, w = statistics.median(cold), statistics.median(warm)
    print(f"{'run':<28}{'seconds':>10}{'images/s':>12}")
    print(f"{'first index (cold)':<28}{c:>10.1f}{n / c:>12.1f}")
    print(f"{'re-run, nothing changed':<28}{w:>10.2f}{'':>12}")
    print(f"({n} images, {args.encoder}, median of {args.repeats}; bars: first < 90 s, re-run < 5 s)")


if __name__ == "__main__":
    main()
