"""End to end: the CLI's time from process start to its first answer, cold and warm.

Each command runs as a fresh `vector-search ... --json` subprocess over the existing store and
caches; the clock runs from spawning the process to its first answer line on stdout. COLD = the
first run of the command in this benchmark (new process; OS file cache as it happens to be,
we cannot drop it); WARM = the median of the --repeats runs that follow.

    python bench/bench_e2e.py [--repeats 5] [--store features]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL, load_average, machine, median, table  # noqa: E402

from vector_search import config  # noqa: E402


def first_answer_seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.communicate()
    if proc.returncode or '"results"' not in line:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {line!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", default="features")
    args = parser.parse_args()

    exe = [sys.executable, "-m", "vector_search"]
    photo = str(sorted((PASCAL / "cat").iterdir())[0])
    store = ["--features", args.store]
    commands = {
        "words cat": [*exe, "words", "cat", "--json"],
        "similar <photo>": [*exe, "similar", photo, *store, "--json"],
        "search 'cat on a sofa'": [*exe, "search", "cat on a sofa", *store, "--json"],
        "tag <photo>": [*exe, "tag", photo, *store, "--json"],
    }
    print(f"machine: {machine()}")
    print(f"photo: {photo}; model: {config.models_root()}/joint-*.npz if trained, else ConSE")
    rows = []
    for name, argv in commands.items():
        cold = first_answer_seconds(argv)
        warm = [first_answer_seconds(argv) for _ in range(args.repeats)]
        rows.append([f"vector-search {name}", cold, median(warm), min(warm), max(warm)])
        print(f"  {name}: cold {cold:.2f} s, warm {' '.join(f'{w:.2f}' for w in warm)}", flush=True)
    print()
    print(table(["command (to first answer)", "cold s", f"warm s (median of {args.repeats})", "warm min", "warm max"], rows))
    print(f"load average now {load_average()}")


if __name__ == "__main__":
    main()
